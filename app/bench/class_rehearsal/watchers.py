"""What watches the class meanwhile: a monitor polling `/healthz`, and instructor dashboards (the
live websocket open, the page and `/api/class` reloaded now and then)."""

from __future__ import annotations

import asyncio
from dataclasses import dataclass, field

import httpx
from websockets.asyncio.client import connect
from websockets.exceptions import WebSocketException

from app.bench.class_rehearsal.attendee import Record, Timing

HEALTH_INTERVAL = 0.5
DASHBOARD_RELOAD_INTERVAL = 5.0


@dataclass
class Watch:
    health: list[Timing] = field(default_factory=list)
    health_statuses: dict[str, int] = field(default_factory=dict)
    instructor_pages: list[Timing] = field(default_factory=list)
    dashboard_frames: list[int] = field(default_factory=list)  # per dashboard socket
    errors: list[str] = field(default_factory=list)


async def poll_health(http: httpx.AsyncClient, record: Record, watch: Watch) -> None:
    """GET /healthz every half second, as a load balancer or an uptime monitor does."""
    while True:
        asked = record.now()
        try:
            response = await http.get("/healthz", timeout=30)
            key = str(response.status_code)
        except httpx.HTTPError as error:
            key = type(error).__name__
        watch.health.append(Timing(asked, record.now() - asked, key))
        watch.health_statuses[key] = watch.health_statuses.get(key, 0) + 1
        await asyncio.sleep(HEALTH_INTERVAL)


async def idle_health_floor(http: httpx.AsyncClient, count: int = 20) -> list[float]:
    """Seconds per /healthz with nothing else going on: the portal's own floor."""
    seconds = []
    for _ in range(count):
        started = asyncio.get_running_loop().time()
        response = await http.get("/healthz")
        response.raise_for_status()
        seconds.append(asyncio.get_running_loop().time() - started)
    return seconds


async def dashboard(ws_url: str, token: str, watch: Watch, index: int) -> None:
    """One instructor dashboard's live websocket: count the updates it receives."""
    watch.dashboard_frames.append(0)
    headers = {"Authorization": f"Bearer {token}"}
    try:
        async with connect(ws_url + "/ws/instructor", additional_headers=headers) as socket:
            async for _ in socket:
                watch.dashboard_frames[index] += 1
        watch.errors.append(f"dashboard {index}: the portal closed its websocket during the class")
    except (WebSocketException, OSError) as error:
        watch.errors.append(f"dashboard {index}: {error!r}"[:500])


async def reload_dashboard(
    http: httpx.AsyncClient, token: str, record: Record, watch: Watch
) -> None:
    """The instructor's page and the class JSON, reloaded every few seconds."""
    headers = {"Authorization": f"Bearer {token}"}
    while True:
        for path in ("/instructor", "/api/class"):
            asked = record.now()
            try:
                response = await http.get(path, headers=headers, timeout=60)
                if response.status_code != 200:
                    watch.errors.append(f"GET {path} answered {response.status_code}")
            except httpx.HTTPError as error:
                watch.errors.append(f"GET {path}: {error!r}"[:500])
            watch.instructor_pages.append(Timing(asked, record.now() - asked, path))
        await asyncio.sleep(DASHBOARD_RELOAD_INTERVAL)
