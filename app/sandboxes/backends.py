"""The sandbox backend chosen by name, as JupyterHub chooses its spawner class.

Each backend is a package (or module) with two functions: ``async def connect(settings,
workshop) -> Connection`` (everything the portal needs to make sandboxes) and ``async def
connect_for_maintenance(settings) -> Connection`` (enough to list, stop and remove them, as the
CLI does; raises ``SandboxError`` with a sentence when the engine does not answer). Adding a
backend means a package and a line in ``BACKENDS``; nothing else changes."""

from __future__ import annotations

import importlib

from app.config import Settings
from app.lessons.schema import Workshop
from app.sandboxes.base import Connection

BACKENDS = {
    "docker": "app.sandboxes.docker.connect",
    "fake": "app.sandboxes.fake",
}


async def connect(settings: Settings, workshop: Workshop | None) -> Connection:
    """Connect the backend named by ``settings.sandbox_backend``; raises with a sentence when
    its engine cannot be reached (the service retries)."""
    module = importlib.import_module(BACKENDS[settings.sandbox_backend])
    connection: Connection = await module.connect(settings, workshop)
    return connection


async def connect_for_maintenance(settings: Settings) -> Connection:
    module = importlib.import_module(BACKENDS[settings.sandbox_backend])
    connection: Connection = await module.connect_for_maintenance(settings)
    return connection
