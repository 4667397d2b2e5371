"""The Deadline Alert of a live archive window: not archived by its due time plus a margin.

A live run archives ``[data_interval_start - lag, data_interval_end - lag)``; the coverage ledger expects
its report at the window's end + lag, which is the data interval's end. With ``CronTriggerTimetable(...,
interval=...)`` the run's logical date *is* the data interval's end (the run's ``run_after``), so the
window's due time is the logical date, and the alert is ``DAGRUN_LOGICAL_DATE + margin``: the margin is
how long the run may take (waits on the metadata budget, retries). The scheduler creates the deadline with
the run, drops it when the run succeeds before it, and otherwise, once it passes, queues the callback; an
:class:`~airflow.sdk.AsyncCallback` runs in the triggerer (``airflow triggerer``; ``airflow standalone``
starts one), so a scheduler without a triggerer never sends it.

A run that is created after its window's deadline (a catch-up after an outage, a backfill through the live
DAG) misses it at once, and its alert fires: those windows were indeed not archived on time. Backfill
history with the history DAG (no deadline) to avoid that.
"""

from __future__ import annotations

import inspect
from collections.abc import Callable, Mapping
from datetime import timedelta
from typing import Any

from airflow.sdk.definitions.callback import AsyncCallback
from airflow.sdk.definitions.deadline import DeadlineAlert, DeadlineReference

from airflow_provider_ringcx.exceptions import RingCXConfigError
from airflow_provider_ringcx.notifications.file import RingCXFileNotifier

#: The default margin: a window's run normally ends within minutes; 30 covers budget waits and a retry.
DEFAULT_MARGIN = timedelta(minutes=30)


def window_deadline(
    callback: Callable[..., Any] | str = RingCXFileNotifier,
    *,
    margin: timedelta = DEFAULT_MARGIN,
    kwargs: Mapping[str, Any] | None = None,
    name: str | None = "ringcx window not archived",
) -> DeadlineAlert:
    """A ``DeadlineAlert`` that fires when a live window's run has not succeeded ``margin`` after the
    window was due (its logical date, see the module docstring).

    :param callback: an awaitable callable run in the triggerer: a notifier class with ``async_notify``
        (``RingCXFileNotifier``, ``SlackWebhookNotifier``, ``SnsNotifier``...) or an ``async def``
        (or its dotted path). Airflow constructs it with ``kwargs`` and the deadline's context.
    :param margin: how long after the due time the run may still succeed (more than 0).
    :param kwargs: the callback's arguments (JSON values only: they are stored with the DAG), e.g.
        ``{"path": "/var/log/ringcx/alerts.jsonl", "event": "deadline_missed"}``.
    :param name: the alert's name (shown with the deadline; Airflow 3.3+, ignored on 3.2).
    :raises RingCXConfigError: a margin of 0 or less.
    """
    if margin <= timedelta(0):
        raise RingCXConfigError(f"deadline margin {margin} must be more than 0, e.g. timedelta(minutes=30)")
    named = {"name": name} if _ALERTS_HAVE_NAMES else {}  # Airflow 3.2's DeadlineAlert takes no name
    return DeadlineAlert(
        reference=DeadlineReference.DAGRUN_LOGICAL_DATE,
        interval=margin,
        callback=AsyncCallback(callback, kwargs=dict(kwargs or {})),
        **named,
    )


_ALERTS_HAVE_NAMES = "name" in inspect.signature(DeadlineAlert.__init__).parameters
