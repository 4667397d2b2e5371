"""The DAG run's note is the window's report in one line, set by the provider's listener when the run ends.

The one-line format is a unit test. The mechanism (report task pushes XCom ``ringcx_run_note``, the
``airflow.plugins`` listener copies it into ``dag_run.note`` in the session that records the run's end)
is tested through real ``dag.test()`` runs of the example DAG against the simulator and moto: ``dag.test()``
calls ``DagRun.update_state`` and the listener hooks as the scheduler does, and the note is read back from
the metadata DB. Nothing is mocked.
"""

from __future__ import annotations

import importlib.metadata
import json
from collections.abc import Callable
from datetime import datetime, timedelta, timezone
from typing import Any

import pytest

from airflow_provider_ringcx import run_notes
from airflow_provider_ringcx.keys import report_key
from airflow_provider_ringcx.window_report import run_note
from tests.fixtures.simulator import SimulatorHandle, ringcx_connection_json

UTC = timezone.utc
RUN = datetime(2026, 3, 2, 14, 30, tzinfo=UTC)  # archives 14:00-14:15 (15-minute lag)
W_START, W_END = datetime(2026, 3, 2, 14, 0, tzinfo=UTC), datetime(2026, 3, 2, 14, 15, tzinfo=UTC)
SUB = "99999999"


def report_of(counts: dict[str, Any], start: str = "2026-03-02T14:00:00Z", end: str = "2026-03-02T14:15:00Z"):
    return {"window": {"start": start, "end": end}, "counts": counts}


# --- the line -------------------------------------------------------------------------------------------
def test_a_complete_window_is_times_counts_and_size() -> None:
    counts = {
        "expected": 53,
        "archived": 53,
        "not_archived": 0,
        "bytes": 16_340_000,
        "by_status": {"archived": 53},
    }
    assert run_note(report_of(counts)) == "14:00\u201314:15 \u00b7 53/53 archived \u00b7 16.3 MB"


def test_what_is_not_archived_is_counted_by_status() -> None:
    counts = {
        "expected": 53, "archived": 51, "not_archived": 2, "bytes": 16_000_000,
        "by_status": {"archived": 51, "forbidden": 1, "missing": 1},
        "late_found": 3, "late_archived": 2, "unparseable": 4,
    }  # fmt: skip
    assert run_note(report_of(counts)) == (
        "14:00\u201314:15 \u00b7 51/53 archived \u00b7 16.0 MB \u00b7 2 not archived (forbidden 1, missing 1)"
        " \u00b7 late 2/3 archived \u00b7 4 unparseable rows"
    )


def test_windows_off_one_day_show_dates_and_an_empty_window_says_so() -> None:
    empty = {"expected": 0, "archived": 0, "not_archived": 0, "bytes": 0, "by_status": {}}
    day = report_of(empty, "2026-03-02T00:00:00Z", "2026-03-03T00:00:00Z")
    assert run_note(day) == "2026-03-02 00:00\u20132026-03-03 00:00 \u00b7 0/0 archived"
    assert run_note(report_of(empty, "2026-03-02T23:45:00Z", "2026-03-03T00:00:00Z")).startswith(
        "23:45\u201300:00 \u00b7"
    )
    assert run_note(report_of(empty, "2026-03-02T14:00:30Z", "2026-03-02T14:15:30Z")).startswith(
        "14:00:30\u201314:15:30 \u00b7"
    )


# --- the mechanism --------------------------------------------------------------------------------------
def test_the_listener_plugin_is_registered_by_the_distribution() -> None:
    points = {ep.name: ep for ep in importlib.metadata.entry_points(group="airflow.plugins")}
    plugin = points["ringcx_run_notes"].load()
    assert plugin is run_notes.RingCXRunNotesPlugin
    assert run_notes in plugin.listeners


@pytest.fixture
def sim(make_simulator: Callable[..., SimulatorHandle], monkeypatch: pytest.MonkeyPatch) -> SimulatorHandle:
    handle = make_simulator(calls_per_hour=40, seed=7, restricted_share=0.3)
    monkeypatch.setenv("AIRFLOW_CONN_RINGCX_DEFAULT", ringcx_connection_json(handle))
    return handle


def _run_and_note(dag: Any, bucket: str, run_after: datetime = RUN, **conf: Any) -> tuple[Any, Any]:
    """A ``dag.test()`` run and its note as (content, user_id). Each test archives its own window: a second
    ``dag.test()`` at the same logical date resumes the first run (and its conf)."""
    from airflow.models import DagRun
    from airflow.utils.session import create_session
    from sqlalchemy import select

    run = dag.test(logical_date=run_after, run_conf={"bucket": bucket, "prefix": "rec", **conf})
    with create_session() as session:
        row = session.scalars(select(DagRun).where(DagRun.run_id == run.run_id)).one()
        note = row.dag_run_note
        return run, (note.content, note.user_id) if note is not None else None


def _report(s3_client: Any, bucket: str, start: datetime = W_START) -> dict:
    key = report_key("rec", SUB, start, start + timedelta(minutes=15))
    body = s3_client.get_object(Bucket=bucket, Key=key)["Body"].read()
    return json.loads(body)


def test_a_run_note_is_the_window_summary_whether_the_run_succeeds_or_fails(
    example_dag: Any,
    sim: SimulatorHandle,
    aws_conn: str,
    bucket: str,
    s3_client: Any,
) -> None:
    run, note = _run_and_note(example_dag, bucket, batch_size=4, allow_unarchived=["forbidden"])
    assert run.state == "success"
    report = _report(s3_client, bucket)
    forbidden = report["counts"]["by_status"]["forbidden"]
    assert forbidden >= 1
    expected = report["counts"]["expected"]
    assert note == (run_note(report), None)  # set by the listener (no user)
    assert note[0].startswith(f"14:00\u201314:15 \u00b7 {expected - forbidden}/{expected} archived \u00b7 ")
    assert note[0].endswith(f" \u00b7 {forbidden} not archived (forbidden {forbidden})")


def test_a_failed_run_has_the_summary_as_its_note_too(
    example_dag: Any, sim: SimulatorHandle, aws_conn: str, bucket: str, s3_client: Any
) -> None:
    later = timedelta(minutes=15)  # window 14:15-14:30; 403s not allowed: the report fails
    # allow_unarchived given: dag.test() keeps an earlier run's conf as the DAG's param values
    failed, note = _run_and_note(example_dag, bucket, RUN + later, batch_size=4, allow_unarchived=[])
    assert failed.state == "failed"
    report = _report(s3_client, bucket, W_START + later)
    assert report["complete"] is False
    forbidden = report["counts"]["by_status"]["forbidden"]
    assert note == (run_note(report), None)
    assert note[0].startswith("14:15\u201314:30 \u00b7 ")
    assert note[0].endswith(f" \u00b7 {forbidden} not archived (forbidden {forbidden})")


def test_a_note_a_person_wrote_is_kept(
    example_dag: Any,
    sim: SimulatorHandle,
    aws_conn: str,
    bucket: str,
) -> None:
    from airflow.models import DagRun
    from airflow.utils.session import create_session
    from sqlalchemy import select

    later = RUN + timedelta(minutes=30)
    run, note = _run_and_note(example_dag, bucket, later, batch_size=50, allow_unarchived=["forbidden"])
    assert note is not None
    with create_session() as session:
        row = session.scalars(select(DagRun).where(DagRun.run_id == run.run_id)).one()
        row.dag_run_note.content = "checked by hand: the 403s are legal holds"  # as the UI's note editor
        row.dag_run_note.user_id = "admin"
    with create_session() as session:  # the run ends again (e.g. a person clears and it reruns)
        row = session.scalars(select(DagRun).where(DagRun.run_id == run.run_id)).one()
        run_notes.on_dag_run_success(dag_run=row, msg="success")
    with create_session() as session:
        row = session.scalars(select(DagRun).where(DagRun.run_id == run.run_id)).one()
        assert (row.dag_run_note.content, row.dag_run_note.user_id) == (
            "checked by hand: the 403s are legal holds",
            "admin",
        )
        assert run_notes.run_note_text(session, row.dag_id, row.run_id) == note[0]  # what it would have set
