"""The example live DAG on the CeleryExecutor, for real (issue 16 item 3; ``make test-distributed``).

Processes, each its own: a ``redis-server`` on a free loopback port (with a password) as the Celery broker
(db 0) and result backend (db 1); a second one for the provider's shared budget (``[ringcx] budget_backend =
redis``; one Redis could serve all three, a server of its own lets the test count the pacer's commands);
``airflow api-server``, ``scheduler`` and ``dag-processor`` (:class:`scripts.stack.Stack`); and two
``airflow celery worker`` processes with ``--concurrency 2``, each with its own ``[ringcx] budget_dir`` (and
so its own token cache) and its own task-log folder, as two hosts would have. The simulator enforces the
vendor's budgets (metadata 2/60 s and 9/900 s, downloads 120/60 s, token exchanges 5/60 s) on its clock,
``TIME_SCALE`` times faster than real time; the connection carries the same budgets in real seconds, padded
by 0.3 s against scheduling jitter. A backfill of three 15-minute windows is created through the REST API.

Then, from outside the code under test: the archive holds every recording of the range, byte-identical, once
(:func:`tests.reliability.invariants.check_archive`, S3 and the simulator's ground truth only); every window's
report is complete; the simulator counted one metadata call per window and one download per recording, and
no 429 (a 429 is the fallback, not the plan: the budget shared in Redis must keep both workers under the
vendor's limits, where each worker's own file budget would let both spend it); the pacer ran in Redis (one
``EVALSHA`` per acquire on the budget's server, at least one per request the simulator counted) and no worker
kept a budget file; both workers ran tasks (task logs in each folder); and no
secret (client secret, JWT, issued tokens, the Redis password) is in any log file of the workers or services.

Why SQLite is enough here: in Airflow 3 neither the workers nor the task processes open the metadata DB (tasks
use the execution API of the API server), so only the scheduler, the dag-processor and the API server write
it, as with the LocalExecutor the other end-to-end tests use. Celery's result backend is Redis, not the DB
(the default ``db+sqlite`` would have the workers write the SQLite file too). Airflow refuses no executor on
SQLite any more; production should still use PostgreSQL or MySQL.
"""

from __future__ import annotations

import importlib.util
import json
import shutil
import time
from collections.abc import Callable, Iterator
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any

import pytest
import requests

from airflow_provider_ringcx.example_dags.ringcx_recordings_to_s3 import DAG_ID
from airflow_provider_ringcx.keys import report_key
from scripts.stack import BIN, Stack, free_port, poll
from tests.fixtures.redis import RedisServer
from tests.fixtures.secret_scan import log_file_places, scan_places, secret_needles
from tests.reliability.invariants import check_archive

pytestmark = [pytest.mark.distributed, pytest.mark.e2e, pytest.mark.timeout(900)]

UTC = timezone.utc
SUB = "99999999"
#: Backfill runs at 14:15, 14:30, 14:45: data intervals [14:00, 14:45); minus the 15-minute lag, 3 windows.
FROM, TO = datetime(2026, 3, 2, 14, 15, tzinfo=UTC), datetime(2026, 3, 2, 14, 45, tzinfo=UTC)
LAG = timedelta(minutes=15)
WINDOWS = 3
TIME_SCALE = 10.0
PAD_REAL = 0.3  # real seconds added to every hook window (scheduling jitter, as in bench/history.py)
VENDOR = {"metadata_budget": ((2, 60), (9, 900)), "download_budget": ((120, 60),), "token_budget": ((5, 60),)}
WORKERS = ("worker-1", "worker-2")
ROUTES = ("metadata", "download", "exchange")
REDIS_PASSWORD = "celery-e2e-redis-password-8f3a"  # a test credential, scanned for in every log


def _budget(limits: tuple[tuple[int, int], ...], scale: float = 1.0, pad: float = 0.0) -> str:
    return ",".join(f"{count}/{seconds / scale + pad:g}" for count, seconds in limits)


def _when(value: Any) -> datetime:
    if isinstance(value, (int, float)):
        return datetime.fromtimestamp(value / 1000, tz=UTC)
    return datetime.fromisoformat(str(value).replace("Z", "+00:00"))


class CeleryStack(Stack):
    """The :class:`Stack` with the CeleryExecutor: a Redis for broker and results, one for the budgets."""

    def __init__(self, home: Path, broker: RedisServer, budget: RedisServer) -> None:
        self.broker, self.budget = broker, budget
        sim_args = [
            "--time-scale", str(TIME_SCALE), "--calls-per-hour", "160", "--duration-scale", "0.02",
            "--seed", "16",
            *(arg for knob, spec in VENDOR.items() for arg in (f"--{knob.replace('_', '-')}", _budget(spec))),
        ]  # fmt: skip
        extra = {
            "metadata_budget": _budget(VENDOR["metadata_budget"], TIME_SCALE, PAD_REAL),
            "download_budget": _budget(VENDOR["download_budget"], TIME_SCALE, PAD_REAL),
            "exchange_budget": _budget(VENDOR["token_budget"], TIME_SCALE, PAD_REAL),
            "refresh_margin_seconds": 60 / TIME_SCALE,  # the default margin, on the simulator's clock
        }
        env = {
            "AIRFLOW__CORE__EXECUTOR": "CeleryExecutor",
            "AIRFLOW__CELERY__BROKER_URL": self.redis_url(broker, 0),
            "AIRFLOW__CELERY__RESULT_BACKEND": self.redis_url(broker, 1),
            "AIRFLOW__CELERY__WORKER_CONCURRENCY": "2",
            "AIRFLOW__RINGCX__BUDGET_BACKEND": "redis",
            "AIRFLOW__RINGCX__BUDGET_REDIS_URL": self.redis_url(budget, 0),
            "AIRFLOW__CORE__DAGS_ARE_PAUSED_AT_CREATION": "True",
            "RINGCX_START_DATE": "2030-01-01T00:00Z",  # no scheduled runs: only the backfill's
            "RINGCX_CATCHUP": "false",
            "RINGCX_RETRIES": "1",
            "RINGCX_RETRY_DELAY_SECONDS": "2",
            "RINGCX_BATCH_SIZE": "20",  # ~3 mapped downloads per window: work for both workers
            "RINGCX_RESCAN_LOOKBACK_MINUTES": "0",
        }
        super().__init__(home, sim_args=sim_args, ringcx_extra=extra, airflow_env=env)

    @staticmethod
    def redis_url(server: RedisServer, db: int) -> str:
        return f"redis://:{REDIS_PASSWORD}@127.0.0.1:{server.port}/{db}"

    def dags_folder(self) -> Path:
        """Only the live DAG (the shipped ``dags/`` holds three): less parsing on a small machine."""
        folder = self.home / "dags"
        folder.mkdir(parents=True, exist_ok=True)
        module = "airflow_provider_ringcx.example_dags.ringcx_recordings_to_s3"
        (folder / "live.py").write_text(f"from {module} import build_dag\n\ndag = build_dag()\n")
        return folder

    def worker_home(self, name: str) -> Path:
        return self.home / name

    def start_worker(self, name: str) -> None:
        """``airflow celery worker`` with its own budget directory and task-log folder (another host's)."""
        own = self.worker_home(name)
        env = {
            **self.env(),
            "AIRFLOW__RINGCX__BUDGET_DIR": str(own / "budgets"),
            "AIRFLOW__LOGGING__BASE_LOG_FOLDER": str(own / "logs"),
        }
        argv = [str(BIN / "airflow"), "celery", "worker", "--concurrency", "2", "--skip-serve-logs"]
        self.spawn(name, [*argv, "--celery-hostname", f"{name}@%h"], env=env)


@pytest.fixture
def celery_stack(tmp_path: Path, make_redis_server: Callable[..., RedisServer]) -> Iterator[CeleryStack]:
    if importlib.util.find_spec("airflow.providers.celery") is None:
        pytest.fail(
            "apache-airflow-providers-celery is not installed: `make test-distributed` installs the "
            "[test-distributed] extra (pinned in constraints.txt) and runs this test",
            pytrace=False,
        )
    broker, budget = (make_redis_server(password=REDIS_PASSWORD) for _ in range(2))
    stack = CeleryStack(tmp_path / "airflow", broker, budget)
    stack.extra_env["AIRFLOW__CORE__DAGS_FOLDER"] = str(stack.dags_folder())
    stack.start_services()
    try:
        yield stack
    finally:
        procs = list(stack.procs)
        stack.stop()
        assert all(proc.returncode is not None for proc in procs)


def _diagnosis(stack: Stack, api: str, headers: dict[str, str]) -> str:
    lines = []
    try:
        runs = requests.get(f"{api}/dags/{DAG_ID}/dagRuns", headers=headers, timeout=30).json()["dag_runs"]
        for run in runs:
            path = f"{api}/dags/{DAG_ID}/dagRuns/{run['dag_run_id']}/taskInstances"
            tis = requests.get(path, headers=headers, timeout=30).json()["task_instances"]
            states = sorted(f"{ti['task_id']}[{ti['map_index']}]={ti['state']}" for ti in tis)
            lines.append(f"{run['dag_run_id']} {run['state']}: {', '.join(states)}")
    except Exception as err:  # a diagnosis must not hide the timeout
        lines.append(f"(runs unavailable: {err})")
    for log in sorted((stack.home / "logs").glob("*.log")):
        lines += [f"--- {log.name}", *log.read_text(errors="replace").splitlines()[-25:]]
    return "\n" + "\n".join(lines)


def _backfill(stack: CeleryStack, url: str) -> list[dict[str, Any]]:
    headers = {"Authorization": f"Bearer {stack.api_token(url)}"}
    api = f"{url}/api/v2"
    poll("the DAG to be parsed", lambda: requests.get(f"{api}/dags/{DAG_ID}", headers=headers).ok, 180)
    assert requests.patch(f"{api}/dags/{DAG_ID}", headers=headers, json={"is_paused": False}).ok
    body = {
        "dag_id": DAG_ID,
        "from_date": FROM.isoformat(),
        "to_date": TO.isoformat(),
        "max_active_runs": WINDOWS,
        "reprocess_behavior": "none",
    }

    def create() -> tuple[requests.Response] | None:  # SQLite: a 503 "database is locked" is retried
        response = requests.post(f"{api}/backfills", headers=headers, json=body, timeout=30)
        return None if response.status_code == 503 else (response,)

    (created,) = poll("the backfill to be created", create, 90, interval=3)
    assert created.status_code == 200, created.text

    def finished() -> list[dict] | None:
        dead = [f"{p.args[1:3]} ({p.returncode})" for p in stack.procs if p.poll() is not None]
        assert not dead, f"exited during the backfill: {dead}" + _diagnosis(stack, api, headers)
        params = {"run_type": "backfill", "limit": 100}
        runs = requests.get(f"{api}/dags/{DAG_ID}/dagRuns", headers=headers, params=params).json()["dag_runs"]
        done = len(runs) == WINDOWS and all(run["state"] in ("success", "failed") for run in runs)
        return runs if done else None

    return list(poll("the runs", finished, 600, interval=2, details=lambda: _diagnosis(stack, api, headers)))


def _reports(stack: Stack) -> list[dict[str, Any]]:
    s3, start = stack.s3_client(), FROM - 2 * LAG
    found = []
    for n in range(WINDOWS):
        window = (start + n * LAG, start + (n + 1) * LAG)
        key = report_key(stack.prefix, SUB, *window)
        found.append(json.loads(s3.get_object(Bucket=stack.bucket, Key=key)["Body"].read()))
    return found


def _pacer_calls(stack: CeleryStack) -> int:
    """Scripts run on the budget's Redis (``EVALSHA``, or ``EVAL`` on a cache miss): the pacer's operations.

    Download budgets expire a second after their window (their keys are gone by now); the metadata budget's
    900 s window keeps its key, which must be there. No worker kept a budget state file of its own."""
    import redis

    client = redis.Redis.from_url(CeleryStack.redis_url(stack.budget, 0))
    keys = sorted(k.decode() for k in client.keys("ringcx:budget:*"))
    assert any(k.endswith(f":{SUB}:metadata}}") for k in keys), keys
    for name in WORKERS:
        files = [p.name for p in (stack.worker_home(name) / "budgets").glob("*") if p.is_file()]
        assert not [f for f in files if "download" in f or "metadata" in f], f"{name} budget files: {files}"
    stats = client.info("commandstats")
    return sum(int(stats.get(f"cmdstat_{cmd}", {}).get("calls", 0)) for cmd in ("evalsha", "eval"))


def _tasks_per_worker(stack: CeleryStack) -> dict[str, list[str]]:
    """``task_id[map_index]`` of every task log each worker wrote (its own log folder)."""
    ran: dict[str, list[str]] = {}
    for name in WORKERS:
        logs = (stack.worker_home(name) / "logs").rglob("attempt=*.log")
        ran[name] = sorted(
            next(part.split("=", 1)[1] for part in log.parts if part.startswith("task_id="))
            + next((f"[{part.split('=', 1)[1]}]" for part in log.parts if part.startswith("map_index=")), "")
            for log in logs
        )
    return ran


def _scan_for_secrets(stack: CeleryStack) -> str:
    connection = json.loads(stack.connections()["ringcx_default"])
    issued = requests.get(f"{stack.sim_url}/_sim/stats", timeout=30).json()["tokens_issued"]
    named = {
        "client secret": connection["password"],
        "JWT credential": connection["extra"]["jwt_token"],
        "Redis password": REDIS_PASSWORD,
    }
    named.update({f"issued {t['kind']} token #{i}": str(t["token"]) for i, t in enumerate(issued)})
    needles = secret_needles(named, connection["login"])
    places = log_file_places(stack.home / "logs")
    for name in WORKERS:
        places += log_file_places(stack.worker_home(name) / "logs")
    for name in WORKERS:  # not vacuous: the workers' own output and their task logs are scanned
        assert any(where.endswith(f"/{name}.log") for where, _ in places), name
        assert any(f"/{name}/logs/" in where for where, _ in places), name
    hits = scan_places(places, needles)
    assert not hits, f"{len(hits)} secret(s) in the log files:\n" + "\n".join(hits)
    return f"{len(named)} secrets and tokens, {len(places)} log files, 0 hits"


def test_two_celery_workers_archive_the_backfill_within_the_vendor_budgets(celery_stack: CeleryStack) -> None:
    started = time.monotonic()
    stack = celery_stack
    stack.prepare_home()
    url = stack.start_airflow(free_port(), timeout=240, standalone=False)
    for name in WORKERS:
        stack.start_worker(name)
    up = time.monotonic()
    before = requests.get(f"{stack.sim_url}/_sim/stats", timeout=30).json()
    runs = _backfill(stack, url)
    ran_for = time.monotonic() - up
    assert {run["state"] for run in runs} == {"success"}, [(r["dag_run_id"], r["state"]) for r in runs]

    # the archive, judged by the independent checker (S3 and the simulator's ground truth only)
    window = {"start": (FROM - 2 * LAG).isoformat(), "end": (TO - LAG).isoformat(), "sha256": "true"}
    truth = requests.get(f"{stack.sim_url}/_sim/ground-truth", params=window, timeout=60).json()["segments"]
    reports = _reports(stack)
    check = check_archive(stack.s3_client(), stack.bucket, stack.prefix, truth, summaries=reports)
    check.assert_ok()
    assert check.archived == check.expected >= 60, check.figures()
    assert all(report["complete"] for report in reports), [r["counts"] for r in reports]

    # the vendor's counters: every call within the budgets (no 429), nothing repeated
    stats = requests.get(f"{stack.sim_url}/_sim/stats", timeout=30).json()
    counted = {route: sum(stats["requests"].get(route, {}).values()) for route in ROUTES}
    calls = {route: counted[route] - sum(before["requests"].get(route, {}).values()) for route in ROUTES}
    throttled = {route: n for route, n in stats["rate_limited"].items() if n}
    assert not throttled, f"429s {throttled}: the shared Redis budget let the workers exceed the vendor's"
    assert calls["metadata"] == WINDOWS, calls
    assert calls["download"] == check.expected, calls

    pacer = _pacer_calls(stack)
    assert pacer >= sum(calls.values()), f"{pacer} pacer scripts in Redis for {calls} requests"
    ran = _tasks_per_worker(stack)
    assert all(ran.values()), f"a worker ran no task: {ran}"
    assert sum(len(tasks) for tasks in ran.values()) >= WINDOWS * 5, ran
    for name in WORKERS:  # each worker, a host of its own, exchanged or read its own token cache
        assert (stack.worker_home(name) / "budgets" / "token-cache").is_dir(), name
    scan = _scan_for_secrets(stack)
    tasks = {name: len(ids) for name, ids in ran.items()}
    print(
        f"celery e2e: {check.expected} recordings in {WINDOWS} windows; stack up in {up - started:.0f} s, "
        f"backfill {ran_for:.0f} s; "
        f"calls {calls}; tasks per worker {tasks}; "
        f"{pacer} pacer scripts in Redis; log scan: {scan}"
    )
    shutil.rmtree(stack.home / "dags", ignore_errors=True)
