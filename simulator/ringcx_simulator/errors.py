"""Vendor-shaped error responses.

400/403/404/500 carry the SPEC ``Errors`` JSON body (``requestUri`` = ``"<path> - <METHOD>"``, ``timestamp``
= epoch ms); 401 is ``text/plain``; the 429 body is invented (the vendor documents none) but stays a valid
``Errors`` object. 403 can also take the ``access.denied.exception`` shape seen on transcripts/summaries.
"""

from __future__ import annotations

import time
from typing import Any

from starlette.requests import Request
from starlette.responses import JSONResponse, PlainTextResponse, Response

from ringcx_simulator.config import ForbiddenShape

_MESSAGES: dict[int, tuple[str, str]] = {
    400: ("Bad request", "The supplied data is not valid"),
    403: ("Access is denied.", "You do not have permission to access this resource"),
    404: ("Not found", "The resource you have requested does not exist"),
    429: ("Too Many Requests", "Too Many Requests"),
    500: ("Internal server error", "An Internal Server Error occurred while processing this request"),
    502: ("Bad gateway", "An upstream service did not answer"),
    503: ("Service unavailable", "The service is temporarily unavailable"),
    504: ("Gateway timeout", "An upstream service timed out"),
}


def request_uri(request: Request) -> str:
    return f"{request.url.path} - {request.method}"


def errors_body(
    request: Request,
    status: int,
    validation_errors: list[dict[str, str]] | None = None,
    details: str = "",
) -> dict[str, Any]:
    """The SPEC ``Errors`` object for ``status``."""
    developer, general = _MESSAGES.get(status, ("Error", "An error occurred while processing this request"))
    body: dict[str, Any] = {
        "details": details,
        "developerMessage": developer,
        "cause": "",
        "generalMessage": general,
        "requestUri": request_uri(request),
        "timestamp": int(time.time() * 1000),
    }
    if validation_errors is not None:
        body["validationErrors"] = validation_errors
    return body


def errors_response(
    request: Request,
    status: int,
    validation_errors: list[dict[str, str]] | None = None,
    details: str = "",
    headers: dict[str, str] | None = None,
) -> JSONResponse:
    return JSONResponse(errors_body(request, status, validation_errors, details), status, headers=headers)


def validation_error(attribute: str, message: str, value: Any) -> dict[str, str]:
    return {"attributeName": attribute, "message": message, "value": "" if value is None else str(value)}


def forbidden_response(request: Request, shape: ForbiddenShape) -> JSONResponse:
    if shape == "access_denied":
        body = {
            "errorCode": "access.denied.exception",
            "generalMessage": "You do not have permission to access this resource",
            "timestamp": int(time.time() * 1000),
        }
        return JSONResponse(body, 403)
    return errors_response(request, 403)


def unauthorized_response(message: str) -> Response:
    """401 with a plain-text body, as the vendor sends for expired or unknown tokens."""
    return PlainTextResponse(message, 401)


def status_response(request: Request, status: int, shape: ForbiddenShape, expired_message: str) -> Response:
    """A vendor-looking response for an arbitrary error status (used by faults)."""
    if status == 401:
        return unauthorized_response(expired_message)
    if status == 403:
        return forbidden_response(request, shape)
    return errors_response(request, status)


HTML_ERROR_PAGE = (
    b"<!DOCTYPE html>\n<html><head><title>503 Service Temporarily Unavailable</title></head>\n"
    b"<body><h1>Service Temporarily Unavailable</h1><p>The server is temporarily unable to service your "
    b"request due to maintenance downtime or capacity problems. Please try again later.</p></body></html>\n"
)
