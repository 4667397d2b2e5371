"""The streaming JSON array parser (pure bytes in, elements out)."""

from __future__ import annotations

import json
import tracemalloc
from collections.abc import Iterator

import pytest

from airflow_provider_ringcx.exceptions import RingCXBadPayloadError
from airflow_provider_ringcx.hooks.jsonstream import check_row_finite, iter_json_array
from airflow_provider_ringcx.jsonutil import MAX_DEPTH, NonFinite

WHAT = "interaction-metadata window 2026-03-02T14:00Z..2026-03-02T15:00Z"


def chunks(data: bytes, size: int) -> Iterator[bytes]:
    for i in range(0, len(data), size):
        yield data[i : i + size]


def parse(data: bytes, size: int = 5) -> list:
    return [value for value, _ in iter_json_array(chunks(data, size), what=WHAT)]


ROWS = [
    {"dialogId": f"d-{i}", "segmentId": f"s-{i}", "n": i, "note": 'quote " and \\ and ünïcödé ☎', "ev": None}
    for i in range(50)
]


@pytest.mark.parametrize("size", [1, 3, 7, 64, 4096, 1 << 20])
def test_elements_and_raw_text_at_any_chunking(size):
    data = json.dumps(ROWS, ensure_ascii=False, indent=1).encode()
    items = list(iter_json_array(chunks(data, size), what=WHAT))
    assert [v for v, _ in items] == ROWS
    assert [json.loads(raw) for _, raw in items] == ROWS


@pytest.mark.parametrize("size", [1, 2, 3])
def test_scalars_split_across_chunks(size):
    data = b'\xef\xbb\xbf [1, 23, 456.5e1, true, false, null, "x", -7, [1, [2]], {}] \n'
    assert parse(data, size) == [1, 23, 4565.0, True, False, None, "x", -7, [1, [2]], {}]


def test_empty_array():
    assert parse(b" [ ] ") == []


@pytest.mark.parametrize(
    ("body", "problem"),
    [
        (b'{"generalMessage": "oops"}', "JSON object"),
        (b"<!DOCTYPE html><html>maintenance</html>", "HTML page"),
        (b"", "empty"),
        (b"   ", "empty"),
        (b"nope", "not JSON"),
        (b'[{"a": 1} {"b": 2}]', "expected ','"),
        (b'[{"a": x}, ' + b'{"b": 2}, ' * 10 + b'{"c": 3}]', "malformed JSON"),
        (b'[{"a": 1},', "truncated"),
        (b'[{"a": 1}, {"b": ', "malformed JSON"),
        (b'[{"a": 1}', "truncated"),
        (b'[{"a": 1}] trailing', "after the JSON array"),
        (b'["\xff\xfe"]', "not UTF-8"),
    ],
)
def test_bad_bodies_raise_bad_payload_naming_the_window(body, problem):
    with pytest.raises(RingCXBadPayloadError, match=problem) as info:
        parse(body, 4)
    assert WHAT in str(info.value)


def test_elements_before_a_malformed_tail_are_yielded_first():
    gen = iter_json_array(chunks(b'[{"a": 1}, {"b": 2}, {oops', 100), what=WHAT)
    assert next(gen)[0] == {"a": 1}
    assert next(gen)[0] == {"b": 2}
    with pytest.raises(RingCXBadPayloadError):
        next(gen)


def _big_body(rows: int) -> Iterator[bytes]:
    yield b"["
    for i in range(rows):
        row = {
            "dialogId": f"s-v-{i:032x}",
            "segmentId": f"p-{i:040x}",
            "segmentDurationMs": i,
            "pad": "x" * 200,
        }
        yield (b"," if i else b"") + json.dumps(row).encode()
    yield b"]"


def _rechunk(source: Iterator[bytes], size: int) -> Iterator[bytes]:
    buf = b""
    for piece in source:
        buf += piece
        while len(buf) >= size:
            yield buf[:size]
            buf = buf[size:]
    if buf:
        yield buf


def test_hundred_thousand_rows_are_parsed_lazily():
    """Each row is yielded as soon as its bytes arrive: never more than two chunks are read ahead."""
    pulled = 0

    def counted(source: Iterator[bytes]) -> Iterator[bytes]:
        nonlocal pulled
        for piece in source:
            pulled += len(piece)
            yield piece

    count = consumed = 0
    for value, raw in iter_json_array(counted(_rechunk(_big_body(100_000), 65536)), what=WHAT):
        consumed += len(raw) + 1
        assert pulled - consumed <= 2 * 65536
        assert value["segmentDurationMs"] == count
        count += 1
    assert count == 100_000


def test_parser_memory_is_bounded():
    tracemalloc.start()
    try:
        count = sum(1 for _ in iter_json_array(_rechunk(_big_body(20_000), 65536), what=WHAT))
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert count == 20_000
    assert peak < 2 * 1024 * 1024, peak  # the body is ~6 MB; the parser holds about one chunk


# --- nesting depth (issue #12 item 14) and non-finite numbers (item 15) ------------------------------------


@pytest.mark.parametrize("size", [1, 7, 65536])
@pytest.mark.parametrize(
    "body",
    [
        pytest.param(b"[" * 100_000 + b"]" * 100_000, id="whole-body"),
        pytest.param(b'[{"dialogId":"d","agentNotes":' + b"[" * 100_000 + b"]" * 100_000 + b"}]", id="field"),
        pytest.param(b"[" * 100_000, id="unclosed"),
        pytest.param(b'[{"a":' * 50_000, id="objects"),
    ],
)
def test_deep_nesting_is_a_bad_payload_naming_the_window_never_a_recursion_error(body, size):
    with pytest.raises(RingCXBadPayloadError) as caught:
        parse(body, size)
    message = str(caught.value)
    assert message.startswith(WHAT)
    assert f"the JSON nests deeper than {MAX_DEPTH} levels" in message
    assert "check api_url" in message


@pytest.mark.parametrize("size", [1, 3, 4096])
def test_nesting_up_to_the_limit_is_parsed_and_brackets_in_strings_do_not_count(size):
    deepest = "[" * (MAX_DEPTH - 1) + '"x\\"]\\\\"' + "]" * (MAX_DEPTH - 1)  # the array is level 1
    brackets_in_strings = json.dumps({"note": "[" * 5000 + '\\"{' * 100, "k[[": "]]]" * 10})
    body = f"[{deepest},{brackets_in_strings},{json.dumps(ROWS[0])}]".encode()
    values = parse(body, size)
    assert len(values) == 3
    assert values[2] == ROWS[0]
    with pytest.raises(RingCXBadPayloadError):
        parse(("[" + "[" + deepest + "]" + "]").encode(), size)


def test_a_deep_body_is_refused_after_one_chunk():
    """The depth is counted as chunks arrive: a 100 MB ``[[[[`` body is refused after its first chunk."""
    pulled = 0

    def endless() -> Iterator[bytes]:
        nonlocal pulled
        while pulled < 100 * 1024 * 1024:
            pulled += 65536
            yield b"[" * 65536

    with pytest.raises(RingCXBadPayloadError):
        list(iter_json_array(endless(), what=WHAT))
    assert pulled == 65536


@pytest.mark.parametrize("text", ["NaN", "Infinity", "-Infinity", "1e999", "-1E+400"])
def test_non_finite_numbers_decode_to_markers_and_the_row_is_refused_naming_the_field(text):
    body = f'[{{"dialogId":"d","segmentId":"s","segmentEvents":[{{"x":{text}}}],"n":1.5}}]'.encode()
    ((value, raw),) = list(iter_json_array(chunks(body, 3), what=WHAT))
    marker = value["segmentEvents"][0]["x"]
    assert isinstance(marker, NonFinite)
    assert marker.text == text
    assert value["n"] == 1.5
    with pytest.raises(RingCXBadPayloadError) as caught:
        check_row_finite(value, raw)
    assert str(caught.value).startswith(f"metadata row cannot be parsed: segmentEvents[0].x={text}: ")
    assert "listed in the window report as unparseable" in str(caught.value)


def test_finite_rows_pass_the_non_finite_check():
    for value, raw in iter_json_array(chunks(json.dumps(ROWS).encode(), 4096), what=WHAT):
        check_row_finite(value, raw)
    check_row_finite({"note": "NaN and Infinity as text", "big": 10**400}, '{"note": "NaN and Infinity"}')
