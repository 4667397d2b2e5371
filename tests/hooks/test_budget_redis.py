"""The Redis budget backend against a real ``redis-server``: four "hosts", the config switch, outages.

Four processes with separate budget directories (as separate hosts have) pace themselves through one Redis:
their merged request times never exceed the budget in any window, and one process's 429 back-off holds the
other three. The backend is chosen by ``[ringcx] budget_backend`` (environment form), for the hook's
budgets too; a Redis that goes away mid-run fails the next acquire with a typed error that names the URL
without its password and says what to do. Nothing is mocked: the waits are the pacer's own real sleeps.
"""

from __future__ import annotations

import json
import logging
import multiprocessing
import time
from pathlib import Path
from typing import Any
from urllib.parse import quote

import pytest
import redis
from airflow.sdk._shared.secrets_masker import redact

from airflow_provider_ringcx.exceptions import RingCXConfigError
from airflow_provider_ringcx.hooks.budget import RateBudget, parse_budget
from airflow_provider_ringcx.hooks.budget_redis import (
    RedisBudgetStore,
    RingCXBudgetBackendError,
    configured_redis_url,
    mask_url,
    redis_keys,
)
from airflow_provider_ringcx.hooks.budget_store import FileBudgetStore
from tests.hooks.helpers import FAST_RETRIES

NAME = "127.0.0.1:1|99999999|download"
SPEC = "8/1"
LIMIT = parse_budget(SPEC)[0]
PENALIZE_AT, PENALTY, RUN_SECONDS = 1.5, 2.0, 5.0
BACKEND_ENV = "AIRFLOW__RINGCX__BUDGET_BACKEND"
URL_ENV = "AIRFLOW__RINGCX__BUDGET_REDIS_URL"
CONN_ENV = "AIRFLOW__RINGCX__BUDGET_REDIS_CONN_ID"


@pytest.fixture
def redis_backend(monkeypatch: pytest.MonkeyPatch, redis_url: str) -> str:
    monkeypatch.setenv(BACKEND_ENV, "redis")
    monkeypatch.setenv(URL_ENV, redis_url)
    monkeypatch.delenv(CONN_ENV, raising=False)
    return redis_url


def _host(index: int, budget_dir: str, go: Any, start: Any, ready: Any, out: Any) -> None:  # pragma: no cover
    """One "host": greedy acquires on its own budget directory; host 0 records a 429 back-off."""
    budget = RateBudget(NAME, parse_budget(SPEC), budget_dir)
    ready.put(index)
    go.wait(60)
    records, blocked_until = [], None
    while time.time() < start.value + RUN_SECONDS:
        if index == 0 and blocked_until is None and time.time() >= start.value + PENALIZE_AT:
            budget.penalize(PENALTY)
            blocked_until = budget.snapshot()["blocked_until"]
        began = time.time()
        budget.acquire()
        records.append((began, budget.last_acquired))
    out.put((index, type(budget.store).__name__, str(budget.state_dir), records, blocked_until))


def test_four_hosts_share_one_budget_and_one_back_off(redis_backend: str, tmp_path: Path) -> None:
    ctx = multiprocessing.get_context("spawn")
    go, start, ready, out = ctx.Event(), ctx.Value("d", 0.0), ctx.Queue(), ctx.Queue()
    procs = [
        ctx.Process(target=_host, args=(i, str(tmp_path / f"host-{i}"), go, start, ready, out))
        for i in range(4)
    ]
    for p in procs:
        p.start()
    for _ in procs:
        ready.get(timeout=120)
    start.value = time.time() + 0.2
    go.set()
    results = sorted(out.get(timeout=120) for _ in procs)
    for p in procs:
        p.join(timeout=30)
        assert p.exitcode == 0
    assert {kind for _, kind, *_ in results} == {"RedisBudgetStore"}
    assert len({budget_dir for _, _, budget_dir, *_ in results}) == 4  # four separate "hosts"
    stamps = sorted(t for *_, records, _ in results for _, t in records)
    assert len(stamps) >= 3 * LIMIT.count, "too few requests to test anything"

    # the budget: no 1 s window of the four hosts' requests together holds more than 8
    for i, t in enumerate(stamps):
        assert sum(1 for u in stamps[i:] if u < t + LIMIT.seconds) <= LIMIT.count, (t, stamps)
    # one host's 429 back-off holds all four: nobody goes between its moment and its end, and every host was
    # running before and after it (so each was held, not idle)
    blocked_until = results[0][4]
    assert blocked_until is not None
    penalized_at = blocked_until - PENALTY
    assert not [t for t in stamps if penalized_at + 1e-6 < t < blocked_until - 1e-6], (penalized_at, stamps)
    for index, _, _, records, _ in results:
        times = [t for _, t in records]
        assert any(t < penalized_at for t in times), index
        assert any(t >= blocked_until for t in times), index
        # its first request after the back-off was asked for before the back-off ended: it was held
        began, _ = next((b, t) for b, t in records if t >= blocked_until - 1e-6)
        assert began < blocked_until, (index, records)
    print(f"{len(stamps)} requests by 4 hosts; back-off {PENALTY:g} s held all")  # shown with -rP


def test_without_redis_four_budget_dirs_would_overspend(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The control: file budgets in separate directories do not see each other (why the backend exists)."""
    monkeypatch.delenv(BACKEND_ENV, raising=False)
    hosts = [RateBudget(NAME, parse_budget("2/60"), tmp_path / f"host-{i}") for i in range(4)]
    assert all(isinstance(h.store, FileBudgetStore) for h in hosts)  # the default backend
    waited = [h.acquire(max_wait=0) + h.acquire(max_wait=0) for h in hosts]
    assert waited == [0.0] * 4  # 8 requests inside one 2/60 window


def test_the_hooks_budgets_live_in_redis(
    redis_backend: str, simulator: Any, tmp_path: Path, monkeypatch
) -> None:
    """``budget_backend = redis`` + URL: the hook's exchange and metadata budgets are Redis ones, and a real
    call against the simulator records its requests there (no file is written)."""
    from airflow_provider_ringcx.hooks.ringcx import RingCXHook
    from tests.fixtures.simulator import ringcx_connection_json

    extras = {**FAST_RETRIES, "metadata_budget": "2/60,9/900", "exchange_budget": "5/60"}
    monkeypatch.setenv("AIRFLOW_CONN_RINGCX_REDIS", ringcx_connection_json(simulator, **extras))
    hook = RingCXHook("ringcx_redis", budget_dir=str(tmp_path / "budgets"))
    budgets = {endpoint: hook.budget(endpoint) for endpoint in ("metadata", "download", "exchange")}
    assert all(isinstance(b.store, RedisBudgetStore) for b in budgets.values())
    ok, message = hook.test_connection()
    assert ok, message
    client = redis.Redis.from_url(redis_backend)
    for endpoint in ("metadata", "exchange"):
        log_key, _ = redis_keys(hook.settings.budget_key(endpoint))
        assert log_key == f"ringcx:budget:{{{hook.settings.api_host}:{simulator.sub_account_id}:{endpoint}}}"
        assert client.zcard(log_key) >= 1, endpoint
    assert not list((tmp_path / "budgets").glob("*.json"))


def test_unknown_backend_and_missing_url_are_config_errors(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.setenv(BACKEND_ENV, "memcached")
    with pytest.raises(RingCXConfigError, match=r"budget_backend = 'memcached': use 'file'.*or 'redis'"):
        RateBudget(NAME, parse_budget(SPEC), tmp_path)
    monkeypatch.setenv(BACKEND_ENV, "redis")
    monkeypatch.delenv(URL_ENV, raising=False)
    monkeypatch.delenv(CONN_ENV, raising=False)
    with pytest.raises(RingCXConfigError, match="needs budget_redis_url"):
        RateBudget(NAME, parse_budget(SPEC), tmp_path)
    monkeypatch.setenv(URL_ENV, "http://:hunter2@127.0.0.1:6379/0")
    with pytest.raises(RingCXConfigError, match="not a Redis URL") as info:
        RateBudget(NAME, parse_budget(SPEC), tmp_path)
    assert "hunter2" not in str(info.value)
    monkeypatch.setenv(URL_ENV, "redis://127.0.0.1:6379/0")
    monkeypatch.setenv(CONN_ENV, "budget_redis")
    with pytest.raises(RingCXConfigError, match="not both"):
        RateBudget(NAME, parse_budget(SPEC), tmp_path)


def test_an_outage_mid_run_fails_with_the_url_and_what_to_do(
    make_redis_server: Any, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    server = make_redis_server(password="outage-pw-9d1")
    monkeypatch.setenv(BACKEND_ENV, "redis")
    monkeypatch.setenv(URL_ENV, server.url)
    budget = RateBudget(NAME, parse_budget(SPEC), tmp_path)
    budget.acquire()
    server.stop()
    for call in (budget.acquire, lambda: budget.penalize(5.0), budget.snapshot):
        with pytest.raises(RingCXBudgetBackendError) as info:
            call()
        message = str(info.value)
        assert f"redis://:***@127.0.0.1:{server.port}/0" in message
        assert "outage-pw-9d1" not in message
        assert "not sent" in message
        assert "budget_backend = file" in message
        assert info.value.__cause__ is None  # no chained redis error (nor its connection details)
        assert info.value.__suppress_context__


def test_a_password_is_used_and_never_shown(
    make_redis_server: Any, monkeypatch: pytest.MonkeyPatch, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    secret = "s3cr3t-budget-pw"
    server = make_redis_server(password=secret)
    monkeypatch.setenv(BACKEND_ENV, "redis")
    monkeypatch.setenv(URL_ENV, server.url)
    with caplog.at_level(logging.DEBUG):
        budget = RateBudget(NAME, parse_budget("1/60"), tmp_path, margin=0)
        budget.acquire()
        budget.penalize(1.0)
        shown = [repr(budget), repr(budget.store), budget.store.describe(), str(budget.snapshot())]
        with pytest.raises(Exception, match=r"budget full|no free slot"):
            budget.acquire(max_wait=0)
    assert secret not in "\n".join(shown) + caplog.text
    assert "redis://:***@" in budget.store.describe()
    # a wrong password: a typed error, without either password
    monkeypatch.setenv(URL_ENV, server.url.replace(secret, "wrong-pw-77"))
    with pytest.raises(RingCXBudgetBackendError, match="AuthenticationError") as info:
        RateBudget(NAME, parse_budget("1/60"), tmp_path).acquire()
    assert "wrong-pw-77" not in str(info.value)
    assert secret not in str(info.value)


def test_mask_url_hides_userinfo_and_query_passwords() -> None:
    assert mask_url("redis://:pw@h:6379/0") == "redis://:***@h:6379/0"
    assert mask_url("rediss://user:p%40ss@h:6380/2") == "rediss://user:***@h:6380/2"
    assert (
        mask_url("redis://h:6379/0?password=pw&socket_timeout=3")
        == "redis://h:6379/0?password=***&socket_timeout=3"
    )
    assert mask_url("redis://h:6379/0") == "redis://h:6379/0"


@pytest.mark.parametrize("where", ["userinfo", "query"])
def test_a_password_with_url_characters_is_masked_in_every_form(
    where: str,
    make_redis_server: Any,
    monkeypatch: pytest.MonkeyPatch,
    tmp_path: Path,
    caplog: pytest.LogCaptureFixture,
) -> None:
    """A password holding ``@ / # ? &`` must be percent-encoded in the URL; redis-py sends it decoded. Both
    forms are registered with Airflow's masker and neither shows in a repr, a message or a log line."""
    secret = f"Pw@{where}/w#rd?x&y=1"
    encoded = quote(secret, safe="")
    server = make_redis_server(password=secret)
    if where == "userinfo":
        url = f"redis://:{encoded}@127.0.0.1:{server.port}/0"
    else:
        url = f"redis://127.0.0.1:{server.port}/0?password={encoded}"
    monkeypatch.setenv(BACKEND_ENV, "redis")
    monkeypatch.setenv(URL_ENV, url)
    assert configured_redis_url() == url
    for form in (secret, encoded):
        assert form not in redact(f"a log line quoting {form} here")  # registered with the masker
    with caplog.at_level(logging.DEBUG):
        budget = RateBudget(NAME, parse_budget("1/60"), tmp_path, margin=0)
        budget.acquire()  # the decoded password is the one that authenticates
        shown = [repr(budget), repr(budget.store), budget.store.describe(), str(budget.snapshot())]
    server.stop()
    with pytest.raises(RingCXBudgetBackendError) as info:
        budget.acquire()
    text = "\n".join([*shown, caplog.text, str(info.value)])
    for form in (secret, encoded):
        assert form not in text
    assert f"127.0.0.1:{server.port}" in budget.store.describe()


def test_an_unencoded_slash_or_hash_in_a_password_is_refused_without_showing_it(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv(BACKEND_ENV, "redis")
    for url in ("redis://:pa/ss-word1@127.0.0.1:6379/0", "redis://u:pa#ss-word2@127.0.0.1:6379/0"):
        monkeypatch.setenv(URL_ENV, url)
        with pytest.raises(RingCXConfigError, match="percent-encoded") as info:
            configured_redis_url()
        assert "ss-word" not in str(info.value)
        assert "127.0.0.1:6379" in str(info.value)


def test_a_connection_password_is_masked_as_sent_and_as_written_in_the_url(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    secret = "Conn/pw#with?chars&1"
    conn = {"conn_type": "redis", "host": "127.0.0.1", "port": 6390, "password": secret}
    monkeypatch.setenv("AIRFLOW_CONN_BUDGET_REDIS_MASK", json.dumps(conn))
    monkeypatch.setenv(BACKEND_ENV, "redis")
    monkeypatch.delenv(URL_ENV, raising=False)
    monkeypatch.setenv(CONN_ENV, "budget_redis_mask")
    url = configured_redis_url()
    assert quote(secret, safe="") in url
    for form in (secret, quote(secret, safe="")):
        assert form not in redact(f"x {form} y")
    assert mask_url(url) == "redis://:***@127.0.0.1:6390/0"


def test_an_airflow_connection_names_the_redis(
    make_redis_server: Any, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    server = make_redis_server(password="conn-pw-3")
    conn = {"conn_type": "redis", "host": "127.0.0.1", "port": server.port, "password": "conn-pw-3"}
    monkeypatch.setenv("AIRFLOW_CONN_BUDGET_REDIS", json.dumps({**conn, "extra": {"db": 3}}))
    monkeypatch.setenv(BACKEND_ENV, "redis")
    monkeypatch.delenv(URL_ENV, raising=False)
    monkeypatch.setenv(CONN_ENV, "budget_redis")
    budget = RateBudget(NAME, parse_budget(SPEC), tmp_path)
    assert isinstance(budget.store, RedisBudgetStore)
    assert budget.store.masked_url == f"redis://:***@127.0.0.1:{server.port}/3"
    budget.acquire()
    assert redis.Redis.from_url(server.url.replace("/0", "/3")).zcard(budget.store.log_key) == 1
    monkeypatch.setenv(CONN_ENV, "no_such_redis")
    with pytest.raises(RingCXConfigError, match=r"no_such_redis.*no such Airflow connection"):
        RateBudget(NAME, parse_budget(SPEC), tmp_path)


def test_idle_keys_expire_after_the_longest_window(redis_backend: str, tmp_path: Path) -> None:
    budget = RateBudget(NAME, parse_budget("2/60,9/900"), tmp_path)  # padded: 60.5 and 900.5 s
    budget.acquire()
    budget.penalize(30.0)
    client = redis.Redis.from_url(redis_backend)
    assert 900_500 < client.pttl(budget.store.log_key) <= 901_500
    assert 30_000 < client.pttl(budget.store.blocked_key) <= 31_000
    budget.reset()
    assert client.exists(budget.store.log_key, budget.store.blocked_key) == 0


def test_the_options_are_declared_in_the_provider_config() -> None:
    """``airflow config list`` shows them with the provider's other settings; the URL is sensitive."""
    from airflow_provider_ringcx import get_provider_info

    options = get_provider_info()["config"]["ringcx"]["options"]
    assert options["budget_backend"]["default"] == "file"
    assert options["budget_redis_url"]["default"] is None
    assert options["budget_redis_url"]["sensitive"] is True
    assert options["budget_redis_conn_id"]["default"] is None
    for name in ("budget_backend", "budget_redis_url", "budget_redis_conn_id"):
        assert {"description", "version_added", "type", "example", "default"} <= set(options[name]), name
