"""Scale by sub-accounts: segments per minute with 1, 2 and 4 sub-accounts, each paced by its own budget.

RingCX's download budget (120 per 60 s) is per sub-account, so sub-accounts are how a big centre multiplies
its throughput. The simulator serves four sub-accounts (``--sub-account-ids``), each with its own 120/60 s
budget enforced on its clock, ``time_scale`` times faster than real time; every connection carries the same
budget in real seconds, padded by 0.2 s against scheduling jitter (``download_budget``
``120/<60 / time_scale + 0.2>``).

For N sub-accounts, N download tasks run at once, each in its own process, as Airflow task processes would:
``RingCXRecordingsToS3Operator.execute`` on a batch of that sub-account's recordings (``max_workers`` 4, the
default), through a connection of its own (``AIRFLOW_CONN_RINGCX_SUB_<n>``, the connection naming the
sub-account), all sharing one ``[ringcx] budget_dir`` as the tasks of one host do. Each process records when
each GET got its response headers. Per sub-account, the achieved rate is ``limit`` downloads per mean time
between the i-th and the (i + ``limit``)-th download start (``bench.budget``'s measure: exactly one window
with a perfect sliding-window pacer, longer when the client cannot use its slots); the total is their sum,
against N x 120 per simulated minute.

    python -m bench --only scale [--quick]

What bounds a time-scaled run on a small machine is CPU (the operator's per-segment work, the simulator and
the S3 server share the cores), not the pacer. So each N runs at its own ``time_scale``: each process is
asked for at most ``PROCESS_RATE`` (6 downloads per real second: one task process, its threads sharing one
GIL) and all of them together for at most ``MACHINE_RATE`` (12), which gives time scale 3 for 1 and 2
sub-accounts and 1.5 for 4. The figures are per simulated minute, which is what the vendor's budget counts,
and each row prints its time scale.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from bench.common import REPO, Section, Services, ringcx_conn_json, services, table, timed_execute
from bench.segments import inject

LIMIT, WINDOW = 120, 60.0  # the vendor's download budget, per sub-account
SUB_ACCOUNTS = ("99999999", "88888888", "77777777", "66666666")
COUNTS = (1, 2, 4)
TARGET = 0.95  # each sub-account's share of its own budget
PROCESS_RATE = 6.0  # downloads per real second one task process is asked for (its threads share one GIL)
MACHINE_RATE = 12.0  # ... and all of them together: what 2 busy cores sustain beside simulator and S3
PAD_REAL = 0.2  # real seconds added to the hook's window (the simulator's clock and ours drift apart)
SEGMENT_BYTES = 16_000


def conn_id(n: int) -> str:
    return f"ringcx_sub_{n}"


def child(argv: list[str]) -> None:
    """``--child CONN_ID BUCKET REFS_FILE BARRIER``: one task's batch; print start times and outcomes.

    After its imports and set-up (the token exchange too), the child creates ``BARRIER.<pid>`` and waits for
    ``BARRIER``, so that every task starts downloading at once (process start-up is not part of the rate).
    """
    conn, bucket, refs_file, barrier = argv
    refs = json.loads(Path(refs_file).read_text())
    from airflow_provider_ringcx.operators.recordings import RingCXRecordingsToS3Operator

    operator = RingCXRecordingsToS3Operator(
        task_id="download_segments",
        batch=[{k: v for k, v in r.items() if k != "size"} for r in refs],
        bucket=bucket,
        prefix="bench",
        ringcx_conn_id=conn,
    )
    starts, summary = timed_execute(operator, barrier)
    print(json.dumps({"starts": starts, "counts": summary["counts"]}))


def achieved(starts: list[float], window: float) -> float:
    """Downloads per window, sustained: ``LIMIT`` per mean gap between the i-th and (i+LIMIT)-th start."""
    ordered = sorted(starts)
    gaps = [ordered[i + LIMIT] - ordered[i] for i in range(len(ordered) - LIMIT)]
    if not gaps:
        return float("nan")
    return LIMIT * window / (sum(gaps) / len(gaps))


def time_scale(n: int) -> float:
    """The simulator's time scale for ``n`` sub-accounts (see the module docstring)."""
    per_process = min(PROCESS_RATE, MACHINE_RATE / n)  # downloads per real second per sub-account
    return per_process * WINDOW / LIMIT


def run_count(svc: Services, workdir: Path, n: int, *, windows: float) -> dict[str, Any]:
    """N sub-accounts at once, one download task (process) each; their starts and the simulator's 429s."""
    scale = time_scale(n)
    svc.sim("PATCH", "/config", json={"time_scale": scale})
    svc.sim("POST", "/reset-budgets")
    window = WINDOW / scale
    per_sub = int(LIMIT * windows)
    run_dir = workdir / f"n{n}"
    run_dir.mkdir(parents=True, exist_ok=True)
    bucket = svc.new_bucket()
    env = {k: v for k, v in os.environ.items() if not k.startswith("AIRFLOW_CONN_")}
    env.update(svc.env())
    env.update(
        {
            f"AIRFLOW_CONN_{conn_id(i).upper()}": ringcx_conn_json(
                svc.sim_url, sub_account_id=sub, download_budget=f"{LIMIT}/{window + PAD_REAL:g}"
            )
            for i, sub in enumerate(SUB_ACCOUNTS[:n])
        }
    )
    env["AIRFLOW__RINGCX__BUDGET_DIR"] = tempfile.mkdtemp(prefix="budgets-", dir=run_dir)
    env.setdefault("PYTHONPATH", str(REPO))
    barrier = run_dir / "go"
    began = time.monotonic()
    procs = []
    for i, sub in enumerate(SUB_ACCOUNTS[:n]):
        refs = inject(svc, per_sub, SEGMENT_BYTES, tag=f"scale{n}-{i}", sub_account_id=sub)
        refs_file = run_dir / f"sub{i}.json"
        refs_file.write_text(json.dumps(refs))
        argv = [sys.executable, "-m", "bench.scale", "--child", conn_id(i), bucket, str(refs_file)]
        argv.append(str(barrier))
        pipe = subprocess.PIPE
        procs.append(subprocess.Popen(argv, env=env, cwd=REPO, text=True, stdout=pipe, stderr=pipe))
    deadline = time.monotonic() + 300
    while len(list(run_dir.glob("go.*"))) < n and time.monotonic() < deadline:
        if any(p.poll() is not None for p in procs):
            break
        time.sleep(0.05)
    before = svc.stats()
    barrier.touch()
    ready = time.monotonic()
    results = []
    for proc in procs:
        out, err = proc.communicate(timeout=900)
        if proc.returncode != 0:
            raise RuntimeError(f"scale child failed ({proc.returncode}):\n{err[-3000:]}")
        results.append(json.loads(out.strip().splitlines()[-1]))
    after = svc.stats()
    done = time.monotonic()
    svc.empty_bucket(bucket)
    throttled = after["rate_limited"].get("download", 0) - before["rate_limited"].get("download", 0)
    timing = f"{n}: set-up {ready - began:.0f} s, downloads {done - ready:.0f} s"
    return {"results": results, "per_sub": per_sub, "window": window, "throttled": throttled, "scale": scale,
            "timing": timing}  # fmt: skip


def bench(workdir: Path, *, quick: bool = False) -> Section:
    workdir.mkdir(parents=True, exist_ok=True)
    windows = 1.2 if quick else 1.5
    counts = (1, 2) if quick else COUNTS
    section = Section(
        f"Scale by sub-accounts: {', '.join(map(str, counts))} sub-account(s), one download task each, "
        f"budget {LIMIT}/{WINDOW:g} s per sub-account"
    )
    knobs = {
        "download_budget": f"{LIMIT}/{WINDOW:g}",
        "time_scale": time_scale(counts[0]),
        "sub_account_ids": ",".join(SUB_ACCOUNTS),
    }
    rows = []
    totals: dict[int, float] = {}
    timings: list[str] = []
    with services(workdir, **knobs) as svc:
        for n in counts:
            got = run_count(svc, workdir, n, windows=windows)
            window = got["window"]
            rates = [achieved(r["starts"], window) for r in got["results"]]
            failed = sum(got["per_sub"] - r["counts"].get("archived", 0) for r in got["results"])
            total = sum(rates)
            totals[n] = total
            worst = min(rates) / LIMIT
            rows.append(
                (
                    str(n),
                    f"{got['scale']:g}",
                    " ".join(f"{rate:.1f}" for rate in rates),
                    f"{total:.1f}",
                    f"{n * LIMIT}",
                    f"{total / (n * LIMIT):.1%}",
                    f"{total / totals[counts[0]]:.2f}x",
                    str(got["throttled"]),
                    str(failed),
                )
            )
            section.add(
                f"{n} sub-account(s): worst sub-account / its own budget",
                f"{worst:.1%}",
                f">= {TARGET:.0%}",
                worst >= TARGET,
            )
            section.add(
                f"{n} sub-account(s): segments per simulated minute, total",
                f"{total:.1f} = {total / LIMIT:.2f} x {LIMIT}",
                f"~ {n} x {LIMIT}",
                None,
            )
            if failed:
                section.notes.append(f"{n} sub-account(s): {failed} segment(s) not archived")
            timings.append(got["timing"])
    header = ("sub-accounts", "time scale", "per sub-account /sim min", "total /sim min", "budget",
              "total/budget", f"vs {counts[0]}", "429s", "not archived")  # fmt: skip
    section.details = table(rows, header)
    section.notes.append(
        f"{int(LIMIT * windows)} recordings of {SEGMENT_BYTES // 1000} kB per sub-account; "
        f"at most {PROCESS_RATE:g} downloads per real second per process and {MACHINE_RATE:g} in all; "
        "the file budget backend (one host)"
    )
    section.notes.append(
        "real seconds per N (child start-up and token exchange, then the downloads): " + "; ".join(timings)
    )
    return section


if __name__ == "__main__":
    if sys.argv[1:2] == ["--child"]:
        child(sys.argv[2:])
    else:
        sys.exit("run through: python -m bench --only scale")
