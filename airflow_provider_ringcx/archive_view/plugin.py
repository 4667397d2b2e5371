"""The plugin that puts the archive page in the Airflow UI: a FastAPI app plus a Browse menu entry.

Registered through this distribution's ``airflow.plugins`` entry point (pyproject.toml), like the run-notes
listener: a provider's own ``plugins`` entries are only loaded with ``[core] lazy_load_providers = False``.

Every Airflow component loads plugins (the scheduler, the DAG processor, task runners), and only the API
server serves ``fastapi_apps``; so the app is a small ASGI wrapper (:class:`LazyArchiveApp`) that builds the
real one (:func:`~airflow_provider_ringcx.archive_view.app.create_app`: FastAPI, Jinja2, Airflow's security
module) on its first request. Importing this module imports nothing heavy.

The menu entry is an ``external_views`` item with a ``url_route``: the UI embeds the page in an iframe at
``/plugin/ringcx-archive``; the app itself is at :data:`URL_PREFIX` (``/ringcx-archive/``).
"""

from __future__ import annotations

import threading
from typing import Any

from airflow.plugins_manager import AirflowPlugin

#: Where the API server mounts the app (also in app.URL_PREFIX).
URL_PREFIX = "/ringcx-archive"
NAME = "RingCX archive"


class LazyArchiveApp:
    """An ASGI app that builds the archive app when the API server first calls it."""

    def __init__(self) -> None:
        self._app: Any = None
        self._lock = threading.Lock()

    def get(self) -> Any:
        if self._app is None:
            with self._lock:
                if self._app is None:
                    from airflow_provider_ringcx.archive_view.app import create_app

                    self._app = create_app()
        return self._app

    async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
        await self.get()(scope, receive, send)


class RingCXArchivePlugin(AirflowPlugin):
    """Browse > "RingCX archive": the coverage ledger per sub-account, day and window."""

    name = "ringcx_archive"
    fastapi_apps = [{"app": LazyArchiveApp(), "url_prefix": URL_PREFIX, "name": NAME}]
    external_views = [
        {
            "name": NAME,
            "href": f"{URL_PREFIX}/",
            "url_route": "ringcx-archive",
            "destination": "nav",
            "category": "browse",
        }
    ]
