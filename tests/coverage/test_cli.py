"""``python -m airflow_provider_ringcx coverage`` run as a person runs it: a subprocess, the S3 client from
an ``AIRFLOW_CONN_AWS_DEFAULT`` connection pointing at moto, the table on stdout and the exit status."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest

from tests.coverage.conftest import PREFIX, SUB, put_manifest, put_report, utc
from tests.fixtures.s3 import REGION, aws_connection_json

REPO = Path(__file__).resolve().parents[2]
Q = timedelta(minutes=15)


def run(s3_endpoint: str, bucket: str, *args: str) -> subprocess.CompletedProcess:
    env = {
        **os.environ,
        "AIRFLOW_CONN_AWS_DEFAULT": aws_connection_json(s3_endpoint),
        "AWS_DEFAULT_REGION": REGION,
    }
    argv = [sys.executable, "-m", "airflow_provider_ringcx", "coverage", "--aws-conn-id", "aws_default"]
    argv += ["--bucket", bucket, "--prefix", PREFIX, "--sub-account-id", SUB, *args]
    return subprocess.run(argv, cwd=REPO, env=env, capture_output=True, text=True, timeout=240, check=False)


def row(stdout: str, day: str) -> list[str]:
    """The table row of ``day``: date, complete, incomplete, missing, pending, overlapping, off-grid..."""
    return next(line.split() for line in stdout.splitlines() if line.startswith(day))


@pytest.mark.integration
def test_the_command_prints_the_table_and_fails_on_a_gap(
    s3_endpoint: str, s3_client: Any, bucket: str
) -> None:
    put_report(s3_client, bucket, utc(2026, 3, 1), utc(2026, 3, 2))  # a history day
    for index in range(96):
        start = utc(2026, 3, 2) + Q * index
        if (start.hour, start.minute) != (16, 30):
            put_report(s3_client, bucket, start, start + Q)
    put_manifest(s3_client, bucket, utc(2026, 3, 2, 16, 30), utc(2026, 3, 2, 16, 45))

    ok = run(
        s3_endpoint, bucket, "--start", "2026-03-01", "--end", "2026-03-02", "--now", "2026-03-05T00:00:00Z"
    )
    assert ok.returncode == 0, ok.stderr[-3000:]
    assert row(ok.stdout, "2026-03-01")[:7] == ["2026-03-01", "96", "0", "0", "0", "0", "0"]
    assert "No problems" in ok.stdout

    gap = run(
        s3_endpoint, bucket, "--start", "2026-03-01", "--end", "2026-03-03", "--now", "2026-03-05T00:00:00Z"
    )
    assert gap.returncode == 1, gap.stderr[-3000:]
    assert row(gap.stdout, "2026-03-02")[:7] == ["2026-03-02", "95", "0", "1", "0", "0", "0"]
    assert "16:30\u201316:45  missing" in gap.stdout
    assert "a manifest but no report" in gap.stdout
    assert "S3 requests:" in gap.stdout

    # the next day is pending until its windows are due: nothing due is missing, so exit 0
    cached = run(
        s3_endpoint, bucket, "--start", "2026-03-01", "--end", "2026-03-02", "--cached", "--json",
        "--now", "2026-03-05T00:00:00Z",
    )  # fmt: skip
    assert cached.returncode == 0, cached.stderr[-3000:]
    data = json.loads(cached.stdout)
    assert data["requests"] == {"get": 2, "list": 0, "put": 0}
    assert data["days"][0]["complete"] == 96

    pending = run(
        s3_endpoint, bucket, "--start", "2026-03-03", "--end", "2026-03-04", "--now", "2026-03-03T00:10:00Z"
    )
    assert pending.returncode == 0, pending.stdout + pending.stderr[-3000:]
    assert row(pending.stdout, "2026-03-03")[:7] == ["2026-03-03", "0", "0", "0", "96", "0", "0"]


@pytest.mark.integration
def test_usage_errors_exit_2(s3_endpoint: str, bucket: str) -> None:
    bad = run(s3_endpoint, bucket, "--start", "2026-03-01", "--end", "2026-03-02", "--interval", "7m")
    assert bad.returncode == 2
    assert "does not divide a day" in bad.stderr
    backwards = run(s3_endpoint, bucket, "--start", "2026-03-02", "--end", "2026-03-01")
    assert backwards.returncode == 2
    assert "end excluded" in backwards.stderr
