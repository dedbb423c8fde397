"""The application factory and its lifespan: migrate, load the workshop, build the services."""

from __future__ import annotations

import gc
import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from fastapi import FastAPI
from fastapi.staticfiles import StaticFiles

from app import backup, db
from app.config import Settings, get_settings
from app.csrf import install_csrf
from app.errors import install_error_handlers
from app.instructor.broadcasts import latest_broadcast
from app.instruments import CountOpenWebsockets
from app.lessons.reload import LiveWorkshop
from app.logging_setup import RequestIdMiddleware
from app.preview.rescue import RescuePreviewPaths
from app.routes import (
    checks,
    events,
    hand,
    health,
    instructor,
    join,
    lessons,
    metrics,
    preview,
    terminal,
)
from app.services import Limiters, running_beside, running_services
from app.templating import STATIC_DIR, templates
from app.workshops import select_workshop

log = logging.getLogger("labdeck")


@asynccontextmanager
async def lifespan(app: FastAPI) -> AsyncIterator[None]:
    settings: Settings = app.state.settings
    settings.data_dir.mkdir(parents=True, exist_ok=True)
    with backup.serving(settings.database_path):  # `labdeck db restore` waits for us to stop
        db.upgrade(settings.database_path)
        content = LiveWorkshop(select_workshop(settings))
        # Tests and benches may hand in a backend (a FakeBackend); else the one the settings name.
        backend = getattr(app.state, "sandbox_backend", None)
        async with (
            running_services(settings, content, app.state.limiters, backend) as services,
            automatic_backups(settings),
        ):
            app.state.services = services
            # Start-up objects live for the whole run: keep them out of every later full
            # collection, which otherwise shows up as dashboard render outliers
            # (docs/benchmarks.md).
            gc.freeze()
            try:
                yield
            finally:
                app.state.services = None


@asynccontextmanager
async def automatic_backups(settings: Settings) -> AsyncIterator[None]:
    """``backup.keep_backing_up`` for as long as the portal serves (unless the interval is 0)."""
    if not settings.backup_interval:
        yield
        return
    async with running_beside(backup.keep_backing_up(settings), "database-backups"):
        yield


def create_app(settings: Settings | None = None) -> FastAPI:
    settings = settings or get_settings()
    app = FastAPI(title="LabDeck", lifespan=lifespan, docs_url=None, redoc_url=None)
    app.state.settings = settings
    app.state.services = None
    # Built here, not in the lifespan: a test or bench may loosen them before the app starts.
    app.state.limiters = Limiters.default()
    templates.env.globals["latest_broadcast"] = latest_broadcast
    install_error_handlers(app)
    app.mount("/static", StaticFiles(directory=STATIC_DIR), name="static")
    for route_module in (health, metrics, join, lessons, events, checks, terminal, hand, preview):
        app.include_router(route_module.router)
    app.include_router(instructor.router)
    install_csrf(app, settings)  # after the routers: every HTML form and htmx POST is checked
    app.add_middleware(RescuePreviewPaths)  # absolute paths escaping a preview (app/preview/)
    app.add_middleware(CountOpenWebsockets)
    app.add_middleware(RequestIdMiddleware)  # outermost: every log line of a request has its id
    return app
