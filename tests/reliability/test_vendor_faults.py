"""Vendor-side faults (the simulator's fault injection) through the real operators, then every invariant.

Each scenario archives one 15-minute window while the simulator misbehaves, then the independent checker
(S3 + ground truth only) verifies: everything archived byte-identical or listed with a reason, no partial or
corrupt object, no duplicate version, no orphan sidecar, report counts add up, and a fault-free re-run
downloads 0 bytes.
"""

from __future__ import annotations

from typing import Any

import pytest

from tests.fixtures.simulator import SimulatorHandle, ringcx_connection_json
from tests.reliability.conftest import FAST_RETRIES, W_END, W_START, Checker
from tests.reliability.harness import Pipeline

SCENARIOS: dict[str, list[dict[str, Any]]] = {
    "429-storm-metadata-retry-after": [
        {"route": "metadata", "kind": "rate_limit", "times": 3, "retry_after": True, "retry_after_seconds": 7}
    ],
    "429-storm-metadata-no-retry-after": [
        {"route": "metadata", "kind": "rate_limit", "times": 3, "retry_after": False}
    ],
    "429-storm-downloads-retry-after": [
        {"route": "download", "kind": "rate_limit", "probability": 0.4, "retry_after_seconds": 7}
    ],
    "429-storm-downloads-http-date": [
        {"route": "download", "kind": "rate_limit", "probability": 0.4, "retry_after": "date"}
    ],
    "429-storm-downloads-no-retry-after": [
        {"route": "download", "kind": "rate_limit", "probability": 0.4, "retry_after": False}
    ],
    "5xx-burst": [
        {"route": "metadata", "kind": "status", "status": 500, "times": 2},
        {"route": "download", "kind": "status", "status": 503, "times": 8},
        {"route": "download", "kind": "status", "status": 502, "probability": 0.2},
    ],
    "reset-mid-body": [{"route": "download", "kind": "reset", "after_bytes": 3000, "probability": 0.4}],
    "truncated-body": [{"route": "download", "kind": "truncate", "after_bytes": 1500, "probability": 0.4}],
    # the token is expired under the batch's feet (scripted), and tokens also really expire every 1.5 s
    # (time_scale 200: the vendor's 300 s lifetime), so long batches cross several expiries
    "token-expiry-mid-batch": [
        {"route": "download", "kind": "expire_token", "skip": 3, "times": 1},
        {"route": "download", "kind": "expire_token", "skip": 9, "times": 1},
        {"route": "metadata", "kind": "expire_token", "times": 1},
    ],
    "429-on-token-exchange": [
        {"route": "exchange", "kind": "rate_limit", "times": 2, "retry_after_seconds": 3},
        {"route": "oauth", "kind": "rate_limit", "times": 1, "retry_after": False},
    ],
    "everything-at-once": [
        {"route": "any", "kind": "status", "status": 503, "probability": 0.05},
        {"route": "download", "kind": "reset", "after_bytes": 5000, "probability": 0.15},
        {"route": "download", "kind": "truncate", "after_bytes": 700, "probability": 0.15},
        {"route": "any", "kind": "rate_limit", "probability": 0.15},
        {"route": "download", "kind": "expire_token", "probability": 0.05},
    ],
}


@pytest.mark.parametrize("name", list(SCENARIOS))
def test_window_survives_vendor_faults(
    name: str, rsim: SimulatorHandle, pipe: Pipeline, s3_client: Any, invariants: Checker
) -> None:
    rules = SCENARIOS[name]
    if name == "token-expiry-mid-batch":
        rsim.control.patch_config(time_scale=200)
    rsim.control.set_faults(rules)
    result = pipe.run_window(s3_client, W_START, W_END)

    stats = rsim.control.stats()
    kinds = {rule["kind"] for rule in rules}
    fired = {kind for kind in kinds if stats["faults"].get(kind, 0) > 0}
    assert fired == kinds or (name == "everything-at-once" and len(fired) >= 3), (name, stats["faults"])
    assert result.report is not None, result.errors
    assert result.report["complete"] is True, (result.errors, result.report["not_archived"])
    assert result.report["counts"]["archived"] > 10
    check = invariants(result)
    assert check.lost == 0
    assert check.reported == 0
    if name == "token-expiry-mid-batch":  # re-authenticated, no segment failed over it
        assert len(rsim.control.stats()["tokens_issued"]) >= 4
    if "retry-after" in name and "no-retry-after" not in name:  # the hook waited what the vendor asked
        assert 7.0 in pipe.clock.sleeps or any(6.0 <= s <= 7.5 for s in pipe.clock.sleeps), pipe.clock.sleeps
    if name.endswith("no-retry-after"):  # exponential backoff with jitter, never a busy loop
        assert pipe.clock.sleeps
        assert all(s > 0 for s in pipe.clock.sleeps)


def test_stalled_read_beyond_the_timeout_is_retried(
    rsim: SimulatorHandle,
    s3_client: Any,
    monkeypatch: pytest.MonkeyPatch,
    invariants: Checker,
    pipe: Pipeline,
) -> None:
    """A body that stops flowing for longer than ``read_timeout`` is abandoned and downloaded again."""
    monkeypatch.setenv(
        "AIRFLOW_CONN_RINGCX_DEFAULT", ringcx_connection_json(rsim, **{**FAST_RETRIES, "read_timeout": 0.4})
    )
    rsim.control.set_faults(
        [{"route": "download", "kind": "stall", "after_bytes": 2000, "stall_seconds": 1.2, "times": 2}]
    )
    result = pipe.run_window(s3_client, W_START, W_END)
    assert rsim.control.stats()["faults"]["stall"] == 2
    assert result.report is not None, result.errors
    assert result.report["complete"] is True, result.errors
    invariants(result)


def test_permanent_faults_end_listed_with_a_reason_not_lost(
    rsim: SimulatorHandle, pipe: Pipeline, s3_client: Any, invariants: Checker
) -> None:
    """A segment that fails every try (5xx on every attempt) is not lost: the report lists it, with a reason;
    the rest of the window is archived; once the fault is gone a re-run archives it."""
    truth = [s for s in invariants.truth() if s["hasRecording"]]
    victim = truth[3]
    rsim.control.set_faults(
        [{"route": "download", "kind": "status", "status": 503, "match": victim["segmentId"]}]
    )
    result = pipe.run_window(s3_client, W_START, W_END)
    assert result.report is not None
    assert result.report["complete"] is False
    listed = {(i["dialog_id"], i["segment_id"]): i for i in result.report["not_archived"]}
    item = listed[(victim["dialogId"], victim["segmentId"])]
    assert item["status"] == "failed"
    assert "503" in item["reason"]
    assert len(listed) == 1
    invariants.one_reported_then_recovered(result)
