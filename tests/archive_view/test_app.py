"""The archive page's routes, through FastAPI's TestClient, against a ledger in a moto S3 server.

The app is the plugin's own (:func:`create_app`) with Airflow's own auth dependency and auth manager (the
SimpleAuthManager the stack uses, tokens signed with a test JWT secret): no auth is mocked. The ledger is
built by the real report and ledger code (``tests/coverage/conftest.py``); the reader is the plugin's, with a
plain boto3 client instead of the ``aws`` connection (the browser test, ``tests/ui/test_ui_archive.py``,
covers the connection under the real ``airflow api-server``).
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from datetime import date, timedelta
from typing import Any

import pytest
from fastapi.testclient import TestClient

from airflow_provider_ringcx import keys
from airflow_provider_ringcx.archive_view.app import create_app
from airflow_provider_ringcx.archive_view.data import ArchiveConfig, ArchiveReader, archive_config
from airflow_provider_ringcx.coverage import CoverageGrid, CoverageLedger
from airflow_provider_ringcx.links import S3Location
from tests.coverage.conftest import PREFIX, SUB, Counting, put_report, utc

Q = timedelta(minutes=15)
DAY = date(2026, 3, 2)
NOW = utc(2026, 3, 4, 12)
XSS = '<script>alert("x")</script><img src=x onerror=alert(1)>'


@pytest.fixture
def counting(s3_endpoint: str) -> Counting:
    return Counting(s3_endpoint)


@pytest.fixture
def auth_manager(monkeypatch: pytest.MonkeyPatch) -> Any:
    """Airflow's SimpleAuthManager, initialised as the API server does (a JWT secret for the test).

    Token checks read the ``revoked_token`` table: it is created in the session's SQLite DB if absent
    (``checkfirst``: nothing else in the DB is touched; no reset mid-session).
    """
    from airflow.models.revoked_token import RevokedToken
    from airflow.settings import engine

    RevokedToken.__table__.create(engine, checkfirst=True)
    from airflow.api_fastapi.app import init_auth_manager

    monkeypatch.setenv("AIRFLOW__API_AUTH__JWT_SECRET", "archive-view-test-secret-" + "0" * 48)
    monkeypatch.setenv(
        "AIRFLOW__CORE__AUTH_MANAGER",
        "airflow.api_fastapi.auth.managers.simple.simple_auth_manager.SimpleAuthManager",
    )
    return init_auth_manager()


def token(manager: Any, role: str = "viewer") -> str:
    from airflow.api_fastapi.auth.managers.simple.user import SimpleAuthManagerUser

    return str(manager.generate_jwt(SimpleAuthManagerUser(username=f"u-{role}", role=role)))


def archive(counting: Counting, bucket: str) -> ArchiveReader:
    config = ArchiveConfig(bucket, PREFIX, "aws_default", keys.DEFAULT_KEY_TEMPLATE, 15)

    def location(key: str, is_prefix: bool) -> S3Location:
        return S3Location(bucket, key, is_prefix, endpoint_url="http://s3.test")

    return ArchiveReader(counting.client, config, location=location, clock=lambda: NOW)


@pytest.fixture
def ledger(counting: Counting, bucket: str) -> str:
    """2026-03-02: 14:00 complete, 14:15 incomplete (a 403 whose reason is markup), 14:50-15:05 off-grid."""
    s3 = counting.client
    put_report(s3, bucket, utc(2026, 3, 2, 14), utc(2026, 3, 2, 14, 15), archived=3, size=500)
    put_report(
        s3, bucket, utc(2026, 3, 2, 14, 15), utc(2026, 3, 2, 14, 30), archived=1,
        not_archived=[("forbidden", XSS)],
    )  # fmt: skip
    put_report(s3, bucket, utc(2026, 3, 2, 14, 50), utc(2026, 3, 2, 15, 5), archived=2)
    CoverageLedger(s3, bucket, PREFIX, clock=lambda: NOW).refresh(SUB, DAY, DAY + timedelta(days=2))
    return bucket


@pytest.fixture
def client(auth_manager: Any, counting: Counting, ledger: str) -> Iterator[TestClient]:
    app = create_app(reader=lambda: archive(counting, ledger))
    with TestClient(app, root_path="/ringcx-archive") as test_client:
        yield test_client


def signed(client: TestClient, manager: Any, path: str, role: str = "viewer", **params: Any) -> Any:
    return client.get(path, params=params, headers={"Authorization": f"Bearer {token(manager, role)}"})


def test_anonymous_requests_get_401_and_no_data(client: TestClient) -> None:
    for path, params in (("/", {}), ("/day", {"sub": SUB, "day": "2026-03-02"}), ("/window", {"sub": SUB})):
        response = client.get(path, params=params)
        assert response.status_code == 401, path
        assert SUB not in response.text
        assert "forbidden" not in response.text
        assert "Sign in to Airflow" in response.text
    assert client.get("/", headers={"Authorization": "Bearer not-a-token"}).status_code == 403
    client.cookies.set("_token", "forged")  # the UI's JWT cookie
    assert client.get("/").status_code == 403
    client.cookies.clear()


def test_the_calendar_shows_each_state_with_totals(
    client: TestClient, auth_manager: Any, counting: Any
) -> None:
    counting.reset()
    page = signed(client, auth_manager, "/", days=2, end="2026-03-04")
    assert page.status_code == 200, page.text
    html = page.text
    assert f'data-sub="{SUB}"' in html
    found = {
        part: state for state, part in re.findall(r'data-state="(\w+)" data-window="(20260302T\d{4}Z)_', html)
    }
    assert found["20260302T1400Z"] == "complete"
    assert found["20260302T1415Z"] == "incomplete"
    assert found["20260302T1430Z"] == "missing"
    assert found["20260302T1445Z"] == "overlapping"
    assert found["20260302T1500Z"] == "overlapping"
    assert re.search(r'data-total="recordings">6<', html)  # 3 + 1 + 2
    assert re.search(r'data-total="complete">1<', html)
    assert re.search(r'data-total="overlapping">2<', html)
    assert re.search(r'data-total="complete_days">0/2<', html)
    titles = re.findall(r'title="(14:15–14:30 incomplete[^"]*)"', html)
    assert titles == [
        "14:15–14:30 incomplete: report 14:15–14:30: 1 forbidden; dx-0/sx-0: forbidden "
        "(&lt;script&gt;alert(&#34;x&#34;)&lt;/script&gt;&lt;img src=x onerror=alert(1)&gt;)"
    ]
    assert "<script>" not in html
    for name in ("complete", "incomplete", "missing", "pending", "overlapping"):
        assert f'data-legend="{name}"' in html
    # bounded cost: 1 LIST (sub-accounts) and one GET per day shown plus the day before
    assert counting.counts == {"ListObjectsV2": 1, "GetObject": 3}


def test_the_day_lists_windows_with_counts_and_escaped_reasons(client: TestClient, auth_manager: Any) -> None:
    html = signed(client, auth_manager, "/day", sub=SUB, day="2026-03-02").text
    row = re.search(
        r'<tr data-window="20260302T1415Z_20260302T1430Z" data-state="incomplete">(.*?)</tr>', html, re.S
    )
    assert row is not None
    assert re.findall(r'class="num">(\d*)<', row.group(1)) == ["2", "1", "1"]
    assert "<script>" not in html
    assert "onerror=alert(1)>" not in html
    assert "&lt;script&gt;" in html
    assert 'data-window="20260302T1450Z_20260302T1505Z"' in html  # the off-grid report is listed


def test_the_window_shows_its_report_segments_and_links(
    client: TestClient, auth_manager: Any, counting: Any
) -> None:
    counting.reset()
    html = signed(client, auth_manager, "/window", sub=SUB, window="20260302T1415Z_20260302T1430Z").text
    assert 'id="window-state">Coverage: <span class="state" data-state="incomplete"' in html
    assert re.search(r'data-count="not_archived">1<', html)
    assert "<td>forbidden</td>" in html
    assert "&lt;img src=x onerror=alert(1)&gt;" in html
    assert "<script>alert" not in html
    report = keys.report_key(PREFIX, SUB, utc(2026, 3, 2, 14, 15), utc(2026, 3, 2, 14, 30))
    links = dict(re.findall(r'id="link-(\w+)" href="([^"]+)"', html))
    bucket = links["report"].split("/")[3]
    assert links["report"] == f"http://s3.test/{bucket}/{report}"
    assert links["recordings"] == (
        f"http://s3.test/{bucket}?prefix=ringcx%2Fsub_account%3D{SUB}%2Fyear%3D2026%2Fmonth%3D03%2Fday%3D02"
        "%2Fhour%3D14%2F"
    )
    assert links["manifest"].endswith(
        "/ringcx/_manifests/sub_account=12345/window=20260302T1415Z_20260302T1430Z.jsonl"
    )
    assert counting.counts == {"GetObject": 3}  # the day's rollup, the day before, the report


def test_a_missing_window_says_so(client: TestClient, auth_manager: Any) -> None:
    html = signed(client, auth_manager, "/window", sub=SUB, window="20260302T1430Z_20260302T1445Z").text
    assert 'data-state="missing"' in html
    assert 'id="no-report"' in html
    assert "no report object" in html


@pytest.mark.parametrize(
    ("path", "params"),
    [
        ("/", {"days": "0"}),
        ("/", {"days": "999"}),
        ("/", {"end": "not-a-date"}),
        ("/", {"grid": "7"}),
        ("/", {"sub": "../../etc"}),
        ("/day", {"sub": SUB}),
        ("/window", {"sub": SUB, "window": "20260302T1415Z"}),
        ("/window", {"sub": SUB, "window": "20260302T1430Z_20260302T1415Z"}),
        ("/", {"end": "0001-01-05"}),  # days before year 1: a date overflow, not a 500
        ("/", {"end": "9999-12-31", "days": "1"}),
        ("/day", {"sub": SUB, "day": "9999-12-31"}),
        ("/window", {"sub": SUB, "window": "99991231T2345Z_99991231T2359Z"}),
    ],
)
def test_bad_query_parameters_are_a_400_page(
    client: TestClient, auth_manager: Any, path: str, params: dict
) -> None:
    response = signed(client, auth_manager, path, **params)
    assert response.status_code == 400, response.text
    assert "Invalid query parameters" in response.text
    assert "<script" not in response.text


def test_an_empty_archive_and_a_missing_bucket_are_explained(
    auth_manager: Any, counting: Counting, bucket: str
) -> None:
    with TestClient(create_app(reader=lambda: archive(counting, bucket))) as empty:
        html = signed(empty, auth_manager, "/").text
    assert 'id="empty"' in html
    assert "No coverage ledger yet" in html
    with TestClient(create_app(reader=lambda: archive(counting, "no-such-bucket-here"))) as missing:
        response = signed(missing, auth_manager, "/")
        assert response.status_code == 503
        assert "bucket &#39;no-such-bucket-here&#39; does not exist" in response.text
        response = signed(missing, auth_manager, "/day", sub=SUB, day="2026-03-02")
        assert response.status_code == 503


def test_the_settings_come_from_variables_and_environment_like_the_dags() -> None:
    config = archive_config({"RINGCX_BUCKET": "env-bucket", "RINGCX_LAG_MINUTES": "20"}, lambda name: None)
    assert (config.bucket, config.prefix, config.lag_minutes) == ("env-bucket", "ringcx", 20)
    variables = {"ringcx_bucket": "var-bucket", "ringcx_prefix": "/a/b/"}
    config = archive_config({"RINGCX_BUCKET": "env-bucket"}, variables.get)
    assert (config.bucket, config.prefix) == ("var-bucket", "a/b")
    assert config.grid(15) == CoverageGrid(Q, Q)
    from airflow_provider_ringcx.archive_view.data import ArchiveUnavailable

    with pytest.raises(ArchiveUnavailable, match="no S3 bucket configured"):
        archive_config({}, lambda name: None)


def _per_dag_manager() -> Any:
    """An auth manager with per-DAG permissions (as FAB or Keycloak grant them): user ``u-limited`` may
    read the runs of DAG ``one_other_dag`` only. It is SimpleAuthManager with that one rule; the stack has no
    per-DAG auth manager to run for real."""
    from airflow.api_fastapi.auth.managers.simple.simple_auth_manager import SimpleAuthManager

    class PerDagAuthManager(SimpleAuthManager):
        def is_authorized_dag(
            self, *, method: Any, user: Any, access_entity: Any = None, details: Any = None
        ):
            if getattr(user, "username", "") == "u-limited":
                return method == "GET" and details is not None and details.id == "one_other_dag"
            return super().is_authorized_dag(
                method=method, user=user, access_entity=access_entity, details=details
            )

    return PerDagAuthManager


def test_a_dag_id_in_the_query_does_not_widen_access(
    auth_manager: Any, counting: Counting, ledger: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Airflow's requires_access_dag checks the request's own ``?dag_id=`` when there is one: a user who may
    read one unrelated DAG must not see every sub-account's archive by adding ``?dag_id=that_dag``."""
    from airflow.models.base import Base
    from airflow.settings import engine

    names = ("team", "dag_bundle", "dag_bundle_team", "dag")  # what the check reads of the DAG's team
    Base.metadata.create_all(engine, tables=[Base.metadata.tables[n] for n in names], checkfirst=True)
    manager = _per_dag_manager()()
    manager.init()
    monkeypatch.setattr("airflow.api_fastapi.core_api.security.get_auth_manager", lambda: manager)
    limited = str(manager.generate_jwt(_user("u-limited")))
    with TestClient(create_app(reader=lambda: archive(counting, ledger))) as page:
        headers = {"Authorization": f"Bearer {limited}"}
        assert page.get("/", headers=headers).status_code == 403
        for path, params in (("/", {}), ("/day", {"sub": SUB, "day": "2026-03-02"})):
            response = page.get(path, params={**params, "dag_id": "one_other_dag"}, headers=headers)
            assert response.status_code == 403, path
            assert SUB not in response.text


def _user(name: str) -> Any:
    from airflow.api_fastapi.auth.managers.simple.user import SimpleAuthManagerUser

    return SimpleAuthManagerUser(username=name, role="viewer")
