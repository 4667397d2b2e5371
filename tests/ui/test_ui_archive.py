"""The "RingCX archive" page in a real browser, under the real ``airflow api-server`` (issue 15 item 4).

On the UI stack of ``conftest.py`` this test makes one window of each state itself, through the REST API
and S3 as an operator would meet them (2026-03-02, UTC):

- **complete**: a run of 13:45-14:00 archives every recording;
- **incomplete**: 14:15-14:30 holds a recording the simulator answers 403 for (a restricted id), and the run
  does not allow it, so its report says not complete (the run fails). The conftest's run of 14:00-14:15 is
  incomplete too: its 403 was only waived (``allow_unarchived``), which the ledger does not count as archived;
- **missing**: 14:30-14:45 is archived, then its report is deleted (a manifest but no report);
- **overlapping**: an off-grid manual report of 14:45-14:55, so the grid window 14:45-15:00 is only partly
  archived. The live DAG now refuses an off-grid data interval (``rungrid.check_data_interval``), so this
  report, as a run before that check or a hand-made run left it, is written with the report code itself.

The ledger is refreshed with the coverage API (what the audit DAG and the CLI do; the page only reads it).
Then headless Chromium opens Browse > RingCX archive and checks each state's colour, symbol and counts,
the totals, the drill-down (day, windows, a window's report and segments) and the S3 link targets, and an
anonymous request gets 401 and no data. The links' targets are opened in a new tab: in this headless
Chromium a click on the cross-origin S3 link inside the UI's iframe did not navigate.
Screenshots: ``artifacts/ui/*archive*.png``.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from datetime import date, datetime, timedelta, timezone
from typing import Any
from urllib.parse import parse_qs, urlsplit

import pytest
import requests

from airflow_provider_ringcx import keys
from airflow_provider_ringcx.archive_view.calendar import STYLES
from airflow_provider_ringcx.coverage import CoverageGrid, CoverageLedger, CoverageResult
from airflow_provider_ringcx.example_dags.ringcx_recordings_to_s3 import DAG_ID
from airflow_provider_ringcx.report import Reconciliation, build_report, write_report
from airflow_provider_ringcx.windows import Window
from scripts.stack import poll
from tests.ui.conftest import ARTIFACTS, UIRun

pytestmark = [pytest.mark.ui, pytest.mark.timeout(900)]

SUB = "99999999"
DAY = date(2026, 3, 2)
RESTRICTED = {
    "dialogId": "dlg-restricted-2",
    "segmentId": "seg-403-b",
    "segmentEndTimeMs": "2026-03-02T14:25:00Z",
    "restricted": True,
}
#: state -> (run id, data interval end); the DAG archives its data interval shifted back by 15 minutes
RUNS = {
    "complete": ("ui_complete_1345", "2026-03-02T14:15:00Z"),
    "incomplete": ("ui_incomplete_1415", "2026-03-02T14:45:00Z"),
    "missing": ("ui_missing_1430", "2026-03-02T15:00:00Z"),
}
WINDOWS = {  # a grid window of each state
    "complete": "20260302T1345Z_20260302T1400Z",
    "incomplete": "20260302T1415Z_20260302T1430Z",
    "missing": "20260302T1430Z_20260302T1445Z",
    "overlapping": "20260302T1445Z_20260302T1500Z",
}
WAIVED = "20260302T1400Z_20260302T1415Z"  # conftest's run: a 403 waived by allow_unarchived
OFF_GRID = "20260302T1445Z_20260302T1455Z"


def utc(text: str) -> datetime:
    return datetime.fromisoformat(text.replace("Z", "+00:00")).astimezone(timezone.utc)


def shot(page: Any, name: str) -> None:
    page.screenshot(path=str(ARTIFACTS / f"{name}.png"), full_page=True)


def rgb(colour: str) -> str:
    return "rgb({}, {}, {})".format(*(int(colour[i : i + 2], 16) for i in (1, 3, 5)))


@dataclass
class Archive:
    ui: UIRun
    result: CoverageResult
    reports: dict[str, dict[str, Any]]

    @property
    def app(self) -> str:
        return f"{self.ui.url}/ringcx-archive"


def write_off_grid_report(s3: Any, bucket: str, prefix: str) -> None:
    """A complete report of 14:45-14:55 (no recording in it), by the provider's report code."""
    start, end = keys.parse_window_part(OFF_GRID)  # type: ignore[misc]
    key = keys.report_key(prefix, SUB, start, end)
    report = build_report(
        window=Window(start, end), sub_account_id=SUB, bucket=bucket,
        manifest_key=keys.manifest_key(prefix, SUB, start, end), key=key,
        reconciliation=Reconciliation([]), run={"run_id": "manual__2026-03-02T15:10:00+00:00"},
    )  # fmt: skip
    write_report(s3, bucket, key, report)


@pytest.fixture(scope="module")
def archive(ui_run: UIRun) -> Archive:
    """Run three more windows, delete one report, add an off-grid one, refresh the ledger."""
    stack = ui_run.stack
    requests.post(f"{stack.sim_url}/_sim/segments", json=[RESTRICTED], timeout=30).raise_for_status()
    api = f"{ui_run.url}/api/v2/dags/{DAG_ID}/dagRuns"
    for run_id, end in RUNS.values():
        body = {
            "dag_run_id": run_id,
            "logical_date": end,
            "data_interval_start": (utc(end) - timedelta(minutes=15)).isoformat().replace("+00:00", "Z"),
            "data_interval_end": end,
            "conf": {"batch_size": 50, "rescan_lookback_minutes": 0},  # no allow_unarchived: a 403 counts
        }
        created = requests.post(api, headers=ui_run.headers, json=body, timeout=30)
        assert created.status_code == 200, created.text

    def finished() -> dict[str, str] | None:
        try:
            states = {
                run_id: requests.get(f"{api}/{run_id}", headers=ui_run.headers, timeout=30).json()["state"]
                for run_id, _end in RUNS.values()
            }
        except requests.Timeout:  # a busy machine: ask again
            return None
        return states if all(state in ("success", "failed") for state in states.values()) else None

    states = poll("the archive view's runs to finish", finished, 300, interval=2)
    assert states == {
        "ui_complete_1345": "success",
        "ui_incomplete_1415": "failed",
        "ui_missing_1430": "success",
    }
    s3 = stack.s3_client()
    reports = {}
    for name, part in {**WINDOWS, "waived": WAIVED}.items():
        if name != "overlapping":
            key = keys.report_key(stack.prefix, SUB, *keys.parse_window_part(part))  # type: ignore[misc]
            reports[name] = json.loads(s3.get_object(Bucket=stack.bucket, Key=key)["Body"].read())
    missing_key = keys.report_key(stack.prefix, SUB, *keys.parse_window_part(WINDOWS["missing"]))  # type: ignore[misc]
    s3.delete_object(Bucket=stack.bucket, Key=missing_key)  # a delete marker: the report is gone
    write_off_grid_report(s3, stack.bucket, stack.prefix)
    ledger = CoverageLedger(s3, stack.bucket, stack.prefix)
    result = ledger.refresh(SUB, DAY, DAY + timedelta(days=1), CoverageGrid())
    return Archive(ui_run, result, reports)


def test_the_ledger_holds_the_four_states(archive: Archive) -> None:
    states = {keys.window_part(w.start, w.end): w.state for w in archive.result.days[0].windows}
    assert {name: states[part] for name, part in WINDOWS.items()} == {n: n for n in WINDOWS}
    assert states[WAIVED] == "incomplete"
    assert archive.reports["complete"]["complete"] is True
    assert archive.reports["incomplete"]["complete"] is False
    assert archive.reports["incomplete"]["counts"]["by_status"]["forbidden"] >= 1


def test_anonymous_requests_get_no_data(archive: Archive) -> None:
    for path in ("/", f"/day?sub={SUB}&day=2026-03-02", f"/window?sub={SUB}&window={WINDOWS['incomplete']}"):
        response = requests.get(archive.app + path, timeout=30)
        assert response.status_code == 401, (path, response.status_code)
        assert SUB not in response.text
        assert "dlg-restricted" not in response.text
    forged = requests.get(archive.app + "/", cookies={"_token": "forged"}, timeout=30)
    assert forged.status_code == 403
    # the same page with the REST API's token (Airflow's own auth): the data
    ok = requests.get(archive.app + "/?days=1&end=2026-03-03", headers=archive.ui.headers, timeout=30)
    assert ok.status_code == 200
    assert f'data-sub="{SUB}"' in ok.text


def test_the_calendar_shows_each_state_with_its_colour_and_the_totals(
    archive: Archive, browser_page: Any
) -> None:
    page = browser_page
    page.goto(f"{archive.ui.url}/")
    page.get_by_role("button", name="Browse").click()
    page.get_by_role("menuitem", name="RingCX archive").click()
    frame = page.frame_locator("iframe")
    frame.locator("form").wait_for()
    shot(page, "11-archive-menu-default-range")
    frame.locator("input[name=days]").fill("1")
    frame.locator("input[name=end]").fill("2026-03-03")
    frame.get_by_role("button", name="Show").click()
    section = frame.locator(f'section[data-sub="{SUB}"]')
    section.locator('tr[data-day="2026-03-02"]').wait_for()
    for state, part in WINDOWS.items():
        stripe = section.locator(f'a[data-window="{part}"]')
        assert stripe.get_attribute("data-state") == state
        assert stripe.inner_text().strip() == STYLES[state].symbol  # not colour alone
        assert (stripe.get_attribute("title") or "").startswith(f"{part[9:11]}:{part[11:13]}")
        assert f" {state}" in (stripe.get_attribute("aria-label") or "")
        colour = stripe.evaluate("node => getComputedStyle(node).backgroundColor")
        legend = frame.locator(f'[data-legend="{state}"] .swatch')
        assert (
            colour
            == rgb(STYLES[state].colour)
            == legend.evaluate("node => getComputedStyle(node).backgroundColor")
        ), state
    counts = archive.result.counts()
    for name in ("complete", "incomplete", "missing", "overlapping", "pending", "recordings"):
        assert section.locator(f'[data-total="{name}"]').inner_text().strip() == str(counts[name]), name
    assert (counts["complete"], counts["incomplete"], counts["overlapping"]) == (1, 2, 1)
    # the reports left (the missing window's was deleted), each counted once
    archived = sum(
        archive.reports[name]["counts"]["archived"] for name in ("complete", "waived", "incomplete")
    )
    assert counts["recordings"] == archived > 0
    assert section.locator('[data-total="complete_days"]').inner_text().strip() == "0/1"
    section.locator('tr[data-day="2026-03-02"] a[data-window]').first.scroll_into_view_if_needed()
    shot(page, "12-archive-calendar")


def test_the_drill_down_from_a_day_to_a_window_and_its_links(archive: Archive, browser_page: Any) -> None:
    page = browser_page
    stack = archive.ui.stack
    frame = page.frame_locator("iframe")
    frame.get_by_role("link", name="2026-03-02").click()
    rows = frame.locator("#windows")
    rows.wait_for()
    incomplete = archive.reports["incomplete"]["counts"]
    row = rows.locator(f'tr[data-window="{WINDOWS["incomplete"]}"]')
    assert row.get_attribute("data-state") == "incomplete"
    cells = [cell.strip() for cell in row.locator("td").all_inner_texts()]
    assert cells[2:5] == [
        str(incomplete["expected"]),
        str(incomplete["archived"]),
        str(incomplete["not_archived"]),
    ]
    assert "forbidden" in cells[5]
    for state, part in WINDOWS.items():
        assert rows.locator(f'tr[data-window="{part}"]').get_attribute("data-state") == state
    assert "a manifest but no report" in rows.locator(f'tr[data-window="{WINDOWS["missing"]}"]').inner_text()
    assert frame.locator(f'#off-grid a[data-window="{OFF_GRID}"]').count() == 1
    shot(page, "13-archive-day")

    row.get_by_role("link").click()
    frame.locator("#segments").wait_for()
    assert frame.locator('#window-state [data-state="incomplete"]').count() == 1
    segments = frame.locator("#segments").inner_text()
    assert "dlg-restricted-2" in segments
    assert "forbidden" in segments
    assert frame.locator('[data-count="not_archived"]').inner_text().strip() == str(
        incomplete["not_archived"]
    )
    links = {
        name: frame.locator(f"#link-{name}").get_attribute("href") or ""
        for name in ("recordings", "report", "manifest")
    }
    start, end = keys.parse_window_part(WINDOWS["incomplete"])  # type: ignore[misc]
    assert (
        links["report"] == f"{stack.s3_url}/{stack.bucket}/{keys.report_key(stack.prefix, SUB, start, end)}"
    )
    assert (
        links["manifest"]
        == f"{stack.s3_url}/{stack.bucket}/{keys.manifest_key(stack.prefix, SUB, start, end)}"
    )
    prefix = parse_qs(urlsplit(links["recordings"]).query)["prefix"][0]
    assert links["recordings"].startswith(f"{stack.s3_url}/{stack.bucket}?prefix=")
    assert prefix == f"ringcx/sub_account={SUB}/year=2026/month=03/day=02/hour=14/"  # as the extra link
    shot(page, "14-archive-window-incomplete")
    for state in ("missing", "overlapping"):
        frame.get_by_role("link", name="2026-03-02").click()
        frame.locator(f'#windows tr[data-window="{WINDOWS[state]}"] a').click()
        frame.locator(f'#window-state [data-state="{state}"]').wait_for()
        if state == "missing":
            assert "no report object" in frame.locator("#no-report").inner_text()
        else:
            assert "14:45–14:55" in frame.locator("#window-reasons").inner_text()
        shot(page, f"15-archive-window-{state}")

    # the recordings link's target, opened as "open in new tab" would (see the module docstring): the S3
    # listing of the window's prefix, holding the window's recordings
    target = page.context.new_page()
    target.goto(links["recordings"])
    assert parse_qs(urlsplit(target.url).query)["prefix"] == [prefix]
    wavs = re.findall(r"<Key>([^<]+\.wav)</Key>", target.content())
    assert len(wavs) >= incomplete["archived"] > 0
    assert all(key.startswith(prefix) for key in wavs)
    shot(target, "16-archive-recordings-link-target")
    target.close()
