"""RingCXFileNotifier against a real file: the lines a DAG callback and a deadline callback write.

Contexts here are the two shapes Airflow hands a notifier: a DAG run callback's (a DagRun object, the DAG,
the failed task instance, a reason) and a Deadline Alert's (the DAG run as the REST API's JSON, and the
deadline). Their values are plain stand-ins (``SimpleNamespace``): no Airflow run is needed to build a
context; the run-level tests are ``tests/example_dags/test_audit.py`` and ``test_deadline.py``.
"""

from __future__ import annotations

import asyncio
import json
import os
import threading
from datetime import datetime, timezone
from pathlib import Path
from types import SimpleNamespace

import pytest

from airflow_provider_ringcx import get_provider_info
from airflow_provider_ringcx.exceptions import RingCXConfigError
from airflow_provider_ringcx.notifications.file import (
    ALERT_FILE_ENV,
    RingCXFileNotifier,
    file_notifier_from_env,
)

UTC = timezone.utc
START, END = datetime(2026, 3, 2, 14, 15, tzinfo=UTC), datetime(2026, 3, 2, 14, 30, tzinfo=UTC)


def _lines(path: Path) -> list[dict]:
    return [json.loads(line) for line in path.read_text().splitlines()]


def test_a_failed_run_is_one_line_with_dag_run_and_window(tmp_path: Path) -> None:
    path = tmp_path / "deep" / "alerts.jsonl"
    run = SimpleNamespace(dag_id="ringcx_recordings_to_s3", run_id="scheduled__2026-03-02T14:30:00+00:00",
                          logical_date=END, data_interval_start=START, data_interval_end=END)  # fmt: skip
    context = {"dag_run": run, "reason": "task_failure", "ti": SimpleNamespace(task_id="report_window")}
    RingCXFileNotifier(path=path).notify(context)
    (line,) = _lines(path)
    assert line["dag_id"] == "ringcx_recordings_to_s3"
    assert line["window"] == {"start": "2026-03-02T14:00:00Z", "end": "2026-03-02T14:15:00Z"}  # lag 15
    assert line["failed_task"] == "report_window"
    assert line["message"] == (
        "RingCX archive failure: DAG ringcx_recordings_to_s3, run scheduled__2026-03-02T14:30:00+00:00, "
        "window 2026-03-02T14:00:00Z - 2026-03-02T14:15:00Z (task_failure)"
    )
    assert os.stat(path).st_mode & 0o777 == 0o600


def test_a_deadline_context_is_json_and_the_async_path_writes_too(tmp_path: Path) -> None:
    path = tmp_path / "alerts.jsonl"
    context = {
        "dag_run": {"dag_id": "live", "dag_run_id": "r1", "logical_date": "2026-03-02T14:30:00Z",
                    "data_interval_start": "2026-03-02T14:15:00Z",
                    "data_interval_end": "2026-03-02T14:30:00Z"},
        "deadline": {"id": "d1", "deadline_time": "2026-03-02T15:00:00Z"},
    }  # fmt: skip
    notifier = RingCXFileNotifier(path=path, event="deadline_missed", message="{dag_id} late: {window_label}",
                                  lag_minutes=30, context=context)  # fmt: skip
    asyncio.run(notifier.async_notify(notifier.context))
    (line,) = _lines(path)
    assert (line["event"], line["run_id"], line["deadline_time"]) == (
        "deadline_missed",
        "r1",
        "2026-03-02T15:00:00Z",
    )
    assert line["message"] == "live late: 2026-03-02T13:45:00Z - 2026-03-02T14:00:00Z"


def test_concurrent_notifications_never_interleave(tmp_path: Path) -> None:
    path = tmp_path / "alerts.jsonl"
    notifier = RingCXFileNotifier(path=path, message="x" * 5000)
    threads = [threading.Thread(target=notifier.notify, args=({"run_id": f"r{i}"},)) for i in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert sorted(line["run_id"] for line in _lines(path)) == [f"r{i}" for i in range(8)]


def test_a_message_naming_an_unknown_field_is_refused_with_the_fields() -> None:
    with pytest.raises(RingCXConfigError, match=r"unknown field.*window_label.*dag_id"):
        RingCXFileNotifier(path="/tmp/x", message="{dag}").record({})
    with pytest.raises(RingCXConfigError, match="path is empty"):
        RingCXFileNotifier(path="")


def test_the_env_notifier_and_the_provider_registration() -> None:
    assert file_notifier_from_env(environ={}) is None
    notifier = file_notifier_from_env(environ={ALERT_FILE_ENV: "/var/log/ringcx/alerts.jsonl"})
    assert notifier is not None
    assert notifier.path == "/var/log/ringcx/alerts.jsonl"
    assert get_provider_info()["notifications"] == [
        "airflow_provider_ringcx.notifications.file.RingCXFileNotifier"
    ]


def _notify(path: Path) -> None:
    run = SimpleNamespace(dag_id="d", run_id="r", logical_date=END, data_interval_start=START,
                          data_interval_end=END)  # fmt: skip
    RingCXFileNotifier(path=path).notify({"dag_run": run})


def test_created_directories_are_0700_and_the_file_0600_whatever_the_umask(tmp_path: Path) -> None:
    path = tmp_path / "a" / "b" / "alerts.jsonl"
    old = os.umask(0o000)  # the loosest umask: the modes are the notifier's own
    try:
        _notify(path)
    finally:
        os.umask(old)
    assert os.stat(tmp_path / "a").st_mode & 0o777 == 0o700
    assert os.stat(tmp_path / "a" / "b").st_mode & 0o777 == 0o700
    assert os.stat(path).st_mode & 0o777 == 0o600


def test_a_symlink_as_the_file_is_refused_and_its_target_untouched(tmp_path: Path) -> None:
    victim = tmp_path / "victim.txt"  # e.g. another user's ~/.bashrc
    victim.write_text("precious\n")
    planted = tmp_path / "alerts.jsonl"
    planted.symlink_to(victim)
    with pytest.raises(RingCXConfigError, match=r"alerts.jsonl is a symbolic link"):
        _notify(planted)
    assert victim.read_text() == "precious\n"
    dangling = tmp_path / "new.jsonl"  # a link to a file that does not exist yet: not created through it
    dangling.symlink_to(tmp_path / "created-elsewhere")
    with pytest.raises(RingCXConfigError, match="symbolic link"):
        _notify(dangling)
    assert not (tmp_path / "created-elsewhere").exists()


def test_a_symlink_as_the_directory_is_refused(tmp_path: Path) -> None:
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    (tmp_path / "alerts").symlink_to(elsewhere, target_is_directory=True)
    with pytest.raises(RingCXConfigError, match=r"alerts is a symbolic link or not a directory"):
        _notify(tmp_path / "alerts" / "alerts.jsonl")
    assert list(elsewhere.iterdir()) == []


def test_a_hard_link_or_a_fifo_is_refused(tmp_path: Path) -> None:
    victim = tmp_path / "victim.txt"
    victim.write_text("precious\n")
    os.link(victim, tmp_path / "alerts.jsonl")
    with pytest.raises(RingCXConfigError, match="not a regular file with one link"):
        _notify(tmp_path / "alerts.jsonl")
    assert victim.read_text() == "precious\n"
    os.mkfifo(tmp_path / "fifo.jsonl")
    with pytest.raises(RingCXConfigError, match="not a regular file"):
        _notify(tmp_path / "fifo.jsonl")
