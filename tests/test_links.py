"""Operator extra links: URL building (AWS console, custom endpoints), the window prefix, what the tasks push,
and that Airflow serializes the links of the download and report tasks (what the UI shows)."""

from __future__ import annotations

import importlib
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlsplit

import pytest

from airflow_provider_ringcx import get_provider_info
from airflow_provider_ringcx.keys import DEFAULT_KEY_TEMPLATE, manifest_key, partition_prefix
from airflow_provider_ringcx.links import (
    MANIFEST_LINK_XCOM_KEY,
    REPORT_LINK_XCOM_KEY,
    S3_LINK_XCOM_KEY,
    RingCXReportLink,
    RingCXS3PrefixLink,
    RingCXWindowManifestLink,
    S3Location,
    push_location,
)
from airflow_provider_ringcx.operators.recordings import RingCXRecordingsToS3Operator
from tests.operators.conftest import XComRecorder

UTC = timezone.utc
DAGS = Path(__file__).resolve().parents[1] / "dags"


def query(url: str) -> dict[str, list[str]]:
    return parse_qs(urlsplit(url).query)


# --- URL building -------------------------------------------------------------------------------------------
def test_aws_prefix_opens_the_console_bucket_view_at_the_prefix() -> None:
    prefix = "ringcx/sub_account=99999999/year=2026/month=03/day=02/hour=14/"
    url = S3Location("call-archive", prefix, is_prefix=True, region="eu-west-1").url()
    assert url.startswith("https://console.aws.amazon.com/s3/buckets/call-archive?")
    assert query(url) == {"region": ["eu-west-1"], "prefix": [prefix], "showversions": ["false"]}


def test_aws_object_opens_the_console_object_view() -> None:
    key = "ringcx/_reports/sub_account=99999999/window=20260302T1400Z_20260302T1415Z.json"
    url = S3Location("call-archive", key, region="us-east-1").url()
    assert url.startswith("https://console.aws.amazon.com/s3/object/call-archive?")
    assert query(url) == {"region": ["us-east-1"], "prefix": [key]}
    assert "=" not in urlsplit(url).query.split("prefix=", 1)[1]  # the key's '=' is escaped in the query


@pytest.mark.parametrize(
    ("partition", "domain"), [("aws-cn", "amazonaws.cn"), ("aws-us-gov", "amazonaws-us-gov.com")]
)
def test_other_partitions_use_their_console(partition: str, domain: str) -> None:
    url = S3Location("b", "k", region="cn-north-1", partition=partition).url()
    assert url.startswith(f"https://console.{domain}/s3/object/b?")


def test_custom_endpoint_prefix_is_a_path_style_listing_url() -> None:
    prefix = "ringcx/sub_account=99999999/year=2026/"
    url = S3Location("archive", prefix, is_prefix=True, endpoint_url="http://127.0.0.1:9000/").url()
    assert url.startswith("http://127.0.0.1:9000/archive?")
    assert query(url) == {"prefix": [prefix]}
    bare = S3Location("archive", "", is_prefix=True, endpoint_url="https://minio.example").url()
    assert bare == "https://minio.example/archive"


def test_custom_endpoint_object_url_quotes_the_key_but_keeps_slashes() -> None:
    key = "ringcx/sub_account=1/d%2Fx/seg 1.wav"
    url = S3Location("archive", key, endpoint_url="http://minio:9000").url()
    assert url == "http://minio:9000/archive/ringcx/sub_account=1/d%252Fx/seg%201.wav"


def test_location_round_trips_through_its_xcom_form_without_credentials() -> None:
    location = S3Location("b", "p/", is_prefix=True, endpoint_url="http://e", region="r", partition="aws")
    data = location.as_dict()
    assert set(data) == {"bucket", "key", "is_prefix", "endpoint_url", "region", "partition"}
    assert S3Location.from_dict(data) == location


# --- the window prefix --------------------------------------------------------------------------------
def test_partition_prefix_is_the_common_time_partition() -> None:
    starts = [datetime(2026, 3, 2, 14, 1, tzinfo=UTC), datetime(2026, 3, 2, 14, 14, tzinfo=UTC)]
    prefix = partition_prefix(
        template=DEFAULT_KEY_TEMPLATE, prefix="/ringcx/", sub_account_id="9", starts=starts
    )
    assert prefix == "ringcx/sub_account=9/year=2026/month=03/day=02/hour=14/"
    spanning = [*starts, datetime(2026, 3, 2, 13, 58, tzinfo=UTC)]
    assert partition_prefix(
        template=DEFAULT_KEY_TEMPLATE, prefix="ringcx", sub_account_id="9", starts=spanning
    ) == ("ringcx/sub_account=9/year=2026/month=03/day=02/")
    midnight = [datetime(2026, 3, 1, 23, 59, tzinfo=UTC), datetime(2026, 3, 2, 0, 1, tzinfo=UTC)]
    assert partition_prefix(
        template=DEFAULT_KEY_TEMPLATE, prefix="ringcx", sub_account_id="9", starts=midnight
    ) == ("ringcx/sub_account=9/year=2026/month=03/")


def test_partition_prefix_follows_custom_templates_and_sanitises_ids() -> None:
    when = [datetime(2026, 3, 2, 14, 1, tzinfo=UTC)]
    template = "{date}/acct-{sub_account_id}/{dialog_id}/{segment_id}.wav"
    assert partition_prefix(template=template, prefix=None, sub_account_id="a/b", starts=when) == (
        "2026-03-02/acct-a%2Fb/"
    )
    assert partition_prefix(template=DEFAULT_KEY_TEMPLATE, prefix="", sub_account_id="9", starts=[]) == (
        "sub_account=9/"
    )


# --- what the tasks push, and what the links make of it --------------------------------------------------
def test_for_hook_reads_the_custom_endpoint_and_region(aws_conn: str, s3_endpoint: str) -> None:
    from airflow.providers.amazon.aws.hooks.s3 import S3Hook

    location = S3Location.for_hook(S3Hook(aws_conn_id=aws_conn), "b", "k")
    assert (location.endpoint_url, location.region, location.partition) == (s3_endpoint, "us-east-1", "aws")


def test_for_hook_on_aws_has_no_endpoint(monkeypatch: pytest.MonkeyPatch) -> None:
    from airflow.providers.amazon.aws.hooks.s3 import S3Hook

    monkeypatch.setenv(
        "AIRFLOW_CONN_AWS_PLAIN",
        '{"conn_type": "aws", "login": "k", "password": "s", "extra": {"region_name": "eu-central-1"}}',
    )
    location = S3Location.for_hook(S3Hook(aws_conn_id="aws_plain"), "b", "p/", is_prefix=True)
    assert location.endpoint_url is None
    assert location.url().startswith("https://console.aws.amazon.com/s3/buckets/b?region=eu-central-1&")


def test_download_task_pushes_its_window_prefix_and_logs_the_outcome_table(
    simulator: Any, ringcx_conn: str, aws_conn: str, bucket: str, s3_endpoint: str, capsys: Any
) -> None:
    from tests.operators.conftest import fast_hook

    end = datetime(2026, 3, 2, 14, 15, tzinfo=UTC)
    refs = [
        {"dialog_id": t["dialogId"], "segment_id": t["segmentId"], "start": t["segmentStartTimeMs"]}
        for t in simulator.control.ground_truth(end - timedelta(minutes=15), end)
        if t["hasRecording"] and not t["restricted"]
    ][:3]
    ghost = {**refs[0], "dialog_id": "d-404", "segment_id": "s-404"}
    op = fast_hook(
        RingCXRecordingsToS3Operator(task_id="download", batch=[*refs, ghost], bucket=bucket, retry_backoff=0)
    )
    ti = XComRecorder()
    op.execute({"ti": ti})
    log = capsys.readouterr().out  # the task logger writes (through structlog) to stdout
    pushed = S3Location.from_dict(ti.pushed[S3_LINK_XCOM_KEY])
    assert pushed.is_prefix
    assert (pushed.endpoint_url, pushed.bucket) == (s3_endpoint, bucket)
    assert pushed.key.startswith("ringcx/sub_account=99999999/year=2026/month=03/day=02/")
    assert pushed.key.endswith("/")
    listed = op.s3_hook.get_conn().list_objects_v2(Bucket=bucket, Prefix=pushed.key)
    assert sum(obj["Key"].endswith(".wav") for obj in listed["Contents"]) == 3  # the link shows them all
    table = log[log.index("ringcx outcomes: batch of 4 segments") :]
    assert "[4/4]" not in table  # the table comes last
    assert [line.split()[:2] for line in table.splitlines()[3:8]] == [
        ["archived", "3"], ["already_archived", "0"], ["forbidden", "0"], ["missing", "1"], ["failed", "0"]
    ]  # fmt: skip
    log = table
    problem = next(line for line in log.splitlines() if line.startswith("d-404/s-404"))
    assert "missing" in problem
    assert "RingCXNotFoundError" in problem


@pytest.mark.parametrize(
    ("link", "xcom_key"),
    [
        (RingCXS3PrefixLink(), S3_LINK_XCOM_KEY),
        (RingCXWindowManifestLink(), MANIFEST_LINK_XCOM_KEY),
        (RingCXReportLink(), REPORT_LINK_XCOM_KEY),
    ],
)
def test_get_link_builds_the_url_from_the_pushed_location(
    link: Any, xcom_key: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    # XCom.get_value talks to the task supervisor, which exists only inside a running task: stand-in here
    # (the UI test checks the real link of a real run).
    from airflow.sdk.execution_time.xcom import XCom

    ti = XComRecorder()
    location = S3Location("b", "ringcx/_reports/x.json", endpoint_url="http://127.0.0.1:1")
    push_location({"ti": ti}, xcom_key, location)
    asked: list[str] = []

    def get_value(*, ti_key: Any, key: str) -> Any:
        asked.append(key)
        return ti.pushed.get(key)

    monkeypatch.setattr(XCom, "get_value", get_value)
    assert link.get_link(None, ti_key=object()) == "http://127.0.0.1:1/b/ringcx/_reports/x.json"
    assert asked == [xcom_key]
    monkeypatch.setattr(XCom, "get_value", lambda **kwargs: None)
    assert link.get_link(None, ti_key=object()) == ""  # the task stopped before pushing: no link


def test_links_are_registered_and_serialized_for_the_download_and_report_tasks() -> None:
    info = get_provider_info()
    for path in info["extra-links"]:
        module, name = path.rsplit(".", 1)
        assert issubclass(
            getattr(importlib.import_module(module), name),
            (RingCXS3PrefixLink, RingCXWindowManifestLink, RingCXReportLink),
        )
    names = [link.name for link in RingCXRecordingsToS3Operator.operator_extra_links]
    assert names == ["S3 recordings", "Window manifest"]

    from airflow.dag_processing.dagbag import DagBag
    from airflow.serialization.serialized_objects import DagSerialization

    dag = DagBag(dag_folder=str(DAGS)).dags["ringcx_recordings_to_s3"]
    tasks = {
        task["__var"]["task_id"]: task["__var"] for task in DagSerialization.to_dict(dag)["dag"]["tasks"]
    }
    download_links = {
        "S3 recordings": "_link_RingCXS3PrefixLink",
        "Window manifest": "_link_RingCXWindowManifestLink",
    }
    assert tasks["download_segments"]["_operator_extra_links"] == download_links
    assert tasks["download_late_segments"]["_operator_extra_links"] == download_links
    assert tasks["report_window"]["_operator_extra_links"] == {"Window report": "_link_RingCXReportLink"}


def test_custom_endpoint_object_url_names_the_object(s3_client: Any, bucket: str, s3_endpoint: str) -> None:
    from urllib.parse import unquote

    key = "ringcx/_reports/sub_account=9/window=20260302T1400Z_20260302T1415Z.json"
    s3_client.put_object(Bucket=bucket, Key=key, Body=b'{"complete": true}')
    url = S3Location(bucket, key, endpoint_url=s3_endpoint).url()
    assert url.startswith(f"{s3_endpoint}/{bucket}/")
    path_key = unquote(urlsplit(url).path.split("/", 2)[2])
    # objects are private (S3, MinIO and moto refuse anonymous GETs): the path names the object
    assert s3_client.get_object(Bucket=bucket, Key=path_key)["Body"].read() == b'{"complete": true}'


def test_download_task_links_the_window_manifest_which_lists_exactly_the_window(
    aws_conn: str, bucket: str, s3_endpoint: str, s3_client: Any
) -> None:
    """The window's recordings share only their hour's prefix (S3 filters by prefix only), so the link to
    "the window" is its manifest: the object whose lines are exactly the window's segments."""
    from urllib.parse import unquote

    from airflow_provider_ringcx.transfers.landing import LandingConfig

    start = datetime(2026, 3, 2, 14, 0, tzinfo=UTC)
    key = manifest_key("ringcx", "99999999", start, start + timedelta(minutes=15))
    s3_client.put_object(Bucket=bucket, Key=key, Body=b'{"kind": "header"}\n')
    op = RingCXRecordingsToS3Operator(task_id="download", batch=[], bucket=bucket)
    op.aws_conn_id = aws_conn
    config = LandingConfig(bucket=bucket, sub_account_id="99999999", manifest_key=key)
    ti = XComRecorder()
    refs = [{"dialog_id": "d", "segment_id": "s", "start": "2026-03-02T14:03:00Z"}]
    op.push_link({"ti": ti}, config, refs)  # type: ignore[arg-type]
    manifest = S3Location.from_dict(ti.pushed[MANIFEST_LINK_XCOM_KEY])
    assert (manifest.bucket, manifest.key, manifest.is_prefix) == (bucket, key, False)
    assert "window=20260302T1400Z_20260302T1415Z" in manifest.key
    url = manifest.url()
    assert url.startswith(f"{s3_endpoint}/{bucket}/ringcx/_manifests/")
    path_key = unquote(urlsplit(url).path.split("/", 2)[2])
    assert s3_client.get_object(Bucket=bucket, Key=path_key)["Body"].read() == b'{"kind": "header"}\n'
    hour = S3Location.from_dict(ti.pushed[S3_LINK_XCOM_KEY])
    assert hour.key == "ringcx/sub_account=99999999/year=2026/month=03/day=02/hour=14/"  # still there

    ti = XComRecorder()
    op.push_link({"ti": ti}, LandingConfig(bucket=bucket, sub_account_id="9"), refs)  # type: ignore[arg-type]
    assert MANIFEST_LINK_XCOM_KEY not in ti.pushed  # an explicit batch without a manifest: no such link
