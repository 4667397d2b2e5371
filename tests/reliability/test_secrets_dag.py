"""Secret hygiene of real Airflow DAG runs (the issue's secrets check, end to end through Airflow).

``tests/reliability/test_secrets.py`` drives the operators through a harness; this module runs the example
DAG for real with ``dag.test()`` on the test session's SQLite DB (the ``example_dag`` fixture), against the
simulator and moto's S3 server:

a. a successful run;
b. a run with a wrong client secret (fails in ``fetch_metadata_window`` with ``RingCXAuthError``);
c. a run during which the simulator revokes every issued token, twice (fault ``revoke_tokens``: once on
   the metadata call, once mid-download); the hook re-authenticates once per 401 and the run succeeds;
d. a run in ``auth_mode=token`` whose permanent API token was revoked (rotated in the simulator): fails.

Then every place a secret could leak is scanned for the client secrets (right and wrong), the JWT, both API
tokens and every token the simulator issued (``/_sim/stats`` ``tokens_issued``), raw and URL- or
base64-encoded, plus the base64 HTTP Basic credentials. Zero hits.

Where the task logs are: Airflow 3.3's ``dag.test()`` runs each task in this process
(``InProcessTestSupervisor``). Only the real supervisor of a worker's task process writes the log file
``{base_log_folder}/dag_id=.../run_id=.../task_id=.../attempt=N.log``, so ``dag.test()`` writes none (the
folder is scanned anyway, in case a file appears). The task's log lines go to this process's stdout
(structlog's ``task`` logger: task start/end, XCom pushes, failure tracebacks) and to stdlib logging (the
operators, the hook, boto, ...). So the test wraps ``dag.test()``'s task runner and keeps, per task
instance try, what was logged while that task ran: stdout/stderr (``capfd``), every stdlib record at DEBUG
as logged (``caplog``), and the same records as Airflow's own console formatter renders them, plus the
exception the task raised. None of this relies on Airflow's secret masker: a secret that the code logged
would be found (checked by hand with a hook patched to log its RingCentral token: 22 hits).
"""

from __future__ import annotations

import base64
import gzip
import io
import json
import logging
import secrets
import traceback
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any

import pytest

from airflow_provider_ringcx.coverage.ledger import CoverageLedger
from tests.fixtures.secret_scan import scan_places as _scan
from tests.fixtures.secret_scan import secret_needles as _needles
from tests.fixtures.simulator import SimulatorHandle, ringcx_connection_json

UTC = timezone.utc
#: Run dates (each archives the quarter hour 30 minutes earlier): one window per run, so that no run clears
#: another, and a day no other dag.test() of the session uses.
RUN_OK = datetime(2026, 3, 4, 14, 30, tzinfo=UTC)
SUB = "99999999"  # the simulator's default sub-account, the connection's
RUN_WRONG_SECRET = datetime(2026, 3, 4, 15, 30, tzinfo=UTC)
RUN_REVOKED = datetime(2026, 3, 4, 16, 30, tzinfo=UTC)
RUN_REVOKED_API_TOKEN = datetime(2026, 3, 4, 17, 30, tzinfo=UTC)
#: Keep the hook's retry waits short (a wrong secret is not retried anyway).
FAST = {"backoff_initial_seconds": 0.01, "backoff_max_seconds": 0.05, "read_timeout": 5, "connect_timeout": 5}


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def _client_secret() -> str:
    # characters that URL encoding and base64 change, so the encoded variants differ from the raw value
    return secrets.token_urlsafe(30) + "+/="


def _jwt_credential() -> str:
    """A JWT shaped like a RingCentral JWT credential (RS256, ~600 characters)."""
    header = _b64(json.dumps({"kid": "87762f6a", "typ": "JWT", "alg": "RS256"}).encode())
    claims = {
        "aud": "https://platform.ringcentral.com/restapi/oauth/token",
        "sub": "63034604004",
        "iss": "https://platform.ringcentral.com",
        "exp": 3900000000,
        "iat": 1772000000,
        "jti": secrets.token_urlsafe(16),
    }
    return f"{header}.{_b64(json.dumps(claims).encode())}.{_b64(secrets.token_bytes(256))}"


@dataclass
class Run:
    """One ``dag.test()`` run: its task logs (per task instance try) and the exceptions its tasks raised."""

    name: str
    dag_run: Any
    logs: dict[str, str] = field(default_factory=dict)  # "task_id[map_index] try N (stdout)" -> text
    errors: list[tuple[str, BaseException]] = field(default_factory=list)

    def log(self, task_id: str) -> str:
        return "\n".join(text for label, text in self.logs.items() if label.startswith(task_id + "["))


class Runner:
    """Runs the example DAG with ``dag.test()`` and keeps, per task instance try, what it logged and the
    exception it raised.

    A task's log is what was written while ``dag.test()`` ran that task: stdout/stderr (``capfd``: the
    structlog ``task`` logger, tracebacks), every stdlib log record (``caplog`` at DEBUG), and the records
    as Airflow's own console formatter renders them.
    """

    def __init__(
        self, dag: Any, bucket: str, caplog: pytest.LogCaptureFixture, capfd: pytest.CaptureFixture[str]
    ) -> None:
        self.dag, self.bucket, self.caplog, self.capfd = dag, bucket, caplog, capfd
        self.rendered = io.StringIO()
        self.runs: list[Run] = []
        self._current: Run | None = None
        self._offsets = (0, 0)

    def rendered_handlers(self) -> list[logging.Handler]:
        """Twins of Airflow's console handlers (same formatter and level) that write to a buffer (none if
        Airflow's structlog console handler is not installed: ``caplog`` still has every record)."""
        import structlog

        twins: list[logging.Handler] = []
        for handler in logging.getLogger().handlers:
            if isinstance(handler.formatter, structlog.stdlib.ProcessorFormatter):
                twin = logging.StreamHandler(self.rendered)
                twin.setFormatter(handler.formatter)
                twin.setLevel(handler.level)
                twins.append(twin)
        return twins

    def _take(self, run: Run | None, label: str) -> None:
        """Everything logged since the last call, kept in ``run.logs`` as ``label (stdout)`` and so on."""
        out, err = self.capfd.readouterr()
        records, rendered = self.caplog.text, self.rendered.getvalue()
        start_records, start_rendered = self._offsets
        self._offsets = (len(records), len(rendered))
        if run is not None:
            run.logs[f"{label} (stdout)"] = out
            run.logs[f"{label} (stderr)"] = err
            run.logs[f"{label} (log records, unmasked)"] = records[start_records:]
            run.logs[f"{label} (log records, as Airflow renders them)"] = rendered[start_rendered:]

    def record(self, real: Callable[..., Any]) -> Callable[..., Any]:
        """Wrap ``dag.test``'s task runner: collect each task instance try's log and exception."""

        def run_task(*, ti: Any, task: Any, run_triggerer: bool = False) -> Any:
            run = self._current
            assert run is not None
            self._take(run, f"dag.test() loop before {ti.task_id}[{ti.map_index}]")
            label = f"{ti.task_id}[{ti.map_index}] try {ti.try_number}"
            result = None
            try:
                result = real(ti=ti, task=task, run_triggerer=run_triggerer)
                return result
            finally:
                self._take(run, label)
                if result is not None and result.error is not None:
                    run.errors.append((label, result.error))

        return run_task

    def __call__(self, name: str, logical_date: datetime) -> Run:
        self._take(None, "")
        run = self._current = Run(name, None)
        run.dag_run = self.dag.test(
            logical_date=logical_date,
            run_conf={"bucket": self.bucket, "prefix": "rec", "batch_size": 4, "include_transcripts": True},
        )
        self._take(run, "dag.test() end")
        self.runs.append(run)
        return run


@pytest.fixture
def runner(
    example_dag: Any,
    aws_conn: str,
    bucket: str,
    caplog: pytest.LogCaptureFixture,
    capfd: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
) -> Iterator[Runner]:
    import airflow.sdk.definitions.dag as dag_module

    caplog.set_level("DEBUG")
    # report_window has retries=2 of its own (30 s, doubling): after a failed fetch it fails on the missing
    # manifest, and dag.test() would wait out both retries. One try shows the same error.
    monkeypatch.setattr(example_dag.task_dict["report_window"], "retries", 0)
    runner = Runner(example_dag, bucket, caplog, capfd)
    monkeypatch.setattr(dag_module, "_run_task", runner.record(dag_module._run_task))
    root = logging.getLogger()
    twins = runner.rendered_handlers()
    for twin in twins:
        root.addHandler(twin)
    try:
        yield runner
    finally:
        for twin in twins:
            root.removeHandler(twin)


# -- where it is looked for ----------------------------------------------------------------------------------


def _task_log_places(run: Run) -> list[tuple[str, str]]:
    """The run's task logs (one per task instance try) and the full text of every task exception."""
    places = [(f"run {run.name}: task log of {label}", text) for label, text in run.logs.items()]
    for label, error in run.errors:
        chain = "".join(traceback.format_exception(error))
        text = f"{error!s}\n{error!r}\n{error.__cause__!r}\n{error.__context__!r}\n{chain}"
        places.append((f"run {run.name}: exception of {label} ({type(error).__name__})", text))
    return places


def _log_files() -> list[tuple[str, str]]:
    from airflow.configuration import conf

    folder = Path(conf.get("logging", "base_log_folder"))
    files = sorted(p for p in folder.rglob("*") if p.is_file()) if folder.is_dir() else []
    return [(f"log file {p}", p.read_text("utf-8", "replace")) for p in files]


def _db_places(run_ids: list[str]) -> tuple[list[tuple[str, str]], dict[str, int]]:
    """Every metadata-DB row of these runs: each table keyed by run id, dag run id or task instance id
    (xcom, rendered_task_instance_fields, task_instance, task_instance_note, task_instance_history,
    dag_run, dag_run_note, log, asset_event, task_map, ...)."""
    from airflow.models import DagRun, TaskInstance
    from airflow.models.base import Base
    from airflow.utils.session import create_session
    from sqlalchemy import or_, select

    places: list[tuple[str, str]] = []
    counts: dict[str, int] = {}
    with create_session() as session:
        dag_run_ids = session.scalars(select(DagRun.id).where(DagRun.run_id.in_(run_ids))).all()
        ti_ids = session.scalars(select(TaskInstance.id).where(TaskInstance.run_id.in_(run_ids))).all()
        keys = {
            "run_id": run_ids,
            "source_run_id": run_ids,
            "dag_run_id": dag_run_ids,
            "ti_id": ti_ids,
            "task_instance_id": ti_ids,
        }
        for name, table in sorted(Base.metadata.tables.items()):
            conditions = [table.c[column].in_(values) for column, values in keys.items() if column in table.c]
            if not conditions:
                continue
            rows = session.execute(select(table).where(or_(*conditions))).mappings().all()
            counts[name] = len(rows)
            for i, row in enumerate(rows):
                text = json.dumps(dict(row), default=str, ensure_ascii=False)
                places.append((f"table {name} row {i} (run {row.get('run_id', '?')})", text))
    return places, counts


def _s3_places(s3_client: Any, bucket: str) -> tuple[list[tuple[str, str]], list[str]]:
    """Every non-WAV object (sidecars, manifests, reports) and every object's user metadata."""
    places, keys = [], []
    for page in s3_client.get_paginator("list_objects_v2").paginate(Bucket=bucket):
        for obj in page.get("Contents", []):
            key = obj["Key"]
            keys.append(key)
            head = s3_client.head_object(Bucket=bucket, Key=key)
            places.append((f"s3 metadata of {key}", json.dumps(head.get("Metadata", {}))))
            if not key.endswith(".wav"):
                body = s3_client.get_object(Bucket=bucket, Key=key)["Body"].read()
                if key.endswith(".gz"):  # the archive index: scanned as the text it holds, not its gzip
                    body = gzip.decompress(body)
                places.append((f"s3 object {key}", body.decode("utf-8", "replace")))
    return places, keys


# -- the test ------------------------------------------------------------------------------------------------


def test_dag_runs_leak_no_secret(
    runner: Runner,
    make_simulator: Callable[..., SimulatorHandle],
    monkeypatch: pytest.MonkeyPatch,
    s3_client: Any,
    bucket: str,
) -> None:
    client_secret, wrong_secret, jwt = _client_secret(), _client_secret(), _jwt_credential()
    api_token, rotated_api_token = f"aws80:{secrets.token_urlsafe(24)}", f"aws80:{secrets.token_urlsafe(24)}"
    sim = make_simulator(calls_per_hour=40, seed=7, client_secret=client_secret, jwt=jwt, api_token=api_token)
    conn = ringcx_connection_json(sim, **FAST)
    monkeypatch.setenv("AIRFLOW_CONN_RINGCX_DEFAULT", conn)

    # a. success
    ok = runner("success", RUN_OK)
    assert ok.dag_run.state == "success", ok.errors
    # the task logs were captured: the hook's records, the operators' outcome tables
    assert "exchanged the RingCentral token for a RingCX token" in ok.log("fetch_metadata_window")
    assert "ringcx outcomes: batch of 4 segments" in ok.log("download_segments")
    assert "ringcx window " in ok.log("report_window")  # the report operator's outcome table

    # b. a wrong client secret: the JWT grant fails with an error that names what to fix, not the secret
    monkeypatch.setenv(
        "AIRFLOW_CONN_RINGCX_DEFAULT", conn.replace(json.dumps(client_secret), json.dumps(wrong_secret))
    )
    wrong = runner("wrong client secret", RUN_WRONG_SECRET)
    assert wrong.dag_run.state == "failed"
    fetch_errors = [e for where, e in wrong.errors if where.startswith("fetch_metadata_window[")]
    assert [type(e).__name__ for e in fetch_errors] == ["RingCXAuthError"]
    assert "client id/secret" in str(fetch_errors[0])
    assert "Task failed with exception" in wrong.log("fetch_metadata_window")  # the traceback is logged
    assert "RingCXAuthError: RingCentral JWT grant" in wrong.log("fetch_metadata_window")

    # c. every issued token revoked during the run, on the metadata call and mid-download: the hook
    #    re-authenticates once per 401 (new RingCentral and RingCX tokens) and the run succeeds
    monkeypatch.setenv("AIRFLOW_CONN_RINGCX_DEFAULT", conn)
    sim.control.set_faults(
        [
            {"route": "metadata", "kind": "revoke_tokens", "times": 1},
            {"route": "download", "kind": "revoke_tokens", "skip": 2, "times": 1},
        ]
    )
    revoked = runner("tokens revoked", RUN_REVOKED)
    assert sim.control.stats()["faults"].get("revoke_tokens") == 2
    assert revoked.dag_run.state == "success", revoked.errors
    assert "RingCX answered 401; re-authenticating" in revoked.log("fetch_metadata_window")
    assert "RingCX answered 401; re-authenticating" in revoked.log("download_segments")
    sim.control.clear_faults()

    # d. auth_mode token with a permanent API token that was revoked (rotated): fails, naming the fix
    monkeypatch.setenv(
        "AIRFLOW_CONN_RINGCX_DEFAULT",
        ringcx_connection_json(sim, auth_mode="token", api_token=api_token, **FAST),
    )
    sim.control.patch_config(api_token=rotated_api_token)
    revoked_api = runner("API token revoked", RUN_REVOKED_API_TOKEN)
    assert revoked_api.dag_run.state == "failed"
    fetch_errors = [e for where, e in revoked_api.errors if where.startswith("fetch_metadata_window[")]
    assert [type(e).__name__ for e in fetch_errors] == ["RingCXAuthError"]
    assert "permanent API token" in str(fetch_errors[0])

    # e. the coverage ledger of the runs' day, refreshed as the audit DAG does (forced): its rollups under
    #    _coverage/ hold the reports' reasons (failures b and d included), so they are scanned too
    CoverageLedger(s3_client, bucket, "rec").refresh(
        SUB, RUN_OK.date(), RUN_OK.date() + timedelta(days=1), force=True
    )

    # What must not appear anywhere.
    issued = sim.control.stats()["tokens_issued"]
    assert issued, "the simulator issued no token: nothing was tested"
    assert {t["kind"] for t in issued} == {"rc_access", "rc_refresh", "access", "refresh"}
    named = {
        "client secret": client_secret,
        "client secret (wrong)": wrong_secret,
        "JWT credential": jwt,
        "API token (revoked)": api_token,
        "API token (current)": rotated_api_token,
    }
    named.update({f"issued {t['kind']} token #{i}": str(t["token"]) for i, t in enumerate(issued)})
    needles = _needles(named, sim.config.client_id)

    # Where it must not appear.
    places: list[tuple[str, str]] = []
    for run in runner.runs:
        places += _task_log_places(run)
    log_files = _log_files()
    places += log_files
    db_places, db_counts = _db_places([run.dag_run.run_id for run in runner.runs])
    places += db_places
    s3_places, keys = _s3_places(s3_client, bucket)
    places += s3_places

    # The scan is not vacuous: each kind of place holds what it should.
    assert len(runner.runs) == 4
    assert len([e for run in runner.runs for e in run.errors]) >= 2
    assert db_counts["xcom"] >= 10, db_counts
    assert db_counts["rendered_task_instance_fields"] >= 10, db_counts
    assert db_counts["task_instance"] >= 4 * 9, db_counts
    for suffix in (".json", ".jsonl"):
        assert any(k.endswith(suffix) for k in keys), f"no {suffix} object in the bucket"
    assert any("/_reports/" in k for k in keys)
    assert any("/_manifests/" in k for k in keys)
    assert any(k.endswith(".transcript.json") for k in keys)  # transcripts (issue 17) are scanned too
    assert any("/_index/" in k for k in keys)
    assert any("/_coverage/" in k for k in keys)  # the ledger's rollups (issue 15)

    hits = _scan(places, needles)
    print(
        f"secrets scan: {len(named)} secrets and tokens ({len(issued)} issued by the simulator), "
        f"{len(needles)} needles (raw, URL, base64, HTTP Basic), {len(places)} places: "
        f"{len(runner.runs)} runs' task logs and errors, {len(log_files)} log files, DB rows {db_counts}, "
        f"{len(keys)} S3 objects; {len(hits)} hits"
    )
    assert not hits, f"{len(hits)} hit(s):\n" + "\n".join(hits)
