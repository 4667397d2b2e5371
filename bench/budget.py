"""Budget saturation: several download tasks in separate processes share the vendor's download budget.

The simulator enforces 120 downloads per 60 simulated seconds per sub-account, time-scaled (``time_scale``
10: 120 per 6 s of real time); the hook's connection carries the same budget in real seconds
(``download_budget`` "120/6"). ``ringcx_downloads``-pool-many task processes (4, see
``airflow_provider_ringcx.example_dags.settings.POOLS``) each run ``RingCXRecordingsToS3Operator.execute``
on their batch, with its default ``max_workers``, all sharing one ``[ringcx] budget_dir`` as tasks on one
host do. Each process records when each GET got its response headers (the budget slot in use).

Achieved rate = ``limit`` downloads per mean time between the i-th and the (i+``limit``)-th download start:
with a perfect sliding-window pacer that time is exactly one window, whatever the burst shape, and a
client too slow to use its slots makes it longer. It is compared with the budget.

Then, **hook only** (no Airflow, no DAG): the metadata calls of listing a range through the hook's
``iter_interaction_metadata`` (windows of ``max_window_seconds``) are counted at the simulator, with its
metadata budget (2/60 s and 9/900 s, time-scaled) enforced: the count must be ceil(range / max window) and
none may be a 429. This is the hook's lower bound, not what a backfill costs: the backfill through Airflow
(scheduler, the history DAG, the live DAG beside it) is ``bench.history``.

    python -m bench --only budget [--quick]
"""

from __future__ import annotations

import json
import math
import os
import subprocess
import sys
import tempfile
import time
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

from bench.common import REPO, Section, Services, services, table, timed_execute
from bench.segments import inject, window_end

LIMIT, WINDOW = 120, 60.0  # the vendor's download budget
META_BUDGET = ((2, 60.0), (9, 900.0))  # the vendor's metadata budget
MAX_WINDOW = 10800  # seconds: the largest timeInterval the API accepts (connection max_window_seconds)


def scaled(limits: tuple[tuple[int, float], ...], scale: float) -> str:
    return ",".join(f"{count}/{seconds / scale:g}" for count, seconds in limits)


def download_child(argv: list[str]) -> None:
    """``--download-child BUCKET REFS_FILE BARRIER``: one task's batch; print start times and outcomes.

    After its imports and set-up, the child creates ``BARRIER.<pid>`` and waits for ``BARRIER`` to exist,
    so that every task starts downloading at once (process start-up is not part of the rate).
    """
    bucket, refs_file, barrier = argv
    refs = json.loads(Path(refs_file).read_text())
    from airflow_provider_ringcx.operators.recordings import RingCXRecordingsToS3Operator

    operator = RingCXRecordingsToS3Operator(
        task_id="download_segments",
        batch=[{k: v for k, v in r.items() if k != "size"} for r in refs],
        bucket=bucket,
        prefix="bench",
    )
    starts, summary = timed_execute(operator, barrier)
    print(
        json.dumps({"starts": starts, "counts": summary["counts"], "not_archived": summary["not_archived"]})
    )


def metadata_child(argv: list[str]) -> None:
    """``--metadata-child START END``: list the range through the hook; print the row count."""
    start, end = (datetime.fromisoformat(x) for x in argv)
    from airflow_provider_ringcx.hooks.ringcx import RingCXHook

    began = time.perf_counter()
    rows = sum(1 for _ in RingCXHook().iter_interaction_metadata(start, end))
    print(json.dumps({"rows": rows, "seconds": time.perf_counter() - began}))


def _spawn(args: list[str], env: dict[str, str]) -> subprocess.Popen[str]:
    full = {k: v for k, v in os.environ.items() if not k.startswith("AIRFLOW_CONN_")}
    full.update(env)
    full.setdefault("PYTHONPATH", str(REPO))
    return subprocess.Popen(
        [sys.executable, "-m", "bench.budget", *args],
        env=full,
        cwd=str(REPO),
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )


def _collect(proc: subprocess.Popen[str], timeout: float) -> dict[str, Any]:
    out, err = proc.communicate(timeout=timeout)
    if proc.returncode != 0:
        raise RuntimeError(f"budget child failed ({proc.returncode}):\n{err[-3000:]}")
    return dict(json.loads(out.strip().splitlines()[-1]))


def downloads(svc: Services, workdir: Path, *, scale: float, windows: int, tasks: int) -> Section:
    window = WINDOW / scale
    section = Section(
        f"3. Budget saturation: {tasks} download tasks (processes) x max_workers 4, "
        f"budget {LIMIT}/{WINDOW:g} s at time_scale {scale:g} = {LIMIT}/{window:g} s real"
    )
    count = LIMIT * windows
    refs = inject(svc, count, 16_000, tag="budget")
    bucket = svc.new_bucket()
    budget_dir = tempfile.mkdtemp(prefix="budgets-", dir=workdir)
    env = {**svc.env(download_budget=f"{LIMIT}/{window:g}"), "AIRFLOW__RINGCX__BUDGET_DIR": budget_dir}
    before = svc.stats()
    procs = []
    barrier = workdir / "go"
    for n in range(tasks):
        refs_file = workdir / f"batch{n}.json"
        refs_file.write_text(json.dumps(refs[n::tasks]))
        procs.append(_spawn(["--download-child", bucket, str(refs_file), str(barrier)], env))
    deadline = time.monotonic() + 300
    while len(list(workdir.glob("go.*"))) < tasks and time.monotonic() < deadline:
        if any(p.poll() is not None for p in procs):
            break
        time.sleep(0.05)
    barrier.touch()
    results = [_collect(p, timeout=600) for p in procs]
    after = svc.stats()
    starts = sorted(t for r in results for t in r["starts"])
    span = starts[-1] - starts[0]
    # Sliding window: with perfect pacing the (i+LIMIT)-th download starts one window after the i-th.
    gaps = [starts[i + LIMIT] - starts[i] for i in range(len(starts) - LIMIT)]
    achieved = LIMIT * window / (sum(gaps) / len(gaps))  # downloads per window, sustained
    ratio = achieved / LIMIT
    archived = sum(r["counts"].get("archived", 0) for r in results)
    failed = count - archived
    got_429 = after["rate_limited"].get("download", 0) - before["rate_limited"].get("download", 0)
    per_window = [
        sum(1 for t in starts if starts[0] + k * window <= t < starts[0] + (k + 1) * window)
        for k in range(math.ceil(span / window) + 1)
    ]
    section.details = table(
        [(str(count), str(tasks), f"{span:.2f}", f"{achieved:.1f}", str(per_window), str(got_429))],
        (
            "downloads",
            "processes",
            "first..last start s",
            f"achieved per {window:g} s",
            "starts per window",
            "429s",
        ),
    )
    section.add("achieved download rate / budget", f"{ratio:.1%}", ">= 95%", ratio >= 0.95)
    section.add("segments failed", str(failed), "0", failed == 0)
    section.add("download 429s", str(got_429), "few (printed)", None)
    if failed:
        section.notes.append(f"not archived: {[r['not_archived'][:2] for r in results]}")
    svc.empty_bucket(bucket)
    return section


def metadata(svc: Services, workdir: Path, *, scale: float, hours: int) -> list[tuple[str, str, str, bool]]:
    end = window_end()
    start = end - timedelta(hours=hours)
    budget_dir = tempfile.mkdtemp(prefix="budgets-meta-", dir=workdir)
    env = {
        **svc.env(metadata_budget=scaled(META_BUDGET, scale), max_window_seconds=MAX_WINDOW),
        "AIRFLOW__RINGCX__BUDGET_DIR": budget_dir,
    }
    before = svc.stats()
    result = _collect(_spawn(["--metadata-child", start.isoformat(), end.isoformat()], env), timeout=600)
    after = svc.stats()
    calls = sum(after["requests"].get("metadata", {}).values()) - sum(
        before["requests"].get("metadata", {}).values()
    )
    got_429 = after["rate_limited"].get("metadata", 0) - before["rate_limited"].get("metadata", 0)
    expected = math.ceil(hours * 3600 / MAX_WINDOW)
    return [
        (
            f"hook only (not a DAG; see history): metadata calls listing {hours} h, max window "
            f"{MAX_WINDOW // 3600} h ({result['rows']} rows, {result['seconds']:.1f} s)",
            str(calls),
            f"== ceil(range/window) = {expected}",
            calls == expected,
        ),
        ("hook only: metadata 429s", str(got_429), "0", got_429 == 0),
    ]


def bench(workdir: Path, *, quick: bool) -> Section:
    workdir.mkdir(parents=True, exist_ok=True)
    scale = 20.0 if quick else 10.0
    meta_scale = 300.0 if quick else 100.0
    knobs = {
        "download_budget": f"{LIMIT}/{WINDOW:g}",
        "metadata_budget": scaled(META_BUDGET, 1),
        "time_scale": scale,
        "calls_per_hour": 60,
    }
    with services(workdir, **knobs) as svc:
        section = downloads(svc, workdir, scale=scale, windows=2 if quick else 3, tasks=4)
        svc.sim("PATCH", "/config", json={"time_scale": meta_scale})
        for name, value, target, met in metadata(svc, workdir, scale=meta_scale, hours=12 if quick else 36):
            section.add(name, value, target, met)
    section.notes.append(
        f"metadata part at time_scale {meta_scale:g}: the vendor's 2/60 s and 9/900 s budget becomes "
        f"{scaled(META_BUDGET, meta_scale)} s; hook and simulator use the same scaled budget"
    )
    return section


if __name__ == "__main__":
    if sys.argv[1:2] == ["--download-child"]:
        download_child(sys.argv[2:])
    elif sys.argv[1:2] == ["--metadata-child"]:
        metadata_child(sys.argv[2:])
    else:
        sys.exit("run through: python -m bench --only budget")
