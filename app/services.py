"""The app's services, built once by the lifespan (app/main.py) and reached through the typed
dependencies of app/deps.py. Nothing else builds a service or keeps one in ``app.state``."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Coroutine
from contextlib import AsyncExitStack, asynccontextmanager, suppress
from dataclasses import dataclass
from functools import partial
from typing import Any

from app.checks.service import CheckService
from app.config import Settings
from app.cookies import SessionCookies
from app.db import Database
from app.events import EventHub
from app.instructor.broadcasts import BroadcastBoard
from app.instructor.live import DashboardFeed, announce_content
from app.instructor.pool_size import saved_warm_pool_size
from app.lessons.reload import LiveWorkshop
from app.lessons.schema import Workshop
from app.preview.http import PreviewClient
from app.ratelimit import RateLimiter
from app.sandboxes.base import SandboxBackend
from app.sandboxes.service import (
    SandboxService,
    ServiceConfig,
    limits_for,
    running_sandboxes,
)

# A whole class may join from one address (venue Wi-Fi behind NAT, a proxy): joins per address
# are limited only against floods, while guessing a join code or a token is limited tightly.
JOINS_PER_ADDRESS_PER_MINUTE = 200
WRONG_CODES_PER_ADDRESS_PER_MINUTE = 10
WRONG_TOKENS_PER_ADDRESS_PER_MINUTE = 10


@dataclass(frozen=True)
class Limiters:
    joins: RateLimiter
    wrong_codes: RateLimiter
    wrong_tokens: RateLimiter

    @classmethod
    def default(cls) -> Limiters:
        return cls(
            joins=RateLimiter(limit=JOINS_PER_ADDRESS_PER_MINUTE, window=60),
            wrong_codes=RateLimiter(limit=WRONG_CODES_PER_ADDRESS_PER_MINUTE, window=60),
            wrong_tokens=RateLimiter(limit=WRONG_TOKENS_PER_ADDRESS_PER_MINUTE, window=60),
        )


@dataclass
class Services:
    settings: Settings
    db: Database
    content: LiveWorkshop  # the workshop served now: read it on each use, never keep it
    cookies: SessionCookies
    limiters: Limiters
    events: EventHub
    sandboxes: SandboxService
    checks: CheckService
    broadcasts: BroadcastBoard
    dashboard_feed: DashboardFeed
    preview: PreviewClient

    @property
    def workshop(self) -> Workshop | None:
        return self.content.current()

    @workshop.setter
    def workshop(self, workshop: Workshop) -> None:
        self.content.serve(workshop)


@asynccontextmanager
async def running_services(
    settings: Settings,
    content: LiveWorkshop,
    limiters: Limiters,
    backend: SandboxBackend | None = None,
) -> AsyncIterator[Services]:
    """Every service, started; on the way out, stopped in reverse (sandboxes keep running)."""
    async with AsyncExitStack() as stack:
        database = Database(
            settings.database_path,
            workers=settings.db_workers,
            busy_timeout_ms=int(settings.db_busy_timeout * 1000),
        )
        stack.callback(database.close)
        events = EventHub()
        events.bind(asyncio.get_running_loop())
        workshop = content.current()
        config = ServiceConfig.from_settings(
            settings, workshop, **await _dashboard_overrides(database, workshop)
        )
        sandboxes = SandboxService(database, events, config)
        current = content.current
        await stack.enter_async_context(running_sandboxes(sandboxes, settings, current, backend))
        checks = CheckService(
            sandboxes, events, database, workers=settings.check_workers, workshop=current
        )
        stack.push_async_callback(checks.close)
        content.on_change(partial(_follow_content, settings, sandboxes, events))
        if settings.reloads_content:
            await stack.enter_async_context(running_beside(content.keep_fresh(), "content-reload"))
        preview = PreviewClient()
        stack.push_async_callback(preview.aclose)
        yield Services(
            settings=settings,
            db=database,
            content=content,
            cookies=SessionCookies(settings.cookie_secret()),
            limiters=limiters,
            events=events,
            sandboxes=sandboxes,
            checks=checks,
            broadcasts=BroadcastBoard(),
            dashboard_feed=DashboardFeed(events, database, current),
            preview=preview,
        )


async def _dashboard_overrides(database: Database, workshop: Workshop | None) -> dict[str, int]:
    """What the instructor set on the dashboard before a restart (app/instructor/pool_size.py)."""
    slug = workshop.slug if workshop else ""
    size = await database.run(lambda session: saved_warm_pool_size(session, slug))
    return {} if size is None else {"warm_pool_size": size}


def _follow_content(
    settings: Settings, sandboxes: SandboxService, events: EventHub, workshop: Workshop
) -> None:
    """A reload changed the workshop or its problems: sandboxes made from now on get its
    ``sandbox:`` limits, and open dashboards redraw their grid (columns, problems)."""
    sandboxes.use_limits(limits_for(settings, workshop))
    announce_content(events)


@asynccontextmanager
async def running_beside(work: Coroutine[Any, Any, None], name: str) -> AsyncIterator[None]:
    """``work`` as a task for as long as the block runs; cancelled and awaited at its end."""
    task = asyncio.create_task(work, name=name)
    try:
        yield
    finally:
        task.cancel()
        with suppress(asyncio.CancelledError):
            await task
