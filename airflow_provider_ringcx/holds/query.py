"""Which index rows a legal-hold request selects: sub-account, a range of days, phone numbers, dialog ids.

The index stores a segment under the UTC day of its end (:func:`~airflow_provider_ringcx.index.format.
row_day`), so a range of days reads exactly those day objects, one GET each. Phone numbers match the ANI
or the DNIS of a row by their digits only (``+1 (555) 010-0100`` and ``15550100100`` are the same number;
``5550100100`` is not: no country code is guessed). A request must name numbers or dialog ids, or say
``all_in_range`` explicitly, so that an empty field never holds (or releases) a whole month.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from typing import TYPE_CHECKING, Any

from botocore.exceptions import ClientError

from airflow_provider_ringcx import keys
from airflow_provider_ringcx.exceptions import RingCXConfigError, RingCXHoldScopeError
from airflow_provider_ringcx.models import printable

if TYPE_CHECKING:
    from mypy_boto3_s3 import S3Client

#: The longest range one request reads (days): a bound on its GETs, about ten years.
MAX_DAYS = 3700
#: Largest sidecar read to confirm a row (a sidecar is a few KB).
MAX_SIDECAR_BYTES = 1024 * 1024
_DIGITS = re.compile(r"\D+")


def digits(number: Any) -> str:
    """The digits of a phone number (what numbers are compared by)."""
    return _DIGITS.sub("", str(number or ""))


def _day(value: Any, name: str) -> date:
    if isinstance(value, datetime):
        return value.date()
    if isinstance(value, date):
        return value
    try:
        return date.fromisoformat(str(value).strip()[:10])
    except ValueError:
        raise RingCXConfigError(f"{name}={value!r} is not a date; use YYYY-MM-DD") from None


def _items(value: Any, name: str) -> tuple[str, ...]:
    """A list from a Python list or a rendered template (comma- or newline-separated text)."""
    if value is None or value == "":
        return ()
    if isinstance(value, str):
        value = [part for part in re.split(r"[,\n]", value)]
    if not isinstance(value, Iterable):
        raise RingCXConfigError(f"{name}={value!r} must be a list (or comma-separated text)")
    return tuple(str(item).strip() for item in value if str(item).strip())


@dataclass(frozen=True)
class HoldQuery:
    """One legal-hold request's selection.

    :param sub_account_id: the RingCX sub-account whose index is read.
    :param date_from: first UTC day (a segment's day is the day it ended).
    :param date_to: last UTC day, inclusive.
    :param phone_numbers: ANI or DNIS to match (digits compared).
    :param dialog_ids: dialog ids to match.
    :param all_in_range: select every archived segment of the range (needs no numbers or ids).
    """

    sub_account_id: str
    date_from: date
    date_to: date
    phone_numbers: tuple[str, ...] = ()
    dialog_ids: tuple[str, ...] = ()
    all_in_range: bool = False
    _digits: frozenset[str] = field(default=frozenset(), repr=False, compare=False)

    @classmethod
    def build(cls, *, sub_account_id: Any, date_from: Any, date_to: Any = None, phone_numbers: Any = None,
              dialog_ids: Any = None, all_in_range: bool = False) -> HoldQuery:  # fmt: skip
        """A checked query from operator arguments (rendered templates accepted).

        :raises RingCXConfigError: no sub-account, a bad or reversed date range, a range over
            :data:`MAX_DAYS`, a number without digits, or no selector without ``all_in_range``.
        """
        if not str(sub_account_id or "").strip():
            raise RingCXConfigError("a legal hold needs sub_account_id: whose index to read")
        first = _day(date_from, "date_from")
        last = _day(date_to, "date_to") if date_to not in (None, "") else first
        if last < first:
            raise RingCXConfigError(f"date_to {last} is before date_from {first}")
        if (last - first).days + 1 > MAX_DAYS:
            raise RingCXConfigError(f"{first}..{last} spans over {MAX_DAYS} days; split the request")
        numbers, dialogs = _items(phone_numbers, "phone_numbers"), _items(dialog_ids, "dialog_ids")
        bad = [number for number in numbers if not digits(number)]
        if bad:
            raise RingCXConfigError(f"phone_numbers {bad!r} have no digits")
        if not (numbers or dialogs or all_in_range):
            raise RingCXConfigError(
                "the request selects nothing by number or dialog: give phone_numbers or dialog_ids, or set "
                "all_in_range to hold every archived call of the range"
            )
        return cls(
            sub_account_id=str(sub_account_id).strip(), date_from=first, date_to=last,
            phone_numbers=numbers, dialog_ids=dialogs, all_in_range=bool(all_in_range),
            _digits=frozenset(digits(number) for number in numbers),
        )  # fmt: skip

    def days(self) -> Iterator[date]:
        """Every day of the range, in order."""
        day = self.date_from
        while day <= self.date_to:
            yield day
            day += timedelta(days=1)

    def matches(self, row: Mapping[str, Any]) -> bool:
        """Whether an index row is selected (an archived recording of this sub-account that matches)."""
        if not row.get("s3_key") or str(row.get("sub_account_id")) != self.sub_account_id:
            return False
        if self.all_in_range and not (self.phone_numbers or self.dialog_ids):
            return True
        if str(row.get("dialog_id")) in self.dialog_ids:
            return True
        ends = (digits(row.get("channel_endpoint_address")), digits(row.get("contact_endpoint_address")))
        return any(number and number in self._digits for number in ends)

    def as_dict(self) -> dict[str, Any]:
        """The query as the audit record states it."""
        return {
            "sub_account_id": self.sub_account_id,
            "date_from": self.date_from.isoformat(),
            "date_to": self.date_to.isoformat(),
            "phone_numbers": list(self.phone_numbers),
            "dialog_ids": list(self.dialog_ids),
            "all_in_range": self.all_in_range,
        }


@dataclass
class Selection:
    """What a query found: the rows, and which days had an index object."""

    rows: list[dict[str, Any]]
    days_read: list[str]
    days_without_index: list[str]


def select_rows(client: S3Client, bucket: str, prefix: str | None, query: HoldQuery) -> Selection:
    """Read the index days of ``query`` and return the selected rows (each segment once).

    :raises IndexCorruptError: a day object cannot be read (the message says how to rebuild it).
    """
    from airflow_provider_ringcx.index.store import read_day

    found: dict[tuple[str, str], dict[str, Any]] = {}
    read: list[str] = []
    missing: list[str] = []
    for day in query.days():
        rows, etag = read_day(client, bucket, keys.index_key(prefix, query.sub_account_id, day))
        (read if etag is not None else missing).append(day.isoformat())
        for row in rows:
            if query.matches(row):
                found.setdefault((str(row.get("dialog_id")), str(row.get("segment_id"))), dict(row))
    return Selection(rows=list(found.values()), days_read=read, days_without_index=missing)


def limit(rows: Sequence[Mapping[str, Any]], max_segments: int) -> None:
    """Refuse a selection larger than ``max_segments`` (a query that reaches much more than meant).

    :raises RingCXConfigError: naming the count and the setting.
    """
    if len(rows) > max_segments:
        raise RingCXConfigError(
            f"the request selects {len(rows)} segments, over max_segments={max_segments}: narrow the query "
            "(numbers, dialogs, days) or raise max_segments"
        )


def confirm(client: S3Client, bucket: str, query: HoldQuery, rows: Sequence[Mapping[str, Any]]) -> None:
    """Check every selected row against its recording's sidecar before anything changes (1 GET a row).

    The index is derived and rewritten, so it is never locked: whoever can write ``_index/`` could give a
    row the number a release names, or list another day's call in a day of the range. The sidecar is
    written with the recording, under the same Object Lock, and holds the vendor row as received: the
    segment must be the row's, and the request must select it by the sidecar's numbers, dialog and day too.

    :raises RingCXHoldScopeError: naming the row, the sidecar and what disagrees; nothing was changed.
    """
    for row in rows:
        sidecar = keys.sidecar_key(str(row.get("s3_key")))
        problem = _disagreement(client, bucket, query, row, sidecar)
        if problem:
            raise RingCXHoldScopeError(
                f"refusing the legal hold request: index row dialog {printable(row.get('dialog_id'))!r} "
                f"segment {printable(row.get('segment_id'))!r} is contradicted by the recording's sidecar "
                f"{printable(sidecar)!r}: {problem}; nothing was changed. Rebuild the index day from the "
                "manifests (python -m airflow_provider_ringcx index rebuild); check who can write the index"
            )


def _disagreement(client: S3Client, bucket: str, query: HoldQuery, row: Mapping[str, Any],
                  sidecar: str) -> str | None:  # fmt: skip
    from airflow_provider_ringcx.index.format import index_row, row_day
    from airflow_provider_ringcx.s3.writeonce import http_status
    from airflow_provider_ringcx.transfers.sidecar import SidecarInvalid, parse_sidecar

    try:
        body = client.get_object(Bucket=bucket, Key=sidecar)["Body"].read(MAX_SIDECAR_BYTES + 1)
    except ClientError as err:
        if http_status(err) == 404:
            return "there is no sidecar, so the row cannot be confirmed"
        raise
    if len(body) > MAX_SIDECAR_BYTES:
        return f"the sidecar is over {MAX_SIDECAR_BYTES} bytes"
    try:
        document = parse_sidecar(body)
    except SidecarInvalid as err:
        return f"the sidecar {err}"
    ids = (document["sub_account_id"], document["dialog_id"], document["segment_id"])
    if ids != (str(row.get("sub_account_id")), str(row.get("dialog_id")), str(row.get("segment_id"))):
        return f"it is the sidecar of sub-account {ids[0]!r} dialog {ids[1]!r} segment {ids[2]!r}"
    if document["s3"].get("key") != row.get("s3_key"):
        return f"it is the sidecar of the recording {printable(document['s3'].get('key'))!r}"
    segment = document.get("segment") or {}
    truth = index_row(
        sub_account_id=ids[0], ref={"dialog_id": ids[1], "segment_id": ids[2], "start": segment.get("start"),
        "end": segment.get("end")}, row=document["metadata"], has_recording=True,
        archive={"s3_key": row.get("s3_key")}, pauses=None, where={},
    )  # fmt: skip
    day = row_day(truth, query.date_from)
    if not query.date_from <= day <= query.date_to:
        return f"the segment ended on {day}, outside the request's days"
    if not query.matches(truth):
        return "by the numbers and dialog the sidecar records, the request does not select this segment"
    return None
