"""The provider's shipped DAG,
built at each parse: one DAG, or one per sub-account of ``[ringcx] sub_accounts``."""

from __future__ import annotations

from airflow_provider_ringcx.example_dags.ringcx_recordings_to_s3 import build_dags

globals().update(build_dags())  # Airflow collects the DAGs among the module's globals
