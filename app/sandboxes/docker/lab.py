"""A throw-away LabDeck instance on the real engine, for the benchmarks and the tests that prove
tasks and the check agent on real sandboxes: its own network, seeded registry and instance name,
all removed on the way out. Here, not in ``app/bench``, because tests use it too (issue 12)."""

from __future__ import annotations

import asyncio
import secrets
import signal
import subprocess
from collections.abc import AsyncIterator, Mapping
from contextlib import asynccontextmanager
from dataclasses import dataclass
from typing import Any

from docker.errors import APIError
from sqlalchemy import Engine
from sqlmodel import Session

from app import db
from app.checks.service import CheckService
from app.config import Settings
from app.events import EventHub
from app.lessons.schema import Workshop
from app.models import Attendee
from app.sandboxes.docker.backend import DockerBackend
from app.sandboxes.docker.connect import prepare_docker, remove_docker_setup, workshop_images
from app.sandboxes.docker.engine import docker_client
from app.sandboxes.naming import LABEL_INSTANCE
from app.sandboxes.service import SandboxService, ServiceConfig


@dataclass
class Lab:
    """Real sandboxes for one throw-away LabDeck instance: what proofs and benchmarks use."""

    sandboxes: SandboxService
    checks: CheckService
    events: EventHub
    db_engine: Engine
    workshop: str

    def add_attendee(self, name: str) -> int:
        with Session(self.db_engine) as session:
            attendee = Attendee(workshop=self.workshop, name=name, resume_key=secrets.token_hex(8))
            session.add(attendee)
            session.commit()
            assert attendee.id is not None
            return attendee.id

    async def sandbox_for(self, attendee_id: int, timeout: float = 300) -> str:
        return await self.sandboxes.ready_sandbox(attendee_id, timeout=timeout)


@asynccontextmanager
async def real_lab(
    settings: Settings, workshop: Workshop, labels: dict[str, str] | None = None
) -> AsyncIterator[Lab]:
    """A sandbox service on the Docker engine with its own network and seeded registry; every
    container, volume and network it made is removed on the way out, even after a failure."""
    labels = labels or {}
    db.upgrade(settings.database_path)
    database = db.Database(settings.database_path)
    events = EventHub()
    config = ServiceConfig.from_settings(settings, workshop, warm_pool_size=0, labels=labels)
    sandboxes = SandboxService(database, events, config)
    checks = CheckService(
        sandboxes, events, database, ready_timeout=120, workers=settings.check_workers
    )
    backend: DockerBackend | None = None
    try:
        backend, registry = await asyncio.to_thread(prepare_docker, settings, labels)
        await asyncio.to_thread(registry.ensure_running)
        await asyncio.to_thread(registry.seed, workshop_images(workshop))
        await sandboxes.start(backend)
        yield Lab(sandboxes, checks, events, database.engine, workshop.slug)
    finally:
        await checks.close()
        if sandboxes.connected:
            await sandboxes.prune(everything=True)
        await sandboxes.close()
        if backend is not None:
            await backend.aclose()
        await asyncio.to_thread(remove_docker_setup, settings, labels)
        database.close()


def remove_instance(settings: Settings, extra_labels: Mapping[str, str] | None = None) -> None:
    """Every sandbox (and engine volume) of the instance, then its registry and network.
    Idempotent: what is gone already counts as removed. Blocks."""
    client = docker_client()
    label: dict[str, str | list[str] | bool] = {"label": f"{LABEL_INSTANCE}={settings.instance}"}
    try:
        for container in client.containers.list(all=True, filters=label):
            _unless_gone(container.remove, force=True, v=True)
        for volume in client.volumes.list(filters=label):
            _unless_gone(volume.remove, force=True)
    finally:
        client.close()
    remove_docker_setup(settings, extra_labels)


def stop_portal(process: subprocess.Popen[bytes] | None, timeout: float = 60) -> None:
    """Stop a portal's process as an operator does: SIGTERM, so uvicorn ends its requests and
    the lifespan (its sandboxes live on); killed when still there after ``timeout``. Stopping
    one that has ended, or never started, is done."""
    if process is None or process.poll() is not None:
        return
    process.send_signal(signal.SIGTERM)
    try:
        process.wait(timeout=timeout)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait()


def _unless_gone(remove: Any, **options: Any) -> None:
    try:
        remove(**options)
    except APIError as error:
        if error.status_code not in (404, 409):  # gone, or going already
            raise
