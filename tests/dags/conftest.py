"""Fixtures of the example-DAG tests (``example_dag`` lives in ``tests/fixtures/airflow_dag.py``)."""

from __future__ import annotations

from tests.fixtures.airflow_dag import example_dag  # noqa: F401 - re-exported fixture
