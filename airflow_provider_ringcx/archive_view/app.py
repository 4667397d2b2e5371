"""The archive page's FastAPI app: routes, Airflow's auth, parameter checks, error pages.

Mounted by the API server under :data:`~.plugin.URL_PREFIX` (``fastapi_apps`` of :mod:`.plugin`); the
Airflow UI shows it in an iframe (``external_views``, menu Browse > "RingCX archive").

**Auth is Airflow's own.** Every route depends on the auth manager's ``is_authorized_dag("GET",
DagAccessEntity.RUN)`` for all DAGs (:func:`default_auth`, never the request's ``dag_id``): the user comes
from the same JWT (``Authorization: Bearer`` or the UI's ``_token`` cookie) as the REST API, and must be
allowed to read the runs of every DAG, which is what the archive's reports record. The dependency is the
app's, so it runs before anything else: an anonymous request gets 401 (a bad token 403) and a page naming
Airflow's login, and no data; there is no login here.

**Escaping.** Reasons, ids and keys come from vendor data: the Jinja2 environment autoescapes everything
(``autoescape=True``), and links are built with ``urlencode``.

Routes (``GET`` only): ``/`` (the calendar of every sub-account), ``/day`` (a day's windows),
``/window`` (a window's report, not-archived segments and S3 links). Query parameters are checked; a bad
one is a 400 page naming it.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import date, datetime, timedelta, timezone
from pathlib import Path
from typing import Annotated, Any
from urllib.parse import urlencode

from fastapi import Depends, FastAPI, Query, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import HTMLResponse
from jinja2 import Environment, FileSystemLoader
from starlette.exceptions import HTTPException as StarletteHTTPException

from airflow_provider_ringcx import keys
from airflow_provider_ringcx.archive_view import calendar
from airflow_provider_ringcx.archive_view.data import ArchiveConfig, ArchiveReader, ArchiveUnavailable
from airflow_provider_ringcx.archive_view.plugin import NAME as TITLE
from airflow_provider_ringcx.archive_view.plugin import URL_PREFIX
from airflow_provider_ringcx.coverage.grid import DAY, span_label

#: The range a page may show, in days (one GET per day and sub-account).
MAX_DAYS = 62
DEFAULT_DAYS = 14
#: Grid intervals offered (minutes; each divides a day).
GRIDS = (5, 10, 15, 20, 30, 60, 120, 180, 240, 360, 480, 720, 1440)
#: Not-archived segments listed on a window's page (the report object holds them all).
MAX_SEGMENTS = 500
#: The days a page may name: the date arithmetic around them (the day before, the day after) stays in range.
EARLIEST, LATEST = date(1970, 1, 2), date(9999, 12, 30)
_SUB = r"^[A-Za-z0-9._\-]{1,64}$"
_PART = r"^\d{8}T\d{4}(\d{2})?Z_\d{8}T\d{4}(\d{2})?Z$"

Sub = Annotated[str, Query(pattern=_SUB, description="the sub-account id")]
Grid = Annotated[int, Query(ge=5, le=1440, description="grid interval, minutes (15: the live DAG)")]

_templates = Environment(
    loader=FileSystemLoader(Path(__file__).with_name("templates")), autoescape=True, trim_blocks=True
)


def _today() -> date:
    return datetime.now(timezone.utc).date()


def default_auth() -> Callable[..., Any]:
    """Airflow's dependency: an authenticated user allowed to read the runs of every DAG.

    Not ``requires_access_dag("GET", DagAccessEntity.RUN)``: without a ``dag_id`` of its own, that checks
    the request's ``dag_id`` path or query parameter when there is one, so a user who may read one
    unrelated DAG (per-DAG permissions, as FAB or Keycloak grant them) would see every sub-account's
    archive by adding ``?dag_id=that_dag``. The page spans all DAGs, so it asks for all DAGs (``id=None``).
    """
    from airflow.api_fastapi.auth.managers.models.resource_details import DagAccessEntity, DagDetails
    from airflow.api_fastapi.core_api import security
    from fastapi import HTTPException

    def archive_reader(user: Any = Depends(security.get_user)) -> None:  # noqa: B008 (FastAPI's idiom)
        allowed = security.get_auth_manager().is_authorized_dag(
            method="GET", access_entity=DagAccessEntity.RUN, details=DagDetails(id=None), user=user
        )
        if not allowed:
            raise HTTPException(403, "Forbidden")

    return archive_reader


def create_app(
    *,
    reader: Callable[[], ArchiveReader] | None = None,
    auth: Callable[..., Any] | None = None,
) -> FastAPI:
    """The app. ``reader`` makes an :class:`ArchiveReader` per request (default: the settings and the
    ``aws`` connection); ``auth`` replaces Airflow's dependency (never in the plugin)."""
    from airflow_provider_ringcx.archive_view.data import archive_config

    make_reader = reader or (lambda: ArchiveReader.from_connection(archive_config()))
    app = FastAPI(
        title=TITLE, dependencies=[Depends(auth or default_auth())], docs_url=None, redoc_url=None,
        openapi_url=None,
    )  # fmt: skip

    def page(request: Request, template: str, status: int = 200, **values: Any) -> HTMLResponse:
        base = str(request.scope.get("root_path", "")).rstrip("/")

        def url(path: str, **params: Any) -> str:
            query = urlencode({k: v for k, v in params.items() if v is not None})
            return f"{base}{path}" + (f"?{query}" if query else "")

        html = _templates.get_template(template).render(
            title=TITLE,
            url=url,
            styles=calendar.STYLES,
            span_label=span_label,
            window_part=keys.window_part,
            **values,
        )
        return HTMLResponse(html, status_code=status)

    def problem(request: Request, message: str, status: int, heading: str) -> HTMLResponse:
        return page(request, "message.html", status, heading=heading, message=message)

    @app.exception_handler(ArchiveUnavailable)
    def unavailable(request: Request, err: ArchiveUnavailable) -> HTMLResponse:
        return problem(request, str(err), 503, "The archive cannot be read")

    @app.exception_handler(RequestValidationError)
    def invalid(request: Request, err: RequestValidationError) -> HTMLResponse:
        bad = "; ".join(f"{'.'.join(map(str, e['loc'][1:]))}: {e['msg']}" for e in err.errors())
        return problem(request, f"Invalid query parameters: {bad}", 400, "Bad request")

    @app.exception_handler(StarletteHTTPException)
    def refused(request: Request, err: StarletteHTTPException) -> HTMLResponse:
        if err.status_code == 401:
            message = "Sign in to Airflow first, then open Browse > RingCX archive."
        elif err.status_code == 403:
            message = "Your Airflow user may not read DAG runs, which this page shows."
        else:
            message = str(err.detail)
        return page(request, "message.html", err.status_code, heading=str(err.detail), message=message,
                    login=err.status_code == 401)  # fmt: skip

    @app.get("/", response_class=HTMLResponse)
    def index(
        request: Request,
        days: Annotated[int, Query(ge=1, le=MAX_DAYS)] = DEFAULT_DAYS,
        end: Annotated[date | None, Query(description="the day after the last one shown")] = None,
        sub: Annotated[str | None, Query(pattern=_SUB)] = None,
        grid: Grid = 15,
    ) -> HTMLResponse:
        _check_grid(grid)
        last = _check_day("end", end or _today() + DAY)
        start = last - timedelta(days=days)
        archive = make_reader()
        found = archive.sub_accounts()
        subs = [sub] if sub else found
        grid_spec = archive.config.grid(grid)
        sections = []
        for one in subs:
            rows, totals = calendar.calendar(archive.coverage(one, start, last, grid_spec))
            sections.append({"sub": one, "rows": rows, "totals": totals})
        newer = last + timedelta(days=days) if last <= _today() else None
        return page(
            request, "index.html", config=archive.config, sections=sections, start=start, end=last,
            days=days, grid=grid, sub=sub, found=found, older=start, newer=newer, gets=archive.gets,
            lists=archive.lists,
        )  # fmt: skip

    @app.get("/day", response_class=HTMLResponse)
    def day_page(request: Request, sub: Sub, day: Annotated[date, Query()], grid: Grid = 15) -> HTMLResponse:
        _check_grid(grid)
        _check_day("day", day)
        archive = make_reader()
        result = archive.coverage(sub, day, day + DAY, archive.config.grid(grid))
        covered = result.days[0]
        off_grid = [(key, _part_of(key)) for key in covered.rollup.off_grid]
        return page(
            request, "day.html", config=archive.config, sub=sub, day=covered, row=calendar.day_row(covered),
            grid=grid, off_grid=off_grid, gets=archive.gets,
        )  # fmt: skip

    @app.get("/window", response_class=HTMLResponse)
    def window_page(
        request: Request, sub: Sub, window: Annotated[str, Query(pattern=_PART)], grid: Grid = 15
    ) -> HTMLResponse:
        _check_grid(grid)
        bounds = keys.parse_window_part(window)
        if bounds is None:
            raise RequestValidationError([{"loc": ("query", "window"), "msg": "not a window", "type": "x"}])
        start, end = bounds
        _check_day("window", start.date())
        archive = make_reader()
        config = archive.config
        result = archive.coverage(sub, start.date(), start.date() + DAY, config.grid(grid))
        state = calendar.find_window(result.days[0], start, end)
        report_key = keys.report_key(config.prefix, sub, start, end)
        report, why = archive.report(report_key)
        segments = list(report.get("not_archived") or []) if report else []
        prefix = calendar.recordings_prefix(config.key_template, config.prefix, sub, start, end)
        links = {
            "report": archive.link(report_key),
            "manifest": archive.link(keys.manifest_key(config.prefix, sub, start, end)),
            "recordings": archive.link(prefix, is_prefix=True),
        }
        deciding = [(key, _part_of(key)) for key in (state.reports if state else ()) if key != report_key]
        return page(
            request, "window.html", config=config, sub=sub, start=start, end=end, part=window, state=state,
            report=report, why=why, report_key=report_key, prefix=prefix, links=links, grid=grid,
            segments=[s for s in segments[:MAX_SEGMENTS] if isinstance(s, dict)],
            more=max(0, len(segments) - MAX_SEGMENTS), deciding=deciding, gets=archive.gets,
        )  # fmt: skip

    return app


def _check_grid(grid: int) -> None:
    if grid not in GRIDS:
        choices = ", ".join(map(str, GRIDS))
        raise RequestValidationError(
            [{"loc": ("query", "grid"), "msg": f"must be one of {choices} (minutes)", "type": "value_error"}]
        )


def _check_day(name: str, day: date) -> date:
    """``day``, or a 400 when it is outside :data:`EARLIEST`..:data:`LATEST` (not a date overflow's 500)."""
    if not EARLIEST <= day <= LATEST:
        raise RequestValidationError(
            [
                {
                    "loc": ("query", name),
                    "msg": f"must be between {EARLIEST} and {LATEST}",
                    "type": "value_error",
                }
            ]
        )
    return day


def _part_of(key: str) -> str:
    name = key.rsplit("/", 1)[-1]
    return name[len("window=") : -len(".json")] if name.startswith("window=") else ""


__all__ = ["URL_PREFIX", "ArchiveConfig", "create_app"]
