"""The sandbox service on the real engine: lifecycle, warm pool, reconcile, and an attendee who
reconfigures and restarts their inner engine. Few tests, each worth its seconds."""

from __future__ import annotations

import asyncio
import os
from collections.abc import AsyncIterator, Iterator
from contextlib import asynccontextmanager
from dataclasses import replace
from pathlib import Path
from typing import Any

import pytest
from docker.errors import NotFound

from app.config import Settings
from app.events import EventHub
from app.ports import free_port
from app.sandboxes.docker.backend import DockerBackend, DockerBackendConfig
from app.sandboxes.docker.connect import prepare_docker
from app.sandboxes.docker.engine import docker_client
from app.sandboxes.docker.network import teardown_network
from app.sandboxes.naming import engine_volume_name
from app.sandboxes.service import SandboxService, ServiceConfig
from tests.support.sandboxes import Harness, database
from tests.support.settings import REPO, TEST_LABELS

pytestmark = [pytest.mark.docker, pytest.mark.anyio]
# An empty image made inside the sandbox: proves the inner engine's images survive a stop.
MAKE_IMAGE = "tar cf - --files-from /dev/null | docker import - keepme:1 >/dev/null"


@pytest.fixture(scope="module")
def engine_setup(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Settings, Any]]:
    """The real path: runtime profile, the instance's network and firewall; swept afterwards."""
    settings = Settings(
        _env_file=None,  # type: ignore[call-arg]
        data_dir=tmp_path_factory.mktemp("real-class"),
        content_dir=REPO / "content",
        instance=f"test-rc-{os.getpid()}",
        registry_port=free_port(),
        warm_pool_size=0,
    )
    backend, _registry = prepare_docker(settings, TEST_LABELS)
    try:
        yield settings, backend.config
    finally:
        client = docker_client()
        for container in client.containers.list(
            all=True, filters={"label": f"io.labdeck.instance={settings.instance}"}
        ):
            container.remove(force=True, v=True)
        for volume in client.volumes.list(filters={"label": "io.labdeck.test=1"}):
            if volume.name.startswith(settings.instance):
                volume.remove(force=True)
        teardown_network(client, settings.instance, extra_labels=TEST_LABELS)
        client.close()


@asynccontextmanager
async def real_service(
    tmp_path: Path, config: DockerBackendConfig, settings: Settings, **overrides: Any
) -> AsyncIterator[Harness]:
    engine = overrides.pop("engine", None) or database(tmp_path)
    backend = DockerBackend(config)
    service_config = replace(
        ServiceConfig.from_settings(settings, None, labels=TEST_LABELS, **overrides),
        workshop="docker-basics",
    )
    service = SandboxService(engine, EventHub(), service_config, backend)
    await service.start()
    try:
        yield Harness(service, backend, service.transitions.events, engine.engine)  # type: ignore[arg-type]
    finally:
        await service.close()
        await backend.aclose()


def container_state(name: str) -> dict[str, Any]:
    client = docker_client()
    try:
        return dict(client.api.inspect_container(name)["State"])
    finally:
        client.close()


def started_at(name: str) -> str:
    return str(container_state(name)["StartedAt"])


def running(name: str) -> bool:
    return bool(container_state(name)["Running"])


async def run(h: Harness, name: str, command: str, timeout: float = 30) -> str:
    result = await h.service.backend.exec(name, command, timeout=timeout)
    assert result.exit_code == 0, result.output
    return result.output


async def test_the_whole_lifecycle(tmp_path: Path, engine_setup: tuple[Settings, Any]) -> None:
    settings, config = engine_setup
    async with real_service(tmp_path, config, settings) as h:
        me = h.attendee()
        assert (await h.service.ensure_for(me)).state in ("queued", "creating")
        name = await h.service.ready_sandbox(me, timeout=120)
        await run(h, name, f"echo kept > ~/note.txt && {MAKE_IMAGE}")

        await h.service.stop(me)
        assert started_at(name) and not running(name) and h.row(me).state == "stopped"

        assert await h.service.ready_sandbox(me, timeout=120) == name
        kept = await run(h, name, "cat ~/note.txt && docker image inspect -f ok keepme:1")
        assert kept.split() == ["kept", "ok"]

        fresh = (await h.service.reset(me)).name
        assert fresh != name and await h.service.ready_sandbox(me, timeout=120) == fresh
        assert "No such file" in (await h.service.backend.exec(fresh, "cat ~/note.txt")).output
        client = docker_client()
        with pytest.raises(NotFound):
            client.containers.get(name)
        with pytest.raises(NotFound):
            client.volumes.get(engine_volume_name(name))
        client.close()

        assert await h.service.prune(everything=True) == [fresh]
        assert await h.service.backend.list() == []


async def test_a_warm_sandbox_is_handed_out_without_starting_anything(
    tmp_path: Path, engine_setup: tuple[Settings, Any]
) -> None:
    settings, config = engine_setup
    async with real_service(tmp_path, config, settings, warm_pool_size=1) as h:
        async with asyncio.timeout(120):
            while (await h.service.pool_counts())["ready"] < 1:
                await asyncio.sleep(0.1)
        # (Shrinking the pool to stop its refill would remove this very sandbox; how fast a
        # hand-out is, `labdeck bench class` measures.)
        warm = (await h.service.records.unassigned())[0].container_name
        before = started_at(warm)
        me = h.attendee()
        await h.service.ensure_for(me)
        name = await h.service.ready_sandbox(me)
        await run(h, name, "docker info >/dev/null")
        assert name == warm and started_at(name) == before
        await h.service.prune(everything=True)


async def test_a_fresh_service_adopts_a_live_sandbox(
    tmp_path: Path, engine_setup: tuple[Settings, Any]
) -> None:
    settings, config = engine_setup
    engine = database(tmp_path)
    async with real_service(tmp_path, config, settings, engine=engine) as first:
        me = first.attendee()
        name = await first.service.ready_sandbox(me, timeout=120)
    before = started_at(name)
    async with real_service(tmp_path, config, settings, engine=engine) as second:
        assert second.row(me).state == "ready"
        assert await second.service.ready_sandbox(me) == name
        assert started_at(name) == before  # adopted, not restarted
        await second.service.prune(everything=True)


RECONFIGURE = """
set -e
sudo sh -c 'jq ". + {\\"insecure-registries\\": [\\"10.99.0.1:5000\\"]}" /etc/docker/daemon.json \
    > /tmp/daemon.json && mv /tmp/daemon.json /etc/docker/daemon.json'
sudo service docker restart
for _ in $(seq 100); do docker info >/dev/null 2>&1 && break; sleep 0.2; done
docker info --format '{{json .RegistryConfig}}'
"""


async def test_the_attendee_reconfigures_and_restarts_the_inner_engine(
    tmp_path: Path, engine_setup: tuple[Settings, Any]
) -> None:
    settings, config = engine_setup
    async with real_service(tmp_path, config, settings) as h:
        me = h.attendee()
        name = await h.service.ready_sandbox(me, timeout=120)
        before = started_at(name)
        registry_config = await run(h, name, RECONFIGURE, timeout=60)
        assert "10.99.0.1:5000" in registry_config  # the attendee's own setting
        assert config.registry_mirror in registry_config  # the workshop mirror, kept
        assert started_at(name) == before  # the sandbox itself never stopped
        assert await h.service.ready_sandbox(me) == name
        await h.service.prune(everything=True)
