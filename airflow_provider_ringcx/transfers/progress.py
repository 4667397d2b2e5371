"""Progress lines of a download batch, written to fit the Airflow log pane.

The log pane shows the start of each line, so the counts and the speed come first and the ids last:

- after each segment: ``[3/5] 0.96 MB · 6.4 MB/s · archived dlg-1/seg-2`` (segments done of the batch,
  bytes downloaded by the batch so far, the batch's speed, the outcome and the ids; a segment that is not
  archived adds its reason in parentheses);
- inside a large recording, every ``every_mb`` megabytes read from RingCX:
  ``[3/5] 24.0/96.0 MB · 6.1 MB/s · dlg-9/seg-1`` (segments done, bytes of this recording read so far of
  its Content-Length, this recording's speed, the ids), so that a long download shows it is alive.

Sizes are decimal megabytes (10^6 bytes), as in the window report; ``every_mb`` counts the same unit, so
the ticks land on round numbers (8.0, 16.0, 24.0 MB). The clock is injectable (``clock``, a monotonic
seconds function) so that tests assert exact speeds without sleeping.

A line never holds a URL's query (pre-signed recording URLs carry signatures there), a credential or
anything but ids, counts and the outcome's reason: the one scrubber,
:func:`airflow_provider_ringcx.scrub.scrub`, cleans a reason before it is logged.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from typing import Any

from airflow_provider_ringcx.exceptions import RingCXConfigError
from airflow_provider_ringcx.models import printable
from airflow_provider_ringcx.s3.hashing import HashingReader
from airflow_provider_ringcx.scrub import scrub

__all__ = [
    "DEFAULT_EVERY_MB",
    "BatchProgress",
    "Clock",
    "TickingReader",
    "megabytes",
    "parse_every_mb",
    "scrub",
    "speed",
]

#: Default interval of the in-recording ticks, in MB (10^6 bytes).
DEFAULT_EVERY_MB = 8.0
_MB = 1_000_000
_SEP = " \u00b7 "

Clock = Callable[[], float]


def megabytes(size: float) -> str:
    """``0.96`` below 10 MB, ``16.3`` above (decimal MB, no unit)."""
    value = size / _MB
    return f"{value:.2f}" if value < 10 else f"{value:.1f}"


def speed(size: float, seconds: float) -> str:
    """``6.4 MB/s``, ``0.38 MB/s`` below 1 MB/s (``-`` before any time has passed)."""
    if seconds <= 0:
        return "- MB/s"
    rate = size / seconds / _MB
    return f"{rate:.2f} MB/s" if rate < 1 else f"{rate:.1f} MB/s"


def parse_every_mb(value: Any) -> float:
    """The tick interval from an argument or a rendered template: a number of MB; ``0`` turns ticks off.

    :raises RingCXConfigError: not a number, or negative.
    """
    try:
        every = float(value)
    except (TypeError, ValueError):
        raise RingCXConfigError(
            f"progress_every_mb={value!r} is not a number of megabytes; use e.g. 8 (0 turns the ticks off)"
        ) from None
    if every < 0 or every != every:  # NaN
        raise RingCXConfigError(f"progress_every_mb={value!r} must be >= 0 (0 turns the ticks off)")
    return every


class BatchProgress:
    """The progress of one batch: shared by the archiver (segment outcomes) and the lander (byte ticks).

    Thread-safe: the archiver's workers report concurrently.

    :param logger: where the lines go (the task's logger).
    :param every_mb: tick interval inside a recording, in MB; ``0`` for none.
    :param clock: monotonic seconds (``time.monotonic``); tests pass a fake one.
    """

    def __init__(
        self, logger: logging.Logger | Any, *, every_mb: Any = DEFAULT_EVERY_MB, clock: Clock = time.monotonic
    ) -> None:
        self.log = logger
        self.every = int(parse_every_mb(every_mb) * _MB)
        self.clock = clock
        self._lock = threading.Lock()
        self.total = 0
        self.done = 0
        self.downloaded = 0
        self._started = clock()

    def start(self, total: int) -> None:
        """A batch of ``total`` segments starts now."""
        with self._lock:
            self.total, self.done, self.downloaded, self._started = total, 0, 0, self.clock()

    def finished(self, outcome: str, ident: str, downloaded: int, reason: str = "") -> str:
        """Log (and return) the line of one finished segment."""
        with self._lock:
            self.done += 1
            self.downloaded += downloaded
            line = _SEP.join(
                (
                    f"[{self.done}/{self.total}] {megabytes(self.downloaded)} MB",
                    speed(self.downloaded, self.clock() - self._started),
                    f"{outcome} {printable(ident)}" + (f" ({scrub(printable(reason))})" if reason else ""),
                )
            )
        self.log.info("%s", line)
        return line

    def reader(self, stream: Any, ident: str, length: int | None) -> HashingReader:
        """The lander's reader of one recording: a :class:`TickingReader` when ticks are on."""
        if self.every <= 0:
            return HashingReader(stream)
        return TickingReader(stream, self, ident, length)

    def tick(self, ident: str, mark: int, length: int | None, read: int, seconds: float) -> str:
        """Log (and return) the line of a recording that passed ``mark`` bytes (``read`` in ``seconds``)."""
        with self._lock:
            done, total = self.done, self.total
        of = f"{megabytes(mark)}/{megabytes(length)} MB" if length else f"{megabytes(mark)} MB"
        line = _SEP.join((f"[{done}/{total}] {of}", speed(read, seconds), printable(ident)))
        self.log.info("%s", line)
        return line


class TickingReader(HashingReader):
    """A :class:`HashingReader` that reports every ``progress.every`` bytes read (what S3 receives)."""

    def __init__(self, stream: Any, progress: BatchProgress, ident: str, length: int | None) -> None:
        super().__init__(stream)
        self._progress = progress
        self._ident = ident
        self._length = length
        self._started = progress.clock()
        self._next = progress.every

    def read(self, size: int = -1) -> bytes:
        data = super().read(size)
        while self.size >= self._next > 0 and (self._length is None or self._next < self._length):
            seconds = self._progress.clock() - self._started
            self._progress.tick(self._ident, self._next, self._length, self.size, seconds)
            self._next += self._progress.every
        return data
