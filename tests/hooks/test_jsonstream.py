"""The streaming JSON array parser (pure bytes in, elements out)."""

from __future__ import annotations

import json
import tracemalloc
from collections.abc import Iterator

import pytest

from airflow_provider_ringcx.exceptions import RingCXBadPayloadError
from airflow_provider_ringcx.hooks.jsonstream import iter_json_array

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
