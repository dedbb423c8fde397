"""Shared fixtures: settings on a temporary data dir, an app with a real SQLite file, Chromium for
the browser tests, a Docker sweep."""

from __future__ import annotations

import contextlib
import os
import re
from collections.abc import Iterator
from pathlib import Path

import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient

from app.config import Settings
from app.main import create_app
from tests.support.database import migrated_database
from tests.support.settings import TEST_LABEL, settings_for

CHROMIUM = "/usr/bin/chromium"  # Debian's: never a browser Playwright downloads
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """Browser tests last: if one ever leaks Playwright's loop, no asyncio test runs after it."""
    items.sort(key=lambda item: item.get_closest_marker("browser") is not None)


@pytest.fixture(scope="session")
def anyio_backend() -> str:
    """Every async test runs on asyncio, as the portal does."""
    return "asyncio"


@pytest.fixture
def settings(tmp_path: Path) -> Settings:
    found = settings_for(tmp_path / "data", f"test-{os.getpid()}")
    migrated_database(found.database_path)
    return found


@pytest.fixture
def app(settings: Settings) -> FastAPI:
    """The portal over FakeBackend; tests that need real sandboxes build their own."""
    from app.sandboxes.fake import FakeBackend

    app = create_app(settings)
    app.state.sandbox_backend = FakeBackend()
    return app


@pytest.fixture
def client(app: FastAPI) -> Iterator[TestClient]:
    with TestClient(app) as test_client:
        yield test_client


@pytest.fixture(scope="module")
def browser() -> Iterator[object]:
    """Chromium for one module: Playwright's sync API holds the main thread's event loop while it
    runs, so a session-wide one would break every asyncio test collected after it."""
    from playwright.sync_api import sync_playwright

    if not Path(CHROMIUM).exists():
        pytest.fail(
            f"{CHROMIUM} is missing: install Debian's chromium (./labdeck test does it as root)"
        )
    with sync_playwright() as playwright:
        chromium = playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        yield chromium
        chromium.close()


_PID_IN_NAME = re.compile(r"(?:^|-)(\d{2,7})(?:-|$)")


def _other_live_session(labels: dict[str, str], name: str) -> bool:
    """True when the object names the pid of another pytest still running (developers run
    suites side by side; CI runs one): its objects are not ours to sweep."""
    for text in (labels.get("io.labdeck.instance", ""), name):
        match = _PID_IN_NAME.search(text)
        if match and int(match.group(1)) != os.getpid():
            try:
                cmdline = Path(f"/proc/{match.group(1)}/cmdline").read_bytes()
            except OSError:
                continue
            if b"pytest" in cmdline or b"app" in cmdline:
                return True
    return False


def _is_test_object(labels: dict[str, str]) -> bool:
    return TEST_LABEL in labels or labels.get("io.labdeck.instance", "").startswith("test-")


# A test portal's workshop registry and sandbox network outlive its sandboxes by design (the
# service never tears them down on shutdown): removing them is cleanup, not a leak.
_INFRASTRUCTURE_ROLES = {"registry", "network", "netguard"}


def _is_infrastructure(labels: dict[str, str], name: str) -> bool:
    return labels.get("io.labdeck.role") in _INFRASTRUCTURE_ROLES or name.endswith("-registry-data")


def _leftovers(client: object) -> list[str]:
    """Remove every test object not owned by another live session; name those that leaked."""
    import docker

    from app.sandboxes.docker.network import teardown_network

    assert isinstance(client, docker.DockerClient)
    leaked: list[str] = []

    def mine(labels: dict[str, str], name: str) -> bool:
        return _is_test_object(labels) and not _other_live_session(labels, name)

    # The list endpoint's own fields: inspecting each container would race with other runs
    # removing theirs (a 404 mid-list).
    for summary in client.api.containers(all=True):
        labels, name = summary.get("Labels") or {}, summary["Names"][0].lstrip("/")
        if mine(labels, name):
            if not _is_infrastructure(labels, name):
                leaked.append(f"container {name}")
            with contextlib.suppress(docker.errors.NotFound):
                client.api.remove_container(summary["Id"], force=True, v=True)
    for network in client.networks.list():
        labels = network.attrs.get("Labels") or {}
        if mine(labels, network.name):
            if not _is_infrastructure(labels, network.name):
                leaked.append(f"network {network.name}")
            instance = labels.get("io.labdeck.instance")
            if instance:  # its host firewall rules go with it
                teardown_network(client, instance, extra_labels={TEST_LABEL: "1"})
            else:
                network.remove()
    for volume in client.volumes.list():
        labels = volume.attrs.get("Labels") or {}
        if mine(labels, volume.name):
            if not _is_infrastructure(labels, volume.name):
                leaked.append(f"volume {volume.name}")
            with contextlib.suppress(docker.errors.NotFound):
                volume.remove(force=True)
    return leaked


def _anonymous_dangling_volumes(client: object) -> set[str]:
    """Unlabelled, generated-name volumes no container uses: what a container of an image with a
    VOLUME (the sandbox image's /var/lib/docker) leaves behind when removed without v=True."""
    import docker

    assert isinstance(client, docker.DockerClient)
    volumes = client.api.volumes(filters={"dangling": True}).get("Volumes") or []
    return {
        volume["Name"]
        for volume in volumes
        if not volume.get("Labels") and re.fullmatch(r"[0-9a-f]{64}", volume["Name"])
    }


def _new_anonymous_volumes(client: object, before: set[str]) -> list[str]:
    """Remove the anonymous volumes left since ``before``; name them."""
    import docker

    assert isinstance(client, docker.DockerClient)
    leaked = sorted(_anonymous_dangling_volumes(client) - before)
    for name in leaked:
        with contextlib.suppress(docker.errors.NotFound, docker.errors.APIError):
            client.api.remove_volume(name)
    return [f"anonymous volume {name[:12]}" for name in leaked]


def _engines_to_sweep() -> list[object]:
    """The engine sandboxes run on (LabDeck's dedicated one, when it runs) and the host's, which
    the escape suite's unsafe sandboxes use: both are swept."""
    from app.sandboxes.docker.engine import (
        EngineUnavailable,
        docker_client,
        engine_address,
        host_address,
    )

    clients = []
    for address in dict.fromkeys([engine_address(), host_address()]):
        with contextlib.suppress(EngineUnavailable):
            clients.append(docker_client(timeout=30, address=address))
    return clients


@pytest.fixture(scope="session", autouse=True)
def sweep_docker_objects() -> Iterator[None]:
    """Remove what earlier runs left, and fail the run if this one leaks containers, volumes or networks."""
    clients = _engines_to_sweep()
    for client in clients:
        _leftovers(client)
    anonymous_before = [_anonymous_dangling_volumes(client) for client in clients]
    yield
    leaked = []
    for client, before in zip(clients, anonymous_before, strict=True):
        leaked += _leftovers(client) + _new_anonymous_volumes(client, before)
    if leaked:
        pytest.fail("tests leaked Docker objects (now removed): " + ", ".join(leaked))
