"""The provider's legal-hold DAG (apply or release S3 legal holds on the calls a query selects, after a
person approves), built at each parse."""

from __future__ import annotations

from airflow_provider_ringcx.example_dags.ringcx_legal_hold import build_dag

dag = build_dag()  # Airflow collects the DAGs among the module's globals
