"""Notifiers of the provider and the Deadline Alert of a live archive window.

- :class:`~airflow_provider_ringcx.notifications.file.RingCXFileNotifier`: one JSON line per event (a DAG
  run failed, a window missed its deadline) appended to a file: a log shipper, a test or a person reads it.
- :func:`~airflow_provider_ringcx.notifications.deadline.window_deadline`: the ``DeadlineAlert`` that fires
  when a live window is not archived by its due time plus a margin.

Any Airflow notifier works with the archive DAGs (``on_failure_callback``, ``deadline``): the amazon
provider's ``SnsNotifier``, slack's ``SlackNotifier``/``SlackWebhookNotifier``, smtp's ``SmtpNotifier``.
"""

from __future__ import annotations

from airflow_provider_ringcx.notifications.deadline import window_deadline
from airflow_provider_ringcx.notifications.file import RingCXFileNotifier

__all__ = ["RingCXFileNotifier", "window_deadline"]
