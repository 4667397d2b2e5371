"""Registering secrets with Airflow's secret masker, in one place.

Every secret is masked where it enters the process, so no log line of that task can show it: the connection's
client secret, JWT and API token as :mod:`~airflow_provider_ringcx.hooks.settings` reads them, and each token
as a response hands it over or as the host's shared token cache
(:mod:`~airflow_provider_ringcx.hooks.tokencache`) does: a token another task exchanged is a secret this
task never saw until it read the cache, so it is masked here too (:func:`response_secret`).

Each value is masked once where possible: every call sends it to the task supervisor and makes the masker
recompile its pattern (issue #12 item 10).
"""

from __future__ import annotations

from typing import Any

from airflow.sdk.log import mask_secret


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
