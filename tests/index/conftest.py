"""The reliability suite's fixtures (a simulator with ~20 recordings a window, a versioned bucket, the
operator pipeline, the invariant checker) for the index tests."""

from __future__ import annotations

from tests.reliability.conftest import invariants, pipe, rsim, versioned_bucket

__all__ = ["invariants", "pipe", "rsim", "versioned_bucket"]
