"""Registering secrets with Airflow's secret masker, in one place.

Every secret is masked where it enters the process, so no log line of that task can show it: the connection's
client secret, JWT and API token as :mod:`~airflow_provider_ringcx.hooks.settings` reads them, and each token
as a response hands it over or as the host's shared token cache
(:mod:`~airflow_provider_ringcx.hooks.tokencache`) does: a token another task exchanged is a secret this
task never saw until it read the cache, so it is masked here too (:func:`response_secret`).

A URL's password (the budgets' Redis, :func:`url_secrets`) is registered in every form a log line could
show it: as written in the URL (percent-encoded or not) and as decoded (what the client sends), from the
userinfo and from a ``password=`` query parameter; :func:`mask_url` is the URL for messages.

Each value is masked once where possible: every call sends it to the task supervisor and makes the masker
recompile its pattern (issue #12 item 10).
"""

from __future__ import annotations

import re
from typing import Any
from urllib.parse import parse_qsl, unquote

from airflow.sdk.log import mask_secret

_QUERY_PASSWORD = re.compile(r"(?<=[?&;])(password=)[^&;#]*")


def mask(value: str | None) -> str | None:
    """Register ``value`` (when not empty) with the masker and return it."""
    if value:
        mask_secret(value)
    return value


def mask_stripped(text: str | None, raw: Any, *, always: bool) -> str | None:
    """The stripped text of a secret extra, masked unless Airflow masked exactly this value already.

    ``extra_dejson`` masks the raw value; a JWT pasted with a trailing newline is sent stripped, and that
    stripped value is what must never show. So it is masked whenever it differs from the raw one.

    :param text: the stripped value that will be sent.
    :param raw: the value as stored in the connection.
    :param always: mask even when ``text`` equals ``raw`` (extras Airflow did not mask).
    """
    if always or (text and text != raw):
        mask(text)
    return text


def response_secret(value: Any) -> str | None:
    """A token string from a response or the token cache, registered with the masker at once."""
    if not isinstance(value, str) or not value:
        return None
    mask_secret(value)
    return value


def _split_url(url: str) -> tuple[str, str | None, str]:
    """``(scheme://, userinfo or None, the rest)``; the userinfo runs to the *last* ``@`` so that a password
    written with an unencoded ``@``, ``/``, ``?`` or ``#`` is still all of it."""
    scheme, sep, rest = url.partition("://")
    if not sep or "@" not in rest:
        return (f"{scheme}{sep}" if sep else ""), None, (rest if sep else url)
    userinfo, _, host = rest.rpartition("@")
    return f"{scheme}{sep}", userinfo, host


def _query_passwords(text: str) -> list[str]:
    query = text.partition("?")[2].partition("#")[0]
    raw = [part[len("password=") :] for part in re.split(r"[&;]", query) if part.startswith("password=")]
    decoded = [value for key, value in parse_qsl(query, keep_blank_values=True) if key == "password"]
    return [*raw, *decoded]


def url_secrets(url: str) -> list[str]:
    """Every form of the passwords ``url`` carries: the userinfo's password and each ``password=`` query
    value, as written and percent-decoded (a client decodes them; a log line may show either)."""
    _, userinfo, rest = _split_url(url)
    found = []
    if userinfo is not None and ":" in userinfo:
        written = userinfo.partition(":")[2]
        found += [written, unquote(written)]
    found += _query_passwords(rest)
    return list(dict.fromkeys(value for value in found if value))


def mask_url_secrets(url: str) -> str:
    """Register every form of ``url``'s passwords (:func:`url_secrets`) with the masker; return ``url``."""
    for secret in url_secrets(url):
        mask_secret(secret)
    return url


def mask_url(url: str) -> str:
    """``url`` for messages: its userinfo password and ``password=`` query values replaced by ``***``
    (the user name, host, port, path and other parameters kept as written)."""
    scheme, userinfo, rest = _split_url(url)
    head = ""
    if userinfo is not None:
        user, colon, _ = userinfo.partition(":")
        head = f"{user}:***@" if colon else f"{userinfo}@"
    return scheme + head + _QUERY_PASSWORD.sub(r"\1***", rest)


def unencoded_password(url: str) -> bool:
    """Whether ``url``'s userinfo password holds a ``/``, ``?`` or ``#`` left unencoded: a URL parser
    then reads part of it as the host, port or path (and may show it in an error)."""
    _, userinfo, _ = _split_url(url)
    return userinfo is not None and any(char in userinfo.partition(":")[2] for char in "/?#")
