"""Memory: peak RSS of archiving one big recording (1 GiB) versus one small one (10 MiB).

Each size runs ``RingCXRecordingsToS3Operator.execute`` on a one-segment batch in a fresh child process, so
the peak resident set (``VmHWM``) belongs to that size alone. The simulator synthesises the audio on the
fly and moto keeps the object in its own process: only the client's memory is measured. A flat peak means
the recording streams through (single-part PUT up to 16 MiB, multipart above) and is never held whole.
For reference, the hook's :class:`RecordingStream` alone (read 8 MiB at a time, as s3transfer does, no
S3) is measured the same way: the difference between the two rows is the upload's share.

    python -m bench --only memory [--big-mib 1024] [--small-mib 10]
"""

from __future__ import annotations

import json
import sys
import time
from typing import Any

from bench.common import MiB, Section, Services, run_child, table
from bench.segments import inject


def rss_mib(field: str = "VmHWM") -> float:
    """``VmHWM`` (peak) or ``VmRSS`` (current) of this process in MiB."""
    with open("/proc/self/status") as status:
        for line in status:
            if line.startswith(field + ":"):
                return int(line.split()[1]) / 1024
    raise RuntimeError(f"{field} not in /proc/self/status")


def stream_only(ref: dict[str, Any]) -> dict[str, Any]:
    """Read the recording through the hook's verifying stream alone (no S3)."""
    from airflow_provider_ringcx.hooks.ringcx import RingCXHook

    hook = RingCXHook()
    _ = hook.settings
    baseline = rss_mib("VmRSS")
    began = time.perf_counter()
    with hook.stream_recording(ref["dialog_id"], ref["segment_id"]) as stream:
        while stream.read(8 * MiB):
            pass
        if not stream.complete or stream.bytes_read != ref["size"]:
            raise RuntimeError(f"stream incomplete: {stream!r}")
    return {"bytes": stream.bytes_read, "seconds": time.perf_counter() - began, "baseline": baseline}


def child(argv: list[str]) -> None:
    """``python -m bench.memory --child operator|stream BUCKET REF_JSON``: one segment, one JSON line."""
    mode, bucket, ref_json = argv
    ref = json.loads(ref_json)
    if mode == "stream":
        print(json.dumps({**stream_only(ref), "peak": rss_mib("VmHWM")}))
        return
    from airflow_provider_ringcx.operators.recordings import RingCXRecordingsToS3Operator
    from bench.throughput import _Ti

    operator = RingCXRecordingsToS3Operator(
        task_id="download_segments",
        batch=[{k: v for k, v in ref.items() if k != "size"}],
        bucket=bucket,
        prefix="bench",
        max_workers=1,
    )
    operator.s3_hook.get_conn()  # client creation stays outside the measured part
    baseline = rss_mib("VmRSS")
    began = time.perf_counter()
    summary = operator.execute({"ti": _Ti()})  # type: ignore[arg-type]
    seconds = time.perf_counter() - began
    if summary["counts"].get("archived") != 1:
        raise RuntimeError(f"not archived: {summary['not_archived']}")
    print(
        json.dumps(
            {
                "bytes": summary["bytes_archived"],
                "seconds": seconds,
                "baseline": baseline,
                "peak": rss_mib("VmHWM"),
            }
        )
    )


def measure(svc: Services, size_mib: float, mode: str = "operator") -> dict[str, Any]:
    (ref,) = inject(svc, 1, int(size_mib * MiB), tag=f"mem{size_mib:g}{mode}")
    bucket = svc.new_bucket()
    args = ["--child", mode, bucket, json.dumps(ref)]
    result = run_child("bench.memory", args, svc.env(), timeout=1800)
    svc.empty_bucket(bucket)
    return {**result, "mode": mode}


def bench(svc: Services, *, small_mib: float, big_mib: float) -> Section:
    section = Section(f"2. Memory: peak RSS archiving one {big_mib:g} MiB vs one {small_mib:g} MiB recording")
    small = measure(svc, small_mib)
    big = measure(svc, big_mib)
    streams = [measure(svc, size, "stream") for size in (small_mib, big_mib)]
    label = {"operator": "operator (download + S3)", "stream": "hook stream alone"}
    rows = [
        (
            label[r["mode"]],
            f"{r['bytes'] / MiB:.0f} MiB",
            f"{r['seconds']:.1f}",
            f"{r['bytes'] / MiB / r['seconds']:.0f}",
            f"{r['baseline']:.0f}",
            f"{r['peak']:.0f}",
            f"{r['peak'] - r['baseline']:.0f}",
        )
        for r in (small, big, *streams)
    ]
    section.details = table(
        rows, ("path", "recording", "seconds", "MiB/s", "RSS before MiB", "peak RSS MiB", "growth MiB")
    )
    diff = big["peak"] - small["peak"]
    section.add(
        f"peak RSS {big_mib:g} MiB - peak RSS {small_mib:g} MiB", f"{diff:.1f} MiB", "<= 64 MiB", diff <= 64
    )
    stream_diff = streams[1]["peak"] - streams[0]["peak"]
    section.add("same, hook stream alone (reference)", f"{stream_diff:.1f} MiB")
    return section


if __name__ == "__main__":
    if sys.argv[1:2] == ["--child"]:
        child(sys.argv[2:])
    else:
        sys.exit("run through: python -m bench --only memory")
