"""Profile the operator's hot path: where the client's time goes per archived segment.

Runs the throughput benchmark's ``operator-1`` path (one stream, so the samples are not split across
threads) in a child process sampled by ``py-spy`` when it is installed (``pip install py-spy``; not a
project dependency), else under ``cProfile`` (standard library, deterministic, slower). The samples are
folded into the categories the issue asks about: hashing, WAV parsing, reading/copying the body, HTTP to
RingCX, S3 requests, signing/serialising, budget bookkeeping, sidecars, logging.

    python -m bench --only profile [--quick]
"""

from __future__ import annotations

import collections
import json
import os
import pstats
import shutil
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

from bench.common import MB, REPO, Section, Services, table
from bench.segments import inject

SAMPLE_HZ = 250

#: The first frame under ``SegmentLander.land`` names the phase of one segment's attempt.
PHASES = {
    "SegmentLander._head": "S3 HEAD (idempotency check)",
    "_GeneratorContextManager.__enter__": "RingCX GET up to headers (budget, token, WAV peek)",
    "SegmentLander._verify_upload": "S3 HEAD (verification)",
    "SegmentLander._sidecar": "sidecar build",
    "SegmentLander._put_json": "S3 PUT sidecar",
    "_GeneratorContextManager.__exit__": "close stream",
    "segment_keys": "key rendering",
}
#: Below ``_put_small``/``_put_streamed``: the frame that names the sub-phase.
UPLOAD_PARTS = (
    ("HashingReader.read", "body: receive + copy + hash (RecordingStream, HashingReader)"),
    ("SigV4Auth.payload", "PutObject: botocore SHA-256 of the payload for SigV4 (plain HTTP only)"),
    ("_api_call", "PutObject: request/response (send, moto, parse)"),
)
HASH_LEAVES = ("sha256", "hashlib", "md5", "crc32", "HASH.update", "digest")


def _func(frame: str) -> str:
    return frame.split(" (", 1)[0]


def phase_of(stack: list[str]) -> str:
    funcs = [_func(frame) for frame in stack]
    if "SegmentLander.land" not in funcs:
        if "BatchArchiver._one" in funcs:
            return "per-segment bookkeeping (tenacity, outcome, progress log)"
        return "worker idle (pool waiting for work)"
    below = funcs[funcs.index("SegmentLander.land") + 1 :]
    if not below:
        return "land() itself"
    if below[0] in ("SegmentLander._put_small", "SegmentLander._put_streamed", "bytes"):
        for needle, name in UPLOAD_PARTS:
            if any(needle in f for f in below):
                return name
        return "upload: buffer handling"
    return PHASES.get(below[0], below[0])


def fold_pyspy(raw: Path) -> tuple[collections.Counter[str], int, int]:
    """Collapsed stacks of the segment worker threads -> samples per phase; also hashing samples."""
    phases: collections.Counter[str] = collections.Counter()
    hashing = 0
    for line in raw.read_text().splitlines():
        stack_text, _, count_text = line.rpartition(" ")
        if not count_text.isdigit() or "_WorkItem.run" not in stack_text:
            continue
        stack = stack_text.split(";")
        count = int(count_text)
        phases[phase_of(stack)] += count
        if any(needle in stack[-1] for needle in HASH_LEAVES):
            hashing += count
    return phases, sum(phases.values()), hashing


def profile_child(svc: Services, refs_file: Path, out: Path, bucket: str) -> tuple[str, float]:
    """Run the operator path in a child under py-spy (or cProfile); return (tool, wall seconds)."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("AIRFLOW_CONN_")}
    env.update(svc.env())
    env.setdefault("PYTHONPATH", str(REPO))
    argv = [
        "-m",
        "bench.throughput",
        "--child",
        "operator-1",
        svc.sim_url,
        svc.s3_url,
        bucket,
        str(refs_file),
    ]
    spy = shutil.which("py-spy", path=str(Path(sys.executable).parent)) or shutil.which("py-spy")
    if os.environ.get("BENCH_PROFILER") == "cprofile":
        spy = None
    began = time.monotonic()
    if spy:
        cmd = [
            spy,
            "record",
            "--format",
            "raw",
            "--rate",
            "250",
            "--nonblocking",
            "--idle",
            "--output",
            str(out),
            "--",
            sys.executable,
            *argv,
        ]
        tool = "py-spy (sampling, 250 Hz, all threads, idle included)"
    else:
        cmd = [sys.executable, *argv]
        env["BENCH_INLINE"] = "1"  # cProfile sees one thread only: land the segments in the main thread
        env["BENCH_CPROFILE"] = str(out)
        tool = "cProfile (py-spy not installed)"
    subprocess.run(cmd, env=env, cwd=str(REPO), check=True, capture_output=True, timeout=900)
    return tool, time.monotonic() - began


#: Functions whose cumulative time names a phase in the cProfile fallback.
CPROFILE_PHASES = (
    ("landing.py", "land", "whole attempt (SegmentLander.land)"),
    ("landing.py", "_head", "S3 HEADs (idempotency + verification)"),
    ("download.py", "open", "RingCX GET up to headers (incl. WAV peek)"),
    ("hashing.py", "read", "body: receive + copy + hash (HashingReader.read)"),
    ("auth.py", "payload", "botocore SHA-256 of the payload for SigV4"),
    ("landing.py", "_put_json", "S3 PUT sidecar"),
    ("wav.py", "feed", "WAV header parsing"),
    ("budget.py", "acquire", "budget file (flock, JSON)"),
)


def cprofile_rows(out: Path, count: int) -> list[tuple[str, str, str]]:
    stats = pstats.Stats(str(out))
    raw: Any = stats.stats  # type: ignore[attr-defined]
    rows = []
    for file_end, name, label in CPROFILE_PHASES:
        cumulative = sum(
            ct for (f, _, fn), (_, _, _, ct, _) in raw.items() if f.endswith(file_end) and fn == name
        )
        rows.append((label, f"{cumulative * 1000 / count:.1f}", f"{file_end}:{name}"))
    return rows


def bench(svc: Services, workdir: Path, *, quick: bool) -> Section:
    count, size = (6, int(0.5 * MB)) if quick else (60, 5 * MB)
    section = Section(f"5. Profile: operator path, one stream, {count} segments of {size / MB:g} MB")
    workdir.mkdir(parents=True, exist_ok=True)
    refs = inject(svc, count, size, tag="prof")
    refs_file = workdir / "refs.json"
    refs_file.write_text(json.dumps(refs))
    out = workdir / "profile.out"
    tool, wall = profile_child(svc, refs_file, out, svc.new_bucket())
    section.details.append(f"tool: {tool}; child wall time {wall:.1f} s (imports and start-up included)")
    if tool.startswith("py-spy"):
        phases, total, hashing = fold_pyspy(out)
        per_ms = 1000 / SAMPLE_HZ / count
        rows = [(name, f"{n * per_ms:.1f}", f"{n / max(total, 1):.1%}") for name, n in phases.most_common()]
        section.details += ["", "worker-thread time per archived segment, by phase:", ""]
        section.details += table(rows, ("phase", "ms / segment", "share"))
        section.add("worker time per segment", f"{total * per_ms:.1f} ms")
        section.add("SHA-256/MD5 leaf samples in the worker", f"{hashing * per_ms:.1f} ms/segment")
        section.notes.append(f"raw collapsed stacks: {out} (feed to a flame-graph viewer)")
    else:
        section.details += ["", "cumulative time per archived segment (deterministic, so inflated):", ""]
        section.details += table(cprofile_rows(out, count), ("phase", "ms / segment", "function"))
    return section
