"""The index as a table: the Athena/Glue DDL, DuckDB's reader, and the three example queries in both dialects.

Both are generated from :data:`~airflow_provider_ringcx.index.format.COLUMNS`, so the table always matches
the rows. ``docs/athena/ringcx_index.sql`` is :func:`athena_script` for a placeholder bucket (a test keeps
them equal); ``python -m airflow_provider_ringcx index ddl --bucket B --prefix P --sub-accounts 1,2``
prints it for a real one.

**Athena** reads the objects with the OpenX JSON SerDe (gzip is recognised by the ``.gz`` ending). The two
partition keys are projected, not crawled (no ``MSCK REPAIR``, no Glue crawler): ``date`` as a date range
from :data:`PROJECTION_START` to now, ``sub_account`` as an enum of the sub-account ids (Athena advises
projection enums of few values; only these two keys are partitions). ``date`` is a reserved word: it is
quoted as ```date``` in the DDL and ``"date"`` in queries. A query that names a ``date`` range reads only
those days.

**DuckDB** reads a synced copy (:func:`~airflow_provider_ringcx.index.store.sync_index`) or, with its
``httpfs`` extension, ``s3://`` directly, with ``hive_partitioning`` (the partition columns ``date`` and
``sub_account``) and the columns given explicitly (:func:`duckdb_columns`), so an empty or odd day cannot
change a column's type.
"""

from __future__ import annotations

from airflow_provider_ringcx import keys
from airflow_provider_ringcx.exceptions import RingCXConfigError
from airflow_provider_ringcx.index.format import COLUMNS, INDEX_FORMAT

#: First day the ``date`` projection covers (a query before it finds nothing).
PROJECTION_START = "2020-01-01"
#: The table name in every example.
TABLE = "ringcx_index"

_DUCKDB_TYPES = {
    "string": "VARCHAR",
    "bigint": "BIGINT",
    "boolean": "BOOLEAN",
    "array<string>": "VARCHAR[]",
    "array<struct<start_time:string,end_time:string>>": "STRUCT(start_time VARCHAR, end_time VARCHAR)[]",
}


def location(bucket: str, prefix: str | None) -> str:
    """``s3://bucket/prefix/_index/``: the table's root."""
    return f"s3://{bucket}/{keys.index_prefix(prefix)}"


def athena_ddl(bucket: str, prefix: str | None, sub_accounts: list[str], *, table: str = TABLE) -> str:
    """``CREATE EXTERNAL TABLE`` for the index, with partition projection on ``date`` and ``sub_account``.

    :param sub_accounts: the sub-account ids the archive holds (the ``sub_account`` projection's enum).
    """
    width = max(len(name) for name, _type, _doc in COLUMNS)
    columns = ",\n".join(f"  {name:<{width}} {kind:<20} COMMENT '{doc.replace(chr(39), '')}'"
                         for name, kind, doc in COLUMNS)  # fmt: skip
    root = location(bucket, prefix)
    enum = ",".join(keys.safe_id(sub) for sub in sub_accounts)
    return f"""CREATE EXTERNAL TABLE IF NOT EXISTS {table} (
{columns}
)
COMMENT 'RingCX recordings archive index ({INDEX_FORMAT}), one row per segment'
PARTITIONED BY (sub_account string, `date` string)
ROW FORMAT SERDE 'org.openx.data.jsonserde.JsonSerDe'
WITH SERDEPROPERTIES ('ignore.malformed.json' = 'false')
LOCATION '{root}'
TBLPROPERTIES (
  'projection.enabled' = 'true',
  'projection.sub_account.type' = 'enum',
  'projection.sub_account.values' = '{enum}',
  'projection.date.type' = 'date',
  'projection.date.format' = 'yyyy-MM-dd',
  'projection.date.range' = '{PROJECTION_START},NOW',
  'projection.date.interval' = '1',
  'projection.date.interval.unit' = 'DAYS',
  'storage.location.template' = '{root}sub_account=${{sub_account}}/date=${{date}}/'
);"""


#: The three example queries, Athena (Trino) dialect; ``{table}`` is the table name.
ATHENA_QUERIES: dict[str, str] = {
    "calls_with_number": """-- All calls with a number in a month: the number as caller (ANI) or callee (DNIS)
SELECT "date", start_time, direction, channel_endpoint_address AS ani, contact_endpoint_address AS dnis,
       agent_id, dialog_id, segment_id, outcome, s3_key, version_id
FROM {table}
WHERE "date" BETWEEN '2026-03-01' AND '2026-03-31'
  AND '+12025550143' IN (channel_endpoint_address, contact_endpoint_address)
ORDER BY start_time, dialog_id, segment_id;""",
    "agent_recordings": """-- All recordings of an agent
SELECT "date", start_time, duration_ms, direction, dialog_id, segment_id, s3_key, version_id, sha256,
       retain_until, legal_hold, cardinality(pause_intervals) AS pauses
FROM {table}
WHERE agent_id = '449438' AND has_recording
ORDER BY start_time, dialog_id, segment_id;""",
    "not_archived": """-- Everything not archived, with the reasons (no_recording: RingCX holds no recording)
SELECT "date", outcome, reason, dialog_id, segment_id, start_time, archive_window, report_key
FROM {table}
WHERE outcome NOT IN ('archived', 'no_recording')
ORDER BY "date", outcome, start_time;""",
}


def athena_script(bucket: str, prefix: str | None, sub_accounts: list[str]) -> str:
    """The DDL and the three example queries, as one SQL script (``docs/athena/ringcx_index.sql``)."""
    queries = "\n\n".join(query.format(table=TABLE) for query in ATHENA_QUERIES.values())
    return (
        f"-- The RingCX archive index as an Athena table ({INDEX_FORMAT}); generated by\n"
        "-- python -m airflow_provider_ringcx index ddl --bucket BUCKET --prefix PREFIX --sub-accounts IDS\n"
        "-- Columns: airflow_provider_ringcx/index/format.py (COLUMNS).\n\n"
        f"{athena_ddl(bucket, prefix, sub_accounts)}\n\n{queries}\n"
    )


def duckdb_columns() -> str:
    """The ``columns`` argument of DuckDB's ``read_json`` for the index rows."""
    return "{" + ", ".join(f"'{name}': '{_DUCKDB_TYPES[kind]}'" for name, kind, _doc in COLUMNS) + "}"


def duckdb_source(files: str) -> str:
    """A DuckDB table expression over index files (a glob such as ``/copy/_index/*/*/*.jsonl.gz`` or, with
    ``httpfs``, ``s3://bucket/prefix/_index/*/*/*.jsonl.gz``): every column typed, plus the partition
    columns ``sub_account`` (text) and ``date`` (a DATE)."""
    quoted = files.replace("'", "''")
    return (
        f"read_json('{quoted}', format = 'newline_delimited', compression = 'gzip', "
        f"hive_partitioning = true, hive_types = {{'sub_account': 'VARCHAR', 'date': 'DATE'}}, "
        f"columns = {duckdb_columns()})"
    )


#: The same three queries in DuckDB's dialect (``{table}`` a view over :func:`duckdb_source`; the number,
#: agent, month and window as parameters ``$number``, ``$agent``, ``$month_start``, ``$month_end``,
#: ``$window``); ``calls_per_direction`` is what ``make demo`` prints.
DUCKDB_QUERIES: dict[str, str] = {
    "calls_with_number": """SELECT "date", start_time, direction, channel_endpoint_address AS ani,
       contact_endpoint_address AS dnis, agent_id, dialog_id, segment_id, outcome, s3_key
FROM {table}
WHERE "date" >= $month_start AND "date" < $month_end
  AND $number IN (channel_endpoint_address, contact_endpoint_address)
ORDER BY start_time, dialog_id, segment_id""",
    "agent_recordings": """SELECT "date", start_time, duration_ms, direction, dialog_id, segment_id, s3_key,
       sha256, len(pause_intervals) AS pauses
FROM {table}
WHERE agent_id = $agent AND has_recording
ORDER BY start_time, dialog_id, segment_id""",
    "not_archived": """SELECT "date", outcome, reason, dialog_id, segment_id, start_time, archive_window
FROM {table}
WHERE outcome NOT IN ('archived', 'no_recording')
ORDER BY "date", outcome, start_time, dialog_id, segment_id""",
    "calls_per_direction": """SELECT sub_account_id, coalesce(direction, '(none)') AS direction,
       count(*) AS segments, count(*) FILTER (WHERE outcome = 'archived') AS archived
FROM {table}
WHERE archive_window = $window
GROUP BY ALL
ORDER BY sub_account_id, direction""",
}


def duckdb_query(root: str, query: str, params: dict[str, object] | None = None) -> list[tuple]:
    """Run one query over a synced copy of the index (``root`` holds ``_index/``) in DuckDB; the rows.

    :param query: SQL over the view ``{table}`` (e.g. a value of :data:`DUCKDB_QUERIES`).
    :raises RingCXConfigError: DuckDB is not installed (it is an optional dependency).
    """
    try:
        import duckdb
    except ImportError:
        raise RingCXConfigError(
            "querying the index locally needs DuckDB: pip install 'airflow-provider-ringcx[query]'"
        ) from None
    files = f"{root.rstrip('/')}/_index/*/*/*.jsonl.gz"
    with duckdb.connect() as con:
        # the only text spliced in is the file glob, quoted by duckdb_source
        con.execute(f"CREATE VIEW {TABLE} AS SELECT * FROM {duckdb_source(files)}")  # noqa: S608
        return con.execute(query.format(table=TABLE), params or {}).fetchall()
