"""Containers for the image tests: each run labelled (``RUN_ID``), removed with its volumes, and
a check that a run left nothing behind. The fixtures that build the images are in
tests/images/conftest.py."""

from __future__ import annotations

import uuid

import docker
from docker.errors import APIError, NotFound

RUN_ID = uuid.uuid4().hex[:12]
# Every object these tests create carries both; the run label keeps other sessions' sweeps
# and ours apart.
TEST_LABELS = {"io.labdeck.test": "1", "io.labdeck.test.run": RUN_ID}


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
