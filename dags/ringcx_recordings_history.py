"""The provider's history DAG (one UTC day per backfill run), built at each parse."""

from __future__ import annotations

from airflow_provider_ringcx.example_dags.ringcx_recordings_history import build_dag

dag = build_dag()
