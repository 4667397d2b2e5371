"""The archive view's plugin: registered through the distribution, a Browse menu entry, a lazy app."""

from __future__ import annotations

from pathlib import Path

import tomllib

from airflow_provider_ringcx.archive_view import plugin
from airflow_provider_ringcx.archive_view.plugin import LazyArchiveApp, RingCXArchivePlugin

REPO = Path(__file__).resolve().parents[2]


def test_the_plugin_is_an_entry_point_and_its_templates_ship_in_the_wheel() -> None:
    project = tomllib.loads((REPO / "pyproject.toml").read_text())
    entry = project["project"]["entry-points"]["airflow.plugins"]["ringcx_archive"]
    assert entry == "airflow_provider_ringcx.archive_view.plugin:RingCXArchivePlugin"
    data = project["tool"]["setuptools"]["package-data"]["airflow_provider_ringcx"]
    assert "archive_view/templates/*.html" in data
    templates = REPO / "airflow_provider_ringcx" / "archive_view" / "templates"
    names = {path.name for path in templates.glob("*.html")}
    assert names >= {"base.html", "index.html", "day.html", "window.html"}


def test_a_browse_menu_entry_embeds_the_mounted_app() -> None:
    (app,) = RingCXArchivePlugin.fastapi_apps
    (view,) = RingCXArchivePlugin.external_views
    assert app["url_prefix"] == plugin.URL_PREFIX == "/ringcx-archive"
    assert view == {
        "name": "RingCX archive",
        "href": "/ringcx-archive/",
        "url_route": "ringcx-archive",
        "destination": "nav",
        "category": "browse",
    }


def test_the_app_is_built_on_first_use_only() -> None:
    # importing the plugin (every Airflow component does) builds nothing: the API server's first request does
    lazy = LazyArchiveApp()
    assert lazy._app is None
    built = lazy.get()
    assert built is lazy.get()
    assert {route.path for route in built.routes} >= {"/", "/day", "/window"}
