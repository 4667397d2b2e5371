"""The UI test's stack: ``airflow standalone`` (SQLite, LocalExecutor, parallelism 4) wired to the RingCX
simulator and a local S3 server (``scripts/stack.py``), one DAG run of a fixed window triggered through the
REST API, and headless Debian Chromium driven by playwright (``executable_path=/usr/bin/chromium``; no
browser is ever downloaded).

The tests run only under ``make test-ui`` (``RINGCX_UI=1``), which installs Chromium and playwright first.
"""

from __future__ import annotations

import json
import os
import shutil
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import requests

from airflow_provider_ringcx.example_dags.ringcx_recordings_to_s3 import DAG_ID
from scripts.stack import REPO, Stack, poll

CHROMIUM = os.environ.get("RINGCX_UI_CHROMIUM", "/usr/bin/chromium")
ARTIFACTS = REPO / "artifacts" / "ui"
CHROMIUM_FLAGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
#: The run archives 14:00-14:15 UTC on 2026-03-02 (data interval 14:15-14:30, minus the 15-minute lag).
RUN_ID = "ui_window_20260302T1400Z"
RUN = {
    "dag_run_id": RUN_ID,
    "logical_date": "2026-03-02T14:30:00Z",
    "data_interval_start": "2026-03-02T14:15:00Z",
    "data_interval_end": "2026-03-02T14:30:00Z",
    # small batches: several mapped download tasks; no late-arrival rescan (nothing archived before);
    # the one restricted recording is reported, with its reason, without failing the report
    "conf": {"batch_size": 5, "rescan_lookback_minutes": 0, "allow_unarchived": ["forbidden"]},
}
RESTRICTED = {
    "dialogId": "dlg-restricted-1",
    "segmentId": "seg-403",
    "segmentEndTimeMs": "2026-03-02T14:10:00Z",
    "restricted": True,
}
FAST = {"metadata_budget": "off", "download_budget": "off", "exchange_budget": "off"}
SIM_ARGS = ["--calls-per-hour", "60", "--duration-scale", "0.02", "--seed", "7"]
SIM_ARGS += ["--metadata-budget", "off", "--download-budget", "off", "--token-budget", "off"]
AIRFLOW_ENV = {
    "RINGCX_START_DATE": "2026-03-01T00:00Z",
    "RINGCX_CATCHUP": "false",
    "RINGCX_RETRIES": "1",
    "RINGCX_RETRY_DELAY_SECONDS": "2",
    "AIRFLOW__CORE__DAGS_ARE_PAUSED_AT_CREATION": "True",
    # only the triggered run: the scheduler creates no runs from the timetable (manual runs still run)
    "AIRFLOW__SCHEDULER__USE_JOB_SCHEDULE": "False",
}


def pytest_collection_modifyitems(config: Any, items: list[Any]) -> None:
    if os.environ.get("RINGCX_UI") == "1":
        return
    skip = pytest.mark.skip(reason="browser test: run it with `make test-ui` (installs Chromium, playwright)")
    for item in items:
        if "ui" in item.keywords:
            item.add_marker(skip)


@dataclass
class UIRun:
    """A finished DAG run in a live Airflow, and how to reach it."""

    stack: Stack
    url: str
    password: str
    headers: dict[str, str]
    run: dict[str, Any]

    def api(self, path: str, **params: Any) -> Any:
        response = requests.get(f"{self.url}/api/v2{path}", headers=self.headers, params=params, timeout=30)
        response.raise_for_status()
        return response.json()

    def task_instances(self) -> list[dict[str, Any]]:
        path = f"/dags/{DAG_ID}/dagRuns/{RUN_ID}/taskInstances"
        return list(self.api(path, limit=100)["task_instances"])


# session scope: test_ui.py and test_ui_archive.py share one stack (it takes about a minute to start)
@pytest.fixture(scope="session")
def ui_run(tmp_path_factory: pytest.TempPathFactory) -> Iterator[UIRun]:
    """Start the stack and Airflow, trigger the run through the REST API, wait until it has finished."""
    if not Path(CHROMIUM).exists():
        pytest.fail(f"{CHROMIUM} is missing: `make test-ui` installs Debian's chromium package")
    started = time.monotonic()
    stack = Stack(
        tmp_path_factory.mktemp("ui") / "airflow",
        sim_args=SIM_ARGS,
        ringcx_extra=FAST,
        airflow_env=AIRFLOW_ENV,
    )
    try:
        stack.start_services()
        requests.post(f"{stack.sim_url}/_sim/segments", json=[RESTRICTED], timeout=30).raise_for_status()
        stack.prepare_home()
        url = stack.start_airflow(timeout=240)
        headers = {"Authorization": f"Bearer {stack.api_token(url)}"}
        password = stack.password_file.read_text()
        api = f"{url}/api/v2/dags/{DAG_ID}"
        poll("the DAG to be parsed", lambda: requests.get(api, headers=headers, timeout=30).ok, 120)
        unpaused = requests.patch(api, headers=headers, json={"is_paused": False}, timeout=30)
        assert unpaused.ok, unpaused.text
        created = requests.post(f"{api}/dagRuns", headers=headers, json=RUN, timeout=30)
        assert created.status_code == 200, created.text

        def finished() -> dict[str, Any] | None:
            try:
                run = requests.get(f"{api}/dagRuns/{RUN_ID}", headers=headers, timeout=30).json()
            except requests.Timeout:  # a busy machine: the API server answers late; ask again
                return None
            return run if run["state"] in ("success", "failed") else None

        run = poll("the DAG run to finish", finished, 300, interval=2)
        handle = UIRun(stack, url, json.loads(password)["admin"], headers, run)
        print(f"ui stack ready and run {run['state']} after {time.monotonic() - started:.0f} s")
        yield handle
    finally:
        procs = list(stack.procs)
        stack.stop()
        assert all(proc.returncode is not None for proc in procs)


@pytest.fixture(scope="session")
def browser_page(ui_run: UIRun, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Any]:
    """A logged-in page of headless Debian Chromium (fresh profile), driven by playwright."""
    from playwright.sync_api import sync_playwright

    if ARTIFACTS.exists():
        shutil.rmtree(ARTIFACTS)
    ARTIFACTS.mkdir(parents=True)
    with sync_playwright() as playwright:
        context = playwright.chromium.launch_persistent_context(
            str(tmp_path_factory.mktemp("chromium-profile")),
            executable_path=CHROMIUM,
            headless=True,
            args=CHROMIUM_FLAGS,
            viewport={"width": 1440, "height": 900},
        )
        context.set_default_timeout(30_000)
        page = context.pages[0] if context.pages else context.new_page()
        page.goto(f"{ui_run.url}/")
        page.get_by_label("Username").fill("admin")
        page.get_by_label("Password").fill(ui_run.password)
        page.screenshot(path=str(ARTIFACTS / "01-login.png"))
        page.get_by_role("button", name="Sign in").click()
        page.wait_for_url(f"{ui_run.url}/")
        try:
            yield page
        finally:
            context.close()
