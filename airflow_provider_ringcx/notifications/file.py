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
``O_APPEND`` under an exclusive ``flock`` and written whole, so callbacks of concurrent runs never interleave.

**The file is opened defensively**, because an alert directory often sits in a shared place (``/tmp``, a
log volume) where another local user could plant a link: missing directories are created ``0700``
(:data:`DIR_MODE`; the process umask can only narrow it), a new file ``0600`` (:data:`FILE_MODE`; an
existing one keeps its mode); the file's own directory is opened with ``O_NOFOLLOW`` and the file relative to
it with ``O_NOFOLLOW``, so a symbolic link as the file or as its directory is refused (a
:class:`~airflow_provider_ringcx.exceptions.RingCXConfigError` naming the path), and so is anything but a
regular file with one link (a FIFO, a device, a hard link to another file).
"""

from __future__ import annotations

import asyncio
import contextlib
import errno
import fcntl
import os
import stat
from collections.abc import Mapping, Sequence
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any

from airflow.sdk import BaseNotifier

from airflow_provider_ringcx import jsonutil
from airflow_provider_ringcx.exceptions import RingCXConfigError
from airflow_provider_ringcx.models import iso, parse_timestamp

#: The mode of the directories the notifier creates, and of a file it creates.
DIR_MODE = 0o700
FILE_MODE = 0o600
#: The default one-line message; ``{name}`` fields are the record's (see the module docstring).
DEFAULT_MESSAGE = "RingCX archive {event}: DAG {dag_id}, run {run_id}, window {window_label}{because}"


class RingCXFileNotifier(BaseNotifier):
    """Append one JSON line per notification to ``path``.

    :param path: the file (created 0600, missing directories 0700; a symbolic link is refused). (templated)
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
        line = (jsonutil.dumps(dict(record)) + "\n").encode()
        fd = open_for_append(Path(self.path))
        try:
            fcntl.flock(fd, fcntl.LOCK_EX)
            view = memoryview(line)
            while view:  # a short write (a signal, a full disk) continues under the same lock
                view = view[os.write(fd, view) :]
        finally:
            os.close(fd)  # closing releases the lock
        self.log.info("notified %s: %s", self.path, record.get("message"))


def open_for_append(path: Path) -> int:
    """A descriptor appending to the regular file ``path`` (see the module docstring for what is refused).

    :raises RingCXConfigError: the file or its directory is a symbolic link, or the file is not a regular
        file with one link.
    """
    path = Path(os.path.abspath(path))
    _make_dirs(path.parent)
    try:
        dir_fd = os.open(path.parent, os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW | os.O_CLOEXEC)
    except OSError as err:
        if err.errno in (errno.ELOOP, errno.ENOTDIR):
            raise _refused(path.parent, "is a symbolic link or not a directory") from None
        raise
    flags = os.O_WRONLY | os.O_APPEND | os.O_CREAT | os.O_NOFOLLOW | os.O_NONBLOCK | os.O_CLOEXEC
    try:
        fd = os.open(path.name, flags, FILE_MODE, dir_fd=dir_fd)
    except OSError as err:
        if err.errno in (errno.ELOOP, errno.ENXIO):  # a symbolic link; a FIFO nobody reads
            raise _refused(path, "is a symbolic link or not a regular file") from None
        raise
    finally:
        os.close(dir_fd)
    found = os.fstat(fd)
    if not stat.S_ISREG(found.st_mode) or found.st_nlink != 1:
        os.close(fd)
        raise _refused(path, "is not a regular file with one link")
    return fd


def _make_dirs(directory: Path) -> None:
    """Create the missing directories of ``directory``, each with :data:`DIR_MODE`."""
    missing = []
    while not os.path.lexists(directory) and directory != directory.parent:
        missing.append(directory)
        directory = directory.parent
    for each in reversed(missing):
        with contextlib.suppress(FileExistsError):  # created meanwhile: the O_NOFOLLOW open checks it
            os.mkdir(each, DIR_MODE)


def _refused(path: Path, why: str) -> RingCXConfigError:
    return RingCXConfigError(
        f"RingCXFileNotifier: {path} {why}; refusing to write alerts through it (a link could point them at "
        "another file). Point path at a regular file in a directory you own"
    )


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
        return value if value.tzinfo else value.replace(tzinfo=timezone.utc)
    try:
        return parse_timestamp(str(value))
    except ValueError:
        return None


def _iso(moment: datetime | None) -> str | None:
    return None if moment is None else iso(moment)


#: Parse-time environment variable: a file the example DAGs' failure notifier appends to.
ALERT_FILE_ENV = "RINGCX_ALERT_FILE"


def file_notifier_from_env(
    event: str = "failure", environ: Mapping[str, str] | None = None
) -> RingCXFileNotifier | None:
    """A :class:`RingCXFileNotifier` on ``$RINGCX_ALERT_FILE`` if that is set, else ``None`` (read at parse
    time, like the example DAGs' other shape settings)."""
    path = (os.environ if environ is None else environ).get(ALERT_FILE_ENV)
    return RingCXFileNotifier(path=path, event=event) if path else None
