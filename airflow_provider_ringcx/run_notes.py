"""The DAG run's note: the window's report in one line (``14:00-14:15 · 53/53 archived · 16.3 MB``).

**Why a listener, not the task.** Airflow 3 tasks have no database access: a task talks to the API server
through the Task Execution API, and that API (Airflow 3.3, task SDK 1.3) can read a run's note
(``context["dag_run"].note``) and set one when it *triggers* a new run, but has no call that changes the
note of an existing run. The REST API can (``PATCH /api/v2/dags/{dag_id}/dagRuns/{run_id}`` with
``note``), but only with an Airflow user's credentials, which a task should not hold. DAG-level
``on_success_callback``/``on_failure_callback`` run in the DAG processor, through the same execution API.

What Airflow does offer is a documented extension point that runs where the database is: **listeners**
(``airflow.listeners``, registered by a plugin). ``on_dag_run_success`` and ``on_dag_run_failed`` are
called by the scheduler (and by ``dag.test()``, and by the API server when a person marks a run) inside
the session that records the run's new state, with the ORM ``DagRun``. So the split is:

1. the report task (:class:`~airflow_provider_ringcx.operators.report.RingCXWindowReportOperator`) pushes
   the line (:func:`airflow_provider_ringcx.window_report.run_note`) as XCom :data:`RUN_NOTE_XCOM_KEY`, a
   few dozen bytes, before it succeeds or fails;
2. when the run ends, this module's listener copies the run's :data:`RUN_NOTE_XCOM_KEY` XComs into
   ``dag_run.note`` in that same session (several report tasks, e.g. mapped repairs, are joined with
   `` | ``, cut at the note's 1000 characters).

A note a person wrote (it has a ``user_id``) is never replaced; a note without one (this listener's, from
an earlier try of the run) is. The listener never raises: Airflow logs a listener's error and goes on,
and the note is a convenience, so a problem here is logged as a warning.

The plugin :class:`RingCXRunNotesPlugin` is registered through the ``airflow.plugins`` entry point of this
distribution, so installing the provider is enough (providers' own ``plugins`` entries are only loaded
with ``[core] lazy_discover_providers = False``). ``airflow plugins`` lists it.
"""

from __future__ import annotations

import logging
import sys
from typing import TYPE_CHECKING, Any

from airflow.listeners import hookimpl
from airflow.plugins_manager import AirflowPlugin

from airflow_provider_ringcx.window_report import RUN_NOTE_XCOM_KEY

__all__ = ["RingCXRunNotesPlugin", "on_dag_run_failed", "on_dag_run_success"]

if TYPE_CHECKING:
    from airflow.models.dagrun import DagRun
    from sqlalchemy.orm import Session

#: Longest note Airflow stores (``dag_run_note.content`` is ``String(1000)``).
MAX_NOTE = 1000
_JOIN = " | "

log = logging.getLogger(__name__)


@hookimpl
def on_dag_run_success(dag_run: DagRun, msg: str) -> None:
    """The run succeeded: its note becomes the window summary."""
    _note_from_xcom(dag_run)


@hookimpl
def on_dag_run_failed(dag_run: DagRun, msg: str) -> None:
    """The run failed: its note becomes the window summary (what is not archived, by status)."""
    _note_from_xcom(dag_run)


def _note_from_xcom(dag_run: DagRun) -> None:
    try:
        from sqlalchemy.orm import object_session

        session = object_session(dag_run)
        if session is not None:  # the scheduler's and the API server's: the note commits with the state
            _apply(session, dag_run)
            return
        from airflow.models.dagrun import DagRun
        from airflow.utils.session import create_session
        from sqlalchemy import select

        with create_session() as own:  # a detached run (dag.test() hands its listeners one)
            query = select(DagRun).where(DagRun.dag_id == dag_run.dag_id, DagRun.run_id == dag_run.run_id)
            attached = own.scalars(query).one_or_none()
            if attached is not None:
                _apply(own, attached)
    except Exception as err:  # a convenience: never disturb the scheduler's loop
        log.warning("ringcx: could not set the note of run %s: %s", getattr(dag_run, "run_id", "?"), err)


def _apply(session: Session, dag_run: Any) -> None:
    text = run_note_text(session, dag_run.dag_id, dag_run.run_id)
    if text:
        set_note(dag_run, text)


def run_note_text(session: Session, dag_id: str, run_id: str) -> str:
    """The run's :data:`RUN_NOTE_XCOM_KEY` values, by task and map index, joined; ``""`` for none."""
    from airflow.models.xcom import XComModel

    query = (
        XComModel.get_many(run_id=run_id, dag_ids=dag_id, key=RUN_NOTE_XCOM_KEY)
        .order_by(None)
        .order_by(XComModel.task_id, XComModel.map_index)
    )
    lines = [XComModel.deserialize_value(row) for row in session.scalars(query)]
    text = _JOIN.join(str(line) for line in lines if line)
    return text if len(text) <= MAX_NOTE else text[: MAX_NOTE - 1] + "\u2026"


def set_note(dag_run: Any, text: str) -> bool:
    """Set ``dag_run.note`` unless a person wrote it; whether it was set."""
    existing = dag_run.dag_run_note
    if existing is not None and existing.user_id:
        return False
    dag_run.note = text
    return True


class RingCXRunNotesPlugin(AirflowPlugin):
    """Sets each archive run's note to its window summary (see the module docstring)."""

    name = "ringcx_run_notes"
    listeners = [sys.modules[__name__]]
