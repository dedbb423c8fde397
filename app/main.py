"""The application factory and its lifespan: migrate, load the workshop, connect the engine."""

from __future__ import annotations

import gc
import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from fastapi import FastAPI
from fastapi.staticfiles import StaticFiles

from app import db
from app.attendees import (
    JOINS_PER_ADDRESS_PER_MINUTE,
    WRONG_CODES_PER_ADDRESS_PER_MINUTE,
    RateLimiter,
    SessionCookies,
)
from app.config import Settings, get_settings
from app.csrf import install_csrf
from app.engine import Engine
from app.errors import install_error_handlers
from app.events import EventHub
from app.routes import checks, events, health, instructor, join, lessons, metrics, terminal
from app.sandboxes.service import sandboxes_lifespan
from app.templating import STATIC_DIR
from app.workshops import select_workshop

log = logging.getLogger("labdeck")


@asynccontextmanager
async def lifespan(app: FastAPI) -> AsyncIterator[None]:
    settings: Settings = app.state.settings
    settings.data_dir.mkdir(parents=True, exist_ok=True)
    db.upgrade(settings.database_path)
    app.state.db_engine = db.make_engine(settings.database_path)
    app.state.workshop = select_workshop(settings)
    # No ping here: the portal starts (and /healthz says "degraded") while the engine is down.
    app.state.docker = Engine()
    try:
        async with sandboxes_lifespan(app):  # app.state.sandboxes; never stops a sandbox
            # Start-up objects live for the whole run: keep them out of every later full
            # collection, which otherwise shows up as dashboard render outliers (docs/benchmarks.md).
            gc.freeze()
            yield
    finally:
        app.state.docker.close()
        app.state.db_engine.dispose()


def create_app(settings: Settings | None = None) -> FastAPI:
    settings = settings or get_settings()
    app = FastAPI(title="LabDeck", lifespan=lifespan, docs_url=None, redoc_url=None)
    app.state.settings = settings
    app.state.workshop = None
    app.state.cookies = SessionCookies(settings.cookie_secret())
    app.state.join_limiter = RateLimiter(limit=JOINS_PER_ADDRESS_PER_MINUTE, window=60)
    app.state.wrong_code_limiter = RateLimiter(limit=WRONG_CODES_PER_ADDRESS_PER_MINUTE, window=60)
    app.state.events = EventHub()
    install_error_handlers(app)
    app.mount("/static", StaticFiles(directory=STATIC_DIR), name="static")
    app.include_router(health.router)
    app.include_router(metrics.router)
    app.include_router(join.router)
    app.include_router(lessons.router)
    app.include_router(events.router)
    app.include_router(checks.router)
    app.include_router(terminal.router)
    instructor.install(app)  # the instructor's routers, dashboard feed and broadcasts
    install_csrf(app, settings)  # after the routers: every HTML form and htmx POST is checked
    return app
