from __future__ import annotations

import dataclasses
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import docker
import httpx
import pytest

from app.sandboxes.docker import network
from app.sandboxes.docker.registry import READ_ONLY_ENV, WorkshopRegistry, split_reference
from tests.support.docker_lab import SEED, TEST_LABELS, Lab, free_port, instance_name, run

HELLO = SEED[0]


def test_official_images_live_under_library() -> None:
    assert split_reference("hello-world") == ("library/hello-world", "latest")
    assert split_reference("registry:2") == ("library/registry", "2")
    assert split_reference("me/app:1.0") == ("me/app", "1.0")


class Untouched:
    """A Docker client a registry beside the portal must never use."""

    def __getattr__(self, name: str) -> object:
        raise AssertionError(f"the registry beside the portal used the engine ({name})")


@contextmanager
def answering_v2() -> Iterator[int]:
    """A loopback HTTP server that answers ``GET /v2/`` as a registry does; its port."""

    class Handler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            self.send_response(200 if self.path == "/v2/" else 404)
            self.end_headers()

        def log_message(self, *_: object) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield server.server_address[1]
    finally:
        server.shutdown()
        server.server_close()


def test_a_registry_beside_the_portal_is_waited_for_and_seeded_through_its_twin() -> None:
    with answering_v2() as port, answering_v2() as seed_port:
        info = network.NetworkInfo("i-sandboxes", "ld-x", "10.9.0.0/24", "10.9.0.1", "allow", port)
        beside = WorkshopRegistry(
            Untouched(),  # type: ignore[arg-type]
            "i",
            dataclasses.replace(info, registry_address="127.0.0.1"),
            port,
            seed_port=seed_port,
        )
        beside.ensure_running()
        assert beside.healthy() and beside.beside
        assert beside.mirror_url() == f"http://127.0.0.1:{port}"
        with beside._seeder() as pushed_to:
            assert pushed_to == seed_port
        beside.remove(data=True)  # not the portal's: nothing happens


@pytest.fixture(scope="module")
def sandbox_network(engine: docker.DockerClient) -> Iterator[network.NetworkInfo]:
    instance = instance_name("reg")
    info = network.ensure_network(
        engine, instance, registry_port=free_port(), extra_labels=TEST_LABELS
    )
    yield info
    network.teardown_network(engine, instance, extra_labels=TEST_LABELS)


@pytest.fixture
def registry(
    engine: docker.DockerClient, sandbox_network: network.NetworkInfo
) -> Iterator[WorkshopRegistry]:
    instance = sandbox_network.name.removesuffix("-sandboxes")
    made = WorkshopRegistry(
        engine, instance, sandbox_network, sandbox_network.registry_port, extra_labels=TEST_LABELS
    )
    yield made
    made.remove(data=True)


def container_id(client: docker.DockerClient, name: str) -> str:
    return str(client.api.inspect_container(name)["Id"])


@pytest.mark.docker
def test_ensure_running_is_idempotent_and_publishes_on_gateway_and_loopback(
    engine: docker.DockerClient, registry: WorkshopRegistry, sandbox_network: network.NetworkInfo
) -> None:
    registry.ensure_running()
    first = container_id(engine, registry.name)
    registry.ensure_running()
    assert container_id(engine, registry.name) == first
    attrs = engine.api.inspect_container(registry.name)
    assert attrs["HostConfig"]["RestartPolicy"]["Name"] == "unless-stopped"
    bindings = {b["HostIp"] for b in attrs["HostConfig"]["PortBindings"]["5000/tcp"]}
    assert bindings == {"127.0.0.1", sandbox_network.gateway}
    assert registry.mirror_url() == f"http://{sandbox_network.gateway}:{registry.port}"
    assert httpx.get(f"{registry.local_url}/v2/", timeout=5).status_code == 200


@pytest.mark.docker
def test_stopped_registry_is_started_again(
    engine: docker.DockerClient, registry: WorkshopRegistry
) -> None:
    registry.ensure_running()
    engine.api.stop(registry.name, timeout=1)
    assert not registry.healthy()
    registry.ensure_running()
    assert registry.healthy()


@pytest.mark.docker
def test_seed_pushes_once_under_library_and_untags(
    engine: docker.DockerClient, registry: WorkshopRegistry
) -> None:
    registry.ensure_running()
    [first] = registry.seed([HELLO])
    assert first.pushed and first.reference == "library/hello-world:latest"
    local_id = engine.api.inspect_image(HELLO[0])["Id"]
    assert registry.config_digest("library/hello-world", "latest") == local_id
    started = time.monotonic()
    [again] = registry.seed([HELLO])
    assert not again.pushed and time.monotonic() - started < 1
    tags = engine.api.inspect_image(HELLO[0])["RepoTags"]
    assert not [tag for tag in tags if tag.startswith(f"127.0.0.1:{registry.port}/")]


@pytest.mark.docker
def test_online_mode_is_a_pull_through_cache_and_is_not_seeded(
    engine: docker.DockerClient, sandbox_network: network.NetworkInfo, lab: Lab
) -> None:
    # The shared lab's registry stands in for Docker Hub: this machine has no way out.
    upstream = lab.registry.mirror_url()
    instance = sandbox_network.name.removesuffix("-sandboxes")
    cache = WorkshopRegistry(
        engine,
        instance,
        sandbox_network,
        sandbox_network.registry_port,
        upstream,
        extra_labels=TEST_LABELS,
    )
    try:
        cache.ensure_running()
        env = engine.api.inspect_container(cache.name)["Config"]["Env"]
        assert f"REGISTRY_PROXY_REMOTEURL={upstream}" in env
        assert cache.seed([HELLO]) == []
        local_id = engine.api.inspect_image(HELLO[0])["Id"]
        assert cache.config_digest("library/hello-world", "latest") == local_id
    finally:
        cache.remove(data=True)


# -- no attendee can change what another pulls (issue 13) ---------------------------------------

MANIFEST = "application/vnd.docker.distribution.manifest.v2+json"


def upload_status(url: str) -> int:
    return httpx.post(f"{url}/v2/library/hello-world/blobs/uploads/", timeout=5).status_code


def write_attempts(url: str) -> dict[str, int]:
    """The status of each way to write to a registry over its API."""
    manifest = f"{url}/v2/library/hello-world/manifests"
    digest = httpx.head(f"{manifest}/latest", headers={"Accept": MANIFEST}, timeout=5)
    return {
        "upload": upload_status(url),
        "manifest": httpx.put(
            f"{manifest}/evil", content=b"{}", headers={"Content-Type": MANIFEST}, timeout=5
        ).status_code,
        "delete": httpx.delete(
            f"{manifest}/{digest.headers['Docker-Content-Digest']}", timeout=5
        ).status_code,
    }


@pytest.mark.docker
def test_the_registry_is_read_only_and_seeds_through_a_seeder_that_goes_away(
    engine: docker.DockerClient, registry: WorkshopRegistry
) -> None:
    registry.ensure_running()
    assert READ_ONLY_ENV in engine.api.inspect_container(registry.name)["Config"]["Env"]
    [seeded] = registry.seed([HELLO])
    assert seeded.pushed
    assert write_attempts(registry.local_url) == {"upload": 405, "manifest": 405, "delete": 405}
    assert not engine.containers.list(all=True, filters={"name": registry.seeder_name})
    # A changed image goes in through a new seeder, and the read-only registry serves it at once.
    busybox = SEED[1][0]
    [replaced] = registry.seed([(busybox, "hello-world:latest")])
    assert replaced.pushed
    busybox_id = engine.api.inspect_image(busybox)["Id"]
    assert registry.config_digest("library/hello-world", "latest") == busybox_id
    assert not engine.containers.list(all=True, filters={"name": registry.seeder_name})


@pytest.mark.docker
def test_a_registry_left_writable_by_an_older_portal_is_replaced(
    engine: docker.DockerClient, registry: WorkshopRegistry
) -> None:
    registry.ensure_running()
    engine.api.remove_container(registry.name, force=True)
    writable = WorkshopRegistry(
        engine, registry._instance, registry._network, registry.port, extra_labels=TEST_LABELS
    )
    writable._wanted_env = lambda: []  # type: ignore[method-assign]  # what portals made before
    writable.ensure_running()
    assert upload_status(registry.local_url) == 202
    registry.ensure_running()
    assert upload_status(registry.local_url) == 405


ATTACK = """
set -u
mirror={mirror}
work=$(mktemp -d)
printf 'FROM busybox\\nCMD ["echo", "pwned by the attacker"]\\n' >"$work/Dockerfile"
docker build -q -t "$mirror/library/hello-world:latest" "$work" >/dev/null || echo build-failed
docker push "$mirror/library/hello-world:latest" >/dev/null 2>&1; echo "push=$?"
curl -s -o /dev/null -w 'upload=%{{http_code}}\\n' -X POST "http://$mirror/v2/library/hello-world/blobs/uploads/"
curl -s -o /dev/null -w 'delete=%{{http_code}}\\n' -X DELETE "http://$mirror/v2/library/hello-world/manifests/{digest}"
"""

OWN_REGISTRY = """
set -eu
docker run -d --name registry -p 5000:5000 registry:2 >/dev/null
for _ in $(seq 50); do curl -sf http://localhost:5000/v2/ >/dev/null && break; sleep 0.2; done
docker tag hello-world localhost:5000/workshop/hello:v1
docker push -q localhost:5000/workshop/hello:v1 >/dev/null
curl -s http://localhost:5000/v2/workshop/hello/tags/list
"""


@pytest.mark.docker
def test_no_sandbox_can_change_what_another_pulls(lab: Lab) -> None:
    """The attack of issue 13: a push of ``<mirror>/library/hello-world`` from one sandbox made
    every other attendee's ``docker run hello-world`` print the pusher's text."""
    mirror = lab.registry.mirror_url().removeprefix("http://")
    hello_id = lab.client.api.inspect_image(HELLO[0])["Id"]
    digest = httpx.head(
        f"{lab.registry.local_url}/v2/library/hello-world/manifests/latest",
        headers={"Accept": MANIFEST},
        timeout=5,
    ).headers["Docker-Content-Digest"]
    attacker = run(lab.ready_sandbox("reg-attacker"))
    victim = run(lab.ready_sandbox("reg-victim"))
    try:
        attack = run(
            lab.backend.exec(attacker, ATTACK.format(mirror=mirror, digest=digest), timeout=120)
        )
        assert "build-failed" not in attack.output, attack.output
        assert "push=0" not in attack.output and "push=" in attack.output, attack.output
        assert "upload=405" in attack.output and "delete=405" in attack.output, attack.output
        assert lab.registry.config_digest("library/hello-world", "latest") == hello_id
        pulled = run(lab.backend.exec(victim, "docker run --rm hello-world", timeout=120))
        assert pulled.exit_code == 0 and "Hello from LabDeck" in pulled.output, pulled.output
        assert "pwned" not in pulled.output
        # The registry lesson's own registry, inside the sandbox, still takes pushes.
        lab.registry.seed([("labdeck/workshop/registry:2", "registry:2")])
        own = run(lab.backend.exec(victim, OWN_REGISTRY, timeout=180))
        assert own.exit_code == 0 and '"v1"' in own.output, own.output
    finally:
        for name in (attacker, victim):
            run(lab.backend.remove(name))
