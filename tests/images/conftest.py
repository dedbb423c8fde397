"""A real engine and LabDeck's images, built once per test session (offline here)."""

from __future__ import annotations

import time
import uuid
from collections.abc import Iterator

import docker
import pytest
from docker.errors import APIError, DockerException, NotFound

from app.sandboxes.docker.images.builder import BuildResult, build_all
from app.sandboxes.docker.images.mode import Mode, detect_mode

RUN_ID = uuid.uuid4().hex[:12]
# Every object these tests create carries both; the run label keeps other sessions' sweeps
# and ours apart.
TEST_LABELS = {"io.labdeck.test": "1", "io.labdeck.test.run": RUN_ID}


@pytest.fixture(scope="session")
def docker_client() -> Iterator[docker.DockerClient]:
    try:
        client = docker.from_env(timeout=600)
        client.ping()
    except DockerException as error:
        pytest.fail(f"These tests need a Docker engine (./labdeck test starts one): {error}")
    yield client
    client.close()


@pytest.fixture(scope="session")
def build_mode() -> Mode:
    return detect_mode()


@pytest.fixture(scope="session")
def first_build(docker_client: docker.DockerClient, build_mode: Mode) -> list[BuildResult]:
    """Builds what is missing or outdated; up-to-date images are reused."""
    started = time.monotonic()
    results = build_all(docker_client, mode=build_mode)
    print(f"\nfirst build ({build_mode}): {time.monotonic() - started:.1f}s")
    for result in results:
        size = docker_client.api.inspect_image(result.image_id)["Size"]
        state = "built" if result.built else "reused"
        print(f"  {result.tag:<40} {state:<7} {result.seconds:6.1f}s {size / 1e6:7.1f} MB")
    return results


def remove_container(container: docker.models.containers.Container) -> None:
    try:
        container.remove(v=True, force=True)
    except (NotFound, APIError) as error:
        if getattr(error, "status_code", None) not in (404, 409):
            raise


def run_container(
    client: docker.DockerClient, image: str, command: list[str] | None = None, **options: object
) -> tuple[int, str]:
    """Run a labelled container to its end; its exit code and output (stdout and stderr)."""
    container = client.containers.create(image, command, labels=TEST_LABELS, **options)
    try:
        container.start()
        code = container.wait(timeout=60)["StatusCode"]
        return code, bytes(container.logs(stdout=True, stderr=True)).decode()
    finally:
        remove_container(container)  # with its anonymous volumes


def assert_nothing_left(client: docker.DockerClient) -> None:
    label = f"io.labdeck.test.run={RUN_ID}"
    assert client.containers.list(all=True, filters={"label": label}) == []
    assert client.volumes.list(filters={"label": label}) == []
    assert client.networks.list(filters={"label": label}) == []
