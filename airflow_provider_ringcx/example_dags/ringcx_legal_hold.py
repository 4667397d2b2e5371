"""Apply or release S3 Object Lock legal holds on the archived calls a query selects, after approval.

``ringcx_legal_hold`` has no schedule: trigger it with the request (``hold_date_from``/``hold_date_to``,
``hold_phone_numbers`` or ``hold_dialog_ids``, ``hold_action``, ``requested_by``, ``hold_reason``); a
person approves it in Airflow's Required Actions view, then the holds change and the audit record is
written. Run settings (bucket, prefix, connections) resolve as in the live DAG, so it holds the live DAG's
archive. See :mod:`airflow_provider_ringcx.example_dags.legal_hold` and :mod:`airflow_provider_ringcx.holds`.
"""

from __future__ import annotations

from airflow.sdk import DAG

from airflow_provider_ringcx.example_dags import shape
from airflow_provider_ringcx.example_dags.factory import ringcx_archive_dag
from airflow_provider_ringcx.example_dags.legal_hold import hold_params, wire_legal_hold

DAG_ID = "ringcx_legal_hold"


def build_dag() -> DAG:
    """The legal-hold DAG, shaped by the parse-time environment of the moment."""
    return ringcx_archive_dag(
        dag_id=DAG_ID,
        schedule=None,
        start_date=shape.start_date(),
        catchup=False,
        max_active_runs=1,  # one request at a time: two overlapping requests would audit each other's changes
        retries=0,
        rescan=False,
        wire=wire_legal_hold,
        extra_params=hold_params(),
        description="Apply or release legal holds on the archived RingCX calls a query selects, if approved",
        tags=("ringcx", "s3", "compliance", "legal-hold"),
        doc_md=__doc__,
    )


dag = build_dag()
