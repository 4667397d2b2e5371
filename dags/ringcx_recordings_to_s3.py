"""The provider's shipped DAG, built at each parse (so the parse-time environment of the moment shapes it)."""

from __future__ import annotations

from airflow_provider_ringcx.example_dags.ringcx_recordings_to_s3 import build_dag

dag = build_dag()
