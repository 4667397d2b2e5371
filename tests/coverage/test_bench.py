"""The coverage benchmark runs end to end on a few days and meets its request targets (figures are read,
not asserted: only the request counts, which do not depend on the machine)."""

from __future__ import annotations

from pathlib import Path

import pytest

from bench import coverage


@pytest.mark.integration
def test_the_coverage_bench_meets_its_request_targets(tmp_path: Path) -> None:
    section = coverage.bench(tmp_path, days=6, quarter_days=3, workers=4)
    verdicts = {m.name: m.met for m in section.measures}
    assert verdicts["incremental: GETs"] is True
    assert verdicts["incremental: PUTs"] is True
    assert verdicts["incremental: LISTs"] is True
    assert verdicts["read only: GETs"] is True
    assert verdicts["forced refresh: PUTs"] is True
    assert verdicts["request counts agree with the wire"] is True
    assert any("(a) from scratch" in line for line in section.details)
