"""A real uvicorn serving an app on a free loopback port, in a thread: what websocket clients and
browsers talk to (TestClient has no real sockets)."""

from __future__ import annotations

import asyncio
import threading
import time
from collections.abc import Callable, Coroutine
from typing import Any, Self

import uvicorn
from fastapi import FastAPI

from app.ports import free_port

__all__ = ["LiveServer", "free_port"]  # free_port: tests import it from here too

STARTUP_SECONDS = 60


class LiveServer:
    """``app`` under uvicorn in a daemon thread, for a ``with`` block. ``call`` runs a coroutine
    on the server's own event loop, where the event hub and the services live."""

    def __init__(self, app: FastAPI, **options: Any) -> None:
        """``options`` go to uvicorn.Config as the serve command passes them (app.cli.uvicorn_options)."""
        self.app = app
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.ws_url = f"ws://127.0.0.1:{self.port}"
        options = {"log_level": "warning", **options}
        config = uvicorn.Config(app, host="127.0.0.1", port=self.port, **options)
        self.server = uvicorn.Server(config)
        self.loop: asyncio.AbstractEventLoop | None = None
        self.thread = threading.Thread(target=self._run, daemon=True)

    def _run(self) -> None:
        async def serve() -> None:
            self.loop = asyncio.get_running_loop()
            await self.server.serve()

        asyncio.run(serve())

    def call(self, work: Callable[..., Coroutine[Any, Any, Any]], *args: Any) -> Any:
        assert self.loop is not None, "call() needs the server running"
        return asyncio.run_coroutine_threadsafe(work(*args), self.loop).result(timeout=30)

    def __enter__(self) -> Self:
        self.thread.start()
        deadline = time.monotonic() + STARTUP_SECONDS
        while not self.server.started:  # set once the lifespan has run and the port listens
            if not self.thread.is_alive() or time.monotonic() > deadline:
                self.__exit__()
                raise RuntimeError(f"the portal did not start within {STARTUP_SECONDS} s")
            time.sleep(0.02)
        return self

    def __exit__(self, *exc: object) -> None:
        self.server.should_exit = True
        self.thread.join(timeout=30)
