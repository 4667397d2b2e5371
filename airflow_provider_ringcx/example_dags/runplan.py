"""The run plan: what ``resolve_run`` decides once per run and every later task of an archive DAG reads.

It is a ``TypedDict`` (a plain dict at runtime), because it travels in XCom: ``resolve_run`` returns it
with ``multiple_outputs``, so each task pulls only the few keys it needs (``run["bucket"]``...), and the
whole plan stays a JSON object of about 1-2 KB. Its keys are the resolved run settings
(:data:`~airflow_provider_ringcx.run_settings.SETTINGS`) plus the window, its keys and the
rescan decision; the report's share is :class:`~airflow_provider_ringcx.window_report.WindowReportSpec`.
"""

from __future__ import annotations

from airflow_provider_ringcx.window_report import WindowReportSpec


class RunPlan(WindowReportSpec, total=True):
    """One run's resolved settings, window, keys and rescan decision (see the module docstring).

    Besides the report's keys (:class:`~airflow_provider_ringcx.window_report.WindowReportSpec`): the
    connection ids, the lag and batch size the metadata tasks use, the rescan lookback and whether final
    windows are rescanned anyway, the download tasks' failure switches and ``window_key``
    (``20260302T1400Z_20260302T1415Z``).
    """

    ringcx_conn_id: str
    aws_conn_id: str
    lag_minutes: int
    batch_size: int
    rescan_lookback_minutes: int
    rescan_final_windows: bool
    fail_on_forbidden: bool
    fail_on_missing: bool
    include_transcripts: bool
    include_summaries: str | None  # None, agent, auto or both (hooks.summaries.parse_summary_kinds)
    refuse_inactive_sub_account: bool
    window_key: str
