"""One scrubber for reasons: the text of an error that is logged, or stored in a report, manifest or rollup.

A reason is an exception's message, and messages quote what failed: a pre-signed recording URL (its query
holds ``X-Amz-Signature``, ``Signature`` or ``token``), a redirect target with userinfo, a response header
(``Authorization: Bearer ...``) or a vendor body echoing a token. Such text outlives the task: a report is
kept for years under Object Lock and read by auditors. So every reason goes through :func:`scrub` before it
is logged as a progress line (:mod:`~airflow_provider_ringcx.transfers.progress`), recorded as a segment's
outcome (:mod:`~airflow_provider_ringcx.transfers.batch`, whence the report's ``not_archived``), written as
an unparseable manifest row's reason (:mod:`~airflow_provider_ringcx.transfers.manifest_format`) or kept in
a coverage rollup (:func:`airflow_provider_ringcx.coverage.facts.clean_reason`).

What it removes, for any URL scheme (``https``, ``s3``, ``wss``, ``ftp``...) and outside URLs:

- a URL's query and fragment (``?…`` is left, the path stays: it names what failed);
- a URL's userinfo (``scheme://***@host``);
- a ``name=value`` credential anywhere (``token=``, ``access_token=``, ``X-Amz-Signature=``,
  ``X-Amz-Credential=``, ``X-Amz-Security-Token=``, ``Signature=``, ``sig=``, ``password=``,
  ``client_secret=``, ``api_key=``, ``Key-Pair-Id=``, ``Policy=``...): the value becomes ``***``;
- the credential of an ``Authorization``/``Bearer``/``Basic`` fragment, and anything shaped like a JWT.

It is one function so that a log line and the report it explains cannot differ in what they hide.
"""

from __future__ import annotations

import re

#: Any scheme's URL: its userinfo (to the last ``@`` before the path) and its query and fragment are cut.
_URL = re.compile(
    r"\b(?P<scheme>[a-zA-Z][a-zA-Z0-9+.-]*://)(?P<user>[^\s/?#]*@)?(?P<rest>[^\s?#]*)"
    r"(?P<query>[?#][^\s)\"'<>]*)?"
)
_NAMES = (
    r"x-amz-signature|x-amz-credential|x-amz-security-token|signature|sig|(?:access_|refresh_|id_)?token"
    r"|password|passwd|client_secret|secret|api_?key|key-pair-id|policy"
)
#: ``name=value`` (a query string, a form, a log of either) and ``"name": "value"`` (a JSON body).
_ASSIGNED = re.compile(rf"(?i)(\b(?:{_NAMES})=)[^\s&;,)\"'<>]+")
_JSON_VALUE = re.compile(rf"""(?i)(["'](?:{_NAMES})["']\s*:\s*)(?:"[^"]*"|'[^']*'|[^\s,}}\]]+)""")
_AUTHORIZATION = re.compile(r"(?i)\b(bearer|basic)\s+[A-Za-z0-9._~+/=-]+")
_JWT = re.compile(r"\beyJ[A-Za-z0-9_-]+\.[A-Za-z0-9_-]+\.[A-Za-z0-9_-]*")


def _url(match: re.Match[str]) -> str:
    userinfo = "***@" if match["user"] else ""
    return f"{match['scheme']}{userinfo}{match['rest']}" + ("?\u2026" if match["query"] else "")


def scrub(text: str) -> str:
    """``text`` without credentials (see the module docstring): safe to log and to store."""
    text = _URL.sub(_url, str(text))
    text = _AUTHORIZATION.sub(lambda found: f"{found.group(1)} ***", text)
    text = _ASSIGNED.sub(r"\1***", text)
    text = _JSON_VALUE.sub(r'\1"***"', text)
    return _JWT.sub("***", text)
