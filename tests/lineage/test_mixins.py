"""The OpenLineage facets of the three operators, from what ``execute`` records (no peers: the events of a
real run are checked in ``test_lineage_dag.py``), and the provider working without OpenLineage."""

from __future__ import annotations

import ast
import json
import subprocess
import sys
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import pytest

from airflow_provider_ringcx.operators.metadata import RingCXInteractionMetadataOperator
from airflow_provider_ringcx.operators.recordings import RingCXRecordingsToS3Operator
from airflow_provider_ringcx.operators.report import RingCXWindowReportOperator

UTC = timezone.utc
START, END = datetime(2026, 3, 2, 14, 0, tzinfo=UTC), datetime(2026, 3, 2, 14, 15, tzinfo=UTC)
MANIFEST = "rec/_manifests/sub_account=42/window=20260302T1400Z_20260302T1415Z.jsonl"
PACKAGE = Path(__file__).resolve().parents[2] / "airflow_provider_ringcx"
SECRET, JWT = "client-secret-value-x9", "jwt-token-value-y8"


@pytest.fixture(autouse=True)
def ringcx_conn(monkeypatch: pytest.MonkeyPatch) -> None:
    extra = {
        "auth_mode": "jwt", "jwt_token": JWT, "platform_url": "https://platform.example.test",
        "api_url": "https://RingCX.example.test:8443/", "rc_account_id": "77", "sub_account_id": "42",
    }  # fmt: skip
    monkeypatch.setenv(
        "AIRFLOW_CONN_RINGCX_DEFAULT",
        json.dumps({"conn_type": "ringcx", "login": "client", "password": SECRET, "extra": extra}),
    )


def _event(lineage: Any) -> dict[str, Any]:
    """The lineage as the OpenLineage client serializes it into an event."""
    from openlineage.client.serde import Serde

    def plain(value: Any) -> Any:
        return json.loads(Serde.to_json(value))

    return {
        "inputs": [plain(item) for item in lineage.inputs],
        "outputs": [plain(item) for item in lineage.outputs],
        "run_facets": {name: plain(facet) for name, facet in lineage.run_facets.items()},
    }


def test_the_metadata_task_reads_the_api_path_and_writes_the_window_manifest() -> None:
    op = RingCXInteractionMetadataOperator(
        task_id="fetch",
        bucket="arch",
        prefix="rec",
        window_start=START.isoformat(),
        window_end=END.isoformat(),
    )
    start = _event(op.get_openlineage_facets_on_start())
    (source,) = start["inputs"]
    assert source == {
        "namespace": "https://ringcx.example.test:8443",  # no user part of the URL
        "name": "/voice/api/cx/integration/v1/accounts/77/sub-accounts/42/interaction-metadata",
        "facets": {},
    }
    assert start["outputs"][0]["namespace"] == "s3://arch"
    assert start["outputs"][0]["name"] == MANIFEST
    assert "outputStatistics" not in start["outputs"][0]["outputFacets"]

    op.note_lineage(window=(START, END), key=MANIFEST)
    op.note_lineage(counts={"rows": 9, "reused": 0, "batches": 3}, identity={"size": 1234})
    done = _event(op.get_openlineage_facets_on_complete(None))
    stats = done["outputs"][0]["outputFacets"]["outputStatistics"]
    assert (stats["fileCount"], stats["size"], stats["rowCount"]) == (1, 1234, 9)
    facet = done["run_facets"]["ringcx_archive"]
    assert facet["window_start"] == START.isoformat()
    assert facet["counts"]["rows"] == 9
    assert facet["_schemaURL"].endswith("#openlineage")

    op.note_lineage(counts={"rows": 9, "reused": 1})  # a retry reusing the manifest wrote nothing
    again = _event(op.get_openlineage_facets_on_complete(None))["outputs"][0]["outputFacets"]
    assert again["outputStatistics"]["fileCount"] == again["outputStatistics"]["size"] == 0


def test_every_batch_of_a_window_names_the_same_output_with_its_own_statistics() -> None:
    names = set()
    for index in range(3):
        op = RingCXRecordingsToS3Operator(
            task_id=f"download_{index}", bucket="arch", prefix="rec",
            batch={"manifest_key": MANIFEST, "index": index, "range": [0, 1]},
        )  # fmt: skip
        op.note_lineage(summary={"counts": {"archived": 2, "forbidden": 1}, "bytes_archived": 2048})
        event = _event(op.get_openlineage_facets_on_failure(None))
        (output,) = event["outputs"]
        names.add(output["name"])
        stats = output["outputFacets"]["outputStatistics"]
        assert (stats["fileCount"], stats["size"]) == (2, 2048)
        assert "rowCount" not in stats
        assert event["run_facets"]["ringcx_archive"]["state"] == "failed"
        assert event["run_facets"]["ringcx_archive"]["counts"] == {"archived": 2, "forbidden": 1}
        assert event["inputs"][0]["name"].endswith("/sub-accounts/42/recordings")
    assert names == {"rec/sub_account=42/year=2026/month=03/day=02/hour=14"}


def test_explicit_refs_name_the_prefix_they_share() -> None:
    refs = [{"dialog_id": "d", "segment_id": "s", "start": "2026-03-02T09:10:00Z"}]
    op = RingCXRecordingsToS3Operator(task_id="d", bucket="arch", prefix="rec", batch=refs)
    start = _event(op.get_openlineage_facets_on_start())
    assert start["outputs"][0]["name"] == "rec/sub_account=42/year=2026/month=03/day=02/hour=09"


def test_the_report_reads_the_manifest_and_the_recordings_and_writes_the_report() -> None:
    op = RingCXWindowReportOperator(task_id="report", bucket="arch", prefix="rec")
    op.note_lineage(spec={"window_start": START.isoformat(), "window_end": END.isoformat(),
                          "manifest_key": MANIFEST, "report_key": "rec/_reports/x.json"})  # fmt: skip
    op.note_lineage(report={"counts": {"expected": 3, "archived": 3, "by_outcome": {"archived": 3}}})
    event = _event(op.get_openlineage_facets_on_complete(None))
    assert [d["name"] for d in event["inputs"]] == [
        MANIFEST,
        "rec/sub_account=42/year=2026/month=03/day=02/hour=14",
    ]
    assert event["outputs"][0]["name"] == "rec/_reports/x.json"
    assert event["outputs"][0]["outputFacets"]["outputStatistics"]["fileCount"] == 1
    assert event["run_facets"]["ringcx_archive"]["counts"] == {"expected": 3, "archived": 3}


def test_no_secret_reaches_a_facet() -> None:
    op = RingCXInteractionMetadataOperator(task_id="fetch", bucket="arch", prefix="rec")
    text = json.dumps(_event(op.get_openlineage_facets_on_start()))
    for secret in (SECRET, JWT):
        assert secret not in text


def _top_level_imports(path: Path) -> set[str]:
    """Modules imported when ``path`` is imported (not inside functions or ``TYPE_CHECKING``)."""
    found: set[str] = set()
    for node in ast.parse(path.read_text()).body:
        if isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module:
            found.add(node.module)
    return found


def test_no_module_of_the_provider_imports_openlineage_at_import_time() -> None:
    for path in PACKAGE.rglob("*.py"):
        lineage = {name for name in _top_level_imports(path) if "openlineage" in name}
        assert not lineage, f"{path} imports {lineage} at import time: import it inside the method"


@pytest.mark.integration  # a fresh interpreter, in a subprocess
def test_the_operators_import_and_build_without_the_openlineage_packages() -> None:
    """OpenLineage blocked in ``sys.modules`` (importing it raises ImportError), as without the provider: the
    client library and the provider's modules the operators' methods use. Its ``get_provider_info`` stays
    importable, since Airflow's provider discovery loads it from the installed entry point."""
    code = (
        "import sys\n"
        "for name in ('openlineage', 'airflow.providers.openlineage.extractors',\n"
        "             'airflow.providers.openlineage.plugins'):\n"
        "    sys.modules[name] = None\n"
        "from airflow_provider_ringcx.operators.metadata import RingCXInteractionMetadataOperator as M\n"
        "from airflow_provider_ringcx.operators.recordings import RingCXRecordingsToS3Operator as R\n"
        "from airflow_provider_ringcx.operators.report import RingCXWindowReportOperator as W\n"
        "from airflow_provider_ringcx.example_dags import factory\n"
        "M(task_id='m', bucket='b'); R(task_id='r', bucket='b', batch=[]); W(task_id='w', bucket='b')\n"
        "assert not [m for m in sys.modules if m.startswith('openlineage') and sys.modules[m]]\n"
        "print('ok')\n"
    )
    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, timeout=120, check=False
    )
    assert out.returncode == 0, out.stderr[-2000:]
    assert out.stdout.strip().endswith("ok")
