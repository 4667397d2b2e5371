"""The accepted range of every numeric ``ringcx`` connection extra, in one table (issue #12, item 17).

Settings such as ``download_budget="1/31536000"`` (one download a year) or ``read_timeout`` 3600 with 100
attempts were accepted and turned into a worker held for days. :data:`RANGES` bounds each numeric extra; the
budget bounds limit each ``COUNT/SECONDS`` pair; :mod:`~airflow_provider_ringcx.hooks.settings` applies
them (and refuses absurd combinations) with errors that name the field, the value, the range and the fix.
The docs quote this table. The lower bounds are small on purpose: the tests run the simulator at
``time_scale`` 60, where a 60 s window lasts 1 s.
"""

from __future__ import annotations

from dataclasses import dataclass

#: RingCX's largest ``timeInterval`` (seconds) per interaction-metadata request.
MAX_WINDOW_LIMIT = 10800

# Total body deadlines (issue #12 item 11), owned here and imported by settings (the connection defaults),
# hooks/download.py and hooks/metadata.py (which explain them).
#: Default of ``download_deadline_floor_seconds``: the smallest total wait of a recording body.
DOWNLOAD_DEADLINE_FLOOR_SECONDS = 60.0
#: Default of ``download_min_bytes_per_second`` (128 KiB/s): a recording's deadline is its size at this rate.
DOWNLOAD_MIN_BYTES_PER_SECOND = 131072
#: Default of ``metadata_deadline_seconds``: the total wait of one interaction-metadata response.
METADATA_DEADLINE_SECONDS = 300.0
#: The longest any one body may take, whatever size the server (or the metadata) claims, and the upper
#: bound of the deadline extras: a hostile ``Content-Length: 10**12`` must not stretch a deadline to days.
DEADLINE_CAP_SECONDS = 3600.0


@dataclass(frozen=True)
class Bound:
    """The accepted range of one numeric connection extra.

    :param low: smallest accepted value (inclusive).
    :param high: largest accepted value (inclusive).
    :param integer: whether only whole numbers are accepted.
    :param why: what the upper bound protects against (quoted in the error).
    """

    low: float
    high: float
    integer: bool = False
    why: str = ""

    def describe(self) -> str:
        kind = "a whole number" if self.integer else "a number"
        return f"{kind} in {self.low:g}..{self.high:g}"

    def problem(self, name: str, value: float | None) -> str | None:
        """Why ``name=value`` is outside this range, or ``None`` (``None`` values are not checked)."""
        if value is None or self.low <= value <= self.high:
            return None
        return f"{name}={value} is outside {self.describe()} ({self.why})"


#: The range of every numeric connection extra; the upper bounds stop settings whose worst case holds a
#: worker for hours or never lets a request through.
RANGES: dict[str, Bound] = {
    "max_window_seconds": Bound(60, MAX_WINDOW_LIMIT, True, "RingCX answers at most 10800 s per request"),
    "connect_timeout": Bound(0.001, 120, False, "a TCP connect that takes minutes is an outage"),
    "read_timeout": Bound(0.001, 600, False, "a silent socket must not hold a worker for longer"),
    "retry_attempts": Bound(1, 20, True, "more attempts only multiply the worst case"),
    "retry_max_wait_seconds": Bound(0, 3600, False, "one request must not wait for over an hour"),
    "backoff_initial_seconds": Bound(0, 300, False, "the first retry should come within minutes"),
    "backoff_max_seconds": Bound(0, 900, False, "a single backoff step over 15 minutes looks like a hang"),
    "rate_limit_backoff_seconds": Bound(0, 900, False, "RingCX limits reset within 15 minutes"),
    "refresh_margin_seconds": Bound(
        0, 240, False, "the RingCX token lives 300 s; a larger margin refreshes it on nearly every call"
    ),
    "download_deadline_floor_seconds": Bound(
        0.001,
        DEADLINE_CAP_SECONDS,
        False,
        "a recording that cannot arrive within an hour holds a download slot for nothing",
    ),
    "download_min_bytes_per_second": Bound(
        16384, 1e9, False, "below 16 KiB/s a 15-minute stereo call could hold a worker for half an hour"
    ),
    "metadata_deadline_seconds": Bound(
        0.001,
        DEADLINE_CAP_SECONDS,
        False,
        "one metadata response must not hold the only metadata slot for over an hour",
    ),
}

#: The range of each ``COUNT/SECONDS`` limit of a budget extra (``metadata_budget``, ``download_budget``,
#: ``exchange_budget``): the window, the count, and the longest spacing between two requests it may impose.
BUDGET_WINDOW = Bound(0.001, 3600, False, "the vendor's windows are 60 s and 900 s")
BUDGET_COUNT = Bound(1, 100000, True, "no RingCX endpoint allows more")
BUDGET_MAX_SPACING_SECONDS = 900.0

#: Worst case of one request (every attempt connecting and reading to the timeout, plus the retry waits).
MAX_REQUEST_WORST_CASE_SECONDS = 3600.0


def budget_limit_problem(count: int, seconds: float) -> str | None:
    """Why one ``COUNT/SECONDS`` budget limit is out of range, or ``None``."""
    if not BUDGET_WINDOW.low <= seconds <= BUDGET_WINDOW.high:
        return f"its window {seconds:g} s is outside {BUDGET_WINDOW.describe()} s ({BUDGET_WINDOW.why})"
    if not BUDGET_COUNT.low <= count <= BUDGET_COUNT.high:
        return f"its count {count} is outside {BUDGET_COUNT.describe()} ({BUDGET_COUNT.why})"
    if seconds / count > BUDGET_MAX_SPACING_SECONDS:
        return (
            f"it allows one request per {seconds / count:g} s, more than the "
            f"{BUDGET_MAX_SPACING_SECONDS:g} s limit (a budget that slow never finishes a window)"
        )
    return None
