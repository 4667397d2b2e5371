"""The task processes of a host share one RingCX token (issue 14 item 4), against the simulator over HTTP.

Each hook here is built like a task builds it: its own connection read, its own ``TokenManager``; "a task
process" is a real process (``multiprocessing`` spawn, so nothing is inherited but the environment), and the
exchanges are counted by the simulator (``/_sim/stats``), not by the hooks. Time moves on the hooks' own
:class:`OffsetClock` (the simulator issues opaque tokens where a test ages them, so their expiry is the
issuing hook's clock plus 300 s and not a real-time ``exp`` claim): no test sleeps.

Before the cache every hook exchanged once: ``test_tasks_started_together_make_one_exchange[off]`` shows it.
"""

from __future__ import annotations

import hashlib
import json
import logging
import multiprocessing
import os
import secrets
from collections.abc import Callable
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any

import pytest
from cryptography.fernet import Fernet

from airflow_provider_ringcx.exceptions import RingCXAuthError
from airflow_provider_ringcx.hooks.ringcx import RingCXHook
from airflow_provider_ringcx.hooks.tokencache import CACHE_SUBDIR
from tests.fixtures.secret_scan import scan_places, secret_needles
from tests.fixtures.simulator import SimulatorHandle, ringcx_connection_json
from tests.hooks.helpers import FAST_RETRIES, OffsetClock, past_hour

UTC = timezone.utc
PROCESSES = 4
#: Ages a token of 300 s past the default 60 s refresh margin, and leaves a new one fresh.
AGED = 250.0


def _sha(value: str) -> str:
    return hashlib.sha256(value.encode()).hexdigest()


def _task_process(conn: str, budget_dir: str, offset: float, barrier: Any, results: Any) -> None:
    """One task: read the connection, wait for the others, then ask for a token (spawned process)."""
    os.environ["AIRFLOW_CONN_RINGCX_DEFAULT"] = conn
    from airflow.sdk.log import redact

    clock = OffsetClock()
    clock.offset = offset
    hook = RingCXHook("ringcx_default", budget_dir=budget_dir, clock=clock, sleep=clock.sleep)
    hook.settings  # noqa: B018 - the connection is read before the start line, as a running task has
    try:
        barrier.wait(timeout=120)
        token = hook.tokens.token()
        tokens = hook.tokens
        results.put(
            {
                "token": _sha(token),
                "exchanges": tokens.exchanges,
                "refreshes": tokens.refreshes,
                "reused": tokens.reused,
                "masked": token not in str(redact(f"Bearer {token}")),
            }
        )
    except BaseException as err:  # reported to the test, which fails with it
        results.put({"error": f"{type(err).__name__}: {err}"})


def run_tasks(conn: str, budget_dir: Path, *, count: int = PROCESSES, offset: float = 0.0) -> list[dict]:
    """Start ``count`` task processes together; their reports (each with token digest and counters)."""
    ctx = multiprocessing.get_context("spawn")
    barrier, results = ctx.Barrier(count), ctx.Queue()
    procs = [
        ctx.Process(target=_task_process, args=(conn, str(budget_dir), offset, barrier, results))
        for _ in range(count)
    ]
    for proc in procs:
        proc.start()
    reports = [results.get(timeout=240) for _ in procs]
    for proc in procs:
        proc.join(timeout=60)
        assert proc.exitcode == 0, proc.exitcode
    assert not [r for r in reports if "error" in r], reports
    return reports


def exchanges(sim: SimulatorHandle) -> int:
    return int(sim.control.stats()["requests"].get("exchange", {}).get("200", 0))


def refreshes(sim: SimulatorHandle) -> int:
    return int(sim.control.stats()["requests"].get("refresh", {}).get("200", 0))


@pytest.fixture
def new_hook(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> Callable[..., RingCXHook]:
    """``new_hook(sim, clock=None, password=None, **extras)``: another task's hook on the same host."""

    def make(
        sim: SimulatorHandle, *, clock: OffsetClock | None = None, password: str | None = None, **extra: Any
    ) -> RingCXHook:
        data = json.loads(ringcx_connection_json(sim, **{**FAST_RETRIES, **extra}))
        if password is not None:
            data["password"] = password
        monkeypatch.setenv("AIRFLOW_CONN_RINGCX_DEFAULT", json.dumps(data))
        return RingCXHook(
            budget_dir=str(tmp_path / "budgets"), clock=clock, sleep=clock.sleep if clock else None
        )

    return make


def cache_files(tmp_path: Path) -> list[Path]:
    folder = tmp_path / "budgets" / CACHE_SUBDIR
    return sorted(p for p in folder.iterdir() if p.suffix == ".json") if folder.is_dir() else []


# -- processes -----------------------------------------------------------------------------------------------


@pytest.mark.parametrize("cache", ["on", "off"])
def test_tasks_started_together_make_one_exchange(simulator: SimulatorHandle, tmp_path: Path, cache: str):
    conn = ringcx_connection_json(simulator, exchange_cache=cache == "on", **FAST_RETRIES)
    reports = run_tasks(conn, tmp_path / "budgets")
    assert all(r["masked"] for r in reports)  # a reused token is masked in the process that read it
    if cache == "off":  # what every task did before: an exchange of its own
        assert exchanges(simulator) == PROCESSES
        assert len({r["token"] for r in reports}) == PROCESSES
        return
    assert exchanges(simulator) == 1  # the thundering herd: one exchanged under the lock, the rest waited
    assert sorted(r["exchanges"] for r in reports) == [0] * (PROCESSES - 1) + [1]
    assert sum(r["reused"] for r in reports) == PROCESSES - 1
    assert len({r["token"] for r in reports}) == 1


def test_an_expired_token_is_exchanged_once_for_all_waiting_tasks(
    make_simulator: Callable[..., SimulatorHandle], new_hook: Callable[..., RingCXHook], tmp_path: Path
):
    sim = make_simulator(token_format="opaque")
    first = new_hook(sim).tokens.token()  # an earlier task; its token expires 300 s after it was issued
    conn = ringcx_connection_json(sim, **FAST_RETRIES)
    reports = run_tasks(conn, tmp_path / "budgets", count=3, offset=AGED)  # 250 s later: within the margin
    assert exchanges(sim) == 2  # the first task's, and one for all three late ones
    assert refreshes(sim) == 0
    assert sorted(r["exchanges"] for r in reports) == [0, 0, 1]
    assert len({r["token"] for r in reports}) == 1
    assert reports[0]["token"] != _sha(first)


def test_the_task_holding_the_refresh_token_refreshes_once_for_all(
    make_simulator: Callable[..., SimulatorHandle], new_hook: Callable[..., RingCXHook]
):
    sim = make_simulator(token_format="opaque")
    clock = OffsetClock()
    holder = new_hook(sim, clock=clock)
    first = holder.tokens.token()
    clock.offset = AGED
    renewed = holder.tokens.token()  # refreshed (it has the refresh token) and stored for the others
    others = [new_hook(sim, clock=clock) for _ in range(3)]
    assert {hook.tokens.token() for hook in others} == {renewed}
    assert renewed != first
    assert (exchanges(sim), refreshes(sim)) == (1, 1)
    assert [hook.tokens.reused for hook in others] == [1, 1, 1]


# -- what must not be reused ---------------------------------------------------------------------------------


def test_a_changed_credential_never_reuses_the_token(
    simulator: SimulatorHandle, new_hook: Callable[..., Any]
):
    old = new_hook(simulator).tokens.token()
    with pytest.raises(RingCXAuthError):  # a wrong secret finds nothing: it is refused by RingCentral
        new_hook(simulator, password="a-wrong-client-secret-value").tokens.token()
    rotated = "rotated-client-secret-" + secrets.token_urlsafe(8)
    simulator.control.patch_config(client_secret=rotated)
    hook = new_hook(simulator, password=rotated)  # the secret was rotated: a new exchange, not the old token
    assert hook.tokens.token() != old
    assert hook.tokens.reused == 0
    assert exchanges(simulator) == 2


def test_a_cache_file_others_may_read_is_ignored(
    simulator: SimulatorHandle, new_hook: Callable[..., Any], tmp_path: Path, caplog: pytest.LogCaptureFixture
):
    first = new_hook(simulator).tokens.token()
    (entry,) = cache_files(tmp_path)
    entry.chmod(0o644)
    with caplog.at_level(logging.WARNING):
        hook = new_hook(simulator)
        assert hook.tokens.token() != first
    assert (hook.tokens.reused, exchanges(simulator)) == (0, 2)
    assert "has mode 0644" in caplog.text
    assert entry.stat().st_mode & 0o777 == 0o600  # replaced by a private file holding the new token


def test_a_401_evicts_the_token_so_no_other_task_presents_it(
    simulator: SimulatorHandle, new_hook: Callable[..., Any], tmp_path: Path
):
    start, _ = past_hour()
    window = (start, start + timedelta(minutes=5))
    first, second = new_hook(simulator), new_hook(simulator)
    rejected = first.tokens.token()
    assert second.tokens.token() == rejected  # reused
    simulator.control.revoke()  # every issued token dead, e.g. the user's sessions were ended
    list(first.iter_interaction_metadata(*window))  # 401: evicted, exchanged again, stored
    list(second.iter_interaction_metadata(*window))  # 401 with the old token: takes the stored new one
    late = new_hook(simulator)
    list(late.iter_interaction_metadata(*window))  # never sees the rejected token: no 401
    assert simulator.control.stats()["requests"]["metadata"] == {"401": 2, "200": 3}
    assert exchanges(simulator) == 2
    assert (second.tokens.exchanges, late.tokens.exchanges, late.tokens.reused) == (0, 0, 1)
    assert rejected not in cache_files(tmp_path)[0].read_text()


def test_with_the_cache_off_nothing_is_written(
    simulator: SimulatorHandle, new_hook: Callable[..., Any], tmp_path
):
    new_hook(simulator, exchange_cache="false").tokens.token()
    new_hook(simulator, exchange_cache="false").tokens.token()
    assert exchanges(simulator) == 2
    assert not cache_files(tmp_path)


# -- secrets -------------------------------------------------------------------------------------------------


@pytest.mark.parametrize("fernet", [False, True], ids=["mode 0600", "fernet"])
def test_no_secret_in_the_cache_file_and_none_in_the_logs(
    make_simulator: Callable[..., SimulatorHandle],
    new_hook: Callable[..., Any],
    tmp_path: Path,
    caplog: pytest.LogCaptureFixture,
    monkeypatch: pytest.MonkeyPatch,
    fernet: bool,
):
    from airflow.sdk.crypto import get_fernet

    if fernet:
        monkeypatch.setenv("AIRFLOW__CORE__FERNET_KEY", Fernet.generate_key().decode())
    get_fernet.cache_clear()
    secret, jwt = secrets.token_urlsafe(30) + "+/=", "eyJ" + secrets.token_urlsafe(200)
    sim = make_simulator(client_secret=secret, jwt=jwt)
    caplog.set_level(logging.DEBUG)
    try:
        hooks = [new_hook(sim) for _ in range(3)]
        tokens = {hook.tokens.token() for hook in hooks}
        start, _ = past_hour()
        list(hooks[2].iter_interaction_metadata(start, start + timedelta(minutes=5)))
    finally:
        get_fernet.cache_clear()
    assert len(tokens) == 1
    assert "reusing the RingCX token another task of this host obtained" in caplog.text
    issued = sim.control.stats()["tokens_issued"]
    assert {t["kind"] for t in issued} == {"rc_access", "rc_refresh", "access", "refresh"}
    named = {"client secret": secret, "JWT credential": jwt}
    named.update({f"issued {t['kind']} token #{i}": str(t["token"]) for i, t in enumerate(issued)})
    (entry,) = cache_files(tmp_path)
    content = entry.read_text()
    folder = [("cache file names", " ".join(p.name for p in entry.parent.iterdir())), ("cache file", content)]
    (token,) = tokens
    others = {label: value for label, value in named.items() if value != token}
    assert not scan_places(folder, secret_needles(others, sim.config.client_id))  # no refresh or RC token
    if fernet:
        assert not scan_places(folder, secret_needles({"RingCX token": token}, sim.config.client_id))
    else:
        assert token in content  # the one secret the file exists to hold
    logs = [("log records", caplog.text)]
    assert not scan_places(logs, secret_needles(named, sim.config.client_id))


# -- through Airflow -----------------------------------------------------------------------------------------

RUN = datetime(2026, 3, 14, 14, 30, tzinfo=UTC)  # a day no other dag.test() of the session uses


def test_a_dag_run_makes_one_exchange_not_one_per_task(
    example_dag: Any,
    make_simulator: Callable[..., SimulatorHandle],
    aws_conn: str,
    bucket: str,
    monkeypatch: pytest.MonkeyPatch,
    tmp_path: Path,
) -> None:
    """The example DAG's tasks each build a hook; with ``exchange_cache`` false this run made 5 exchanges for
    its 12 task instances (fetch, rescan and each download batch), with the cache 1."""
    from airflow.models import TaskInstance
    from airflow.utils.session import create_session
    from sqlalchemy import select

    monkeypatch.setenv("AIRFLOW__RINGCX__BUDGET_DIR", str(tmp_path / "budgets"))  # nothing from earlier tests
    sim = make_simulator(calls_per_hour=40, seed=7)
    monkeypatch.setenv("AIRFLOW_CONN_RINGCX_DEFAULT", ringcx_connection_json(sim))
    run = example_dag.test(logical_date=RUN, run_conf={"bucket": bucket, "prefix": "rec", "batch_size": 4})
    assert run.state == "success"
    with create_session() as session:
        tis = session.scalars(select(TaskInstance).where(TaskInstance.run_id == run.run_id)).all()
        downloads = [ti for ti in tis if ti.task_id == "download_segments"]
    assert len(downloads) >= 2  # the fetch task and each download batch built a hook: 3+ exchanges before
    print(f"dag.test(): {exchanges(sim)} token exchange(s) for {len(tis)} task instances")
    assert exchanges(sim) <= 2, sim.control.stats()["requests"]
    assert len(cache_files(tmp_path)) == 1
