"""Shared pieces of the benchmarks: the machine, the servers, connections, segments and the result table.

Every benchmark talks to real servers over loopback, each in its own process so that none shares the GIL
with the measured client: the RingCX simulator (``python -m ringcx_simulator``) and moto's
S3 server (``moto_server``). Their CPU time is sampled around each measured run (:class:`CpuMeter`), because
on a 2-core machine the servers' own cost bounds what any client can reach.
"""

from __future__ import annotations

import json
import os
import platform
import shutil
import socket
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import datetime
from importlib import metadata
from pathlib import Path
from typing import Any

import psutil
import requests

REPO = Path(__file__).resolve().parents[1]
MiB = 1024 * 1024
MB = 1_000_000
S3_KEY, S3_SECRET, REGION = "bench-key", "bench-secret", "us-east-1"  # moto accepts anything; not secrets
SUB_ACCOUNT = "99999999"
RC_ACCOUNT = "980634004"
#: The simulator's permanent API token (a test credential of the simulator, not a secret).
SIM_API_TOKEN = "aws80:sim-permanent-api-token"


# --- the machine ----------------------------------------------------------------------------------------
def machine_info() -> dict[str, str]:
    """Cores, RAM, CPU model, Python and the versions that matter, for the table's header."""
    versions = {}
    for dist in ("apache-airflow", "boto3", "botocore", "s3transfer", "requests", "moto", "uvicorn"):
        try:
            versions[dist] = metadata.version(dist)
        except metadata.PackageNotFoundError:
            versions[dist] = "-"
    model = platform.processor() or "?"
    try:
        with open("/proc/cpuinfo") as cpuinfo:
            model = next(
                (ln.split(":", 1)[1].strip() for ln in cpuinfo if ln.startswith("model name")), model
            )
    except OSError:
        pass
    load = ", ".join(f"{x:.2f}" for x in os.getloadavg())
    cores = f"{psutil.cpu_count(logical=True)} logical ({psutil.cpu_count(logical=False)} physical)"
    return {
        "cores": f"{cores} {model}",
        "ram": f"{psutil.virtual_memory().total / 2**30:.1f} GiB",
        "python": f"{platform.python_implementation()} {platform.python_version()} on {platform.platform()}",
        "versions": " ".join(f"{k} {v}" for k, v in versions.items()),
        "load average at start": load,
    }


# --- results ----------------------------------------------------------------------------------------------
@dataclass
class Measure:
    """One line of the final table: a measured value against its target."""

    name: str
    value: str
    target: str
    met: bool | None  # None: informational, no target

    @property
    def verdict(self) -> str:
        return "-" if self.met is None else ("met" if self.met else "NOT MET")


@dataclass
class Section:
    """The result of one benchmark: its measures, a detail table and notes."""

    title: str
    measures: list[Measure] = field(default_factory=list)
    details: list[str] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)

    def add(self, name: str, value: str, target: str = "", met: bool | None = None) -> None:
        self.measures.append(Measure(name, value, target, met))


def table(rows: Sequence[Sequence[str]], header: Sequence[str]) -> list[str]:
    """A plain fixed-width text table (also valid Markdown)."""
    cells = [list(header), *[list(map(str, row)) for row in rows]]
    widths = [max(len(row[i]) for row in cells) for i in range(len(header))]
    lines = ["| " + " | ".join(c.ljust(w) for c, w in zip(row, widths, strict=True)) + " |" for row in cells]
    lines.insert(1, "|" + "|".join("-" * (w + 2) for w in widths) + "|")
    return lines


def print_section(section: Section) -> None:
    print(f"\n## {section.title}\n", flush=True)
    for line in section.details:
        print(line)
    if section.measures:
        print()
        rows = [(m.name, m.value, m.target or "-", m.verdict) for m in section.measures]
        for line in table(rows, ("measure", "value", "target", "verdict")):
            print(line)
    for note in section.notes:
        print(f"- {note}")
    sys.stdout.flush()


# --- processes --------------------------------------------------------------------------------------------
def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def wait_http(url: str, proc: subprocess.Popen | None = None, timeout: float = 60.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc is not None and proc.poll() is not None:
            raise RuntimeError(f"{proc.args!r} exited with {proc.returncode} before {url} answered")
        try:
            requests.get(url, timeout=2)
            return
        except requests.RequestException:
            time.sleep(0.1)
    raise TimeoutError(f"{url} did not answer within {timeout:.0f} s")


class CpuMeter:
    """CPU seconds (user+system) of given processes (and their children) between start and stop."""

    def __init__(self, pids: Mapping[str, int]) -> None:
        self.procs = {name: psutil.Process(pid) for name, pid in pids.items()}
        self._start: dict[str, float] = {}
        self.wall = 0.0
        self.seconds: dict[str, float] = {}

    def _cpu(self, proc: psutil.Process) -> float:
        total = 0.0
        for p in [proc, *proc.children(recursive=True)]:
            try:
                times = p.cpu_times()
                total += times.user + times.system
            except psutil.Error:
                pass
        return total

    def __enter__(self) -> CpuMeter:
        self._t0 = time.monotonic()
        self._start = {name: self._cpu(p) for name, p in self.procs.items()}
        return self

    def __exit__(self, *exc: object) -> None:
        self.wall = time.monotonic() - self._t0
        self.seconds = {name: self._cpu(p) - self._start[name] for name, p in self.procs.items()}

    def summary(self) -> str:
        wall = max(self.wall, 1e-9)
        return ", ".join(f"{name} {sec:.1f} s ({sec / wall:.0%})" for name, sec in self.seconds.items())


@dataclass
class Services:
    """The simulator and the S3 server, each a child process on a free loopback port."""

    sim_url: str
    s3_url: str
    sim_pid: int
    s3_pid: int
    bucket: str

    def s3_client(self, **config: Any) -> Any:
        import boto3
        from botocore.config import Config

        return boto3.client(
            "s3",
            endpoint_url=self.s3_url,
            aws_access_key_id=S3_KEY,
            aws_secret_access_key=S3_SECRET,
            region_name=REGION,
            config=Config(s3={"addressing_style": "path"}, **config),
        )

    def new_bucket(self) -> str:
        name = f"bench-{uuid.uuid4().hex[:10]}"
        self.s3_client().create_bucket(Bucket=name)
        return name

    def empty_bucket(self, bucket: str) -> None:
        """Delete every object (moto keeps them in memory: keep its footprint flat between runs)."""
        s3 = self.s3_client()
        for page in s3.get_paginator("list_objects_v2").paginate(Bucket=bucket):
            keys = [{"Key": obj["Key"]} for obj in page.get("Contents", [])]
            if keys:
                s3.delete_objects(Bucket=bucket, Delete={"Objects": keys, "Quiet": True})

    def sim(self, method: str, path: str, **kwargs: Any) -> Any:
        response = requests.request(method, f"{self.sim_url}/_sim{path}", timeout=600, **kwargs)
        response.raise_for_status()
        return response.json()

    def stats(self) -> dict[str, Any]:
        return dict(self.sim("GET", "/stats"))

    def cpu_meter(self, client_pid: int | None = None) -> CpuMeter:
        pids = {"simulator": self.sim_pid, "moto": self.s3_pid}
        if client_pid is not None:
            pids = {"client": client_pid, **pids}
        return CpuMeter(pids)

    def env(self, **ringcx_extra: Any) -> dict[str, str]:
        """Environment of a client process: the ``ringcx_default`` and ``aws_default`` connections."""
        return {
            "AIRFLOW_CONN_RINGCX_DEFAULT": ringcx_conn_json(self.sim_url, **ringcx_extra),
            "AIRFLOW_CONN_AWS_DEFAULT": aws_conn_json(self.s3_url),
            "AWS_ACCESS_KEY_ID": S3_KEY,
            "AWS_SECRET_ACCESS_KEY": S3_SECRET,
            "AWS_DEFAULT_REGION": REGION,
        }


def sim_argv(**knobs: Any) -> list[str]:
    argv = []
    for name, value in knobs.items():
        argv += [f"--{name.replace('_', '-')}", str(value)]
    return argv


@contextmanager
def services(workdir: Path, **sim_knobs: Any) -> Iterator[Services]:
    """Start the simulator (budgets off unless given) and ``moto_server``; stop both (by PID) after."""
    knobs: dict[str, Any] = {
        "download_budget": "off",
        "metadata_budget": "off",
        "token_budget": "off",
        "calls_per_hour": 0,
        "processing_delay": 0,
        "token_lifetime": 86400,
    }
    knobs.update(sim_knobs)
    workdir.mkdir(parents=True, exist_ok=True)
    sim_port, s3_port = free_port(), free_port()
    moto = shutil.which("moto_server", path=str(Path(sys.executable).parent)) or "moto_server"
    logs = [open(workdir / "simulator.log", "ab"), open(workdir / "moto.log", "ab")]  # noqa: SIM115
    sim_cmd = [
        sys.executable,
        "-m",
        "ringcx_simulator",
        "--port",
        str(sim_port),
        *sim_argv(**knobs),
    ]
    procs = [
        subprocess.Popen(sim_cmd, stdout=logs[0], stderr=subprocess.STDOUT),
        subprocess.Popen(
            [moto, "-H", "127.0.0.1", "-p", str(s3_port)], stdout=logs[1], stderr=subprocess.STDOUT
        ),
    ]
    try:
        sim_url, s3_url = f"http://127.0.0.1:{sim_port}", f"http://127.0.0.1:{s3_port}"
        wait_http(f"{sim_url}/_sim/health", procs[0])
        wait_http(f"{s3_url}/", procs[1])
        svc = Services(sim_url, s3_url, procs[0].pid, procs[1].pid, bucket="")
        svc.bucket = svc.new_bucket()
        yield svc
    finally:
        for proc in procs:
            if proc.poll() is None:
                proc.terminate()
        for proc in procs:
            try:
                proc.wait(10)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait(5)
        for log in logs:
            log.close()


# --- connections ------------------------------------------------------------------------------------------
def ringcx_conn_json(sim_url: str, **extra: Any) -> str:
    """``ringcx_default`` at the simulator (JWT grant with the simulator's test credentials)."""
    values = {
        "auth_mode": "jwt",
        "jwt_token": "sim-jwt-assertion",
        "api_url": sim_url,
        "platform_url": sim_url,
        "rc_account_id": RC_ACCOUNT,
        "sub_account_id": SUB_ACCOUNT,
        "timezone": "UTC",
        "metadata_budget": "off",
        "download_budget": "off",
        "exchange_budget": "off",
    }
    values.update(extra)
    return json.dumps(
        {"conn_type": "ringcx", "login": "sim-client-id", "password": "sim-client-secret", "extra": values}
    )


def aws_conn_json(s3_url: str) -> str:
    return json.dumps(
        {
            "conn_type": "aws",
            "login": S3_KEY,
            "password": S3_SECRET,
            "extra": {
                "region_name": REGION,
                "endpoint_url": s3_url,
                "config_kwargs": {"s3": {"addressing_style": "path"}},
            },
        }
    )


def run_child(module: str, args: Sequence[str], env: Mapping[str, str], timeout: float) -> dict[str, Any]:
    """Run ``python -m module args`` in a fresh process; return the JSON of its last stdout line."""
    full_env = {k: v for k, v in os.environ.items() if not k.startswith("AIRFLOW_CONN_")}
    full_env.update(env)
    full_env.setdefault("PYTHONPATH", str(REPO))
    out = subprocess.run(
        [sys.executable, "-m", module, *args],
        env=full_env,
        cwd=str(REPO),
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
    )
    if out.returncode != 0:
        raise RuntimeError(f"{module} {' '.join(args)} failed ({out.returncode}):\n{out.stderr[-3000:]}")
    return dict(json.loads(out.stdout.strip().splitlines()[-1]))


# --- Airflow's REST API (bench.history) -------------------------------------------------------------------
class AirflowApi:
    """The few Airflow REST calls the benchmarks make, with a JWT (SQLite: a 503 "database is locked" is
    retried)."""

    def __init__(self, url: str, token: str) -> None:
        self.base = f"{url}/api/v2"
        self.session = requests.Session()
        self.session.headers["Authorization"] = f"Bearer {token}"

    def call(self, method: str, path: str, **kwargs: Any) -> Any:
        for _ in range(20):
            response = self.session.request(method, f"{self.base}{path}", timeout=60, **kwargs)
            if response.status_code != 503:
                break
            time.sleep(2)
        if not response.ok:
            raise RuntimeError(f"{method} {path}: {response.status_code} {response.text[:500]}")
        return response.json()

    def runs(self, dag_id: str, **params: Any) -> list[dict[str, Any]]:
        return list(self.call("GET", f"/dags/{dag_id}/dagRuns", params={"limit": 500, **params})["dag_runs"])

    def task_instances(self, dag_id: str, run_id: str) -> list[dict[str, Any]]:
        path = f"/dags/{dag_id}/dagRuns/{run_id}/taskInstances"
        return list(self.call("GET", path, params={"limit": 1000})["task_instances"])

    def running(self, dag_id: str, task_id: str) -> int:
        path = f"/dags/{dag_id}/dagRuns/~/taskInstances"
        found = self.call("GET", path, params={"task_id": task_id, "state": ["running"], "limit": 100})
        return int(found["total_entries"])


def api_epoch(value: Any) -> float:
    """Epoch seconds of an API timestamp."""
    return datetime.fromisoformat(str(value).replace("Z", "+00:00")).timestamp()


def timed_execute(operator: Any, barrier: str) -> tuple[list[float], dict[str, Any]]:
    """Run a download operator's batch, every child starting at once; return (stream starts, summary).

    Wraps the operator's hook so each recording stream records when it opened (the rate is measured from
    those), takes the token exchange first (set-up, not part of the download rate), then creates
    ``BARRIER.<pid>`` and waits for ``BARRIER``, so process start-up is not part of the rate either.
    """
    from bench.throughput import _Ti

    hook = operator.hook
    opened = hook.stream_recording
    starts: list[float] = []

    class Timed:
        def __init__(self, dialog_id: str, segment_id: str, **kwargs: Any) -> None:
            self.inner = opened(dialog_id, segment_id, **kwargs)

        def __enter__(self) -> Any:
            stream = self.inner.__enter__()
            starts.append(time.time())
            return stream

        def __exit__(self, *exc: Any) -> Any:
            return self.inner.__exit__(*exc)

    hook.stream_recording = Timed  # instance attribute: this hook only
    hook.tokens.token()
    Path(f"{barrier}.{os.getpid()}").touch()
    while not Path(barrier).exists():
        time.sleep(0.01)
    return starts, operator.execute({"ti": _Ti()})
