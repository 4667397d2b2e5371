"""The pacer's own cost per acquire: the Redis backend against the file backend.

One process acquires the download budget (120/60 s) ``count`` times on each backend: the locked JSON file of
``[ringcx] budget_dir`` and a local ``redis-server`` (a child process on a free loopback port, stopped by
PID afterwards). The budget's clock is stepped 0.51 s per acquire, so the log stays at its steady-state size
(about 120 requests, the whole window) and no acquire waits: what is timed is only the pacer (lock or
round trip, reading the window, recording). Against the 500 ms a download slot lasts at 120/min, the
difference is the price of sharing one budget between hosts.

    python -m bench --only redis_budget [--quick]

Needs ``/usr/bin/redis-server`` (``make redis-server`` installs it) and the ``redis`` package (``[redis]``).
"""

from __future__ import annotations

import shutil
import socket
import statistics
import subprocess
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from bench.common import Section, free_port, table

SPEC = "120/60"
NAME = "127.0.0.1:1|99999999|download"
STEP = 0.51  # seconds of budget clock per acquire: just under 120 per 60.5 s, so nothing waits
REDIS_SERVER = "/usr/bin/redis-server"
#: what the Redis pacer may cost per acquire (median), against a 500 ms download slot
TARGET_MS = 2.0


@contextmanager
def redis_server(workdir: Path) -> Iterator[str]:
    """A throw-away ``redis-server`` (no persistence); yields its URL."""
    binary = REDIS_SERVER if Path(REDIS_SERVER).exists() else shutil.which("redis-server")
    if not binary:
        raise RuntimeError("redis-server not found: `make redis-server` installs it (Debian's package)")
    port = free_port()
    workdir.mkdir(parents=True, exist_ok=True)
    args = [binary, "--port", str(port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no"]
    proc = subprocess.Popen(
        [*args, "--dir", str(workdir)], cwd=workdir, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
    )
    try:
        deadline = time.monotonic() + 20
        while True:
            try:
                with socket.create_connection(("127.0.0.1", port), timeout=0.5):
                    break
            except OSError:
                if proc.poll() is not None or time.monotonic() > deadline:
                    raise RuntimeError(f"redis-server on port {port} did not start") from None
                time.sleep(0.02)
        yield f"redis://127.0.0.1:{port}/0"
    finally:
        proc.terminate()
        proc.wait(timeout=10)


class SteppedClock:
    """The budget's clock: real time at the start, then ``STEP`` seconds further on every reading."""

    def __init__(self) -> None:
        self.now = time.time()

    def __call__(self) -> float:
        self.now += STEP
        return self.now


def time_acquires(store_kind: str, url: str, budget_dir: Path, count: int) -> list[float]:
    """Seconds per acquire, ``count`` of them, after a warm-up window (the log at its steady size)."""
    from airflow_provider_ringcx.hooks.budget import RateBudget, parse_budget
    from airflow_provider_ringcx.hooks.budget_redis import RedisBudgetStore
    from airflow_provider_ringcx.hooks.budget_rule import window_seconds
    from airflow_provider_ringcx.hooks.budget_store import FileBudgetStore

    limits = parse_budget(SPEC)
    clock = SteppedClock()
    horizon = max(window_seconds(limit, None) for limit in limits)
    store = (
        RedisBudgetStore(NAME, url, horizon=horizon, clock=clock)
        if store_kind == "redis"
        else FileBudgetStore(NAME, budget_dir, horizon=horizon, clock=clock)
    )
    budget = RateBudget(NAME, limits, budget_dir, clock=clock, store=store)
    budget.reset()
    for _ in range(limits[0].count):  # fill the window: every later acquire sees ~120 requests
        budget.acquire(max_wait=0)
    seconds = []
    for _ in range(count):
        began = time.perf_counter()
        budget.acquire(max_wait=0)
        seconds.append(time.perf_counter() - began)
    return seconds


def _ms(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))] * 1000


def bench(workdir: Path, *, quick: bool = False) -> Section:
    count = 300 if quick else 3000
    section = Section(f"Redis budget: the pacer's cost per acquire ({SPEC} s, {count} acquires, 1 process)")
    workdir.mkdir(parents=True, exist_ok=True)
    budget_dir = Path(tempfile.mkdtemp(prefix="budgets-", dir=workdir))
    with redis_server(workdir / "redis") as url:
        results = {kind: time_acquires(kind, url, budget_dir, count) for kind in ("file", "redis")}
    rows = []
    for kind, values in results.items():
        rows.append(
            [
                kind,
                f"{statistics.median(values) * 1000:.3f}",
                f"{_ms(values, 0.9):.3f}",
                f"{_ms(values, 0.99):.3f}",
                f"{statistics.fmean(values) * 1000:.3f}",
            ]
        )
    section.details = table(rows, ["backend", "median ms", "p90 ms", "p99 ms", "mean ms"])
    file_ms = statistics.median(results["file"]) * 1000
    redis_ms = statistics.median(results["redis"]) * 1000
    section.add("file backend, median per acquire", f"{file_ms:.3f} ms")
    section.add(
        "Redis backend, median per acquire", f"{redis_ms:.3f} ms", f"< {TARGET_MS:g} ms", redis_ms < TARGET_MS
    )
    section.add("Redis overhead over the file backend", f"{redis_ms - file_ms:+.3f} ms per acquire")
    section.notes.append(
        "One EVALSHA per acquire on a local redis-server (loopback); a Redis across the network adds its "
        "round trip. A download slot at 120/min is 500 ms."
    )
    return section
