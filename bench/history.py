"""History through Airflow: a real scheduler backfill of several days beside the live DAG, time-scaled.

``airflow api-server``, ``scheduler`` and ``dag-processor`` run as processes (LocalExecutor on SQLite, the
:class:`scripts.stack.Stack` the end-to-end tests use) against the simulator and moto's S3 server. The
simulator enforces the vendor's budgets (metadata 2/60 s and 9/900 s, downloads 120/60 s, token exchanges
5/60 s) on its budget clock, ``time_scale`` times faster than real time; the hook's connection carries the
same budgets divided by ``time_scale`` (as ``bench.budget`` does), padded by 0.3 real seconds against
scheduling jitter, and a token refresh margin scaled the same way. The data clock stays real: the history
days are real past days, the live DAG's windows real minutes.

The live DAG ``ringcx_recordings_to_s3`` is unpaused on a one-minute schedule, which at ``time_scale`` 15 is
the vendor's 15 simulated minutes: one live metadata call per 9/900 s window, as in production. The history
DAG ``ringcx_recordings_history`` is driven by ``POST /api/v2/backfills``. Printed (the arithmetic is in
:mod:`bench.history_model`):

* the history's metadata calls at the simulator (its count minus one call per live fetch that ran meanwhile;
  the counters are read when no live fetch is running) against ``ceil(range / max window)``;
* 429s, task instances per day, token exchanges;
* the projection for 30 days against the floor beside the live DAG (240 calls at what live's calls leave
  of 9 per 900 s: 8), and against history alone's (the whole 9 per 900 s), for reference;
* the live windows' delay behind the backfill: the live fetch's logged budget waits, in simulated seconds,
  against one budget slot (100 s); its ``ringcx_metadata`` pool wait is live behind live (history has its
  own pools), printed in the table (:mod:`bench.history_live`).
  Airflow's own latency (the scheduler loop, process start) is real time at any ``time_scale``, so it is
  printed in the table but not held to a simulated slot.

    python -m bench --only history [--quick]
"""

from __future__ import annotations

import functools
import json
import time
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any

import requests

from bench.common import AirflowApi as Api
from bench.common import Section, table
from bench.common import api_epoch as when
from bench.history_live import FETCH, LAG_MINUTES, LIVE_DAG_ID, add_live, fetch_of, live_windows
from bench.history_model import (
    DAY,
    LONG_WINDOW,
    MAX_WINDOW,
    META_BUDGET,
    PAD_REAL,
    PROJECTED_DAYS,
    WITHIN,
    Projection,
    calls_for,
    duration,
    floor_seconds,
    scaled,
    shared_floor_seconds,
    steady_per_day,
)

HISTORY_DAG_ID = "ringcx_recordings_history"
HISTORY_MODULE = "airflow_provider_ringcx.example_dags.ringcx_recordings_history"
DOWNLOAD_BUDGET = ((120, 60.0),)
EXCHANGE_BUDGET = ((5, 60.0),)
REFRESH_MARGIN = 60.0  # the hook's default refresh_margin_seconds (simulated: scaled like the budgets)


# --- the run ----------------------------------------------------------------------------------------------
class HistoryDagMissing(RuntimeError):
    """The provider has no history DAG module (this bench measures that DAG, not a stand-in)."""


def dags_folder(workdir: Path) -> Path:
    """A DAG folder holding only the two DAGs measured (the shipped ``dags/`` may hold others).

    :raises HistoryDagMissing: the history DAG's module is not in this checkout.
    """
    import importlib.util

    if importlib.util.find_spec(HISTORY_MODULE) is None:
        raise HistoryDagMissing(
            f"{HISTORY_MODULE} does not exist in this checkout: the history measure needs the history DAG "
            f"{HISTORY_DAG_ID} (issue 14 item 1); run the other benchmarks with --only"
        )
    folder = workdir / "dags"
    folder.mkdir(parents=True, exist_ok=True)
    live = "airflow_provider_ringcx.example_dags.ringcx_recordings_to_s3"
    (folder / "live.py").write_text(f"from {live} import build_dag\n\ndag = build_dag()\n")
    (folder / "history.py").write_text(f"from {HISTORY_MODULE} import build_dag\n\ndag = build_dag()\n")
    return folder


@dataclass
class Snapshot:
    """The simulator's counters at one moment."""

    at: float
    metadata: int
    exchanges: int
    throttled: dict[str, int]

    @classmethod
    def take(cls, sim_url: str) -> Snapshot:
        stats = requests.get(f"{sim_url}/_sim/stats", timeout=60).json()
        counts = stats["requests"]
        return cls(
            at=time.time(),
            metadata=sum(counts.get("metadata", {}).values()),
            exchanges=sum(counts.get("exchange", {}).values()),
            throttled=dict(stats["rate_limited"]),
        )


def quiet_snapshot(api: Api, sim_url: str) -> Snapshot:
    """Counters at a moment when no live fetch is running (so each live call falls on one side of it)."""
    deadline = time.monotonic() + 90
    while api.running(LIVE_DAG_ID, FETCH) and time.monotonic() < deadline:
        time.sleep(0.5)
    return Snapshot.take(sim_url)


def history_range(days: int) -> tuple[datetime, datetime]:
    """``days`` whole UTC days ending at yesterday's midnight (real past days on the data clock)."""
    today = datetime.now(timezone.utc).replace(hour=0, minute=0, second=0, microsecond=0)
    return today - timedelta(days=days + 1), today - timedelta(days=1)


def stack_config(scale: float, per_hour: int) -> tuple[list[str], dict[str, Any]]:
    """The simulator's options (the vendor's budgets, simulated seconds) and the ``ringcx_default`` extras
    (the same budgets in real seconds, padded; the refresh margin scaled)."""
    sim_args = [
        "--time-scale", str(scale), "--metadata-budget", scaled(META_BUDGET, 1),
        "--download-budget", scaled(DOWNLOAD_BUDGET, 1), "--token-budget", scaled(EXCHANGE_BUDGET, 1),
        "--calls-per-hour", str(per_hour), "--duration-scale", "0.02", "--processing-delay", "60",
        "--max-interval", str(MAX_WINDOW), "--seed", "14",
    ]  # fmt: skip
    extra = {
        "metadata_budget": scaled(META_BUDGET, scale, PAD_REAL),
        "download_budget": scaled(DOWNLOAD_BUDGET, scale, PAD_REAL),
        "exchange_budget": scaled(EXCHANGE_BUDGET, scale, PAD_REAL),
        "refresh_margin_seconds": REFRESH_MARGIN / scale,
        "max_window_seconds": MAX_WINDOW,
    }
    return sim_args, extra


def run_stack(workdir: Path, *, days: int, scale: float, per_hour: int) -> dict[str, Any]:
    """Start everything, unpause the live DAG, backfill ``days`` days, collect timings and counters."""
    from scripts.stack import Stack, free_port, poll

    folder = dags_folder(workdir)
    now = datetime.now(timezone.utc).replace(second=0, microsecond=0)
    sim_args, extra = stack_config(scale, per_hour)
    env = {
        "AIRFLOW__CORE__DAGS_FOLDER": str(folder),
        "AIRFLOW__CORE__DAGS_ARE_PAUSED_AT_CREATION": "True",
        "RINGCX_SCHEDULE": "* * * * *",  # the live DAG: one real minute = 15 simulated minutes at scale 15
        "RINGCX_INTERVAL_MINUTES": "1",
        "RINGCX_START_DATE": now.isoformat(),
        "RINGCX_CATCHUP": "false",
        "RINGCX_LAG_MINUTES": str(LAG_MINUTES),
        "RINGCX_RESCAN_LOOKBACK_MINUTES": "0",  # live's late-arrival rescan: not what is measured
        "RINGCX_RETRIES": "1",
        "RINGCX_RETRY_DELAY_SECONDS": "2",
    }
    stack = Stack(workdir / "home", sim_args=sim_args, ringcx_extra=extra, airflow_env=env)
    with stack.running():
        stack.prepare_home()
        url = stack.start_airflow(free_port(), timeout=300, standalone=False)
        api = Api(url, stack.api_token(url))
        for dag_id in (LIVE_DAG_ID, HISTORY_DAG_ID):
            poll(f"{dag_id} to be parsed", functools.partial(_exists, api, dag_id), 180, interval=2)
            api.call("PATCH", f"/dags/{dag_id}", json={"is_paused": False})
        first, last = history_range(days)
        before = quiet_snapshot(api, stack.sim_url)
        body = {
            "dag_id": HISTORY_DAG_ID,
            "from_date": first.isoformat(),
            "to_date": (last - timedelta(days=1)).isoformat(),  # logical dates: the days' starts
            "reprocess_behavior": "none",
        }
        api.call("POST", "/backfills", json=body)

        def finished() -> list[dict[str, Any]] | None:
            dead = [f"pid {p.pid} ({p.returncode})" for p in stack.procs if p.poll() is not None]
            if dead:  # e.g. the scheduler: the runs would never finish
                raise RuntimeError(f"{', '.join(dead)} exited during the backfill; see {stack.home / 'logs'}")
            runs = api.runs(HISTORY_DAG_ID, run_type="backfill")
            done = len(runs) >= days and all(r["state"] in ("success", "failed") for r in runs)
            return runs if done else None

        runs = poll("the backfill runs", finished, 1200, interval=2)
        done_at = max(when(r["end_date"]) for r in runs)
        after = quiet_snapshot(api, stack.sim_url)
        history = {r["dag_run_id"]: api.task_instances(HISTORY_DAG_ID, r["dag_run_id"]) for r in runs}
        live_runs = [r for r in api.runs(LIVE_DAG_ID) if r["run_type"] == "scheduled"]
        live = {r["dag_run_id"]: (r, api.task_instances(LIVE_DAG_ID, r["dag_run_id"])) for r in live_runs}
    return {
        "runs": runs,
        "history": history,
        "live": live,
        "before": before,
        "after": after,
        "done_at": done_at,
        "logs": stack.home / "logs",
    }


def _exists(api: Api, dag_id: str) -> bool:
    try:
        api.call("GET", f"/dags/{dag_id}")
    except RuntimeError:
        return False
    return True


def bench(workdir: Path, *, quick: bool) -> Section:
    """Run the backfill beside the live DAG and report its figures (quick: 1 day at time scale 30)."""
    workdir.mkdir(parents=True, exist_ok=True)
    days, scale = (1, 30.0) if quick else (3, 15.0)
    section = Section(
        f"7. History backfill through Airflow: {days} day(s) of {HISTORY_DAG_ID} beside {LIVE_DAG_ID}, "
        f"time_scale {scale:g}, budgets on"
    )
    try:
        got = run_stack(workdir, days=days, scale=scale, per_hour=2)
    except HistoryDagMissing as missing:
        section.add("history DAG", "missing", HISTORY_DAG_ID, False)
        section.notes.append(str(missing))
        return section
    raw = json.dumps(got, default=lambda o: vars(o) if isinstance(o, Snapshot) else str(o), indent=1)
    (workdir / "history.json").write_text(raw)  # the raw figures, to recompute or inspect
    before, after, runs, history = got["before"], got["after"], got["runs"], got["history"]
    live = live_windows(got["live"], before.at, after.at, got["logs"])
    live_calls = sum(w.tries for w in live)
    calls = after.metadata - before.metadata - live_calls
    throttled = {
        r: n - before.throttled.get(r, 0)
        for r, n in after.throttled.items()
        if n > before.throttled.get(r, 0)
    }
    tis = sum(len(v) for v in history.values())
    states = sorted({r["state"] for r in runs})

    def sim(epoch: float) -> str:  # simulated seconds since the backfill was created
        return f"{(epoch - before.at) * scale:.0f}"

    section.details = table(
        [
            (
                run["data_interval_start"][:10],
                run["state"],
                str(len(history[run["dag_run_id"]])),
                sim(when(fetch_of(history[run["dag_run_id"]])["start_date"])),
                sim(when(fetch_of(history[run["dag_run_id"]])["end_date"])),
                sim(when(run["end_date"])),
            )
            for run in sorted(runs, key=lambda r: r["data_interval_start"])
        ],
        ("day", "state", "task instances", "fetch start (sim s)", "fetch end (sim s)", "run end (sim s)"),
    )
    expected = calls_for(days * DAY)
    section.add(
        f"metadata calls, {days} day(s) at max window {MAX_WINDOW} s (simulator count - {live_calls} live)",
        str(calls),
        f"== ceil(range/window) = {expected}",
        calls == expected,
    )
    section.add(
        "429s (both DAGs)",
        str(sum(throttled.values())) + (f" {throttled}" if throttled else ""),
        "0",
        not throttled,
    )
    section.add(
        "history runs",
        f"{len(runs)} {'/'.join(states)}",
        f"{days} success",
        states == ["success"] and len(runs) == days,
    )
    section.add("task instances per day of history", f"{tis / days:g}", "", None)
    section.add(
        "token exchanges during the backfill (both DAGs)", str(after.exchanges - before.exchanges), "", None
    )
    if days >= 2:
        fetch_ends = [when(fetch_of(v)["end_date"]) for v in history.values()]
        total = (got["done_at"] - before.at) * scale
        projection = Projection(days=days, total=total, per_day=steady_per_day(fetch_ends) * scale)
        floor = floor_seconds(PROJECTED_DAYS)
        # live first: the live DAG's calls come out of the same 9 per 900 s, whatever history does
        live_share = live_calls / (total / LONG_WINDOW[1])
        shared = shared_floor_seconds(PROJECTED_DAYS, live_share)
        summary = f"{PROJECTED_DAYS} days (fixed {duration(projection.fixed)} + {PROJECTED_DAYS} x "
        summary += duration(projection.per_day) + ")"
        section.add(
            f"projected wall time beside the live DAG, {summary}",
            f"{duration(projection.projected())} = {projection.ratio(floor=shared):.2f}x floor",
            f"<= {WITHIN}x floor {duration(shared)} ({calls_for(PROJECTED_DAYS * DAY)} calls at the "
            f"{LONG_WINDOW[0] - live_share:.2f} per 900 s live's {live_share:.2f} leave)",
            projection.ratio(floor=shared) <= WITHIN,
        )
        section.add(
            "same, against history alone's floor (no live DAG: the whole 9 per 900 s)",
            f"{projection.ratio():.2f}x {duration(floor)}",
            "",
            None,
        )
        section.notes.append(
            f"naive projection (run total {duration(total)} / {days} x {PROJECTED_DAYS}): "
            f"{duration(projection.naive())} = {projection.naive() / floor:.2f}x floor"
        )
    else:
        section.notes.append("--quick: one day, no pace between days, no projection")
    add_live(section, live, scale)
    section.notes.append(f"logs in {got['logs']}")
    section.notes.append(
        f"budgets: simulator {scaled(META_BUDGET, 1)} (metadata), {scaled(DOWNLOAD_BUDGET, 1)}, "
        f"{scaled(EXCHANGE_BUDGET, 1)} simulated s at time_scale {scale:g}; hook "
        f"{scaled(META_BUDGET, scale, PAD_REAL)}, {scaled(DOWNLOAD_BUDGET, scale, PAD_REAL)}, "
        f"{scaled(EXCHANGE_BUDGET, scale, PAD_REAL)} real s"
    )
    return section
