"""``make airflow``: ``airflow standalone`` wired to the RingCX simulator and a local S3 server.

The Airflow home is ``.airflow/`` (git-ignored, recreated each time because the S3 server keeps objects in
memory). The DAG ``ringcx_recordings_to_s3`` is unpaused and catches up from two hours ago, so the Grid
fills with runs at once; the connections ``ringcx_default``/``aws_default`` and the pools are ready.
Ctrl-C (SIGINT) stops Airflow, the simulator and the S3 server.
"""

from __future__ import annotations

import argparse
import signal
import sys
import threading
from datetime import datetime, timedelta, timezone
from pathlib import Path
from types import FrameType

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from scripts.stack import REPO, Stack

SIM_ARGS = ["--calls-per-hour", "60", "--duration-scale", "0.05"]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--home", default=str(REPO / ".airflow"), help="Airflow home (recreated)")
    parser.add_argument("--port", type=int, default=None, help="API server port (default 8080, else free)")
    parser.add_argument("--catchup-hours", type=float, default=2.0, help="start date = now minus this")
    args = parser.parse_args(argv)
    now = datetime.now(timezone.utc).replace(second=0, microsecond=0)
    start = now - timedelta(hours=args.catchup_hours)
    start -= timedelta(minutes=start.minute % 15)
    stack = Stack(
        Path(args.home),
        sim_args=SIM_ARGS,
        airflow_env={
            "RINGCX_START_DATE": start.isoformat(),
            "AIRFLOW__CORE__DAGS_ARE_PAUSED_AT_CREATION": "False",
        },
    )
    stop = threading.Event()

    def on_signal(signum: int, frame: FrameType | None) -> None:
        stop.set()

    signal.signal(signal.SIGINT, on_signal)
    signal.signal(signal.SIGTERM, on_signal)
    with stack.running():
        print(f"simulator {stack.sim_url}   S3 {stack.s3_url} (bucket {stack.bucket}, Object Lock on)")
        print(f"preparing {stack.home} (SQLite, connections, pools) ...", flush=True)
        stack.prepare_home()
        print("starting airflow standalone (about a minute) ...", flush=True)
        url = stack.start_airflow(args.port, timeout=240)
        print()
        print(f"Airflow UI:      {url}   (user: admin)")
        print(f"admin password:  {stack.password_file}")
        print(f"DAG:             {url}/dags/ringcx_recordings_to_s3  (catching up from {start:%H:%M} UTC)")
        print(f"logs:            {stack.home / 'logs'}")
        print("Ctrl-C stops Airflow, the simulator and the S3 server.", flush=True)
        while not stop.wait(1.0):
            if any(proc.poll() is not None for proc in stack.procs):
                print("a child process exited; stopping (see the logs)")
                break
        print("stopping ...", flush=True)
    print("stopped")
    return 0


if __name__ == "__main__":
    sys.exit(main())
