"""The provider's history DAG (one UTC day per backfill run),
built at each parse: one DAG, or one per sub-account of ``[ringcx] sub_accounts``."""

from __future__ import annotations

from airflow_provider_ringcx.example_dags.ringcx_recordings_history import build_dags

globals().update(build_dags())  # Airflow collects the DAGs among the module's globals
