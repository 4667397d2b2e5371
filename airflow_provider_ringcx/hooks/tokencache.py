"""One RingCX token for every task process of a host (issue 14 item 4).

Why: every Airflow task runs in a process of its own and builds its own hook, so each task exchanged a token
of its own: a 48-run backfill made 120 exchanges, against the vendor's 5 per minute. A RingCX access token is
good for about 5 minutes to whoever presents it, so the first task that needs one exchanges it and leaves it
here, and every other task of the host uses it until it comes within ``refresh_margin_seconds`` of expiry.

What is kept, where: ``<budget dir>/token-cache/`` (the budget directory of
:func:`~airflow_provider_ringcx.hooks.budget.default_budget_dir`; the subdirectory is created with mode 0700),
one file per platform URL, API URL, RingCentral account, sub-account and credential. The credential part is a
SHA-256 over the client id, client secret and JWT, so a changed credential (rotated, wrong, another user's)
never finds an older token; no secret and no token is in a file name. A file holds the RingCX access token
and its expiry only: not the RingCX refresh token (it lives a day and renews itself, so it stays in the
process that received it; a stolen file is worth at most 5 minutes) and not the RingCentral token.

How it is protected: files are written to an ``O_CREAT | O_EXCL`` temporary file of mode 0600 and renamed
into place. A file or directory that is not owned by this uid or that group or others may read is refused:
a warning is logged once per process and path, and the task exchanges as if nothing were cached (the next
write replaces a refused file). When Airflow's ``[core] fernet_key`` is set (``airflow.cfg`` or
``AIRFLOW__CORE__FERNET_KEY``), the content is encrypted with it (Airflow's own ``get_fernet``), so the file
holds no token in clear either; a file another key wrote is a miss. A key that is set but invalid turns the
cache off (with a warning) rather than writing in clear what the operator asked to encrypt. Without a key,
mode 0600 is the protection: the same as the ``airflow.cfg`` or the environment that holds the credentials.

Concurrency: every entry has a lock file; :class:`~airflow_provider_ringcx.hooks.auth.TokenManager` holds
its ``flock`` while it reads, renews and writes the entry (:meth:`TokenCache.locked`), so of the tasks that
start together one exchanges and the others wait and read its token. A token the API answered 401 is
evicted (:meth:`TokenCache.evict`) so that no other task presents it.

Nothing here raises into the token path: an unreadable, insecure or unwritable cache is a miss, and the
caller exchanges as it did before the cache existed. The connection extra ``exchange_cache: false`` turns
the cache off.
"""

from __future__ import annotations

import contextlib
import errno
import fcntl
import functools
import hashlib
import logging
import os
import re
import secrets
import stat
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from airflow_provider_ringcx import jsonutil

if TYPE_CHECKING:
    from airflow_provider_ringcx.hooks.settings import RingCXSettings

log = logging.getLogger(__name__)

#: The subdirectory of the budget directory that holds the entries (mode 0700).
CACHE_SUBDIR = "token-cache"
#: The unsubstituted template value Airflow's Task SDK reports when no ``fernet_key`` is configured.
_FERNET_PLACEHOLDER = "{FERNET_KEY}"
_MAX_BYTES = 64 * 1024
_FORMAT = 1


@dataclass(frozen=True)
class CachedToken:
    """A RingCX access token read from the cache, and when it expires (epoch seconds)."""

    value: str = field(repr=False)
    expires_at: float


def cache_name(settings: RingCXSettings) -> str:
    """The file name of the connection's entry: API host and sub-account (readable), then a digest.

    The digest covers both URLs, the RingCentral account, the sub-account and a SHA-256 of the client id,
    client secret and JWT, so any change to them names another entry. No secret is recoverable from it.
    """
    credential = hashlib.sha256(
        "\0".join((settings.client_id or "", settings.client_secret or "", settings.jwt or "")).encode()
    ).hexdigest()
    parts = (settings.platform_url, settings.api_url, settings.rc_account_id, settings.sub_account_id)
    digest = hashlib.sha256("\n".join((*parts, credential)).encode()).hexdigest()[:40]
    return f"{_slug(f'{settings.api_host}-{settings.sub_account_id}')}-{digest}"


def _slug(text: str) -> str:
    return re.sub(r"[^A-Za-z0-9_.-]+", "_", text)[:80]


def forget_host(budget_dir: Path, api_host: str) -> int:
    """Delete the cached tokens of every connection to ``api_host`` (``host[:port]``); return how many.

    For an operator who revoked a host's tokens, and for tests: a later simulator may get the same port.
    """
    folder = Path(budget_dir) / CACHE_SUBDIR
    prefix = _slug(f"{api_host}-")
    entries = [p for p in folder.glob("*.json") if p.name.startswith(prefix)] if folder.is_dir() else []
    for entry in entries:
        with contextlib.suppress(FileNotFoundError):
            entry.unlink()
    return len(entries)


@functools.cache
def _warn_once(path: str, problem: str) -> None:
    log.warning("RingCX token cache %s %s; exchanging a token of this task's own instead", path, problem)


def _insecure(st: os.stat_result, *, directory: bool) -> str | None:
    """Why a file (or directory) must not be trusted, or ``None``."""
    kind_ok = stat.S_ISDIR(st.st_mode) if directory else stat.S_ISREG(st.st_mode)
    if not kind_ok:
        return "is not a directory" if directory else "is not a regular file"
    if st.st_uid != os.getuid():
        return f"is owned by uid {st.st_uid}, not by this process's uid {os.getuid()}"
    if st.st_mode & 0o077:
        return (
            f"has mode {stat.S_IMODE(st.st_mode):04o}: group or others may access it (chmod "
            f"{'700' if directory else '600'} it, or delete it)"
        )
    return None


def _fernet() -> tuple[bool, Any]:
    """``(usable, fernet)``: Airflow's Fernet when ``[core] fernet_key`` is set, ``None`` when it is not;
    ``usable`` is false when a key is set but invalid (the cache is then off)."""
    try:
        from airflow.sdk.configuration import conf
    except ImportError:  # pragma: no cover - an Airflow 3 whose Task SDK has no parser of its own
        from airflow.configuration import conf
    try:
        from airflow.sdk.crypto import get_fernet
    except ImportError:  # pragma: no cover - an Airflow whose Task SDK has no crypto module
        from airflow.models.crypto import get_fernet
    # The Task SDK's parser reports only a key that is configured (airflow.cfg, AIRFLOW__CORE__FERNET_KEY);
    # the core parser would invent a random one per process without airflow.cfg, which no other task shares.
    key = (conf.get("core", "fernet_key", fallback="") or "").strip()
    if not key or key == _FERNET_PLACEHOLDER:
        return True, None
    try:
        fernet = get_fernet()
    except Exception as err:  # AirflowException for a malformed key; its message holds no key
        _warn_once("encryption", f"cannot use [core] fernet_key ({type(err).__name__}): the cache is off")
        return False, None
    return True, fernet if fernet.is_encrypted else None


class TokenCache:
    """The shared entry of one connection (see the module docstring).

    :param directory: the cache directory (``<budget dir>/token-cache``).
    :param name: the entry's file name (:func:`cache_name`).
    :param fernet: encrypt the content with this (Airflow's ``get_fernet()``), or ``None``.
    """

    def __init__(self, directory: Path, name: str, *, fernet: Any = None) -> None:
        self.directory = directory
        self.path = directory / f"{name}.json"
        self.lock_path = directory / f"{name}.lock"
        self.fernet = fernet
        self._usable = False

    def __repr__(self) -> str:
        return f"TokenCache({str(self.path)!r}, encrypted={self.fernet is not None})"

    @classmethod
    def for_settings(cls, settings: RingCXSettings, budget_dir: Path) -> TokenCache | None:
        """The connection's entry under ``budget_dir``; ``None`` when the cache is off or cannot be used.

        Off: extra ``exchange_cache`` false, ``auth_mode`` token (nothing is exchanged), or a
        ``fernet_key`` that is set but invalid.
        """
        if not settings.exchange_cache or settings.auth_mode != "jwt":
            return None
        usable, fernet = _fernet()
        if not usable:
            return None
        return cls(Path(budget_dir) / CACHE_SUBDIR, cache_name(settings), fernet=fernet)

    @contextlib.contextmanager
    def locked(self) -> Iterator[None]:
        """Hold the entry's lock (blocking) while the caller reads, renews and stores the token.

        When the directory cannot be used, nothing is locked and :meth:`load` and :meth:`store` do nothing.
        """
        self._usable = False
        lock_fd = self._open_lock()
        if lock_fd is None:
            yield
            return
        try:
            fcntl.flock(lock_fd, fcntl.LOCK_EX)
            self._usable = True
            yield
        finally:
            self._usable = False
            os.close(lock_fd)  # releases the flock

    def load(self) -> CachedToken | None:
        """The cached token (call inside :meth:`locked`), or ``None``: missing, refused, undecryptable."""
        if not self._usable:
            return None
        try:
            fd = os.open(self.path, os.O_RDONLY | os.O_NOFOLLOW | os.O_CLOEXEC)
        except FileNotFoundError:
            return None
        except OSError as err:
            why = "is a symbolic link" if err.errno == errno.ELOOP else f"cannot be read ({err.strerror})"
            _warn_once(str(self.path), why)
            return None
        try:
            problem = _insecure(os.fstat(fd), directory=False)
            if problem:
                _warn_once(str(self.path), problem)
                return None
            data = os.read(fd, _MAX_BYTES)
        finally:
            os.close(fd)
        return self._decode(data)

    def store(self, value: str, expires_at: float) -> None:
        """Write the token (call inside :meth:`locked`): a new 0600 file renamed over the old one."""
        if not self._usable:
            return
        payload = jsonutil.dumps({"format": _FORMAT, "token": value, "expires_at": expires_at}).encode()
        if self.fernet is not None:
            payload = self.fernet.encrypt(payload)
        tmp = self.directory / f".{self.path.name}.{os.getpid()}.{secrets.token_hex(4)}.tmp"
        try:
            fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW | os.O_CLOEXEC, 0o600)
            try:
                os.write(fd, payload)
            finally:
                os.close(fd)
            os.replace(tmp, self.path)
        except OSError as err:
            _warn_once(str(self.path), f"cannot be written ({err.strerror})")
            with contextlib.suppress(OSError):
                tmp.unlink()

    def evict(self, rejected: str) -> None:
        """Delete the entry if it holds ``rejected`` (a token RingCX answered 401), inside :meth:`locked`."""
        cached = self.load()
        if self._usable and cached is not None and cached.value == rejected:
            with contextlib.suppress(FileNotFoundError):
                self.path.unlink()
            log.info("evicted the rejected RingCX token from the host's token cache")

    # -- internals ------------------------------------------------------------------------------------------

    def _open_lock(self) -> int | None:
        """Create the directory (0700) if needed, check it, and open the lock file; ``None`` if unusable."""
        try:
            self.directory.parent.mkdir(parents=True, exist_ok=True)
            with contextlib.suppress(FileExistsError):
                os.mkdir(self.directory, 0o700)
            problem = _insecure(os.lstat(self.directory), directory=True)
            if problem:
                _warn_once(str(self.directory), problem)
                return None
            return os.open(self.lock_path, os.O_RDWR | os.O_CREAT | os.O_NOFOLLOW | os.O_CLOEXEC, 0o600)
        except OSError as err:
            _warn_once(str(self.directory), f"cannot be used ({err.strerror})")
            return None

    def _decode(self, data: bytes) -> CachedToken | None:
        if self.fernet is not None:
            try:
                data = self.fernet.decrypt(data)
            except Exception:  # cryptography's InvalidToken: plain, or written with another key
                log.info("the RingCX token cache entry was not written with this fernet_key; ignoring it")
                return None
        try:
            body = jsonutil.loads(data)
        except ValueError:
            return None
        if not isinstance(body, dict) or body.get("format") != _FORMAT:
            return None
        value, expires_at = body.get("token"), body.get("expires_at")
        if not isinstance(value, str) or not value or isinstance(expires_at, bool):
            return None
        if not isinstance(expires_at, (int, float)):
            return None
        return CachedToken(value, float(expires_at))
