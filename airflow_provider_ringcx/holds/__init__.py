"""Legal holds by query: put (or lift) an S3 Object Lock legal hold on every object of the selected calls.

Why by query: a litigation hold names people and periods ("every call with +1 555 0100 in March"), not S3
keys. The archive index (:mod:`airflow_provider_ringcx.index`, one gzip JSON Lines object per sub-account
and day) already holds, per segment, the phone numbers (ANI ``channel_endpoint_address``, DNIS
``contact_endpoint_address``), the recording's key and version, and its transcript's key; so the query
reads the index days of the range (:mod:`.query`), not the recordings, and needs no RingCX call.

What is held (:mod:`.apply`): for each selected segment, the recording version the index names, its
sidecar, its transcript and its AI summaries (when archived: index columns ``transcript_key``,
``summary_keys``), each by ``VersionId`` (a legal hold is per object version;
under Object Lock the archive never writes a second version of a key). A legal hold has no expiry and is
independent of retention: it keeps the version undeletable until it is released, which is why release is
the same operator with ``action="release"`` and the same approval.

Guarantees:

* **Scope.** Every key comes from index rows, i.e. from data: before anything changes, each key must lie
  under the archive prefix, outside its bookkeeping folders (``_index/``, ``_audit/``, ...), be free of
  ``.``/``..`` and empty segments, and the recording key must be the one the DAGs' key template gives the
  row's sub-account, dialog and segment (ids compared whole: sub-account ``4`` is in ``sub_account=42``);
  the sidecar and transcript must be exactly the recording's. One bad row refuses the whole request
  (:class:`~airflow_provider_ringcx.exceptions.RingCXHoldScopeError`, naming the row and the key): a crafted
  index cannot reach other objects, nor another sub-account's calls. Then each selected row is confirmed
  by its recording's sidecar (written with the recording, under the same lock; :func:`.query.confirm`, one
  GET a row): the same segment and recording, a day in the range, and the request's numbers or dialog in
  the vendor row the sidecar keeps. So a row given the held number, or moved into the range, by whoever
  can write the (unlocked) index is refused too.
* **Object Lock.** A bucket without Object Lock refuses legal holds; the operator checks first and fails
  with :class:`~airflow_provider_ringcx.exceptions.RingCXObjectLockError` saying how to enable it.
* **Idempotence.** Each version's current status is read first; only a version not already in the wanted
  status is changed, so a second run changes nothing and says so (the audit record lists every object as
  ``unchanged``).
* **Audit.** Every run writes one record (:mod:`.audit`, write-once) under ``{prefix}/_audit/legal_holds/``:
  the query, who asked and who approved, when, and per object its key, version, status before and after.
"""

from __future__ import annotations
