"""``get_openlineage_facets_on_start/complete/failure`` of the three RingCX operators, as mixins.

The operators stay short: each records what its lineage needs while it runs (:meth:`LineageRecorder.
note_lineage`: the window, the keys, the counts) and inherits the three methods from here. Airflow's
OpenLineage listener calls them (``on_start`` after the templates are rendered, ``on_complete``/
``on_failure`` with the task instance, in the same process as ``execute``), so what ``execute`` recorded
is there; ``on_start`` works from the rendered arguments alone. Nothing here needs XCom, S3 or RingCX
calls: the only lookup is the ``ringcx`` connection (for the API host and the ids), which the task has
read already.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import date, datetime
from typing import TYPE_CHECKING, Any

from airflow_provider_ringcx import keys
from airflow_provider_ringcx.keys import DEFAULT_KEY_TEMPLATE
from airflow_provider_ringcx.lineage import datasets
from airflow_provider_ringcx.models import parse_timestamp

if TYPE_CHECKING:
    from airflow.providers.openlineage.extractors import OperatorLineage

Window = tuple[datetime, datetime]
RUNNING, COMPLETE, FAILED = "running", "complete", "failed"


class LineageRecorder:
    """What every lineage mixin shares: the record ``execute`` fills in (reset per task try)."""

    _lineage: dict[str, Any] | None = None

    def note_lineage(self, **items: Any) -> None:
        """Record facts for the lineage events (``window``, ``key``, ``counts``, ``identity``, ...)."""
        if self._lineage is None:
            self._lineage = {}
        self._lineage.update(items)

    def noted(self, name: str, default: Any = None) -> Any:
        """A recorded fact, or ``default``."""
        return (self._lineage or {}).get(name, default)

    def explicit_window(self) -> Window | None:
        """The window from rendered ``window_start``/``window_end`` (the example DAGs pass both), else
        ``None`` (the data interval is not known to ``on_start``)."""
        op: Any = self
        try:
            start, end = parse_timestamp(op.window_start), parse_timestamp(op.window_end)
        except (AttributeError, ValueError):
            return None
        return (start, end) if start and end and start < end else None

    def sub_account(self) -> str:
        op: Any = self
        return str(getattr(op, "sub_account_id", None) or op.hook.settings.sub_account_id)


class MetadataLineage(LineageRecorder):
    """Lineage of the metadata operator: interaction-metadata -> the window manifest."""

    def get_openlineage_facets_on_start(self) -> OperatorLineage:
        return self._metadata_lineage(RUNNING)

    def get_openlineage_facets_on_complete(self, task_instance: Any) -> OperatorLineage:
        return self._metadata_lineage(COMPLETE)

    def get_openlineage_facets_on_failure(self, task_instance: Any) -> OperatorLineage:
        return self._metadata_lineage(FAILED)

    def _metadata_lineage(self, state: str) -> OperatorLineage:
        op: Any = self
        settings, sub = op.hook.settings, self.sub_account()
        window = self.noted("window") or self.explicit_window()
        key = self.noted("key") or op.manifest_key
        if not key:  # window unknown before execute: the sub-account's manifests
            key = (
                keys.manifest_key(op.prefix, sub, *window)
                if window
                else keys.manifest_day_prefix(op.prefix, sub, date.min).rpartition("/")[0] + "/"  # the folder
            )
        counts, identity = self.noted("counts"), self.noted("identity") or {}
        stats: dict[str, Any] = {}
        if counts is not None:  # written this try: 1 file; reused (a retry, a re-run): nothing written
            written = not counts.get("reused")
            stats = {
                "files": int(written),
                "size": int(identity.get("size", 0)) if written else 0,
                "rows": int(counts.get("rows", 0)) if written else 0,
            }
        return datasets.lineage(
            [datasets.ringcx_input(settings, "interaction-metadata", sub)],
            [datasets.s3_output(op.bucket, key, **stats)],
            datasets.archive_run_facet(sub_account_id=sub, window=window, counts=counts, state=state),
        )


class RecordingsLineage(LineageRecorder):
    """Lineage of the download operator: the recordings API -> the window's recordings prefix (one dataset
    for every batch of a window)."""

    def get_openlineage_facets_on_start(self) -> OperatorLineage:
        return self._recordings_lineage(RUNNING)

    def get_openlineage_facets_on_complete(self, task_instance: Any) -> OperatorLineage:
        return self._recordings_lineage(COMPLETE)

    def get_openlineage_facets_on_failure(self, task_instance: Any) -> OperatorLineage:
        return self._recordings_lineage(FAILED)

    def _recordings_lineage(self, state: str) -> OperatorLineage:
        op: Any = self
        settings, sub = op.hook.settings, self.sub_account()
        batch = op.batch
        manifest = op.manifest_key or (batch.get("manifest_key") if isinstance(batch, Mapping) else None)
        window = datasets.window_of_manifest(manifest)
        if window is None and isinstance(batch, list):  # explicit refs: their own span
            found = (parse_timestamp(ref.get("start")) for ref in batch if isinstance(ref, Mapping))
            starts = sorted(when for when in found if when is not None)
            window = (starts[0], starts[-1]) if starts else None
        prefix = datasets.window_recordings_prefix(
            key_template=op.key_template or DEFAULT_KEY_TEMPLATE, prefix=op.prefix, sub_account_id=sub,
            window=window,
        )  # fmt: skip
        summary = self.noted("summary")
        stats: dict[str, Any] = {}
        if summary is not None:  # fileCount: recordings written this try (each with its sidecar)
            archived = int(summary["counts"].get("archived", 0))
            stats = {"files": archived, "size": int(summary["bytes_archived"])}
        return datasets.lineage(
            [datasets.ringcx_input(settings, "recordings", sub)],
            [datasets.s3_output(op.bucket, prefix, **stats)],
            datasets.archive_run_facet(
                sub_account_id=sub, window=window, state=state,
                counts=summary["counts"] if summary else None,
                bytes_archived=summary["bytes_archived"] if summary else None,
            ),
        )  # fmt: skip


class ReportLineage(LineageRecorder):
    """Lineage of the report operator: the window manifest and the window's recordings -> the report."""

    def get_openlineage_facets_on_start(self) -> OperatorLineage:
        return self._report_lineage(RUNNING)

    def get_openlineage_facets_on_complete(self, task_instance: Any) -> OperatorLineage:
        return self._report_lineage(COMPLETE)

    def get_openlineage_facets_on_failure(self, task_instance: Any) -> OperatorLineage:
        return self._report_lineage(FAILED)

    def _report_lineage(self, state: str) -> OperatorLineage:
        op: Any = self
        sub = self.sub_account()
        spec = self.noted("spec") or {}
        start, end = parse_timestamp(spec.get("window_start")), parse_timestamp(spec.get("window_end"))
        window = (start, end) if start and end else self.explicit_window()
        manifest = (
            spec.get("manifest_key")
            or op.manifest_key
            or (keys.manifest_key(op.prefix, sub, *window) if window else None)
        )
        report = (
            spec.get("report_key")
            or op.report_key
            or (keys.report_key(op.prefix, sub, *window) if window else None)
        )
        recordings = datasets.window_recordings_prefix(
            key_template=op.key_template or DEFAULT_KEY_TEMPLATE, prefix=op.prefix, sub_account_id=sub,
            window=window,
        )  # fmt: skip
        inputs = [datasets.s3_input(op.bucket, name) for name in (manifest, recordings) if name]
        written = self.noted("report") is not None
        outputs = [datasets.s3_output(op.bucket, report, files=1 if written else None)] if report else []
        counts = (self.noted("report") or {}).get("counts")
        return datasets.lineage(
            inputs, outputs,
            datasets.archive_run_facet(sub_account_id=sub, window=window, counts=counts, state=state),
        )  # fmt: skip
