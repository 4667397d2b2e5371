"""Progress lines of a download batch: counts and speed first, ticks inside large recordings, no URL queries.

The unit tests drive :class:`BatchProgress` with a fake clock (exact speeds, no sleeping); the integration
test lands a 7 MB recording from the simulator into moto through the real lander and archiver.
"""

from __future__ import annotations

import hashlib
import io
import re
from typing import Any

import pytest

from airflow_provider_ringcx.exceptions import RingCXConfigError
from airflow_provider_ringcx.operators.recordings import RingCXRecordingsToS3Operator
from airflow_provider_ringcx.transfers.batch import BatchArchiver
from airflow_provider_ringcx.transfers.landing import LandingConfig, SegmentLander
from airflow_provider_ringcx.transfers.progress import (
    BatchProgress,
    TickingReader,
    megabytes,
    parse_every_mb,
    scrub,
)
from tests.fixtures.landing import BIG, WINDOW, MiB


class Lines:
    """A logger that keeps the formatted lines."""

    def __init__(self) -> None:
        self.lines: list[str] = []

    def info(self, fmt: str, *args: Any) -> None:
        self.lines.append(fmt % args)

    warning = info


class FakeClock:
    """Monotonic seconds that advance only when told (or by ``step`` at each reading)."""

    def __init__(self, step: float = 0.0) -> None:
        self.now = 100.0
        self.step = step

    def __call__(self) -> float:
        self.now += self.step
        return self.now


def test_a_finished_segment_line_puts_counts_and_speed_first() -> None:
    log, clock = Lines(), FakeClock()
    progress = BatchProgress(log, clock=clock)
    progress.start(5)
    clock.now += 0.15
    assert progress.finished("archived", "dlg-1/seg-1", 960_000) == (
        "[1/5] 0.96 MB \u00b7 6.4 MB/s \u00b7 archived dlg-1/seg-1"
    )
    clock.now += 2.35
    progress.finished("already_archived", "dlg-2/seg-1", 0)
    progress.finished("forbidden", "dlg-3/seg-1", 0, "RingCXForbiddenError: GET recording ... HTTP 403")
    clock.now += 2.5
    progress.finished("archived", "dlg-4/seg-1", 15_340_000)
    assert log.lines[1:] == [
        "[2/5] 0.96 MB \u00b7 0.38 MB/s \u00b7 already_archived dlg-2/seg-1",
        "[3/5] 0.96 MB \u00b7 0.38 MB/s \u00b7 forbidden dlg-3/seg-1 "
        "(RingCXForbiddenError: GET recording ... HTTP 403)",
        "[4/5] 16.3 MB \u00b7 3.3 MB/s \u00b7 archived dlg-4/seg-1",
    ]


def test_reasons_lose_url_queries_and_ids_are_printable() -> None:
    log = Lines()
    progress = BatchProgress(log, clock=FakeClock(step=1))
    progress.start(1)
    reason = "RingCXTransientError: reset reading https://cdn.example/rec/1.wav?X-Amz-Signature=abc123&t=9"
    line = progress.finished("failed", "dlg\n1/seg\x1b", 0, reason)
    assert "abc123" not in line
    assert "X-Amz" not in line
    assert "https://cdn.example/rec/1.wav?\u2026" in line
    assert "\n" not in line
    assert "\x1b" not in line
    assert scrub("see http://h:1/a?b=c#d and ftp://x/y") == "see http://h:1/a?\u2026 and ftp://x/y"


def test_ticks_every_n_mb_inside_a_recording_on_round_numbers() -> None:
    log, clock = Lines(), FakeClock(step=0.25)
    progress = BatchProgress(log, every_mb=1, clock=clock)
    progress.start(3)
    progress.finished("archived", "a/1", 1000)
    data = b"x" * 3_500_000
    reader = progress.reader(io.BytesIO(data), "dlg-9/seg-1", len(data))
    assert isinstance(reader, TickingReader)
    while reader.read(256 * 1024):
        pass
    assert reader.size == len(data)
    ticks = log.lines[1:]
    assert [line.split(" \u00b7 ")[0] for line in ticks] == [
        "[1/3] 1.00/3.50 MB",
        "[1/3] 2.00/3.50 MB",
        "[1/3] 3.00/3.50 MB",
    ]  # none at the end: the finished line follows
    assert all(line.endswith(" \u00b7 dlg-9/seg-1") for line in ticks)
    assert all(re.search(r" \u00b7 \d+\.\d+ MB/s \u00b7 ", line) for line in ticks)
    assert reader.hexdigest() == hashlib.sha256(data).hexdigest()  # still the hashing reader


def test_tick_speed_is_the_recordings_own_and_unknown_lengths_show_bytes_only() -> None:
    log, clock = Lines(), FakeClock()
    progress = BatchProgress(log, every_mb=2, clock=clock)
    progress.start(1)
    stream = io.BytesIO(b"y" * 4_200_000)
    reader = progress.reader(stream, "d/s", None)
    clock.now += 1.0
    reader.read(2_100_000)  # 2.1 MB in 1 s
    assert log.lines == ["[0/1] 2.00 MB \u00b7 2.1 MB/s \u00b7 d/s"]


def test_zero_turns_ticks_off_and_bad_values_are_refused() -> None:
    progress = BatchProgress(Lines(), every_mb="0")
    assert not isinstance(progress.reader(io.BytesIO(b""), "d/s", 0), TickingReader)
    assert parse_every_mb("8") == 8.0
    for bad in ("eight", -1, "nan", None):
        with pytest.raises(RingCXConfigError, match="progress_every_mb"):
            parse_every_mb(bad)
    assert megabytes(9_994_999) == "9.99"
    assert megabytes(10_000_000) == "10.0"


def test_operator_templates_the_interval_and_refuses_a_bad_literal_at_parse_time() -> None:
    assert "progress_every_mb" in RingCXRecordingsToS3Operator.template_fields
    op = RingCXRecordingsToS3Operator(task_id="t", batch=[], bucket="b", progress_every_mb="{{ params.mb }}")
    assert op.progress_every_mb == "{{ params.mb }}"
    assert RingCXRecordingsToS3Operator(task_id="u", batch=[], bucket="b").progress_every_mb == 8
    with pytest.raises(RingCXConfigError, match="progress_every_mb"):
        RingCXRecordingsToS3Operator(task_id="v", batch=[], bucket="b", progress_every_mb="lots")


def test_a_large_recording_logs_ticks_then_its_line_through_the_real_lander(
    simulator: Any, hook: Any, s3: Any, bucket: str
) -> None:
    simulator.control.add_segments([BIG])
    record = next(r for r in hook.iter_interaction_metadata(*WINDOW) if r.dialog_id == "d-big")
    log = Lines()
    progress = BatchProgress(log, every_mb=2, clock=FakeClock(step=0.1))
    config = LandingConfig(
        bucket=bucket, sub_account_id="99999999", single_part_threshold=1 * MiB, multipart_chunksize=5 * MiB
    )
    lander = SegmentLander(hook=hook, client=s3, config=config, rows=None, progress=progress)
    [outcome] = BatchArchiver(lander, logger=log, progress=progress, backoff=0).run([record.to_ref()])
    assert outcome.outcome == "archived", outcome.reason
    size = outcome.size
    assert size > 6_000_000
    total = megabytes(size)
    ticks = [line for line in log.lines if line.startswith("[0/1] ")]
    marks = [line.split(" \u00b7 ")[0] for line in ticks]
    assert marks == [f"[0/1] {megabytes(n * 2_000_000)}/{total} MB" for n in range(1, size // 2_000_000 + 1)]
    assert log.lines[-1].startswith(f"[1/1] {total} MB \u00b7 ")
    assert log.lines[-1].endswith(" \u00b7 archived d-big/s-big")
    assert not [line for line in log.lines if "http" in line or "token" in line.lower()]
