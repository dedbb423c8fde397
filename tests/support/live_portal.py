"""LabDeck on a real uvicorn, with the attendee's side of its sockets: over FakeBackend for the
terminal protocol, or over real sandboxes (``docker_portal``) for the shell and the browser."""

from __future__ import annotations

import asyncio
import os
import subprocess
import sys
from collections.abc import AsyncIterator, Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import asynccontextmanager, contextmanager, suppress
from pathlib import Path
from typing import Any

import httpx
import pytest
from websockets.asyncio.client import ClientConnection, connect
from websockets.exceptions import ConnectionClosed

from app.config import Settings
from app.cookies import COOKIE_NAME
from app.main import create_app
from app.sandboxes.base import SandboxBackend
from tests.support.live_server import LiveServer
from tests.support.settings import REPO, TEST_LABELS, settings_for

SANDBOX_IMAGE = "labdeck/sandbox:latest"


def portal_settings(data_dir: Path, instance: str) -> Settings:
    return settings_for(data_dir, instance, warm_pool_size=0)


class Portal(LiveServer):
    """LabDeck on a real uvicorn with ``backend`` under its sandbox service
    (``app.state.sandbox_backend``), and the attendee's side of its sockets."""

    def __init__(self, settings: Settings, backend: SandboxBackend) -> None:
        app = create_app(settings)
        app.state.sandbox_backend = backend
        super().__init__(app)
        self.backend = backend

    def join(self, name: str) -> str:
        """A new attendee's session cookie."""
        response = httpx.post(self.url + "/join", data={"name": name}, follow_redirects=False)
        assert response.status_code == 303, response.text
        return response.cookies[COOKIE_NAME]

    def attendee_id(self, cookie: str) -> int:
        found = self.app.state.services.cookies.load(cookie)
        assert found is not None
        return int(found[0])

    @asynccontextmanager
    async def socket(
        self,
        path: str = "/ws/terminal",
        *,
        cookie: str | None = None,
        origin: str | None = None,
        headers: dict[str, str] | None = None,
        size: tuple[int, int] | None = (80, 24),
    ) -> AsyncIterator[ClientConnection]:
        extra = dict(headers or {})
        if cookie is not None:
            extra["Cookie"] = f"{COOKIE_NAME}={cookie}"
        if origin is not None:
            extra["Origin"] = origin
        async with connect(self.ws_url + path, additional_headers=extra, max_size=None) as ws:
            if size is not None:
                with suppress(ConnectionClosed):  # a refused socket may be closed already
                    await ws.send(f'{{"type": "resize", "cols": {size[0]}, "rows": {size[1]}}}')
            yield ws


@contextmanager
def docker_portal(data_dir: Path) -> Iterator[Portal]:
    """A portal over real sandboxes (its own network and registry, all removed afterwards);
    skips the test when no engine answers. Open it once per module: sandboxes are slow."""
    from app.sandboxes.docker import network
    from app.sandboxes.docker.connect import prepare_docker
    from app.sandboxes.docker.engine import EngineUnavailable, docker_client

    try:
        client = docker_client(timeout=120)
    except EngineUnavailable as error:
        pytest.skip(str(error))
    if not client.images.list(name=SANDBOX_IMAGE):
        subprocess.run([sys.executable, "-m", "app", "images", "build"], cwd=REPO, check=True)
    instance = f"test-{os.getpid()}-term"
    settings = portal_settings(data_dir, instance)
    backend, registry = prepare_docker(settings, extra_labels=TEST_LABELS)
    try:
        with Portal(settings, backend) as served:
            yield served
    finally:
        _remove_sandboxes(backend)
        registry.remove(data=True)
        network.teardown_network(client, instance, extra_labels=TEST_LABELS)
        client.close()


def _remove_sandboxes(backend: Any) -> None:
    async def remove_all() -> None:
        for info in await backend.list():
            await backend.remove(info.name)
        await backend.aclose()

    # In a thread of its own: Playwright's sync API keeps an event loop running in this one.
    with ThreadPoolExecutor(1) as pool:
        pool.submit(asyncio.run, remove_all()).result()
