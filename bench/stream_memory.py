"""Peak memory of streaming a recording through RingCXHook: 10 MB vs 500 MB (or sizes given).

Each size runs in a fresh child process, so the peak RSS (``VmHWM`` / ``ru_maxrss``) belongs to that size
alone. A flat peak means the hook streams: the recording is never held in memory. The simulator runs in
another process and synthesises the audio on the fly (nothing on disk).

    python -m bench.stream_memory            # 10 MB and 500 MB
    python -m bench.stream_memory 5 50       # sizes in MB
"""

from __future__ import annotations

import json
import os
import resource
import subprocess
import sys
import tempfile
import time
from datetime import datetime, timedelta, timezone

import requests

BYTES_PER_SECOND = 8000 * 2 * 2  # 8 kHz, 16 bit, stereo
READ_SIZE = 8 * 1024 * 1024  # what s3transfer asks for per multipart part


def peak_rss_mb() -> float:
    """Peak resident set size of this process in MB (VmHWM, else ru_maxrss)."""
    try:
        with open("/proc/self/status") as status:
            for line in status:
                if line.startswith("VmHWM:"):
                    return int(line.split()[1]) / 1024
    except OSError:
        pass
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def start_simulator(port: int) -> subprocess.Popen[bytes]:
    command = [sys.executable, "-m", "airflow_provider_ringcx.simulator", "--port", str(port),
               "--download-budget", "off", "--metadata-budget", "off", "--token-budget", "off"]  # fmt: skip
    process = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    for _ in range(200):
        try:
            requests.get(f"http://127.0.0.1:{port}/_sim/health", timeout=1)
            return process
        except requests.ConnectionError:
            time.sleep(0.05)
    process.kill()
    raise RuntimeError("simulator did not start")


def child(url: str, size_mb: float) -> None:
    """Inject one recording of ``size_mb``, stream it through the hook, print a JSON result line."""
    os.environ.setdefault("AIRFLOW_HOME", tempfile.mkdtemp(prefix="bench-airflow-"))
    os.environ["AIRFLOW_CONN_RINGCX_DEFAULT"] = json.dumps(
        {
            "conn_type": "ringcx",
            "login": "sim-client-id",
            "password": "sim-client-secret",
            "extra": {"jwt": "sim-jwt-assertion", "api_url": url, "platform_url": url,
                      "rc_account_id": "980634004", "sub_account_id": "99999999",
                      "metadata_budget": "off", "download_budget": "off", "exchange_budget": "off"},
        }
    )  # fmt: skip
    from airflow_provider_ringcx.hooks.ringcx import RingCXHook

    duration_ms = int(size_mb * 1024 * 1024 / BYTES_PER_SECOND * 1000)
    end = datetime.now(timezone.utc) - timedelta(hours=1)
    segment_id = f"bench-{size_mb:g}mb"
    spec = {"dialogId": "bench", "segmentId": segment_id, "segmentEndTimeMs": end.isoformat(),
            "segmentDurationMs": duration_ms, "channels": 2}  # fmt: skip
    (truth,) = requests.post(f"{url}/_sim/segments", json=[spec], timeout=60).json()["segments"]
    hook = RingCXHook()
    baseline = peak_rss_mb()
    began = time.monotonic()
    with hook.stream_recording("bench", segment_id) as stream:
        while stream.read(READ_SIZE):
            pass
        assert stream.complete
        assert stream.sha256_hex == truth["sha256"], "checksum mismatch"
    seconds = time.monotonic() - began
    result = {
        "size_mb": round(stream.bytes_read / 1024 / 1024, 1),
        "seconds": round(seconds, 2),
        "mb_per_s": round(stream.bytes_read / 1024 / 1024 / seconds, 1),
        "rss_before_mb": round(baseline, 1),
        "peak_rss_mb": round(peak_rss_mb(), 1),
    }
    print(json.dumps(result))


def main(argv: list[str]) -> int:
    if argv[:1] == ["--child"]:
        child(argv[1], float(argv[2]))
        return 0
    sizes = [float(a) for a in argv] or [10.0, 500.0]
    from tests.fixtures.ports import free_port

    port = free_port()
    sim = start_simulator(port)
    try:
        results = []
        for size in sizes:
            out = subprocess.run(
                [
                    sys.executable,
                    "-m",
                    "bench.stream_memory",
                    "--child",
                    f"http://127.0.0.1:{port}",
                    str(size),
                ],
                check=True,
                capture_output=True,
                text=True,
            ).stdout
            results.append(json.loads(out.strip().splitlines()[-1]))
    finally:
        sim.terminate()
        sim.wait(timeout=10)
    print(f"{'size MB':>8} {'seconds':>8} {'MB/s':>7} {'RSS before':>11} {'peak RSS':>9}")
    for r in results:
        line = f"{r['size_mb']:>8} {r['seconds']:>8} {r['mb_per_s']:>7}"
        print(f"{line} {r['rss_before_mb']:>10}M {r['peak_rss_mb']:>8}M")
    growth = results[-1]["peak_rss_mb"] - results[0]["peak_rss_mb"]
    print(f"peak RSS growth from {results[0]['size_mb']} MB to {results[-1]['size_mb']} MB: {growth:.1f} MB")
    return 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
