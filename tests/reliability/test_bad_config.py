"""Bad configuration: each mistake gives an error whose message names the setting (or the item) and says
what to do, before anything is written to S3 or any recording is downloaded, and once it is fixed nothing is
lost (the window is archived completely; the independent invariant checker agrees).

Scenarios: a lag under 5 minutes, a window over the maximum (the connection's cap, and the account's own
maximum at RingCX), a missing bucket, an unknown connection id, Object Lock asked of a bucket without it, and
a wrong time-zone name (connection and schedule).
"""

from __future__ import annotations

from datetime import datetime, timedelta, timezone
from typing import Any

import pytest
from airflow.sdk.exceptions import AirflowFailException

from airflow_provider_ringcx.example_dags.shape import build_timetable
from airflow_provider_ringcx.exceptions import (
    RingCXBadRequestError,
    RingCXConfigError,
    RingCXObjectLockError,
    RingCXWindowNotReadyError,
)
from airflow_provider_ringcx.keys import manifest_key
from airflow_provider_ringcx.operators.metadata import RingCXInteractionMetadataOperator
from airflow_provider_ringcx.run_settings import resolve_settings
from tests.fixtures.ports import free_port
from tests.fixtures.simulator import SimulatorHandle, ringcx_connection_json
from tests.reliability.conftest import FAST_RETRIES, W_END, W_START, Checker
from tests.reliability.harness import SUB, Pipeline, RunResult

UTC = timezone.utc


def _keys(s3: Any, bucket: str) -> list[str]:
    return [item["Key"] for item in s3.list_objects_v2(Bucket=bucket).get("Contents", [])]


def _vendor_calls(sim: SimulatorHandle) -> dict[str, dict[str, int]]:
    """Requests the simulator saw per route (auth included), e.g. ``{"metadata": {"200": 1}}``."""
    return dict(sim.control.stats()["requests"])


#: How a configuration error fails its task: at once, as an AirflowFailException (``failfast``).
NOT_RETRIED = "configuration error (not retried): "


def _only_error(result: RunResult) -> BaseException:
    """The one task error of a run whose metadata task failed (the report step's "no manifest" follows)."""
    assert result.task_tries == 1, f"a configuration error must not be retried: {result.errors}"
    assert "has no manifest" in str(result.errors[-1])
    return result.errors[0]


def _recover(sim: SimulatorHandle, pipe: Pipeline, s3: Any, invariants: Checker) -> None:
    """Once the setting is fixed the window is archived completely: nothing was lost to the mistake."""
    result = pipe.run_window(s3, W_START, W_END)
    assert result.report is not None, result.errors
    assert result.report["complete"] is True, result.errors
    invariants(result, rerun=False)


# --- a lag under 5 minutes -------------------------------------------------------------------------------


@pytest.mark.parametrize("lag", [timedelta(minutes=3), 4, "4.5"])
def test_operator_refuses_a_lag_under_5_minutes_at_parse_time(lag: Any) -> None:
    with pytest.raises(RingCXConfigError) as info:
        RingCXInteractionMetadataOperator(task_id="fetch", bucket="archive", lag=lag)
    message = str(info.value)
    assert message.startswith("lag=")
    assert "is under the 5-minute minimum" in message
    assert "RingCX rejects metadata windows that end less than 5 minutes ago" in message
    assert "use 15 (the default) or more" in message


@pytest.mark.parametrize(
    ("params", "env", "source"),
    [
        ({"lag_minutes": 3}, {}, "param lag_minutes"),
        ({}, {"RINGCX_LAG_MINUTES": "2"}, "environment variable RINGCX_LAG_MINUTES"),
    ],
)
def test_dag_settings_refuse_a_lag_under_5_minutes_and_name_where_it_came_from(
    params: dict, env: dict, source: str
) -> None:
    with pytest.raises(RingCXConfigError) as info:
        resolve_settings(params, lambda name: None, {"RINGCX_BUCKET": "archive", **env})
    message = str(info.value)
    assert message.startswith("lag_minutes=")
    assert "under the 5-minute minimum" in message
    assert "use 15 (the default) or more" in message
    assert f"(set by the {source})" in message


def test_a_window_that_is_not_lag_old_is_not_queried(
    rsim: SimulatorHandle, pipe: Pipeline, s3_client: Any
) -> None:
    """A window ending 2 minutes ago (less than the lag): the task says when it can run; RingCX is not
    called and S3 is not written."""
    end = datetime.now(UTC).replace(second=0, microsecond=0) - timedelta(minutes=2)
    result = RunResult()
    pipe.retries = 0
    error = pipe.fetch(end - timedelta(minutes=15), end, result)
    assert isinstance(error, RingCXWindowNotReadyError)
    assert "can be queried only once it is 0:15:00 old" in str(error)
    assert "retry after that time or use deferrable=True" in str(error)
    assert error.ready_at == end + timedelta(minutes=15)
    assert "metadata" not in _vendor_calls(rsim)
    assert _keys(s3_client, pipe.bucket) == []


# --- a window over the maximum ----------------------------------------------------------------------------


def test_connection_window_over_the_limit_is_refused_before_any_call(
    rsim: SimulatorHandle,
    pipe: Pipeline,
    s3_client: Any,
    monkeypatch: pytest.MonkeyPatch,
    invariants: Checker,
) -> None:
    monkeypatch.setenv(
        "AIRFLOW_CONN_RINGCX_DEFAULT", ringcx_connection_json(rsim, **FAST_RETRIES, max_window_seconds=86400)
    )
    error = _only_error(pipe.run_window(s3_client, W_START, W_END))
    assert isinstance(error, RingCXConfigError)
    assert str(error) == NOT_RETRIED + (
        "connection 'ringcx_default': extra max_window_seconds is 86400; use a whole number in 60..10800 "
        "(RingCX answers at most 10800 s per request)"
    )
    assert _vendor_calls(rsim) == {}
    assert _keys(s3_client, pipe.bucket) == []

    monkeypatch.setenv("AIRFLOW_CONN_RINGCX_DEFAULT", ringcx_connection_json(rsim, **FAST_RETRIES))
    _recover(rsim, pipe, s3_client, invariants)


def test_window_over_the_accounts_maximum_names_max_window_seconds(
    rsim: SimulatorHandle,
    pipe: Pipeline,
    s3_client: Any,
    monkeypatch: pytest.MonkeyPatch,
    invariants: Checker,
) -> None:
    """The account accepts at most 600 s per request (older deployments: 3600) but the connection allows
    3600: RingCX answers 400; the error names the connection setting to lower and the value to use."""
    rsim.control.patch_config(max_interval=600)
    monkeypatch.setenv(
        "AIRFLOW_CONN_RINGCX_DEFAULT", ringcx_connection_json(rsim, **FAST_RETRIES, max_window_seconds=3600)
    )
    error = _only_error(pipe.run_window(s3_client, W_START, W_END))
    assert isinstance(error, RingCXBadRequestError)
    message = str(error)
    assert "HTTP 400" in message
    assert "timeInterval: must be between 1 and 600" in message  # the vendor's own words
    assert message.endswith(
        "RingCX refused timeInterval 900 s: it is over this account's maximum window - set the connection "
        "extra max_window_seconds (now 3600) of 'ringcx_default' to at most 600 s, as RingCX says"
    ), message
    assert _vendor_calls(rsim)["metadata"] == {"400": 1}
    assert _keys(s3_client, pipe.bucket) == []

    monkeypatch.setenv(
        "AIRFLOW_CONN_RINGCX_DEFAULT", ringcx_connection_json(rsim, **FAST_RETRIES, max_window_seconds=600)
    )
    _recover(rsim, pipe, s3_client, invariants)


# --- a missing bucket ---------------------------------------------------------------------------------------


def test_dag_settings_without_a_bucket_say_where_to_set_one() -> None:
    with pytest.raises(RingCXConfigError) as info:
        resolve_settings({"bucket": None}, lambda name: None, {})
    assert str(info.value) == (
        "no S3 bucket configured: set the DAG param 'bucket', the Variable ringcx_bucket or the environment "
        "variable RINGCX_BUCKET"
    )


def test_download_into_a_bucket_that_does_not_exist_fails_before_any_download(
    rsim: SimulatorHandle, pipe: Pipeline, s3_client: Any
) -> None:
    """The window's batches are listed (into a good bucket), then the download tasks are pointed at a bucket
    that does not exist: they fail at once, naming it, and not one recording is fetched for nothing."""
    result = RunResult()
    batches = pipe.fetch(W_START, W_END, result)
    assert isinstance(batches, list), result.errors
    wrong = Pipeline(bucket="no-such-bucket-4f1c", retries=0)
    wrong.download(batches[0], manifest_key(pipe.prefix, SUB, W_START, W_END), result)
    (error,) = result.errors
    assert isinstance(error, RingCXConfigError), error
    assert str(error) == NOT_RETRIED + (
        "S3 bucket 'no-such-bucket-4f1c' does not exist (or not at this endpoint/region): create it, or fix "
        "the bucket setting or the aws connection's endpoint_url/region"
    )
    assert "download" not in _vendor_calls(rsim)


def test_metadata_into_a_bucket_that_does_not_exist_fails_before_any_vendor_call(
    rsim: SimulatorHandle, aws_conn: str, s3_client: Any
) -> None:
    pipe = Pipeline(bucket="no-such-bucket-4f1c", retries=0)
    error = pipe.fetch(W_START, W_END, RunResult())
    assert isinstance(error, RingCXConfigError), error
    assert "S3 bucket 'no-such-bucket-4f1c' does not exist" in str(error)
    assert "metadata" not in _vendor_calls(rsim)


# --- an unknown connection id -------------------------------------------------------------------------------


def test_unknown_ringcx_conn_id_names_it_and_how_to_create_it(
    rsim: SimulatorHandle, aws_conn: str, versioned_bucket: str, s3_client: Any, invariants: Checker
) -> None:
    pipe = Pipeline(bucket=versioned_bucket, ringcx_conn_id="ringcx_prod-eu")
    error = _only_error(pipe.run_window(s3_client, W_START, W_END))
    assert isinstance(error, RingCXConfigError)
    assert str(error) == NOT_RETRIED + (
        "RingCX connection 'ringcx_prod-eu' is not defined: create it (Admin > Connections, type "
        "'RingCentral RingCX', or the environment variable AIRFLOW_CONN_RINGCX_PROD-EU) or set "
        "ringcx_conn_id to an existing ringcx connection"
    )
    assert _vendor_calls(rsim) == {}
    assert _keys(s3_client, versioned_bucket) == []


def test_unknown_aws_conn_id_names_it_instead_of_falling_back_to_default_aws(
    rsim: SimulatorHandle,
    aws_conn: str,
    versioned_bucket: str,
    s3_client: Any,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # where boto3's defaults would go: a closed local port (never the real AWS from a test)
    monkeypatch.setenv("AWS_ENDPOINT_URL", f"http://127.0.0.1:{free_port()}")
    monkeypatch.setenv("AWS_MAX_ATTEMPTS", "1")
    pipe = Pipeline(bucket=versioned_bucket, aws_conn_id="aws_archive", retries=0)
    error = pipe.fetch(W_START, W_END, RunResult())
    assert isinstance(error, RingCXConfigError), error
    assert "AWS connection 'aws_archive' is not defined" in str(error)
    assert "metadata" not in _vendor_calls(rsim)


# --- Object Lock asked of a bucket without it ---------------------------------------------------------------


def test_object_lock_on_a_bucket_without_it_fails_before_any_download(
    rsim: SimulatorHandle, pipe: Pipeline, s3_client: Any, invariants: Checker
) -> None:
    pipe.download_kwargs.update(object_lock_mode="COMPLIANCE", object_lock_retention_days=2555)
    result = pipe.run_window(s3_client, W_START, W_END)
    lock_errors = [err for err in result.errors if isinstance(err.__cause__, RingCXObjectLockError)]
    assert lock_errors
    assert all(isinstance(err, AirflowFailException) for err in lock_errors)
    assert len(lock_errors) == len(result.batches)  # each download task, once: not retried
    assert str(lock_errors[0]) == NOT_RETRIED + (
        f"Object Lock was requested (mode=COMPLIANCE, legal hold=False) but bucket {pipe.bucket!r} is not "
        "Object-Lock enabled; create the bucket with Object Lock enabled or remove the object_lock_* options"
    )
    assert "download" not in _vendor_calls(rsim)
    assert not [key for key in _keys(s3_client, pipe.bucket) if key.startswith(f"{pipe.prefix}/sub_account=")]
    assert result.report is not None  # the report lists every segment as not archived, with why
    assert result.report["counts"]["archived"] == 0
    assert {item["status"] for item in result.report["not_archived"]} == {"object_missing"}

    pipe.download_kwargs.clear()  # the fix: no lock on this bucket (or a bucket created with Object Lock)
    _recover(rsim, pipe, s3_client, invariants)


# --- a wrong time-zone name ---------------------------------------------------------------------------------


def test_connection_with_an_unknown_time_zone_is_refused_before_any_call(
    rsim: SimulatorHandle,
    pipe: Pipeline,
    s3_client: Any,
    monkeypatch: pytest.MonkeyPatch,
    invariants: Checker,
) -> None:
    monkeypatch.setenv(
        "AIRFLOW_CONN_RINGCX_DEFAULT", ringcx_connection_json(rsim, **FAST_RETRIES, timezone="Europe/Londn")
    )
    error = _only_error(pipe.run_window(s3_client, W_START, W_END))
    assert isinstance(error, RingCXConfigError)
    assert str(error) == NOT_RETRIED + (
        "connection 'ringcx_default': extra timezone is 'Europe/Londn', which is not a known time zone; use "
        "an IANA name such as 'UTC', 'US/Eastern' or 'America/New_York'"
    )
    assert _vendor_calls(rsim) == {}
    assert _keys(s3_client, pipe.bucket) == []

    monkeypatch.setenv("AIRFLOW_CONN_RINGCX_DEFAULT", ringcx_connection_json(rsim, **FAST_RETRIES))
    _recover(rsim, pipe, s3_client, invariants)


@pytest.mark.parametrize("tz", ["Mars/Olympus", "Europe/Londn", "UTC+25"])
def test_schedule_with_an_unknown_time_zone_is_refused_at_parse_time(tz: str) -> None:
    with pytest.raises(RingCXConfigError) as info:
        build_timetable({"RINGCX_SCHEDULE_TZ": tz})
    assert str(info.value) == (
        f"RINGCX_SCHEDULE_TZ={tz!r} is not a known time zone; use an IANA name such as 'UTC' (the default) "
        "or 'America/New_York'"
    )


# --- absurd settings (issue #12 item 17) -------------------------------------------------------------------


@pytest.mark.parametrize(
    ("extra", "names"),
    [
        ({"download_budget": "1/31536000"}, ("download_budget", "'1/31536000'", "at most 3600 s")),
        ({"read_timeout": 3600, "retry_attempts": 100}, ("read_timeout", "0.001..600")),
        (
            {"read_timeout": 600, "retry_attempts": 20},
            ("retry_attempts=20", "read_timeout=600", "3600 s limit"),
        ),
    ],
)
def test_absurd_connection_settings_are_refused_before_any_call(
    rsim: SimulatorHandle,
    pipe: Pipeline,
    s3_client: Any,
    monkeypatch: pytest.MonkeyPatch,
    invariants: Checker,
    extra: dict[str, Any],
    names: tuple[str, ...],
) -> None:
    monkeypatch.setenv(
        "AIRFLOW_CONN_RINGCX_DEFAULT", ringcx_connection_json(rsim, **{**FAST_RETRIES, **extra})
    )
    error = _only_error(pipe.run_window(s3_client, W_START, W_END))
    assert isinstance(error, RingCXConfigError)
    for name in names:
        assert name in str(error)
    assert _vendor_calls(rsim) == {}
    assert _keys(s3_client, pipe.bucket) == []

    monkeypatch.setenv("AIRFLOW_CONN_RINGCX_DEFAULT", ringcx_connection_json(rsim, **FAST_RETRIES))
    _recover(rsim, pipe, s3_client, invariants)


@pytest.mark.parametrize(
    ("params", "env", "text"),
    [
        ({"lag_minutes": 525600}, {}, "lag_minutes=525600 is outside a whole number in 5..10080"),
        ({}, {"RINGCX_RESCAN_LOOKBACK_MINUTES": "999999"}, "rescan_lookback_minutes=999999 is outside"),
        ({"object_lock_retention_days": 100000}, {}, "object_lock_retention_days=100000 is outside"),
        ({"batch_size": 10**6}, {}, "batch_size=1000000"),
    ],
)
def test_dag_settings_refuse_absurd_values_naming_the_setting_and_its_source(
    params: dict, env: dict, text: str
) -> None:
    with pytest.raises(RingCXConfigError) as info:
        resolve_settings(params, lambda name: None, {"RINGCX_BUCKET": "archive", **env})
    assert text in str(info.value)
    assert "set by the" in str(info.value)
