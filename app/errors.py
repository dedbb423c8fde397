"""Errors reach users as JSON under /api and as a friendly page elsewhere; never a traceback."""

from __future__ import annotations

import logging

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse, Response
from sqlalchemy.exc import OperationalError
from starlette.exceptions import HTTPException as StarletteHTTPException

from app.db import BUSY_MESSAGE, DatabaseBusy, is_locked
from app.templating import render

log = logging.getLogger("labdeck")

_TITLES = {
    400: "That request did not make sense",
    401: "Please join the workshop first",
    403: "That is not yours",
    404: "Nothing here",
    409: "That clashes with something",
    422: "Some fields need another look",
    429: "Slow down a little",
    500: "Something broke on our side",
    503: "Not ready yet",
}


def wants_json(request: Request) -> bool:
    return request.url.path.startswith("/api/") or request.url.path == "/healthz"


def error_response(request: Request, status: int, detail: str) -> Response:
    if wants_json(request):
        return JSONResponse({"error": detail, "status": status}, status_code=status)
    title = _TITLES.get(status, "Something went wrong")
    return render(
        request,
        "error.html",
        {"status": status, "title": title, "detail": detail},
        status_code=status,
    )


async def _http_error(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, StarletteHTTPException)
    detail = exc.detail if isinstance(exc.detail, str) else _TITLES.get(exc.status_code, "Error")
    response = error_response(request, exc.status_code, detail)
    for name, value in (exc.headers or {}).items():
        response.headers[name] = value
    return response


async def _validation_error(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, RequestValidationError)
    fields = ", ".join(".".join(str(p) for p in err["loc"][1:]) or "body" for err in exc.errors())
    return error_response(request, 422, f"Check these fields: {fields}.")


async def _database_error(request: Request, exc: Exception) -> Response:
    """A database locked past the busy timeout is a moment's wait, not a bug: 503, retry soon."""
    if not isinstance(exc, DatabaseBusy) and not is_locked(exc):
        return await _unexpected_error(request, exc)
    log.warning("database busy on %s %s: %s", request.method, request.url.path, exc)
    response = error_response(request, 503, BUSY_MESSAGE)
    response.headers["Retry-After"] = "5"
    return response


async def _unexpected_error(request: Request, exc: Exception) -> Response:
    log.exception("unhandled error on %s %s", request.method, request.url.path)
    return error_response(request, 500, "The portal hit an unexpected error. It has been logged.")


def install_error_handlers(app: FastAPI) -> None:
    app.add_exception_handler(StarletteHTTPException, _http_error)
    app.add_exception_handler(RequestValidationError, _validation_error)
    app.add_exception_handler(DatabaseBusy, _database_error)
    app.add_exception_handler(OperationalError, _database_error)
    app.add_exception_handler(Exception, _unexpected_error)
