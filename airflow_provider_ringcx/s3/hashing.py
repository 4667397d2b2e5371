"""What the uploader reads from a recording: counted, and hashed exactly once."""

from __future__ import annotations

import hashlib
from typing import Any


class HashingReader:
    """A file-like wrapper that counts every byte read and knows their SHA-256 (what S3 receives).

    A :class:`~airflow_provider_ringcx.hooks.download.RecordingStream` already hashes every byte it hands
    out (``sha256_digest``): its digest is reused, so the body is hashed once. Other streams are hashed here.
    """

    def __init__(self, stream: Any) -> None:
        self._stream = stream
        self._own = None if hasattr(type(stream), "sha256_digest") else hashlib.sha256()
        self.size = 0

    def read(self, size: int = -1) -> bytes:
        data = self._stream.read(size)
        if self._own is not None:
            self._own.update(data)
        self.size += len(data)
        return data

    def digest(self) -> bytes:
        """SHA-256 of the bytes read so far (the stream's, once it is complete)."""
        return self._own.digest() if self._own is not None else bytes(self._stream.sha256_digest)

    def hexdigest(self) -> str:
        return self.digest().hex()

    def readable(self) -> bool:
        return True
