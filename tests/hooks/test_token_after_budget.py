"""Budget first, token second (issue #12 item 12).

The token used to be taken before the budget wait, so a call that waited longer than the token had left
presented an expired token and cost a 401 plus a re-exchange. Here the RingCX token lives 6 real seconds
(its real 300 s at time scale 50) and the hook's budget makes the second call wait 8 s: the simulator must
see no 401 at all. (The margins leave a second of slack for a loaded machine.)
"""

from __future__ import annotations

from datetime import timedelta

import pytest

from tests.hooks.helpers import past_hour

TIME_SCALE = 50
TOKEN_LIFETIME = 300  # simulated seconds: 6 s of real time
BUDGET = "1/8"  # the hook's own budget, real seconds: the second call waits ~8 s, longer than the token
MARGIN = 1.0


def _statuses(sim, route: str) -> dict[str, int]:
    return dict(sim.control.stats()["requests"].get(route, {}))


def test_a_metadata_call_that_waited_for_the_budget_presents_a_fresh_token(make_simulator, connect):
    sim = make_simulator(time_scale=TIME_SCALE, token_lifetime=TOKEN_LIFETIME)
    hook = connect(sim, metadata_budget=BUDGET, max_window_seconds=600, refresh_margin_seconds=MARGIN)
    start, _ = past_hour()
    list(hook.iter_interaction_metadata(start, start + timedelta(minutes=20)))  # two 10-minute windows
    assert _statuses(sim, "metadata") == {"200": 2}
    assert hook.tokens.refreshes + hook.tokens.exchanges >= 2  # the token did expire during the wait


def test_a_download_that_waited_for_the_budget_presents_a_fresh_token(make_simulator, connect):
    sim = make_simulator(time_scale=TIME_SCALE, token_lifetime=TOKEN_LIFETIME)
    _, end = past_hour()
    sim.control.add_segments(
        [
            {
                "dialogId": f"dlg-{n}",
                "segmentId": f"seg-{n}",
                "segmentEndTimeMs": (end - timedelta(minutes=30)).isoformat(),
                "segmentDurationMs": 2000,
            }
            for n in (1, 2)
        ]
    )
    hook = connect(sim, download_budget=BUDGET, refresh_margin_seconds=MARGIN)
    for n in (1, 2):
        with hook.stream_recording(f"dlg-{n}", f"seg-{n}") as stream:
            stream.read()
            assert stream.complete
    assert _statuses(sim, "download") == {"200": 2}
    assert hook.tokens.refreshes + hook.tokens.exchanges >= 2


@pytest.mark.parametrize("attempts", [3])
def test_each_retry_attempt_takes_the_token_after_its_budget_wait(make_simulator, connect, attempts):
    """A 503 retried after the budget wait: the retry carries a token taken after that wait, not before."""
    sim = make_simulator(time_scale=TIME_SCALE, token_lifetime=TOKEN_LIFETIME)
    sim.control.set_faults([{"route": "metadata", "kind": "status", "status": 503, "times": 1}])
    hook = connect(
        sim,
        metadata_budget=BUDGET,
        max_window_seconds=600,
        refresh_margin_seconds=MARGIN,
        retry_attempts=attempts,
    )
    start, _ = past_hour()
    list(hook.iter_interaction_metadata(start, start + timedelta(minutes=10)))
    assert _statuses(sim, "metadata") == {"503": 1, "200": 1}
