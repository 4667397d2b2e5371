"""Fixtures of the reliability suite: a simulator with faults, a versioned bucket, the operator pipeline and
the independent invariant checker (``tests/reliability/invariants.py``)."""

from __future__ import annotations

import uuid
from collections.abc import Callable
from datetime import datetime, timezone
from typing import Any

import pytest

from tests.fixtures.simulator import SimulatorHandle, ringcx_connection_json
from tests.reliability.harness import Pipeline
from tests.reliability.invariants import ArchiveCheck, check_archive, downloaded_bytes

UTC = timezone.utc
#: A settled past window (15 minutes) used by most scenarios.
W_START = datetime(2026, 3, 2, 14, 0, tzinfo=UTC)
W_END = datetime(2026, 3, 2, 14, 15, tzinfo=UTC)

#: Connection extras that keep the hook's real waits short (its retry waits go to a virtual clock anyway).
FAST_RETRIES = {
    "backoff_initial_seconds": 0.01,
    "backoff_max_seconds": 0.05,
    "rate_limit_backoff_seconds": 0.05,
    "read_timeout": 2,
    "connect_timeout": 2,
}


@pytest.fixture
def versioned_bucket(s3_client: Any) -> str:
    """A fresh versioned bucket: a second write of any key would leave a second version (a duplicate)."""
    name = f"rel-{uuid.uuid4().hex[:12]}"
    s3_client.create_bucket(Bucket=name)
    s3_client.put_bucket_versioning(Bucket=name, VersioningConfiguration={"Status": "Enabled"})
    return name


@pytest.fixture
def rsim(
    make_simulator: Callable[..., SimulatorHandle], monkeypatch: pytest.MonkeyPatch, tmp_path: Any
) -> SimulatorHandle:
    """A simulator with ~20 recordings per 15-minute window, and ``ringcx_default`` pointing at it.

    The shared budget files go to a directory of this test: the harness's virtual clock records
    Retry-After penalties in virtual time, which must not leak to other tests (ports get reused).
    """
    monkeypatch.setenv("AIRFLOW__RINGCX__BUDGET_DIR", str(tmp_path / "budgets"))
    handle = make_simulator(calls_per_hour=60, seed=11, duration_scale=0.01)
    monkeypatch.setenv("AIRFLOW_CONN_RINGCX_DEFAULT", ringcx_connection_json(handle, **FAST_RETRIES))
    return handle


@pytest.fixture
def pipe(rsim: SimulatorHandle, aws_conn: str, versioned_bucket: str) -> Pipeline:
    return Pipeline(bucket=versioned_bucket)


class Checker:
    """Runs the invariants after a scenario, and the "re-run downloads 0 bytes" check."""

    def __init__(self, sim: SimulatorHandle, s3_client: Any, pipe: Pipeline) -> None:
        self.sim, self.s3, self.pipe = sim, s3_client, pipe

    def truth(self, start: datetime = W_START, end: datetime = W_END) -> list[dict]:
        return self.sim.control.ground_truth(start, end)

    def __call__(
        self,
        result: Any,
        start: datetime = W_START,
        end: datetime = W_END,
        *,
        rerun: bool = True,
        truth: list[dict] | None = None,
    ) -> ArchiveCheck:
        truth = self.truth(start, end) if truth is None else truth
        check = check_archive(
            self.s3,
            self.pipe.bucket,
            self.pipe.prefix,
            truth,
            report=result.report,
            summaries=result.summaries,
        )
        check.assert_ok()
        if rerun:
            self.sim.control.clear_faults()
            before = downloaded_bytes(self.sim.control.stats())
            again = self.pipe.run_window(self.s3, start, end)
            assert downloaded_bytes(self.sim.control.stats()) == before, "a re-run downloaded bytes again"
            assert again.counts.get("archived", 0) == 0, again.counts
            check_archive(
                self.s3,
                self.pipe.bucket,
                self.pipe.prefix,
                truth,
                report=again.report,
                summaries=again.summaries,
            ).assert_ok()
        return check

    def one_reported_then_recovered(self, result: Any) -> None:
        """The scenario left exactly one segment not archived (reported with its reason, every invariant
        holding); once the fault is cleared, a re-run archives just it and the window is complete."""
        check = self(result, rerun=False)
        assert check.reported == 1
        assert check.archived == check.expected - 1
        self.sim.control.clear_faults()
        again = self.pipe.run_window(self.s3, W_START, W_END)
        assert again.counts["archived"] == 1
        assert again.report is not None
        assert again.report["complete"] is True
        self(again)


@pytest.fixture
def invariants(rsim: SimulatorHandle, s3_client: Any, pipe: Pipeline) -> Checker:
    return Checker(rsim, s3_client, pipe)


__all__ = ["W_END", "W_START", "Checker", "downloaded_bytes"]
