"""Provider metadata as Airflow itself reads it: schema, class paths, connection form, ``[ringcx]`` config.

Everything here talks to real Airflow: its provider-info JSON schema, its ``ProvidersManager`` (the source of
the React connection form's ``/ui/connections/hook_meta``), its config parser, and the ``airflow`` CLI in a
subprocess with its own ``AIRFLOW_HOME``. Nothing is mocked.
"""

from __future__ import annotations

import importlib
import json
import logging
import os
import subprocess
import sys
from importlib import metadata
from pathlib import Path
from typing import Any

import jsonschema
import pytest

import airflow_provider_ringcx
from airflow_provider_ringcx import get_provider_info
from airflow_provider_ringcx.hooks import budget
from airflow_provider_ringcx.hooks.bounds import RANGES
from airflow_provider_ringcx.hooks.settings import DEFAULTS
from airflow_provider_ringcx.provider_info import CONNECTION_FIELDS, DISTRIBUTION

AIRFLOW_ENV = "AIRFLOW__RINGCX__BUDGET_DIR"


def _import(path: str) -> Any:
    """Import ``package.module.Name`` (or a module path) and return the object."""
    try:
        return importlib.import_module(path)
    except ModuleNotFoundError:
        module, _, name = path.rpartition(".")
        return getattr(importlib.import_module(module), name)


def _class_paths(info: dict[str, Any]) -> list[str]:
    paths = [conn["hook-class-name"] for conn in info["connection-types"]]
    paths += info["extra-links"]
    for kind in ("hooks", "operators", "triggers"):
        paths += [module for entry in info[kind] for module in entry["python-modules"]]
    paths += [entry["python-module"] for entry in info["transfers"]]
    paths += [entry["handler"] for entry in info["asset-uris"] if entry["handler"]]
    return paths


# --- the metadata itself ------------------------------------------------------------------------------------
def test_provider_info_passes_airflows_runtime_schema() -> None:
    import airflow

    schema = json.loads((Path(airflow.__file__).parent / "provider_info.schema.json").read_text())
    jsonschema.validate(get_provider_info(), schema)


def test_every_class_path_and_module_imports() -> None:
    paths = _class_paths(get_provider_info())
    assert len(paths) >= 8
    for path in paths:
        assert _import(path) is not None, path
    assert _import("airflow_provider_ringcx.hooks.ringcx.RingCXHook").conn_type == "ringcx"


def test_every_integration_named_by_a_module_list_is_declared() -> None:
    info = get_provider_info()
    declared = {entry["integration-name"] for entry in info["integrations"]}
    used = {entry["integration-name"] for kind in ("hooks", "operators", "triggers") for entry in info[kind]}
    used |= {entry["source-integration-name"] for entry in info["transfers"]}
    assert used <= declared
    for entry in info["integrations"]:
        assert entry["external-doc-url"].startswith("https://")


def test_documentation_url_versions_and_dependencies_come_from_the_distribution() -> None:
    info = get_provider_info()
    dist = metadata.distribution(DISTRIBUTION)
    urls = dict(entry.split(", ", 1) for entry in dist.metadata.get_all("Project-URL") or [])
    assert info["documentation-url"] == urls["Documentation"]
    assert info["documentation-url"].startswith("https://github.com/")
    assert {"Homepage", "Source", "Changelog"} <= set(urls)
    assert info["versions"] == [dist.version] == [airflow_provider_ringcx.__version__]
    assert "apache-airflow-providers-amazon>=9.0" in info["dependencies"]
    assert not [req for req in info["dependencies"] if "extra ==" in req]  # test extras are not runtime


def test_each_call_returns_a_fresh_copy_for_airflow_to_write_into() -> None:
    """ProvidersManager writes ``documentation-url`` into the dict it gets (Airflow 3.2: with a leading
    space); the next caller must still see the provider's own value."""
    first = get_provider_info()
    expected = first["documentation-url"]
    first["documentation-url"] = " " + expected
    first["connection-types"][0]["conn-fields"].clear()
    second = get_provider_info()
    assert second["documentation-url"] == expected
    assert second["connection-types"][0]["conn-fields"]


@pytest.mark.integration  # a fresh interpreter, in a subprocess
def test_importing_the_provider_info_does_not_import_airflow() -> None:
    """Airflow calls get_provider_info() while ``import airflow`` is still running: importing Airflow from
    it (even through a helper module) is a circular import that breaks every Airflow command."""
    code = (
        "import sys, airflow_provider_ringcx as p; p.get_provider_info(); "
        "print(sorted(m for m in sys.modules if m == 'airflow' or m.startswith('airflow.')))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True, timeout=60)
    assert out.stdout.strip() == "[]"


# --- the connection form ------------------------------------------------------------------------------------
def test_every_numeric_extra_is_a_number_field_bounded_by_its_range() -> None:
    numeric = {name for name, field in CONNECTION_FIELDS.items() if "string" not in field["schema"]["type"]}
    assert numeric == set(RANGES)
    for name, bound in RANGES.items():
        field = CONNECTION_FIELDS[name]
        schema = field["schema"]
        assert schema["type"] == ["integer" if bound.integer else "number", "null"], name
        assert (schema["minimum"], schema["maximum"]) == (bound.low, bound.high), name
        assert "default" not in schema, name  # a prefilled default would be stored in every connection
        assert f"default {DEFAULTS[name]:g}." in field["description"], name
        assert bound.describe().split(" in ")[1] in field["description"], name


def _form_widgets() -> dict[str, Any]:
    from airflow.providers_manager import ProvidersManager

    widgets = ProvidersManager().connection_form_widgets
    return {key.removeprefix("extra__ringcx__"): w for key, w in widgets.items() if "__ringcx__" in key}


def test_the_form_airflow_serves_validates_numbers_like_the_hook() -> None:
    widgets = _form_widgets()
    assert set(widgets) == set(CONNECTION_FIELDS)
    for name, bound in RANGES.items():
        served = widgets[name].field
        assert served["value"] is None, name  # empty in a new connection: the hook's default applies
        schema = served["schema"]
        step = 1 if bound.integer else bound.low / 2 or 0.5
        accepted = [None, bound.low, bound.high, DEFAULTS[name]]
        refused = [bound.low - step, bound.high + step, "60", True]
        if bound.integer:
            refused.append(bound.low + 0.5)
        for value in accepted:
            jsonschema.validate(value, schema)
        for value in refused:
            with pytest.raises(jsonschema.ValidationError):
                jsonschema.validate(value, schema)
    assert widgets["jwt_token"].is_sensitive
    assert widgets["api_token"].is_sensitive
    assert widgets["max_window_seconds"].field["schema"]["title"] == "Max metadata window (s)"


# --- the [ringcx] budget_dir option -------------------------------------------------------------------------
@pytest.fixture
def no_budget_settings(monkeypatch: pytest.MonkeyPatch) -> pytest.MonkeyPatch:
    monkeypatch.delenv(AIRFLOW_ENV, raising=False)
    monkeypatch.delenv(budget.BUDGET_DIR_ENV, raising=False)
    budget._warn_legacy_env.cache_clear()
    return monkeypatch


def test_the_airflow_option_names_the_budget_dir(
    no_budget_settings: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    no_budget_settings.setenv(AIRFLOW_ENV, str(tmp_path / "from-airflow"))
    assert budget.default_budget_dir() == tmp_path / "from-airflow"
    assert budget.RateBudget("h|1|metadata", ()).state_dir == tmp_path / "from-airflow"


def test_the_option_wins_over_the_deprecated_variable(
    no_budget_settings: pytest.MonkeyPatch, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    no_budget_settings.setenv(AIRFLOW_ENV, str(tmp_path / "from-airflow"))
    no_budget_settings.setenv(budget.BUDGET_DIR_ENV, str(tmp_path / "legacy"))
    with caplog.at_level(logging.WARNING, logger=budget.__name__):
        assert budget.default_budget_dir() == tmp_path / "from-airflow"
    assert "RINGCX_BUDGET_DIR" in caplog.text
    assert "is ignored" in caplog.text


def test_the_deprecated_variable_still_works_and_warns_once(
    no_budget_settings: pytest.MonkeyPatch, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    no_budget_settings.setenv(budget.BUDGET_DIR_ENV, str(tmp_path / "legacy"))
    with caplog.at_level(logging.WARNING, logger=budget.__name__):
        assert budget.default_budget_dir() == tmp_path / "legacy"
        assert budget.default_budget_dir() == tmp_path / "legacy"
    warnings = [r for r in caplog.records if "deprecated" in r.getMessage()]
    assert len(warnings) == 1
    assert AIRFLOW_ENV in warnings[0].getMessage()
    assert "[ringcx] budget_dir" in warnings[0].getMessage()


def test_unset_everywhere_is_the_temp_default(no_budget_settings: pytest.MonkeyPatch) -> None:
    import tempfile

    assert budget.default_budget_dir() == Path(tempfile.gettempdir()) / "airflow-provider-ringcx-budgets"


# --- the real CLI -------------------------------------------------------------------------------------------
def _airflow(tmp_path: Path, *args: str) -> subprocess.CompletedProcess[str]:
    home = tmp_path / "airflow-home"
    home.mkdir(exist_ok=True)
    clean = {k: v for k, v in os.environ.items() if not k.startswith("AIRFLOW") and "RINGCX" not in k}
    clean.update(AIRFLOW_HOME=str(home), AIRFLOW__CORE__LOAD_EXAMPLES="False")
    airflow = Path(sys.executable).with_name("airflow")
    return subprocess.run(
        [str(airflow), *args], capture_output=True, text=True, env=clean, check=True, timeout=180
    )


@pytest.mark.integration
def test_airflow_cli_shows_the_documentation_url_and_the_config_section(tmp_path: Path) -> None:
    """``providers get`` shows what ProvidersManager discovered; ``config list --defaults`` proves Airflow's
    config writer (which also writes a new airflow.cfg) knows the section, not only the environment."""
    shown = _airflow(tmp_path, "providers", "get", DISTRIBUTION, "--full", "-o", "json")
    (info,) = json.loads(shown.stdout)
    assert info["documentation-url"] == get_provider_info()["documentation-url"]
    option = info["config"]["ringcx"]["options"]["budget_dir"]
    assert {"description", "version_added", "type", "example", "default"} <= set(option)

    listed = _airflow(tmp_path, "config", "list", "--defaults").stdout
    section = listed.split("[ringcx]", 1)[1].split("\n[", 1)[0]
    assert "# Variable: AIRFLOW__RINGCX__BUDGET_DIR" in section
    assert "budget_dir =" in section
