"""The provider's audit DAG (find and repair the archive's gaps daily), built at each parse."""

from __future__ import annotations

from airflow_provider_ringcx.example_dags.ringcx_archive_audit import build_dag

dag = build_dag()
