"""Where a budget's state lives: one small JSON file per budget, read and written under ``fcntl.flock``.

The pacer's rule (:func:`~airflow_provider_ringcx.hooks.budget_rule.decide`) is applied inside
:meth:`FileBudgetStore.transaction`, so check-and-record is atomic across every process of the host.

:class:`BudgetStore` is what :class:`~airflow_provider_ringcx.hooks.budget.RateBudget` needs of a backend:
four atomic operations (acquire a slot or say how long to wait, record a 429's back-off, reset, read). The
file store implements them as transactions; the Redis store
(:mod:`~airflow_provider_ringcx.hooks.budget_redis`, one budget shared by every host) as Lua scripts.

File format: ``{"log": [request times], "blocked_until": seconds, "live_waiting_until": seconds}``, all
wall-clock seconds. Requests are counted whatever their class, so the log needs no tag. The live marker
(``live_waiting_until``, the reserve-lending rule of :mod:`~airflow_provider_ringcx.hooks.budget_rule`) was
added later: a file without it reads as ``0`` (no live request waiting), and older workers read only the
first two fields, so files work in both directions. A file that cannot be parsed is started afresh, with a
warning.
"""

from __future__ import annotations

import contextlib
import fcntl
import hashlib
import json
import logging
import os
import re
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Protocol

from airflow_provider_ringcx.hooks.budget_rule import (
    BudgetLimit,
    BudgetState,
    Decision,
    Priority,
    decide,
    settle,
)

log = logging.getLogger(__name__)


class BudgetStore(Protocol):
    """The atomic operations of a budget backend (each is one critical section across every process)."""

    def try_acquire(
        self, limits: tuple[BudgetLimit, ...], priority: Priority, *, margin: float | None
    ) -> tuple[Decision, float]:
        """Apply :func:`~airflow_provider_ringcx.hooks.budget_rule.decide` now and
        :func:`~airflow_provider_ringcx.hooks.budget_rule.settle` it (record the request when admitted,
        store the live marker); return the decision and the moment ``now`` it was taken at (the store's
        clock)."""
        ...

    def penalize(self, seconds: float) -> None:
        """Hold every user of the budget until ``max(blocked_until, now + seconds)``."""
        ...

    def reset(self) -> None:
        """Forget every request and the back-off."""
        ...

    def snapshot(self) -> BudgetState:
        """A copy of the state."""
        ...

    def describe(self) -> str:
        """Where the state lives, for messages (never a secret)."""
        ...


class FileBudgetStore:
    """The state of budget ``name`` in ``state_dir``, pruned of requests older than ``horizon`` on write.

    :param name: the budget key (API host, sub-account, endpoint); its file name is a slug plus a digest.
    :param state_dir: the shared budget directory.
    :param horizon: seconds of requests worth keeping (the longest padded window).
    :param clock: wall-clock seconds (for pruning).
    """

    def __init__(self, name: str, state_dir: Path, *, horizon: float, clock: Callable[[], float]) -> None:
        self.state_dir = state_dir
        self.horizon = horizon
        self._clock = clock
        slug = re.sub(r"[^A-Za-z0-9_.-]+", "_", name)[:80]
        digest = hashlib.sha256(name.encode()).hexdigest()[:12]
        self.path = state_dir / f"{slug}-{digest}.json"
        self.lock_path = state_dir / f"{slug}-{digest}.lock"

    @contextlib.contextmanager
    def transaction(self) -> Iterator[BudgetState]:
        """The state, locked exclusively against every other process until the block ends, then saved."""
        self.state_dir.mkdir(parents=True, exist_ok=True)
        with open(self.lock_path, "a+b") as lock:
            fcntl.flock(lock.fileno(), fcntl.LOCK_EX)
            try:
                state = self._read()
                yield state
                self._write(state)
            finally:
                fcntl.flock(lock.fileno(), fcntl.LOCK_UN)

    def try_acquire(
        self, limits: tuple[BudgetLimit, ...], priority: Priority, *, margin: float | None
    ) -> tuple[Decision, float]:
        """See :meth:`BudgetStore.try_acquire`."""
        with self.transaction() as state:
            now = self._clock()
            decision = decide(state, limits, now, priority, margin=margin)
            settle(state, decision, now)
        return decision, now

    def penalize(self, seconds: float) -> None:
        """See :meth:`BudgetStore.penalize`."""
        with self.transaction() as state:
            state.blocked_until = max(state.blocked_until, self._clock() + seconds)

    def reset(self) -> None:
        """See :meth:`BudgetStore.reset`."""
        with self.transaction() as state:
            state.log = []
            state.blocked_until = state.live_waiting_until = 0.0

    def snapshot(self) -> BudgetState:
        """See :meth:`BudgetStore.snapshot`."""
        with self.transaction() as state:
            return BudgetState(list(state.log), state.blocked_until, state.live_waiting_until)

    def describe(self) -> str:
        """See :meth:`BudgetStore.describe`."""
        return str(self.path)

    def _read(self) -> BudgetState:
        try:
            raw = json.loads(self.path.read_text())
            return BudgetState(
                sorted(float(t) for t in raw.get("log", [])),
                float(raw.get("blocked_until", 0.0)),
                float(raw.get("live_waiting_until", 0.0)),  # absent in files of older versions
            )
        except FileNotFoundError:
            return BudgetState()
        except (ValueError, TypeError, AttributeError):
            log.warning("budget state %s is unreadable; starting it afresh", self.path)
            return BudgetState()

    def _write(self, state: BudgetState) -> None:
        cutoff = self._clock() - self.horizon
        state.log = [t for t in state.log if t > cutoff]
        tmp = self.path.with_suffix(f".{os.getpid()}.tmp")
        fields = {"log": state.log, "blocked_until": state.blocked_until}
        tmp.write_text(json.dumps({**fields, "live_waiting_until": state.live_waiting_until}))
        os.replace(tmp, self.path)
