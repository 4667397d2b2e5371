"""The live DAG beside a history backfill (:mod:`bench.history`): its windows' latency, and their delay.

The delay the backfill can cost a live window is the live fetch's budget waits: since history runs in its
own pools (``ringcx_history_metadata``), the ``ringcx_metadata`` pool holds live fetches only, so a pool wait
is a live run behind the previous live run (printed, not held to the slot). The hook logs a budget wait at
INFO only when it is over 5 real seconds (75 simulated at ``time_scale`` 15), so shorter waits, all within
the one slot of 100 simulated seconds, count as none.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from bench.common import Section, table
from bench.common import api_epoch as when
from bench.history_model import logged_waits, slot_seconds

LIVE_DAG_ID = "ringcx_recordings_to_s3"
LAG_MINUTES = 5  # the live DAG's settle lag (the vendor's floor), real minutes on the data clock
FETCH = "fetch_metadata_window"


def fetch_of(tis: Sequence[dict[str, Any]]) -> dict[str, Any]:
    """The run's metadata fetch (``{}`` while the run has no task instances yet)."""
    return next((ti for ti in tis if ti["task_id"] == FETCH), {})


@dataclass(frozen=True)
class LiveWindow:
    """One live run during the backfill, in real epoch seconds."""

    run_id: str
    window_end: float  # the data interval's end minus the lag
    fired: float  # the data interval's end: when the run became due
    scheduled: float  # the fetch's dependencies were met: from here it waits for a ringcx_metadata slot
    queued: float  # it got the pool slot
    started: float
    ended: float  # the window's metadata is fetched and its manifest written
    budget_wait: float  # real seconds of budget waits its log announces (each over 5 s)
    tries: int

    @property
    def latency(self) -> float:
        return self.ended - self.window_end

    def delay(self, scale: float) -> float:
        """Simulated seconds the backfill can have cost it: the budget waits (module docstring)."""
        return self.budget_wait * scale


def live_windows(live: dict[str, Any], since: float, until: float, logs: Path) -> list[LiveWindow]:
    """The live runs whose fetch ended while the backfill ran."""
    found = []
    for run_id, (run, tis) in live.items():
        fetch = fetch_of(tis)
        if (
            not (fetch.get("end_date") and fetch.get("start_date"))
            or not since < when(fetch["end_date"]) <= until
        ):
            continue
        fired, started = when(run["data_interval_end"]), when(fetch["start_date"])
        tries = int(fetch.get("try_number") or 1)
        texts = [
            path.read_text(errors="replace")
            for path in (logs / f"dag_id={LIVE_DAG_ID}" / f"run_id={run_id}" / f"task_id={FETCH}").glob(
                "*.log"
            )
        ]
        found.append(
            LiveWindow(
                run_id=run_id,
                window_end=fired - LAG_MINUTES * 60,
                fired=fired,
                scheduled=when(fetch.get("scheduled_when") or fetch["start_date"]),
                queued=when(fetch.get("queued_when") or fetch["start_date"]),
                started=started,
                ended=when(fetch["end_date"]),
                budget_wait=sum(logged_waits(text) for text in texts),
                tries=tries,
            )
        )
    return sorted(found, key=lambda w: w.fired)


def add_live(section: Section, live: Sequence[LiveWindow], scale: float) -> None:
    """The live windows' delay behind the backfill (measure) and their latency breakdown (table)."""
    if not live:
        section.add("live windows during the backfill", "0", ">= 1", False)
        return
    slot = slot_seconds()
    worst = max(live, key=lambda w: w.delay(scale))
    section.add(
        f"live window delay behind the backfill (budget waits), worst of {len(live)} (sim s)",
        f"{worst.delay(scale):.0f}",
        f"<= one slot ({slot:g})",
        worst.delay(scale) <= slot,
    )
    slowest = max(live, key=lambda w: w.latency)
    section.add(
        "live window latency, worst (window end to fetched; real s: Airflow's part is not scaled)",
        f"{slowest.latency:.0f} s = lag {LAG_MINUTES * 60} s + {slowest.latency - LAG_MINUTES * 60:.0f} s",
        "",
        None,
    )
    rows = [
        (
            w.run_id.split("__")[-1][:19],
            f"{w.scheduled - w.fired:.1f}",
            f"{(w.queued - w.scheduled) * scale:.0f}",
            f"{w.budget_wait * scale:.0f}",
            f"{w.started - w.queued:.1f}",
            f"{w.ended - w.started:.1f}",
            f"{w.latency:.0f}",
        )
        for w in live
    ]
    header = ("live window due", "due->scheduled s", "pool wait sim s", "budget wait sim s",
              "queued->start s", "start->end s", "latency s")  # fmt: skip
    section.details += ["", *table(rows, header)]
