"""Operator tests call ``execute`` outside a DAG run, with a context dict.

The only stand-in is :class:`XComRecorder` for the task instance's ``xcom_push`` (there is no TaskInstance
outside a DAG run); the simulator and moto are real servers over HTTP.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from airflow_provider_ringcx.hooks.ringcx import RingCXHook


class XComRecorder:
    """Records ``xcom_push`` calls like a TaskInstance would store them."""

    def __init__(self) -> None:
        self.pushed: dict[str, Any] = {}

    def xcom_push(self, key: str, value: Any) -> None:
        self.pushed[key] = value


def context(start: datetime | None = None, end: datetime | None = None) -> dict[str, Any]:
    return {"data_interval_start": start, "data_interval_end": end, "ti": XComRecorder()}


def fast_hook(operator: Any) -> Any:
    """Give the operator a hook whose retry waits are skipped (the simulator answers at once)."""
    operator.hook = RingCXHook(ringcx_conn_id=operator.ringcx_conn_id, sleep=lambda seconds: None)
    return operator
