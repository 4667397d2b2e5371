"""RingCXFileNotifier: a real notifier that appends one JSON line per event to a file.

Airflow's notifiers send to a service (SNS, Slack, e-mail). This one writes to a file, because a file is
what a log shipper (Fluent Bit, the CloudWatch agent, Vector) already forwards, what an on-call script can
``tail -F``, and what a test can read without a mock. It is a
:class:`~airflow.sdk.BaseNotifier`, so it works everywhere a notifier does:

- as a DAG's ``on_failure_callback`` / ``on_success_callback`` (sync :meth:`notify`; the DAG processor, or
  ``dag.test()``, calls it with the run's context), and
- as a Deadline Alert's ``AsyncCallback(RingCXFileNotifier, kwargs={...})`` (async :meth:`async_notify`;
  the triggerer constructs it with the deadline's context: the DAG run as JSON and the deadline).

Each line is a JSON object: ``event``, ``at``, ``dag_id``, ``run_id``, ``logical_date``, the data interval,
``window`` (the archived window: the data interval shifted back by ``lag_minutes``, as the archive DAGs
do), ``reason``, ``deadline_time`` (for a deadline), ``failed_task`` and ``message``. No connection,
token or secret is part of a context this reads, so none can reach the file. Lines are appended with
``O_APPEND`` under an exclusive ``flock``, so callbacks of concurrent runs never interleave.
"""

from __future__ import annotations

import asyncio
import fcntl
import os
from collections.abc import Mapping, Sequence
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any

from airflow.sdk import BaseNotifier

from airflow_provider_ringcx import jsonutil
from airflow_provider_ringcx.exceptions import RingCXConfigError

#: The default one-line message; ``{name}`` fields are the record's (see the module docstring).
DEFAULT_MESSAGE = "RingCX archive {event}: DAG {dag_id}, run {run_id}, window {window_label}{because}"


class RingCXFileNotifier(BaseNotifier):
    """Append one JSON line per notification to ``path``.

    :param path: the file (created with its directory, mode 0600). (templated)
    :param event: what the line reports, e.g. ``failure``, ``success``, ``deadline_missed``.
    :param message: a ``str.format`` template over the record's fields, e.g.
        ``"{dag_id}: window {window_label} not archived"``; default :data:`DEFAULT_MESSAGE`.
    :param lag_minutes: the DAG's settle lag, to name the archived window (the data interval shifted back).
    :param context: set by Airflow when it constructs the notifier itself (a Deadline Alert's callback).
    """

    template_fields: Sequence[str] = ("path",)

    def __init__(
        self,
        *,
        path: str | os.PathLike[str],
        event: str = "failure",
        message: str = DEFAULT_MESSAGE,
        lag_minutes: float = 15,
        context: Mapping[str, Any] | None = None,
    ) -> None:
        super().__init__(context=dict(context) if context else None)  # type: ignore[arg-type]
        if not str(path):
            raise RingCXConfigError("RingCXFileNotifier: path is empty; give the file to append to")
        self.path = str(path)
        self.event = event
        self.message = message
        self.lag = timedelta(minutes=float(lag_minutes))

    def render_template_fields(self, context: Any, jinja_env: Any = None) -> None:
        """Render ``path``; with a plain Jinja environment when the context's DAG has none of its own
        (``dag.test()`` hands DAG callbacks a ``SerializedDAG``, which would fail the notification)."""
        if jinja_env is None and not hasattr(context.get("dag"), "get_template_env"):
            jinja_env = self.get_template_env()
        super().render_template_fields(context, jinja_env)

    def notify(self, context: Any) -> None:
        self.write(self.record(context))

    async def async_notify(self, context: Any) -> None:
        await asyncio.to_thread(self.write, self.record(context))

    def record(self, context: Mapping[str, Any]) -> dict[str, Any]:
        """The JSON line for a callback's context (a DAG run callback's or a deadline's)."""
        run = context.get("dag_run")
        dag = context.get("dag")
        found = context.get("deadline")
        deadline: Mapping[str, Any] = found if isinstance(found, Mapping) else {}
        start = _when(_field(run, "data_interval_start") or context.get("data_interval_start"))
        end = _when(_field(run, "data_interval_end") or context.get("data_interval_end"))
        window = {"start": _iso(start - self.lag), "end": _iso(end - self.lag)} if start and end else None
        ti = context.get("ti")
        record: dict[str, Any] = {
            "event": self.event,
            "at": _iso(datetime.now(timezone.utc)),
            "dag_id": _field(run, "dag_id") or getattr(dag, "dag_id", None),
            "run_id": _field(run, "run_id") or _field(run, "dag_run_id") or context.get("run_id"),
            "logical_date": _iso(_when(_field(run, "logical_date") or context.get("logical_date"))),
            "data_interval_start": _iso(start),
            "data_interval_end": _iso(end),
            "window": window,
            "reason": context.get("reason"),
            "deadline_time": _iso(_when(deadline.get("deadline_time"))),
            "failed_task": getattr(ti, "task_id", None) if self.event == "failure" else None,
        }
        label = f"{window['start']} - {window['end']}" if window else "(no data interval)"
        because = f" ({record['reason']})" if record["reason"] else ""
        try:
            record["message"] = self.message.format(**record, window_label=label, because=because)
        except (KeyError, IndexError, ValueError) as err:
            raise RingCXConfigError(
                f"RingCXFileNotifier message {self.message!r} names an unknown field ({err}); use "
                f"{', '.join(['window_label', *record])}"
            ) from None
        return record

    def write(self, record: Mapping[str, Any]) -> None:
        """Append ``record`` as one line, under an exclusive lock."""
        path = Path(self.path)
        path.parent.mkdir(parents=True, exist_ok=True)
        line = (jsonutil.dumps(dict(record)) + "\n").encode()
        fd = os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o600)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX)
            os.write(fd, line)
        finally:
            os.close(fd)  # closing releases the lock
        self.log.info("notified %s: %s", self.path, record.get("message"))


def _field(run: Any, name: str) -> Any:
    """An attribute of a DagRun object, or a key of the DAG run JSON a deadline's context carries."""
    if run is None:
        return None
    if isinstance(run, Mapping):
        return run.get(name)
    return getattr(run, name, None)


def _when(value: Any) -> datetime | None:
    if value is None or value == "":
        return None
    if isinstance(value, datetime):
        moment = value
    else:
        try:
            moment = datetime.fromisoformat(str(value).replace("Z", "+00:00"))
        except ValueError:
            return None
    return moment if moment.tzinfo else moment.replace(tzinfo=timezone.utc)


def _iso(moment: datetime | None) -> str | None:
    if moment is None:
        return None
    return moment.astimezone(timezone.utc).isoformat().replace("+00:00", "Z")


#: Parse-time environment variable: a file the example DAGs' failure notifier appends to.
ALERT_FILE_ENV = "RINGCX_ALERT_FILE"


def file_notifier_from_env(
    event: str = "failure", environ: Mapping[str, str] | None = None
) -> RingCXFileNotifier | None:
    """A :class:`RingCXFileNotifier` on ``$RINGCX_ALERT_FILE`` if that is set, else ``None`` (read at parse
    time, like the example DAGs' other shape settings)."""
    path = (os.environ if environ is None else environ).get(ALERT_FILE_ENV)
    return RingCXFileNotifier(path=path, event=event) if path else None
