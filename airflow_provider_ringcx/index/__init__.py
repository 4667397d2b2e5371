"""The archive index (issue 17): one gzip JSON Lines object per sub-account and UTC day that any query engine
reads as a table (Athena with partition projection, DuckDB with ``hive_partitioning``, Spark).

- :mod:`~airflow_provider_ringcx.index.format`: the row schema (:data:`~.format.COLUMNS`), encoding, merge;
- :mod:`~airflow_provider_ringcx.index.store`: the S3 requests (conditional merge, read, sync to files);
- :mod:`~airflow_provider_ringcx.index.build`: a window's rows, written by the window report;
- :mod:`~airflow_provider_ringcx.index.rebuild`: a day regenerated from its manifests, reports and S3;
- :mod:`~airflow_provider_ringcx.index.sql`: the Athena DDL and the example queries (Athena and DuckDB);
- :mod:`~airflow_provider_ringcx.index.cli`: ``python -m airflow_provider_ringcx index ...``.
"""

from __future__ import annotations

from airflow_provider_ringcx.index.format import COLUMNS, INDEX_FORMAT, IndexCorruptError

__all__ = ["COLUMNS", "INDEX_FORMAT", "IndexCorruptError"]
