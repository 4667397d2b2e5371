"""Strict JSON in and out: one writer for everything the product stores, one reader for vendor JSON.

Why a module of its own:

- **Writing.** Python's ``json.dumps`` writes ``NaN``, ``Infinity`` and ``-Infinity`` by default. Those are
  not JSON (RFC 8259): a strict reader (Java, Go, ``jq``, DuckDB, ``JSON.parse``) refuses the whole object.
  Every manifest line, sidecar, report and state file the provider writes goes through :func:`dumps`,
  which refuses them (``allow_nan=False``) instead of writing an object nobody else can read.
- **Reading vendor JSON.** A vendor row holding ``NaN`` must not turn into a float that is later written
  back; :func:`loads` (and the streaming parser in :mod:`~airflow_provider_ringcx.hooks.jsonstream`) turn
  every non-finite number into a :class:`NonFinite` marker, so the row can be refused with the field named
  (:func:`check_finite`), like a row with a missing id.
- **Depth.** CPython's decoder recurses once per nesting level: ``[[[[...`` 100,000 deep raises a bare
  ``RecursionError`` (or, in the worst case, exhausts the C stack). The nesting is counted first, by a
  scanner that never recurses (:class:`DepthGuard`), and anything deeper than :data:`MAX_DEPTH` is
  refused before it is decoded. RingCX's deepest documented body is 4 levels (array of rows, row,
  ``segmentEvents`` array, event object: see ``ringcx-openapi-subset.json``), so 64 leaves ample headroom.

Nothing here imports the rest of the provider, so every module may use it.
"""

from __future__ import annotations

import array
import itertools
import json
import math
import re
from collections.abc import Callable, Mapping
from typing import Any

#: The deepest nesting accepted in vendor JSON (the top-level array or object counts as level 1).
MAX_DEPTH = 64
#: Cheap pre-filter: a row whose text matches none of this cannot hold a non-finite number (``NaN``,
#: ``Infinity``, or a float too large for a double: a 3-digit exponent or hundreds of digits).
_NON_FINITE_HINT = re.compile(r"NaN|Infinity|[eE]\+?\d{3}|\d{300}")
_ESCAPE = re.compile(r"\\.", re.DOTALL)
_STRUCTURE = str.maketrans("", "", "".join(chr(code) for code in range(128) if chr(code) not in '"[]{}'))
_STEPS = bytes.maketrans(b"[{]}", b"\x01\x01\xff\xff")  # +1 / -1 as signed bytes


class JSONTooDeepError(ValueError):
    """The JSON text nests deeper than allowed (raised before decoding it)."""


class NonFinite:
    """What a vendor ``NaN``, ``Infinity``, ``-Infinity`` (or an overflowing number such as ``1e999``)
    decodes to: a marker, never a float, so it cannot be written back or used in arithmetic by mistake."""

    __slots__ = ("text",)

    def __init__(self, text: str) -> None:
        self.text = text

    def __repr__(self) -> str:
        return self.text

    def __eq__(self, other: object) -> bool:
        return isinstance(other, NonFinite) and other.text == self.text

    def __hash__(self) -> int:
        return hash(("NonFinite", self.text))


def _parse_float(text: str) -> float | NonFinite:
    value = float(text)
    return value if math.isfinite(value) else NonFinite(text)


def vendor_decoder() -> json.JSONDecoder:
    """A lenient (control characters in strings) decoder mapping non-finite numbers to markers."""
    return json.JSONDecoder(strict=False, parse_constant=NonFinite, parse_float=_parse_float)


class DepthGuard:
    """Counts the bracket nesting of JSON text fed to it piece by piece, without recursion.

    Escapes (``\\"``, ``\\\\``...) are dropped first, so every remaining ``"`` opens or closes a string; the
    text is reduced to its quotes and brackets, the brackets inside strings are dropped, and the running
    sum of the others is the depth. All of it runs in C (``translate``, ``split``, ``accumulate``), at tens
    of MB/s, whatever the number of rows. The state (depth,
    inside a string or not, a trailing backslash) carries over from one piece to the next.

    :param limit: the deepest nesting accepted (the top-level array counts as level 1).
    """

    def __init__(self, limit: int = MAX_DEPTH) -> None:
        self.limit = limit
        self.depth = 0
        self._in_string = False
        self._carry = ""

    def feed(self, text: str) -> None:
        """Count the nesting of the next piece of text.

        :raises JSONTooDeepError: the nesting so far exceeds ``limit``.
        """
        text, self._carry = self._carry + text, ""
        if "\\" in text:
            text = _ESCAPE.sub("", text)
            if text.endswith("\\"):  # an escape cut by the end of the piece: finish it next time
                text, self._carry = text[:-1], "\\"
        reduced = text.translate(_STRUCTURE)  # quotes, brackets and non-ASCII characters only
        if '"' in reduced:
            # Two adjacent quotes are an empty string or the gap between two strings: dropping both keeps
            # every bracket outside strings where it is, and the parity of the quotes.
            parts = reduced.replace('""', "").split('"')
            outside = parts[1::2] if self._in_string else parts[0::2]
            if len(parts) % 2 == 0:
                self._in_string = not self._in_string
            reduced = "".join(outside)
        elif self._in_string:
            return
        brackets = reduced if reduced.isascii() else "".join(c for c in reduced if c in "[]{}")
        if not brackets:
            return
        steps = array.array("b", brackets.encode("ascii").translate(_STEPS))
        levels = list(itertools.accumulate(steps, initial=self.depth))
        self.depth = levels[-1]
        if max(levels) > self.limit:
            raise JSONTooDeepError(f"the JSON nests deeper than {self.limit} levels")


def loads(data: str | bytes, *, limit: int = MAX_DEPTH) -> Any:
    """Decode vendor JSON: the depth checked first, non-finite numbers as :class:`NonFinite` markers.

    :raises JSONTooDeepError: deeper than ``limit`` (a ``ValueError``, like every decoding error here).
    :raises ValueError: not JSON (``json.JSONDecodeError``), or bytes that are not UTF-8.
    """
    text = data.decode("utf-8") if isinstance(data, (bytes, bytearray)) else data
    DepthGuard(limit).feed(text)
    return json.loads(text, parse_constant=NonFinite, parse_float=_parse_float)


def _refuse(name: str) -> Any:
    raise ValueError(f"{name} is not valid JSON (RFC 8259 has no NaN or Infinity)")


def strict_loads(data: str | bytes, *, limit: int = MAX_DEPTH) -> Any:
    """Decode JSON the way a strict reader does: ``NaN``/``Infinity`` are an error, and so is a nesting
    deeper than ``limit`` (for settings given as JSON, and for tests checking what the provider wrote).

    :raises ValueError: not strict JSON (``JSONTooDeepError`` included).
    """
    text = data.decode("utf-8") if isinstance(data, (bytes, bytearray)) else data
    DepthGuard(limit).feed(text)
    return json.loads(text, parse_constant=_refuse)


def non_finite_paths(value: Any, path: str = "") -> list[str]:
    """Where ``value`` holds :class:`NonFinite` markers, as ``field``, ``field[2].sub`` paths."""
    if isinstance(value, NonFinite):
        return [f"{path or '(the value itself)'}={value.text}"]
    found: list[str] = []
    if isinstance(value, Mapping):
        for key, item in value.items():
            found += non_finite_paths(item, f"{path}.{key}" if path else str(key))
    elif isinstance(value, list):
        for index, item in enumerate(value):
            found += non_finite_paths(item, f"{path}[{index}]")
    return found


def check_finite(value: Any, raw: str, make_error: Callable[[str], Exception]) -> None:
    """Raise ``make_error(reason)`` if ``value`` (decoded from ``raw``) holds a non-finite number.

    :param raw: the element's text: a row without ``NaN``, ``Infinity`` or an exponent is not walked.
    """
    if not _NON_FINITE_HINT.search(raw):
        return
    paths = non_finite_paths(value)
    if paths:
        shown = ", ".join(paths[:5]) + (f" and {len(paths) - 5} more" if len(paths) > 5 else "")
        raise make_error(
            f"{shown}: NaN and Infinity are not JSON numbers (RFC 8259), so the row cannot be stored as "
            "standard JSON"
        )


def _default(chained: Callable[[Any], Any] | None) -> Callable[[Any], Any]:
    def default(value: Any) -> Any:
        if isinstance(value, NonFinite):
            raise ValueError(f"{value.text} cannot be written as JSON (not a JSON number)")
        if chained is None:
            raise TypeError(f"{type(value).__name__} is not JSON serializable")
        return chained(value)

    return default


def dumps(obj: Any, **kwargs: Any) -> str:
    """``json.dumps`` that only writes standard JSON: ``NaN``/``Infinity`` raise ``ValueError``.

    :param kwargs: as for ``json.dumps`` (``default`` is still applied to other unknown types).
    """
    kwargs["default"] = _default(kwargs.get("default"))
    return json.dumps(obj, allow_nan=False, **kwargs)
