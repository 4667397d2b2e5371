"""Key sanitising: hostile ids stay inside the prefix, never collide, and respect S3's limits."""

from __future__ import annotations

import random
from datetime import datetime, timedelta, timezone

import pytest

from airflow_provider_ringcx.exceptions import RingCXConfigError
from airflow_provider_ringcx.keys import (
    DEFAULT_KEY_TEMPLATE,
    MAX_ID_LENGTH,
    manifest_key,
    normalize_prefix,
    recording_key,
    report_key,
    rescan_manifest_key,
    safe_id,
    sidecar_key,
    validate_key_template,
    window_stamp,
)

WHEN = datetime(2026, 3, 2, 14, 1, 40, tzinfo=timezone.utc)

HOSTILE = [
    "/",
    "..",
    ".",
    "...",
    "../../etc/passwd",
    "a/b",
    "a%2Fb",
    "a%252Fb",
    "%2E%2E",
    "%",
    "~",
    "a~0123456789abcdef0123456789abcdef",
    "line\nbreak",
    "tab\tnul\x00bell\x07del\x7f",
    "\u00e9t\u00e9",
    "e\u0301te\u0301",  # same text as above, decomposed: must not collide
    "\u5bfe\u8a71/\u30bb\u30b0",
    "\U0001f4de call",
    " leading and trailing ",
    "back\\slash",
    "?query=1&x#frag",
    "x" * 1000,
    "x" * 999 + "y",
    "/" * 500,
    "s-v-93bd0e6f0f0a479ea8025fe8f8ec3e1d-1721690897808",
    "p-v-93bd0e6f0f0a479ea8025fe8f8ec3e1d-1721690897808-190dcc63d90ab",
]


def test_plain_vendor_ids_are_unchanged() -> None:
    assert safe_id("s-v-93bd0e6f-1721690897808") == "s-v-93bd0e6f-1721690897808"
    assert safe_id("d-65fc2f3a382dd00007d8a5d7.1") == "d-65fc2f3a382dd00007d8a5d7.1"


@pytest.mark.parametrize("value", HOSTILE)
def test_hostile_id_is_one_safe_segment(value: str) -> None:
    encoded = safe_id(value)
    assert "/" not in encoded
    assert encoded not in {"", ".", ".."}
    assert all(char.isascii() and char.isprintable() for char in encoded)
    assert len(encoded) <= MAX_ID_LENGTH


def test_dot_segments_are_encoded_whole() -> None:
    assert safe_id(".") == "%2E"
    assert safe_id("..") == "%2E%2E"
    assert safe_id("...") == "..."  # not a dot-segment: harmless


def test_percent_is_encoded_so_encoded_looking_ids_do_not_collide() -> None:
    assert safe_id("a/b") == "a%2Fb"
    assert safe_id("a%2Fb") == "a%252Fb"
    assert safe_id("a/b") != safe_id("a%2Fb")


def test_hostile_ids_never_collide() -> None:
    encoded = [safe_id(value) for value in HOSTILE]
    assert len(set(encoded)) == len(HOSTILE)


def test_random_ids_never_collide() -> None:
    alphabet = "aZ09._~-/%. \n\x00\u00e9\u5bfe\U0001f4de"
    rng = random.Random(4)
    values = {"".join(rng.choice(alphabet) for _ in range(rng.randint(1, 12))) for _ in range(20000)}
    values |= {"x" * n for n in range(150, 400)}  # around the truncation threshold
    assert len({safe_id(value) for value in values}) == len(values)


def test_long_ids_are_truncated_with_a_hash_and_stay_distinct() -> None:
    long_a, long_b = "x" * 1000, "x" * 999 + "y"
    assert len(safe_id(long_a)) == MAX_ID_LENGTH
    assert "~" in safe_id(long_a)
    assert safe_id(long_a) != safe_id(long_b)
    # "~" is always encoded in an untruncated id, so no plain id can imitate a truncated one
    assert "~" not in safe_id("a~b")


def test_truncation_never_splits_an_escape() -> None:
    encoded = safe_id("\u00e9" * 300)
    head = encoded.split("~")[0]
    assert len(head) % 3 == 0
    assert all(head[i] == "%" for i in range(0, len(head), 3))


def test_empty_id_is_refused() -> None:
    with pytest.raises(RingCXConfigError, match="empty"):
        safe_id("")


@pytest.mark.parametrize("value", HOSTILE)
def test_hostile_ids_stay_inside_the_prefix(value: str) -> None:
    key = recording_key(
        template=DEFAULT_KEY_TEMPLATE,
        prefix="archive/ringcx",
        sub_account_id="99999999",
        dialog_id=value,
        segment_id=value,
        when=WHEN,
    )
    parts = key.split("/")
    assert key.startswith("archive/ringcx/sub_account=99999999/year=2026/month=03/day=02/hour=14/")
    assert len(parts) == 9  # prefix(2) + sub-account + 4 partitions + dialog + segment
    assert not {".", "..", ""} & set(parts)
    assert key.endswith(".wav")
    assert sidecar_key(key) == key[:-4] + ".json"


def test_hostile_sub_account_is_sanitised_too() -> None:
    key = recording_key(
        template=DEFAULT_KEY_TEMPLATE,
        prefix="p",
        sub_account_id="../x",
        dialog_id="d",
        segment_id="s",
        when=WHEN,
    )
    assert key.startswith("p/sub_account=..%2Fx/year=")


def test_empty_prefix_gives_a_key_at_the_bucket_root() -> None:
    key = recording_key(
        template=DEFAULT_KEY_TEMPLATE, prefix="", sub_account_id="1", dialog_id="d", segment_id="s", when=WHEN
    )
    assert key == "sub_account=1/year=2026/month=03/day=02/hour=14/d/s.wav"


@pytest.mark.parametrize("prefix", ["a/../b", "a//b", "./a"])
def test_prefix_with_dot_or_empty_segments_is_refused(prefix: str) -> None:
    with pytest.raises(RingCXConfigError, match="segment"):
        normalize_prefix(prefix)


@pytest.mark.parametrize(
    ("template", "message"),
    [
        ("{prefix}/{segment_id}.wav", "dialog_id"),
        ("{prefix}/{dialog_id}/{segment_id}.mp3", ".wav"),
        ("{prefix}/{dialog_id.__class__}/{segment_id}.wav", "allowed fields"),
        ("{prefix}/{dialog_id!r}/{segment_id}.wav", "allowed fields"),
        ("{prefix}/{bucket}/{dialog_id}/{segment_id}.wav", "allowed fields"),
        ("{prefix/{dialog_id}/{segment_id}.wav", "format string"),
    ],
)
def test_bad_templates_are_refused(template: str, message: str) -> None:
    with pytest.raises(RingCXConfigError, match=message):
        validate_key_template(template)


def test_custom_template_with_date() -> None:
    key = recording_key(
        template="{prefix}/{sub_account_id}/{date}/{dialog_id}/seg-{segment_id}.wav",
        prefix="x",
        sub_account_id="1",
        dialog_id="d",
        segment_id="s",
        when=WHEN,
    )
    assert key == "x/1/2026-03-02/d/seg-s.wav"


#: Templates the issue's attack and its relatives use, with the fix each error must offer.
REFUSED = {
    "{prefix}/sub_account={sub_account_id}/{date}/{dialog_id}_{segment_id}.wav": (
        "{prefix}/sub_account={sub_account_id}/{date}/{dialog_id}/{segment_id}.wav"
    ),
    "{prefix}/sub_account={sub_account_id}/{dialog_id}{segment_id}.wav": (
        "{prefix}/sub_account={sub_account_id}/{dialog_id}/{segment_id}.wav"
    ),
    "{prefix}/{sub_account_id}-{dialog_id}/{segment_id}.wav": (
        "{prefix}/{sub_account_id}/{dialog_id}/{segment_id}.wav"
    ),
    "{prefix}/{sub_account_id}/{date}_{dialog_id}/seg={segment_id}.wav": (
        "{prefix}/{sub_account_id}/{date}/{dialog_id}/seg={segment_id}.wav"
    ),
    "{prefix}/{sub_account_id}/{dialog_id}/{segment_id}-{hour}.wav": (
        "{prefix}/{sub_account_id}/{dialog_id}/{segment_id}/{hour}.wav"
    ),
    "{prefix}/{date}/{dialog_id}/{segment_id}.wav": (
        "{prefix}/sub_account={sub_account_id}/{date}/{dialog_id}/{segment_id}.wav"
    ),
}
ACCEPTED = [
    DEFAULT_KEY_TEMPLATE,
    *REFUSED.values(),
    "{sub_account_id}/{dialog_id}/{segment_id}.wav",
    "{prefix}/{year}{month}/{dialog_id}/{sub_account_id}/x{segment_id}y.wav",
]
#: Id values that break naive templates: separators, escapes, dot-segments, long ids sharing a prefix.
HOSTILE_IDS = ["s-v-1_p", "x-1", "s-v-1", "p_x-1", "p", "_", "a/b", "a%2Fb", "a-b", ".", "..", "%", "~",
               "ä", "x" * 300, "x" * 299 + "y", "2026-03-02", "1"]  # fmt: skip
SUBS = ["1", "12", "1/2", "1_2", "s-v-1"]


@pytest.mark.parametrize(("template", "fix"), REFUSED.items())
def test_templates_that_can_map_two_segments_to_one_key_are_refused_with_a_fix(
    template: str, fix: str
) -> None:
    with pytest.raises(RingCXConfigError) as err:
        validate_key_template(template)
    assert template in str(err.value)
    assert str(err.value).endswith(repr(fix))
    assert validate_key_template(fix) == fix


def test_the_issue_example_would_collide_under_the_refused_template() -> None:
    """Why the rule exists: the two ids of the issue render to one key once the check is bypassed."""
    template = "{prefix}/sub_account={sub_account_id}/{date}/{dialog_id}_{segment_id}.wav"
    render = lambda d, s: template.format(prefix="p", sub_account_id="1", date="2026-03-02",  # noqa: E731
                                          dialog_id=safe_id(d), segment_id=safe_id(s))  # fmt: skip
    assert render("s-v-1_p", "x-1") == render("s-v-1", "p_x-1")


@pytest.mark.parametrize("template", ACCEPTED)
def test_every_accepted_template_is_injective_on_hostile_ids(template: str) -> None:
    """Property: distinct (sub-account, dialog, segment) never share a key, at any time of the day."""
    seen: dict[str, tuple[str, str, str]] = {}
    for when in (WHEN, WHEN.replace(hour=15, day=3)):
        for sub in SUBS:
            for dialog in HOSTILE_IDS:
                for segment in HOSTILE_IDS:
                    key = recording_key(
                        template=template, prefix="rec", sub_account_id=sub, dialog_id=dialog,
                        segment_id=segment, when=when,
                    )  # fmt: skip
                    assert seen.setdefault(key, (sub, dialog, segment)) == (sub, dialog, segment), key
    assert len(seen) >= len(SUBS) * len(HOSTILE_IDS) ** 2


def test_window_keys() -> None:
    start, end = (
        datetime(2026, 3, 2, 14, 0, tzinfo=timezone.utc),
        datetime(2026, 3, 2, 14, 15, tzinfo=timezone.utc),
    )
    assert window_stamp(start) == "20260302T1400Z"
    assert window_stamp(start.replace(second=30)) == "20260302T140030Z"
    assert manifest_key("ringcx/", "99999999", start, end) == (
        "ringcx/_manifests/sub_account=99999999/window=20260302T1400Z_20260302T1415Z.jsonl"
    )
    assert report_key("ringcx", "99999999", start, end) == (
        "ringcx/_reports/sub_account=99999999/window=20260302T1400Z_20260302T1415Z.json"
    )
    later = (start + timedelta(days=1), end + timedelta(days=1))
    assert rescan_manifest_key("ringcx", "99999999", start, end, by_start=later[0], by_end=later[1]) == (
        "ringcx/_manifests/sub_account=99999999/window=20260302T1400Z_20260302T1415Z"
        ".rescan-by-20260303T1400Z_20260303T1415Z.jsonl"
    )
    with pytest.raises(RingCXConfigError, match="has no time zone"):  # never read as local time
        window_stamp(start.replace(tzinfo=None))


def test_a_non_injective_template_fails_resolve_run_before_any_download() -> None:
    from datetime import timedelta

    from airflow_provider_ringcx.example_dags import tasks as pipeline

    moment = datetime(2026, 3, 2, 14, 30, tzinfo=timezone.utc)
    template = "{prefix}/sub_account={sub_account_id}/{date}/{dialog_id}_{segment_id}.wav"
    with pytest.raises(RingCXConfigError, match="not injective") as err:
        pipeline.resolve_run(
            {"key_template": template, "lag_minutes": 15},
            data_interval_start=moment - timedelta(minutes=15),
            data_interval_end=moment,
            sub_account_id="1",
            s3=None,  # refused before any S3 call
        )
    assert not err.value.retryable


def test_transcript_key_sits_beside_the_wav_and_never_equals_a_sidecar_key() -> None:
    from airflow_provider_ringcx.keys import transcript_key

    when = datetime(2026, 3, 2, 14, 1, tzinfo=timezone.utc)

    def wav(segment_id: str) -> str:
        return recording_key(
            template=DEFAULT_KEY_TEMPLATE,
            prefix="p",
            sub_account_id="9",
            dialog_id="d",
            segment_id=segment_id,
            when=when,
        )

    assert transcript_key(wav("s-1")).endswith("/d/s-1.transcript.json")
    assert sidecar_key(wav("s-1")).endswith("/d/s-1.json")
    # a hostile segment id "s-1.transcript" would otherwise have the sidecar key of s-1's transcript
    assert sidecar_key(wav("s-1.transcript")) != transcript_key(wav("s-1"))
    assert safe_id("s-1.transcript") == "s-1%2Etranscript"
    assert safe_id("s-1.transcripts") == "s-1.transcripts"
    assert safe_id("s-1%2Etranscript") != safe_id("s-1.transcript")  # still injective
