"""The portal's logs: text for people, or one JSON object per line (``LABDECK_LOG_FORMAT=json``)
for a log collector. Each request and websocket gets an id (``RequestIdMiddleware``), kept in
a contextvar so every line logged while serving it carries it, and echoed in the
``X-Request-ID`` response header; an id a proxy sent in that header is kept."""

from __future__ import annotations

import json
import logging
import re
import uuid
from collections.abc import Awaitable, Callable, MutableMapping
from contextvars import ContextVar
from datetime import UTC, datetime
from typing import Any

from app.config import Settings

request_id: ContextVar[str | None] = ContextVar("labdeck_request_id", default=None)
HEADER = b"x-request-id"
_ACCEPTED_ID = re.compile(r"^[A-Za-z0-9._-]{1,64}$")
_ACCESS_FIELDS = ("client", "method", "path", "http_version", "status")
TEXT_FORMAT = "%(asctime)s %(levelname)s %(name)s: %(message)s"


class JsonFormatter(logging.Formatter):
    """One JSON object per record: time, level, logger, message, request_id (when serving one),
    the access log's fields, and the traceback as one string."""

    def format(self, record: logging.LogRecord) -> str:
        entry: dict[str, Any] = {
            "time": datetime.fromtimestamp(record.created, UTC).isoformat(timespec="milliseconds"),
            "level": record.levelname.lower(),
            "logger": record.name,
            "message": record.getMessage(),
        }
        current = getattr(record, "request_id", None) or request_id.get()
        if current:
            entry["request_id"] = current
        if record.name == "uvicorn.access" and isinstance(record.args, tuple):
            entry.update(zip(_ACCESS_FIELDS, record.args, strict=False))
        if record.exc_info:
            entry["exception"] = self.formatException(record.exc_info)
        return json.dumps(entry, default=str)


def log_config(settings: Settings) -> dict[str, Any]:
    """``logging.config.dictConfig`` for the portal and uvicorn alike (uvicorn's ``log_config``)."""
    formatter: dict[str, Any] = (
        {"()": f"{__name__}.JsonFormatter"}
        if settings.log_format == "json"
        else {"format": TEXT_FORMAT}
    )
    level = settings.log_level.upper()
    handler = {
        "class": "logging.StreamHandler",
        "formatter": "labdeck",
        "stream": "ext://sys.stderr",
    }
    return {
        "version": 1,
        "disable_existing_loggers": False,
        "formatters": {"labdeck": formatter},
        "handlers": {"default": handler},
        "root": {"handlers": ["default"], "level": level},
        "loggers": {
            name: {"handlers": [], "level": level, "propagate": True}
            for name in ("uvicorn", "uvicorn.error", "uvicorn.access")
        },
    }


def _incoming_id(scope: MutableMapping[str, Any]) -> str | None:
    for name, value in scope.get("headers") or []:
        if name == HEADER:
            text = value.decode("latin-1")
            return text if _ACCEPTED_ID.match(text) else None
    return None


class RequestIdMiddleware:
    """ASGI middleware: an id per request and websocket, in ``request_id`` while it is served
    and in the ``X-Request-ID`` header of the response (or of the websocket's accept)."""

    def __init__(self, app: Callable[..., Awaitable[None]]) -> None:
        self.app = app

    async def __call__(
        self,
        scope: MutableMapping[str, Any],
        receive: Callable[[], Awaitable[Any]],
        send: Callable[[Any], Awaitable[None]],
    ) -> None:
        if scope["type"] not in ("http", "websocket"):
            await self.app(scope, receive, send)
            return
        current = _incoming_id(scope) or uuid.uuid4().hex
        header = (HEADER, current.encode())

        async def send_with_id(message: Any) -> None:
            if message["type"] in ("http.response.start", "websocket.accept"):
                message = {**message, "headers": [*(message.get("headers") or []), header]}
            await send(message)

        token = request_id.set(current)
        try:
            await self.app(scope, receive, send_with_id)
        finally:
            request_id.reset(token)
