"""The provider's audit DAG (find and repair the archive's gaps daily),
built at each parse: one DAG, or one per sub-account of ``[ringcx] sub_accounts``."""

from __future__ import annotations

from airflow_provider_ringcx.example_dags.ringcx_archive_audit import build_dags

globals().update(build_dags())  # Airflow collects the DAGs among the module's globals
