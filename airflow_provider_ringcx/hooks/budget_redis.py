"""One vendor budget for every host: the pacer's state in Redis, updated by Lua scripts.

The file backend (:mod:`~airflow_provider_ringcx.hooks.budget_store`) shares a budget between the processes
of one host. Celery or Kubernetes workers on several hosts would each have their own files and meet only
through RingCX's 429s. With ``[ringcx] budget_backend = redis`` every
:class:`~airflow_provider_ringcx.hooks.budget.RateBudget` keeps its state here instead, with the same rule
(every window must have a free slot; history borrows a window's reserve only when it is back within a
slot, and a refused live request's marker holds history off), the same 429 back-off
(``penalize``: one host's ``Retry-After`` holds them all), and the same ``snapshot``/``reset``.

**Why Lua, and where the rule lives.** Each operation is one ``EVALSHA`` of a short script: one round trip,
atomic on the server (no other command runs in between), and nothing is left locked if a worker dies in
the middle. The other design, the rule kept in Python over a short lock (``SET NX PX``) around a read and a
write, costs four round trips per acquire and is only as safe as the lock's expiry: a worker paused (GC,
swap, a stopped VM) past it writes a state someone else has already changed. So the script does the
counting, but not the policy: a window's padded seconds, its share for the class and how soon a borrowed
slot must be back (:func:`~airflow_provider_ringcx.hooks.budget_rule.window_terms`), the marker's slack
(:func:`~airflow_provider_ringcx.hooks.budget_rule.marker_slack`) and the held history request's least wait
are computed by :mod:`~airflow_provider_ringcx.hooks.budget_rule` and passed in as arguments, so changing
the reserve changes both backends. What the script mirrors is
:func:`~airflow_provider_ringcx.hooks.budget_rule.decide`'s arithmetic (count the requests after
``now - seconds``; a free slot when the ``count``-th newest ages out, the share back when the ``allowed``-th
newest ages out ``lend`` seconds earlier; the latest of those and the back-off wins; then the marker) and
:func:`~airflow_provider_ringcx.hooks.budget_rule.settle`, in the same floating-point operations, and
``tests/hooks/test_budget_redis_rule.py`` runs one table of cases through ``decide``, the file store and
this store and requires the same decisions.

**One clock.** With the default wall clock (``time.time``), ``now`` is Redis's own (``TIME``), so hosts
whose clocks disagree still count the same windows. An injected clock (tests) is used as given, exactly like
the file backend.

**Keys.** Per budget (``host|sub-account|endpoint``), a sorted set of request times scored by time,
``ringcx:budget:{host:sub-account:endpoint}`` (the braces are a Redis Cluster hash tag, so both keys of a
budget are in one slot), the back-off end, the same key with ``:blocked``, and the live marker, with
``:live`` (absent: no live request waits). Every admitted request prunes the set to the longest padded
window and sets its TTL to that window plus a second; the back-off and marker keys live until their end
plus a second: idle budgets expire and nothing needs cleaning up.

**Outages fail.** A Redis that cannot be reached or answers an error raises
:class:`RingCXBudgetBackendError`, naming the URL without its password and what to do; the request is not
sent. Falling back to no pacing, or to the host's own file, would let every host spend the whole budget at
once. A password in the URL (``redis://:secret@host``, ``?password=``) is registered with Airflow's secret
masker when it is read, in every form (as written and percent-decoded:
:func:`~airflow_provider_ringcx.hooks.masking.url_secrets`), and appears in no message, repr or log line
(:func:`~airflow_provider_ringcx.hooks.masking.mask_url`).
"""

from __future__ import annotations

import contextlib
import functools
import secrets
import time
from collections.abc import Callable, Iterator
from typing import TYPE_CHECKING, Any
from urllib.parse import quote, urlsplit

from airflow_provider_ringcx.exceptions import RingCXConfigError, RingCXError
from airflow_provider_ringcx.hooks.budget import (
    BUDGET_BACKEND_OPTION,
    BUDGET_REDIS_CONN_OPTION,
    BUDGET_REDIS_URL_OPTION,
    CONFIG_SECTION,
    _airflow_option,
)
from airflow_provider_ringcx.hooks.budget_rule import (
    HISTORY,
    LIVE_WAKE_SECONDS,
    BudgetLimit,
    BudgetState,
    Decision,
    Priority,
    marker_slack,
    window_terms,
)
from airflow_provider_ringcx.hooks.masking import mask_url, mask_url_secrets, unencoded_password, url_secrets

if TYPE_CHECKING:
    import redis

__all__ = ["RedisBudgetStore", "RingCXBudgetBackendError", "configured_redis_url", "mask_url"]

KEY_PREFIX = "ringcx:budget:"
#: seconds a command may take before the pacer gives up on Redis (connect and each reply)
SOCKET_TIMEOUT = 5.0
SCHEMES = ("redis", "rediss", "unix")

_NOW = """
if redis.replicate_commands then redis.replicate_commands() end
local function num(x) return string.format('%.17g', x) end
local now
if ARGV[1] == '' then
  local t = redis.call('TIME')
  now = tonumber(t[1]) + tonumber(t[2]) / 1000000
else
  now = tonumber(ARGV[1])
end
"""

#: KEYS: log, blocked, live marker. ARGV: now ('' = the server's clock), horizon, a unique token, '1' for
#: history, the marker's slack, a held history request's least wait, then per window its padded seconds,
#: count, share and lend seconds (budget_rule.window_terms). Returns {delay, window (1-based, 0 = none),
#: count, allowed, now, held (0/1), marker}: budget_rule.decide, then budget_rule.settle.
ACQUIRE_LUA = (
    _NOW
    + """
local blocked = tonumber(redis.call('GET', KEYS[2]) or '0')
local marker = tonumber(redis.call('GET', KEYS[3]) or '0')
if not (marker > now) then marker = 0 end
local delay, which, count, allowed = blocked - now, 0, 0, 0
local window = 0
for i = 7, #ARGV, 4 do
  window = window + 1
  local seconds, slots = tonumber(ARGV[i]), tonumber(ARGV[i + 1])
  local keep, lend = tonumber(ARGV[i + 2]), tonumber(ARGV[i + 3])
  local after = '(' .. num(now - seconds)
  local n = redis.call('ZCOUNT', KEYS[1], after, '+inf')
  for _, rule in ipairs({{slots, 0}, {keep, lend}}) do
    local k, back = rule[1], rule[2]
    if n >= k then
      local nth = redis.call('ZRANGEBYSCORE', KEYS[1], after, '+inf', 'WITHSCORES', 'LIMIT', n - k, 1)
      local at = tonumber(nth[2]) + seconds - back - now
      if at > delay then delay, which, count, allowed = at, window, n, keep end
    end
  end
end
local held = 0
if ARGV[4] == '1' then
  if marker > 0 and delay < marker - now then
    delay, held = math.min(marker - now, math.max(delay, tonumber(ARGV[6]))), 1
  end
else
  if delay <= 0 then marker = 0 else marker = math.max(marker, now + delay + tonumber(ARGV[5])) end
  if marker > 0 then
    local ttl = string.format('%d', math.ceil((marker - now) * 1000) + 1000)
    redis.call('SET', KEYS[3], num(marker), 'PX', ttl)
  else
    redis.call('DEL', KEYS[3])
  end
end
local horizon = tonumber(ARGV[2])
if delay <= 0 and horizon > 0 then
  redis.call('ZADD', KEYS[1], num(now), num(now) .. ':' .. ARGV[3])
  redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', num(now - horizon))
  redis.call('PEXPIRE', KEYS[1], string.format('%d', math.ceil(horizon * 1000) + 1000))
end
return {num(delay), which, count, allowed, num(now), held, num(marker)}
"""
)

#: KEYS: log, blocked. ARGV: now, seconds. blocked_until = max(blocked_until, now + seconds).
PENALIZE_LUA = (
    _NOW
    + """
local blocked = math.max(tonumber(redis.call('GET', KEYS[2]) or '0'), now + tonumber(ARGV[2]))
redis.call('SET', KEYS[2], num(blocked), 'PX', string.format('%d', math.ceil((blocked - now) * 1000) + 1000))
return num(blocked)
"""
)


class RingCXBudgetBackendError(RingCXError):
    """The shared budget's Redis could not be reached or answered an error; the request was not sent."""


def _url_from_connection(conn_id: str) -> str:
    """A ``redis://`` URL from an Airflow connection (the Redis provider's fields: host, port, login,
    password, extra ``db`` and ``ssl``; the schema field as the db when no extra names one).

    :raises RingCXConfigError: the connection does not exist or has no host.
    """
    from airflow.sdk import BaseHook
    from airflow.sdk.exceptions import AirflowNotFoundException

    try:
        conn = BaseHook.get_connection(conn_id)
    except AirflowNotFoundException:
        raise RingCXConfigError(
            f"[{CONFIG_SECTION}] {BUDGET_REDIS_CONN_OPTION} = {conn_id!r}: no such Airflow connection; "
            f"create one of type redis (host, port, password) or set {BUDGET_REDIS_URL_OPTION} instead"
        ) from None
    if not conn.host:
        raise RingCXConfigError(f"Airflow connection {conn_id!r} (the budgets' Redis) has no host: set it")
    extra = conn.extra_dejson
    scheme = "rediss" if str(extra.get("ssl", "")).lower() in ("true", "1", "yes") else "redis"
    userinfo = f"{quote(conn.login or '', safe='')}:{quote(conn.password, safe='')}@" if conn.password else ""
    db = extra.get("db", conn.schema or 0)
    return f"{scheme}://{userinfo}{conn.host}:{conn.port or 6379}/{db}"


def configured_redis_url() -> str:
    """The Redis of ``budget_backend = redis``: ``[ringcx] budget_redis_url``, or the Airflow connection
    ``[ringcx] budget_redis_conn_id`` names (read through the same options as ``budget_dir``). Its password
    is registered with Airflow's secret masker.

    :raises RingCXConfigError: neither or both are set, or the URL is not a Redis URL.
    """
    url = _airflow_option(CONFIG_SECTION, BUDGET_REDIS_URL_OPTION)
    conn_id = _airflow_option(CONFIG_SECTION, BUDGET_REDIS_CONN_OPTION)
    where = f"[{CONFIG_SECTION}] {BUDGET_BACKEND_OPTION} = redis"
    if url and conn_id:
        raise RingCXConfigError(
            f"{where}: set one of {BUDGET_REDIS_URL_OPTION} and {BUDGET_REDIS_CONN_OPTION}, not both"
        )
    if conn_id:
        url = _url_from_connection(conn_id)
    if not url:
        raise RingCXConfigError(
            f"{where} needs {BUDGET_REDIS_URL_OPTION} (redis://[:password@]host:port/db, or "
            f"AIRFLOW__RINGCX__BUDGET_REDIS_URL) or {BUDGET_REDIS_CONN_OPTION} (an Airflow connection of "
            "type redis); every worker of every host must name the same Redis"
        )
    mask_url_secrets(url)  # every form: as written, percent-decoded, userinfo and ?password=
    if unencoded_password(url):
        raise RingCXConfigError(
            f"{where}: the password in {mask_url(url)!r} holds a '/', '?' or '#' not percent-encoded, so "
            "a URL parser would read part of it as the host or path; write it percent-encoded "
            "(urllib.parse.quote(password, safe='')), or use budget_redis_conn_id"
        )
    if urlsplit(url).scheme not in SCHEMES:
        raise RingCXConfigError(
            f"{where}: {mask_url(url)!r} is not a Redis URL; write redis://host:port/db (rediss:// for TLS)"
        )
    return url


def _redis_module() -> Any:
    try:
        import redis
    except ImportError:
        raise RingCXConfigError(
            f"[{CONFIG_SECTION}] {BUDGET_BACKEND_OPTION} = redis needs the redis package: install "
            "airflow-provider-ringcx[redis] on every worker, or set budget_backend = file"
        ) from None
    return redis


@functools.cache
def _client(url: str) -> redis.Redis:
    """One client (and connection pool) per URL and process; redis-py reopens the pool after a fork."""
    redis = _redis_module()
    from redis.backoff import ExponentialBackoff
    from redis.retry import Retry

    return redis.Redis.from_url(
        url,
        socket_timeout=SOCKET_TIMEOUT,
        socket_connect_timeout=SOCKET_TIMEOUT,
        retry=Retry(ExponentialBackoff(cap=0.5, base=0.05), 2),  # a blip, not an outage
    )


def redis_keys(name: str) -> tuple[str, str]:
    """The log and back-off keys of budget ``name`` (``host|sub-account|endpoint``)."""
    base = f"{KEY_PREFIX}{{{':'.join(name.split('|'))}}}"
    return base, f"{base}:blocked"


class RedisBudgetStore:
    """The state of budget ``name`` in the Redis at ``url`` (a :class:`~.budget_store.BudgetStore`).

    :param name: the budget key (API host, sub-account, endpoint).
    :param url: ``redis://``, ``rediss://`` or ``unix://``; its password never leaves this object.
    :param horizon: seconds of requests worth keeping (the longest padded window), also the keys' TTL.
    :param clock: ``time.time`` means Redis's own clock (one clock for every host); any other callable
        is used as given (tests).
    """

    def __init__(
        self, name: str, url: str, *, horizon: float, clock: Callable[[], float] = time.time
    ) -> None:
        self.name = name
        self.horizon = horizon
        self.masked_url = mask_url(url)
        self._url = url
        self._clock = None if clock is time.time else clock
        self.log_key, self.blocked_key = redis_keys(name)
        self.live_key = f"{self.log_key}:live"
        client = _client(url)
        self._acquire = client.register_script(ACQUIRE_LUA)
        self._penalize = client.register_script(PENALIZE_LUA)
        self._client = client

    def __repr__(self) -> str:
        return f"RedisBudgetStore({self.name!r}, {self.masked_url!r})"

    def describe(self) -> str:
        """See :meth:`~.budget_store.BudgetStore.describe`."""
        return f"Redis {self.masked_url} key {self.log_key}"

    def _now(self) -> str:
        return "" if self._clock is None else repr(float(self._clock()))

    def try_acquire(
        self, limits: tuple[BudgetLimit, ...], priority: Priority, *, margin: float | None
    ) -> tuple[Decision, float]:
        """See :meth:`~.budget_store.BudgetStore.try_acquire`: one script, one round trip."""
        args: list[str] = [self._now(), repr(float(self.horizon)), secrets.token_hex(8)]
        args += ["1" if priority == HISTORY else "0", repr(marker_slack(limits)), repr(LIVE_WAKE_SECONDS)]
        for limit in limits:
            seconds, slots, keep, lend = window_terms(limit, priority, margin)
            args += [repr(float(seconds)), str(slots), str(keep), repr(float(lend))]
        with self._reaching("acquire a slot"):
            delay, which, count, allowed, now, held, marker = self._acquire(keys=self._keys, args=args)
        window = limits[int(which) - 1] if int(which) else None
        decision = Decision(float(delay), window, int(count), int(allowed), bool(int(held)), float(marker))
        return decision, float(now)

    def penalize(self, seconds: float) -> None:
        """See :meth:`~.budget_store.BudgetStore.penalize`."""
        with self._reaching("record a 429 back-off"):
            self._penalize(keys=self._keys, args=[self._now(), repr(float(seconds))])

    def reset(self) -> None:
        """See :meth:`~.budget_store.BudgetStore.reset`."""
        with self._reaching("reset"):
            self._client.delete(*self._keys)

    def snapshot(self) -> BudgetState:
        """See :meth:`~.budget_store.BudgetStore.snapshot`: the keys in one ``MULTI``. An expired back-off
        or marker reads as ``0.0`` (the file keeps the past moment; either is "not blocked")."""
        with self._reaching("read"):
            pipe = self._client.pipeline(transaction=True)
            pipe.zrange(self.log_key, 0, -1, withscores=True)
            pipe.get(self.blocked_key)
            pipe.get(self.live_key)
            entries, blocked, marker = pipe.execute()
        return BudgetState([float(s) for _, s in entries], float(blocked or 0.0), float(marker or 0.0))

    @property
    def _keys(self) -> list[str]:
        return [self.log_key, self.blocked_key, self.live_key]

    @contextlib.contextmanager
    def _reaching(self, what: str) -> Iterator[None]:
        """Turn any Redis error into :class:`RingCXBudgetBackendError` (no password, no unpaced fallback)."""
        redis = _redis_module()
        try:
            yield
        except redis.RedisError as exc:
            cause = f"{type(exc).__name__}: {exc}"
            for secret in url_secrets(self._url):
                cause = cause.replace(secret, "***")
            raise RingCXBudgetBackendError(
                f"budget {self.name}: could not {what} in the shared budget's Redis at {self.masked_url} "
                f"({cause}). The request was not sent: without Redis this worker cannot know what the other "
                "hosts spent. Start or repair that Redis (or point [ringcx] budget_redis_url / "
                "budget_redis_conn_id at a reachable one) and retry the task; to pace each host on its own "
                "instead, set [ringcx] budget_backend = file"
            ) from None
