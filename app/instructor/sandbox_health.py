"""The backend's health (engine, images, workshop registry) for the dashboard and the attendee's
lesson page: asked at most every few seconds, however many pages want it."""

from __future__ import annotations

import time
from weakref import WeakKeyDictionary

from app.sandboxes.base import BackendHealth
from app.sandboxes.service import SandboxService

FRESH_SECONDS = 10.0
_last: WeakKeyDictionary[SandboxService, tuple[float, BackendHealth]] = WeakKeyDictionary()


async def current_health(sandboxes: SandboxService) -> BackendHealth:
    """The backend's health, asked again once the last answer is FRESH_SECONDS old."""
    cached = _last.get(sandboxes)
    if cached is not None and time.monotonic() - cached[0] < FRESH_SECONDS:
        return cached[1]
    health = await sandboxes.health()
    _last[sandboxes] = (time.monotonic(), health)
    return health


def registry_works(health: BackendHealth) -> bool:
    return health.registry in ("ok", "none")
