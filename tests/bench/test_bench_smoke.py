"""Smoke test of ``python -m bench``: the throughput benchmark runs end to end with tiny sizes and prints its
table. No timing is asserted (benchmarks are scripts; their figures are read, not tested)."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]


def test_quick_throughput_prints_the_table(tmp_path: Path) -> None:
    out = subprocess.run(
        [
            sys.executable,
            "-m",
            "bench",
            "--quick",
            "--only",
            "throughput",
            "--segments",
            "3",
            "--segment-mb",
            "0.1",
            "--workdir",
            str(tmp_path),
        ],
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=240,
        check=False,
    )
    assert out.returncode == 0, out.stdout[-2000:] + out.stderr[-3000:]
    text = out.stdout
    assert "- cores:" in text
    assert "## 1. Throughput" in text
    for label in ("(b) naive", "(c) bare", "(a) operator, max_workers=1", "(a) operator, max_workers=4"):
        assert label in text
    assert "## Summary" in text
    assert "(a) / (b)  operator vs naive" in text
    assert "CRASHED" not in text
