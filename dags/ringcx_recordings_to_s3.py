"""The provider's shipped DAG, found by Airflow in this DAG folder (the DAG object is a module global)."""

from __future__ import annotations

from airflow_provider_ringcx.example_dags.ringcx_recordings_to_s3 import dag  # noqa: F401
