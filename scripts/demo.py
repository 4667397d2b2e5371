"""``make demo``: archive one fixed past window of simulated RingCX traffic into a local S3 server.

Starts the RingCX simulator and moto's S3 server on free loopback ports, prepares a SQLite Airflow home in
``.demo/`` (git-ignored), runs ``airflow dags test`` for one window, then checks the result independently:
every recording the simulator says exists in the window must be in S3 with the simulator's SHA-256.
Prints a short report and exits 0 only if expected == archived > 0 and every checksum is verified.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import sys
import time
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from airflow_provider_ringcx.example_dags.ringcx_recordings_to_s3 import DAG_ID
from airflow_provider_ringcx.keys import DEFAULT_KEY_TEMPLATE, recording_key, report_key
from scripts.stack import REPO, Stack

#: The run's logical date; with the 15-minute lag it archives 14:00-14:15 UTC on 2026-03-02.
DEFAULT_RUN = "2026-03-02T14:30:00+00:00"
SIM_ARGS = ["--calls-per-hour", "120", "--duration-scale", "0.05", "--seed", "42"]


def _mb(size: int) -> str:
    return f"{size / 1_000_000:.1f} MB"


def verify(stack: Stack, window_start: datetime, window_end: datetime) -> dict[str, Any]:
    """Compare S3 with the simulator's ground truth (not with anything the DAG wrote about itself)."""
    import requests

    truth = requests.get(
        f"{stack.sim_url}/_sim/ground-truth",
        params={"start": window_start.isoformat(), "end": window_end.isoformat(), "sha256": "true"},
        timeout=120,
    ).json()["segments"]
    expected = [
        s for s in truth if s.get("hasRecording") and not s.get("restricted") and not s.get("processing")
    ]
    s3 = stack.s3_client()
    verified, archived, size, problems, keys = 0, 0, 0, [], []
    for segment in expected:
        key = recording_key(
            template=DEFAULT_KEY_TEMPLATE,
            prefix=stack.prefix,
            sub_account_id=str(segment["subAccountId"]),
            dialog_id=segment["dialogId"],
            segment_id=segment["segmentId"],
            when=datetime.fromtimestamp(_ms(segment["segmentStartTimeMs"]) / 1000, tz=timezone.utc),
        )
        try:
            body = s3.get_object(Bucket=stack.bucket, Key=key)["Body"].read()
        except s3.exceptions.NoSuchKey:
            problems.append(f"missing {key}")
            continue
        archived += 1
        size += len(body)
        keys.append(key)
        if hashlib.sha256(body).hexdigest() == segment["sha256"]:
            verified += 1
        else:
            problems.append(f"checksum mismatch {key}")
    return {"expected": len(expected), "archived": archived, "verified": verified, "bytes": size,
            "problems": problems, "keys": keys}  # fmt: skip


def _ms(value: Any) -> int:
    if isinstance(value, (int, float)):
        return int(value)
    text = str(value)
    if text.isdigit():
        return int(text)
    return int(datetime.fromisoformat(text.replace("Z", "+00:00")).timestamp() * 1000)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--run", default=DEFAULT_RUN, help="logical date of the run (end of its interval)")
    parser.add_argument("--home", default=str(REPO / ".demo"), help="Airflow home (recreated)")
    args = parser.parse_args(argv)
    started = time.monotonic()
    run_after = datetime.fromisoformat(args.run)
    window_end = run_after - timedelta(minutes=15)  # data interval end minus the 15-minute lag
    window_start = window_end - timedelta(minutes=15)
    stack = Stack(
        Path(args.home),
        sim_args=SIM_ARGS,
        airflow_env={"RINGCX_RETRIES": "1", "RINGCX_RETRY_DELAY_SECONDS": "2"},
    )
    print(f"RingCX -> S3 demo: window {window_start:%Y-%m-%d %H:%M}-{window_end:%H:%M} UTC")
    with stack.running():
        print(f"  simulator {stack.sim_url}   S3 {stack.s3_url}   AIRFLOW_HOME {stack.home}")
        print("  preparing the Airflow home (migrate SQLite, connections, pools) ...", flush=True)
        stack.prepare_home()
        print(f"  airflow dags test {DAG_ID} {args.run} ...", flush=True)
        test_started = time.monotonic()
        result = stack.airflow("dags", "test", DAG_ID, args.run, check=False)
        (stack.home / "logs" / "dags-test.log").write_text(result.stdout + result.stderr)
        state = "success" if result.returncode == 0 else f"FAILED (exit {result.returncode})"
        print(f"  run finished in {time.monotonic() - test_started:.0f} s: {state}")
        check = verify(stack, window_start, window_end)
        key = report_key(stack.prefix, "99999999", window_start, window_end)
        try:
            report = json.loads(stack.s3_client().get_object(Bucket=stack.bucket, Key=key)["Body"].read())
        except Exception:  # the run failed before writing it; the log says why
            report = None
        pids = ", ".join(str(proc.pid) for proc in stack.procs)
    counts = (report or {}).get("counts", {})
    failed = check["expected"] - check["archived"]
    print(f"  expected (simulator ground truth): {check['expected']} recordings")
    print(f"  archived: {check['archived']}   failed / not archived: {failed}")
    print(f"  bytes: {_mb(check['bytes'])}")
    print(
        f"  SHA-256 verified: {check['verified']}/{check['archived']} (S3 bytes re-hashed vs. the simulator)"
    )
    if report:
        print(
            f"  window report: expected {counts.get('expected')}, archived {counts.get('archived')}, "
            f"complete={report.get('complete')}"
        )
        print(f"  report: s3://{stack.bucket}/{key}")
    print("  sample keys:")
    for sample in check["keys"][:3]:
        print(f"    s3://{stack.bucket}/{sample}")
    for problem in check["problems"][:10]:
        print(f"  PROBLEM: {problem}")
    print(f"  stopped simulator and S3 server (pids {pids}); logs in {stack.home / 'logs'}")
    ok = (
        result.returncode == 0
        and check["expected"] == check["archived"] == check["verified"] > 0
        and report is not None
        and counts.get("expected") == counts.get("archived") == check["expected"]
    )
    elapsed = time.monotonic() - started
    if ok:
        print(f"DEMO OK: expected == archived == {check['archived']}, all SHA-256 verified ({elapsed:.0f} s)")
        return 0
    print(f"DEMO FAILED after {elapsed:.0f} s; see {stack.home / 'logs' / 'dags-test.log'}")
    return 1


if __name__ == "__main__":
    sys.exit(main())
