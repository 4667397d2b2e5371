"""The simulator's two clocks.

* The **data clock** (:meth:`SimClock.now`) decides what is "past": the 5-minute window rule, the processing
  delay and ground truth. It is the real UTC clock, or frozen at ``SimConfig.now`` when that is set.
* The **budget clock** (:meth:`SimClock.elapsed`) is a monotonic count of *simulated* seconds that runs
  ``time_scale`` times faster than real time. Rate-limit windows and token lifetimes are measured on it,
  so with ``time_scale=60`` a 60 s budget window lasts one real second.
"""

from __future__ import annotations

import threading
import time
from datetime import datetime, timezone

from ringcx_simulator.config import parse_instant


class SimClock:
    """Data clock plus scaled monotonic clock; the scale can change at runtime without jumps.

    :param time_scale: simulated seconds per real second.
    :param now: ISO-8601 instant to freeze the data clock at, or ``None`` for the real clock.
    """

    def __init__(self, time_scale: float = 1.0, now: str | None = None) -> None:
        self._lock = threading.Lock()
        self._scale = time_scale
        self._anchor_real = time.monotonic()
        self._anchor_sim = 0.0
        self._pinned: datetime | None = parse_instant(now) if now else None

    @property
    def time_scale(self) -> float:
        return self._scale

    def configure(self, time_scale: float, now: str | None) -> None:
        """Apply new knobs: re-anchor the scaled clock so elapsed time never jumps."""
        with self._lock:
            if time_scale != self._scale:
                self._anchor_sim = self._elapsed_locked()
                self._anchor_real = time.monotonic()
                self._scale = time_scale
            self._pinned = parse_instant(now) if now else None

    def _elapsed_locked(self) -> float:
        return self._anchor_sim + (time.monotonic() - self._anchor_real) * self._scale

    def elapsed(self) -> float:
        """Simulated seconds since start (monotonic)."""
        with self._lock:
            return self._elapsed_locked()

    def now(self) -> datetime:
        """The data clock, aware UTC."""
        pinned = self._pinned
        return pinned if pinned is not None else datetime.now(timezone.utc)

    def now_ms(self) -> int:
        return int(self.now().timestamp() * 1000)

    def to_real(self, simulated_seconds: float) -> float:
        """Real seconds that ``simulated_seconds`` of budget clock take."""
        return simulated_seconds / self._scale

    def real_epoch_after(self, simulated_seconds: float) -> float:
        """Real epoch seconds when ``simulated_seconds`` from now will have passed (for JWT ``exp``)."""
        return time.time() + self.to_real(simulated_seconds)
