"""Typed errors raised by the RingCX hook, the S3 landing code and the operators.

Every message names the item concerned and what to do about it. No message ever contains a secret
(client secret, JWT, RingCentral or RingCX token): callers build messages from identifiers only.
"""

from __future__ import annotations

from datetime import datetime


class RingCXError(Exception):
    """Base class of every error this provider raises.

    :param retryable: whether an Airflow retry of the same work may succeed.
    """

    retryable: bool = False

    def __init__(self, message: str, *, status_code: int | None = None) -> None:
        super().__init__(message)
        self.status_code = status_code


class RingCXConfigError(RingCXError, ValueError):
    """The connection, an operator argument or a DAG param is invalid."""


def connection_not_defined(
    conn_id: str, *, label: str, conn_type: str, param: str, alternative: str
) -> RingCXConfigError:
    """The error for a conn id that names no connection, with where to define it.

    Airflow reads ``AIRFLOW_CONN_`` + the conn id in upper case, other characters kept (a ``-`` included,
    which a POSIX shell cannot export: then use the UI or a secrets backend).
    """
    return RingCXConfigError(
        f"{label} connection {conn_id!r} is not defined: create it (Admin > Connections, type "
        f"'{conn_type}', or the environment variable AIRFLOW_CONN_{conn_id.upper()}) or set {param} to "
        f"{alternative}"
    )


class RingCXAuthError(RingCXError):
    """Authentication failed (wrong client credentials, JWT, revoked or expired token after one retry)."""


class RingCXForbiddenError(RingCXError):
    """403: the user, the account or the recording is not accessible (WEM access, READ on Account...)."""


class RingCXNotFoundError(RingCXError):
    """404: unknown dialog/segment, or a recording that is not processed yet."""


class RingCXBadRequestError(RingCXError):
    """400: the vendor rejected the request body (see ``validation_errors``)."""

    def __init__(
        self, message: str, *, status_code: int | None = 400, validation_errors: list[dict] | None = None
    ) -> None:
        super().__init__(message, status_code=status_code)
        self.validation_errors = validation_errors or []


class RingCXTransientError(RingCXError):
    """A failure that a later attempt may not see: 5xx, connection reset, read timeout."""

    retryable = True


class RingCXServerError(RingCXTransientError):
    """5xx from RingCX, still failing after the retry bound."""


class RingCXRateLimitedError(RingCXTransientError):
    """429 from RingCX, still throttled after the retry bound."""

    def __init__(
        self, message: str, *, status_code: int | None = 429, retry_after: float | None = None
    ) -> None:
        super().__init__(message, status_code=status_code)
        self.retry_after = retry_after


class RingCXWaitRequired(RingCXError):
    """A budget or ``Retry-After`` wait is longer than the caller's deferral threshold (issue #12 item 13).

    Raised instead of sleeping only for a caller that asked for deferrable waits (the metadata operator):
    it defers until ``until`` (no worker, no pool slot held) and then retries the call. Not retried by the
    client, since waiting is exactly what it asks for.

    :param until: when the wait ends (aware UTC datetime).
    :param reason: what is waited for, e.g. ``"metadata 9/900s budget full"``.
    """

    def __init__(self, message: str, *, until: datetime, reason: str) -> None:
        super().__init__(message)
        self.until = until
        self.reason = reason


class RingCXRedirectError(RingCXError):
    """A 3xx that the client refuses to follow (issue #12 item 7): an auth request or a request with a body
    was redirected, or a bearer-token GET was sent to a host it may not follow (plain http, too many hops).
    The message names the redirect's host, never its full ``Location``; the fix is in platform_url/api_url."""


class RingCXIncompleteDownloadError(RingCXTransientError):
    """The body ended before Content-Length (or before the WAV data size) was reached."""


class RingCXDurationMismatchError(RingCXIncompleteDownloadError):
    """The recording's audio is shorter (or longer) than the metadata's duration allows, ``max(2 s, 2 %)``,
    even if Content-Length and the WAV header agree with each other: it is not the whole call the metadata
    describes (a recording still being written, or another one). Retryable, as the vendor may finish it."""


class RingCXBadPayloadError(RingCXError):
    """The response is not what the contract says: HTML with status 200, malformed JSON, a non-WAV body."""

    retryable = True


class RingCXOversizedBodyError(RingCXBadPayloadError):
    """A recording body grew past the most its Content-Length, WAV header or expected duration allows (a
    decompression bomb, or bytes that are not this recording); refused before the rest is read."""


class RingCXWindowNotReadyError(RingCXError):
    """The metadata window ends too recently to be complete on the vendor side."""

    def __init__(self, message: str, *, ready_at: datetime) -> None:
        super().__init__(message)
        self.ready_at = ready_at


class RingCXObjectLockError(RingCXConfigError):
    """Object Lock was requested but the bucket is not Object-Lock enabled."""


class RingCXHoldScopeError(RingCXError):
    """A legal-hold request would touch an object outside the archive (an index row naming a key outside
    the prefix, in its bookkeeping folders, or not beside its recording). Nothing is changed."""


class RingCXArchiveConflictError(RingCXError):
    """An S3 key holds something this segment cannot claim: another segment's recording and sidecar (a key
    collision), or bytes that differ from the recording and that the lander refuses to overwrite."""


class RingCXUnverifiableError(RingCXError):
    """S3 refused (403) a read needed to decide whether a segment is archived and verified."""
