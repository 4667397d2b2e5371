"""Hostile JSON bodies: nesting deep enough to break a recursive decoder, and ``NaN``/``Infinity`` numbers.

Two payload fault kinds (see :mod:`~ringcx_simulator.faults`) rewrite a successful JSON
body before it is sent:

* ``deep_nesting``: ``[[[[...]]]]`` ``depth`` levels deep (default 100,000), either as the whole body
  (no ``row_field``) or as the value of ``row_field`` in row ``row`` of the array (in the object itself for
  an object body such as a token response). CPython's ``json`` raises ``RecursionError`` on it.
* ``non_finite``: ``row_field`` (default ``segmentDurationMs``) of row ``row`` becomes the literal
  ``constant``: ``NaN``, ``Infinity`` or ``-Infinity``. Python's ``json`` reads them as floats and writes
  them back as such, which no strict JSON reader accepts.

A row index past the end of the array leaves the body unchanged. Neither value can be built as a Python
object and dumped (``json.dumps`` itself recurses, and writes ``NaN`` only from a float), so the row gets a
placeholder string that is replaced in the serialised text.
"""

from __future__ import annotations

import json
from typing import Any

#: The fault kinds handled here (payload kinds: they replace a successful body).
HOSTILE_JSON_KINDS = ("deep_nesting", "non_finite")
NON_FINITE_CONSTANTS = ("NaN", "Infinity", "-Infinity")
_MARK = "\u0000ringcx-sim-hostile-value\u0000"


def hostile_body(
    body: bytes, kind: str, *, depth: int, constant: str, row_field: str | None, row: int
) -> bytes:
    """``body`` (JSON) with the hostile value of ``kind`` put in (see the module doc)."""
    if kind == "deep_nesting":
        value = "[" * depth + "]" * depth
        if row_field is None:
            return value.encode()
    else:
        value, row_field = constant, row_field or "segmentDurationMs"
    try:
        data: Any = json.loads(body)
    except ValueError:
        return body
    target = data[row] if isinstance(data, list) and 0 <= row < len(data) else data
    if not isinstance(target, dict):
        return body
    target[row_field] = _MARK
    return json.dumps(data, separators=(",", ":")).replace(json.dumps(_MARK), value).encode()
