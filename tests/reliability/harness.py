"""Drive one archive window through the real operators, outside a DAG run, like Airflow would.

:class:`Pipeline` runs ``fetch metadata window`` then ``download segments`` for every batch, retrying a task
that raised a retryable error as Airflow's ``retries`` would (a fresh operator and hook per try, like a new
task process), then reconciles the window with the DAG's report step
(:func:`airflow_provider_ringcx.window_report.report_window`). The hook gets a :class:`VirtualTime`: its waits
(Retry-After, backoff, budget pacing) are recorded and advance a virtual clock instead of sleeping, so the
suite never waits real minutes and tests can assert how long the hook *would* have waited.

Every task try starts with an empty secrets masker, as Airflow's supervisor resets it for every task
process (``reset_secrets_masker()`` in ``supervise``). The harness runs every try in this one process:
without the reset, every token the hook registers with ``mask_secret`` would stay in the masker for the
rest of the session, and the masker recompiles one regex of *all* its secrets on each new one (and scans
every log record with it), so a simulated day (thousands of tokens) slowed down quadratically and grew
to gigabytes of compiled patterns. The connection's own secrets are masked again by each try's hook, as
in a real task process.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from airflow.sdk._shared.secrets_masker import reset_secrets_masker
from airflow.sdk.exceptions import AirflowException, AirflowFailException

from airflow_provider_ringcx import window_report
from airflow_provider_ringcx.exceptions import RingCXError
from airflow_provider_ringcx.hooks.ringcx import RingCXHook
from airflow_provider_ringcx.keys import manifest_key, report_key
from airflow_provider_ringcx.operators.metadata import RingCXInteractionMetadataOperator
from airflow_provider_ringcx.operators.recordings import RingCXRecordingsToS3Operator
from tests.operators.conftest import XComRecorder

SUB = "99999999"


class VirtualTime:
    """A clock that moves forward when the code under test sleeps (thread-safe); sleeps are recorded."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self.offset = 0.0
        self.sleeps: list[float] = []

    def now(self) -> float:
        with self._lock:
            return time.time() + self.offset

    def sleep(self, seconds: float) -> None:
        with self._lock:
            self.sleeps.append(float(seconds))
            self.offset += max(0.0, float(seconds))


def _close(op: Any) -> None:
    """Release the task's connections, as the end of a task process would (idle keep-alive connections
    would otherwise pile up as server threads over a long soak)."""
    op.hook.close()
    if "s3_hook" in op.__dict__:
        op.s3_hook.get_conn().close()


def is_retryable_task_error(err: BaseException) -> bool:
    """Whether Airflow would retry the task (task retries configured): not AirflowFailException, not a
    configuration error."""
    if isinstance(err, AirflowFailException):
        return False
    if isinstance(err, RingCXError):
        return bool(err.retryable)
    return isinstance(err, (AirflowException, OSError))


@dataclass
class RunResult:
    """One window's run: batches, download summaries, the report, and every task error seen."""

    batches: list[list[dict]] = field(default_factory=list)
    summaries: list[dict] = field(default_factory=list)
    report: dict | None = None
    errors: list[BaseException] = field(default_factory=list)
    task_tries: int = 0
    xcoms: list[Any] = field(default_factory=list)

    @property
    def counts(self) -> dict[str, int]:
        total: dict[str, int] = {}
        for summary in self.summaries:
            for name, value in summary["counts"].items():
                total[name] = total.get(name, 0) + value
        return total


@dataclass
class Pipeline:
    """The fetch -> download -> report path of one archive.

    :param retries: Airflow task retries (a task is tried ``retries + 1`` times).
    :param download_kwargs: extra arguments of every download operator.
    """

    bucket: str
    prefix: str = "rel"
    ringcx_conn_id: str = "ringcx_default"
    aws_conn_id: str = "aws_default"
    retries: int = 3
    batch_size: int = 10
    download_kwargs: dict[str, Any] = field(default_factory=dict)
    clock: VirtualTime = field(default_factory=VirtualTime)
    hooks: list[RingCXHook] = field(default_factory=list)

    def hook(self) -> RingCXHook:
        hook = RingCXHook(ringcx_conn_id=self.ringcx_conn_id, clock=self.clock.now, sleep=self.clock.sleep)
        self.hooks.append(hook)
        return hook

    def _try(self, make: Callable[[], Any], result: RunResult, *, retries: int | None = None) -> Any:
        tries = (self.retries if retries is None else retries) + 1
        for attempt in range(tries):
            reset_secrets_masker()  # a new task process starts with a fresh masker (see the module doc)
            op = make()
            op.hook = self.hook()
            ti = XComRecorder()
            result.task_tries += 1
            try:
                value = op.execute({"ti": ti, "data_interval_start": None, "data_interval_end": None})
                result.xcoms.append(ti.pushed)
                return value, ti.pushed
            except Exception as err:
                result.errors.append(err)
                result.xcoms.append(ti.pushed)
                if attempt == tries - 1 or not is_retryable_task_error(err):
                    return err, ti.pushed
            finally:
                _close(op)
        raise AssertionError("unreachable")

    def fetch(self, start: datetime, end: datetime, result: RunResult, **kwargs: Any) -> Any:
        def make() -> RingCXInteractionMetadataOperator:
            return RingCXInteractionMetadataOperator(
                task_id="fetch_metadata_window",
                bucket=self.bucket,
                prefix=self.prefix,
                window_start=start,
                window_end=end,
                batch_size=self.batch_size,
                ringcx_conn_id=self.ringcx_conn_id,
                aws_conn_id=self.aws_conn_id,
                **kwargs,
            )

        value, _ = self._try(make, result)
        return value

    def download(self, batch: list[dict], key: str, result: RunResult, **kwargs: Any) -> dict | None:
        def make() -> RingCXRecordingsToS3Operator:
            return RingCXRecordingsToS3Operator(
                task_id="download_segments",
                batch=batch,
                bucket=self.bucket,
                prefix=self.prefix,
                manifest_key=key,
                ringcx_conn_id=self.ringcx_conn_id,
                aws_conn_id=self.aws_conn_id,
                retry_backoff=0,
                **{**self.download_kwargs, **kwargs},
            )

        value, pushed = self._try(make, result)
        summary = value if isinstance(value, dict) else pushed.get("summary")
        if summary is not None:
            result.summaries.append(summary)
        return summary

    def run_dict(self, start: datetime, end: datetime) -> dict[str, Any]:
        """The ``run`` dict the DAG's resolve step would produce (rescan off)."""
        return {
            "bucket": self.bucket,
            "prefix": self.prefix,
            "sub_account_id": SUB,
            "window_start": start.isoformat(),
            "window_end": end.isoformat(),
            "manifest_key": manifest_key(self.prefix, SUB, start, end),
            "report_key": report_key(self.prefix, SUB, start, end),
            "rescan": False,
            "verify_content": False,
            "allow_unarchived": [],
        }

    def report(self, s3: Any, start: datetime, end: datetime, result: RunResult) -> dict | None:
        try:
            # the metadata task's XCom 'manifest', as the DAG's report task pulls it
            pushed = [x for x in result.xcoms if isinstance(x, dict) and "manifest" in x]
            identity = pushed[-1]["manifest"] if pushed else None
            result.report = window_report.report_window(
                s3,
                self.run_dict(start, end),
                summaries=result.summaries,
                run_info={"harness": True},
                manifest_identity=identity,
            )
        except RingCXError as err:
            result.errors.append(err)
        return result.report

    def run_window(self, s3: Any, start: datetime, end: datetime, *, report: bool = True) -> RunResult:
        """Fetch, download every batch (with task retries), then report.

        The virtual clock's offset restarts at every run (a run's tasks are new processes): otherwise the
        waits of earlier runs would push the hook's clock ever further ahead of the vendor's, and every
        token would look expired on arrival.
        """
        self.clock.offset = 0.0
        result = RunResult()
        batches = self.fetch(start, end, result)
        if isinstance(batches, BaseException):
            if report:
                self.report(s3, start, end, result)
            return result
        result.batches = batches
        key = manifest_key(self.prefix, SUB, start, end)
        for batch in batches:
            self.download(batch, key, result)
        if report:
            self.report(s3, start, end, result)
        return result
