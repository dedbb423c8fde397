"""Every image builds, is not rebuilt when current, and does its job when run."""

from __future__ import annotations

import contextlib
import time
from collections.abc import Iterator
from pathlib import Path

import docker
import httpx
import pytest

from app.sandboxes.docker.images.builder import (
    LABEL_BUILD_STAGE,
    LABEL_BUILT_LOCALLY,
    LABEL_HASH,
    LABEL_MODE,
    LABEL_RECIPE,
    BuildResult,
    ImageBuildError,
    build_all,
    build_recipe,
    image_status,
)
from app.sandboxes.docker.images.catalog import RECIPES, Recipe, get_recipe
from app.sandboxes.docker.images.mode import Mode
from tests.support.images import (
    RUN_ID,
    TEST_LABELS,
    assert_nothing_left,
    remove_container,
    run_container,
)

pytestmark = pytest.mark.docker


def run(client: docker.DockerClient, recipe: str, command: list[str] | None = None) -> str:
    code, output = run_container(client, get_recipe(recipe).tag, command)
    assert code == 0, output
    return output


def test_every_recipe_has_an_image(first_build: list[BuildResult]) -> None:
    assert [result.recipe for result in first_build] == [recipe.name for recipe in RECIPES]


def test_second_build_reuses_everything_quickly(
    docker_client: docker.DockerClient, first_build: list[BuildResult], build_mode: Mode
) -> None:
    started = time.monotonic()
    again = build_all(docker_client, mode=build_mode)
    elapsed = time.monotonic() - started
    assert [result.built for result in again] == [False] * len(RECIPES)
    assert [r.image_id for r in again] == [r.image_id for r in first_build]
    assert elapsed < 2, f"an up-to-date build took {elapsed:.1f}s"


def test_images_carry_labdeck_labels(
    docker_client: docker.DockerClient, first_build: list[BuildResult], build_mode: Mode
) -> None:
    for result in first_build:
        labels = docker_client.api.inspect_image(result.tag)["Config"]["Labels"]
        assert labels[LABEL_BUILT_LOCALLY] == "true"
        assert labels[LABEL_RECIPE] == result.recipe
        assert labels[LABEL_HASH].startswith("sha256:")
        assert labels[LABEL_MODE] == build_mode


def test_status_reports_every_image_up_to_date(
    docker_client: docker.DockerClient, first_build: list[BuildResult]
) -> None:
    statuses = image_status(docker_client)
    assert [(s.tag, s.present, s.up_to_date) for s in statuses] == [
        (recipe.tag, True, True) for recipe in RECIPES
    ]
    assert all(s.size and s.size > 0 for s in statuses)


def test_hello_world_says_hello(docker_client: docker.DockerClient, first_build: list) -> None:
    output = run(docker_client, "hello-world")
    assert "Hello from LabDeck" in output
    assert "What just happened" in output


def test_busybox_has_its_applets(docker_client: docker.DockerClient, first_build: list) -> None:
    assert run(docker_client, "busybox", ["echo", "hi"]).strip() == "hi"
    script = (
        "echo served > /var/www/index.html && httpd -p 8080 -h /var/www && sleep 0.2"
        " && wget -q -O- http://127.0.0.1:8080/ && top -b -n 1 | head -n 1"
    )
    served, top = run(docker_client, "busybox", ["sh", "-c", script]).splitlines()[:2]
    assert served == "served"
    assert top.startswith("Mem:")


def test_debian_is_bookworm(docker_client: docker.DockerClient, first_build: list) -> None:
    output = run(docker_client, "debian-base", ["cat", "/etc/os-release"])
    assert "VERSION_CODENAME=bookworm" in output


def test_registry_answers_v2_without_auth(
    docker_client: docker.DockerClient, first_build: list
) -> None:
    container = docker_client.containers.run(
        get_recipe("registry").tag,
        detach=True,
        labels=TEST_LABELS,
        ports={"5000/tcp": ("127.0.0.1", None)},
    )
    try:
        container.reload()
        port = container.attrs["NetworkSettings"]["Ports"]["5000/tcp"][0]["HostPort"]
        assert _wait_for_status(f"http://127.0.0.1:{port}/v2/") == 200
        assert container.attrs["Config"]["User"] == "docker-registry"
    finally:
        remove_container(container)
    assert_nothing_left(docker_client)


def _wait_for_status(url: str, seconds: float = 15) -> int | None:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        try:
            return httpx.get(url, timeout=2).status_code
        except httpx.TransportError:
            time.sleep(0.2)
    return None


@pytest.fixture
def throwaway(docker_client: docker.DockerClient, tmp_path: Path) -> Iterator[Recipe]:
    """A two-stage recipe of this test run, and its images removed afterwards."""
    labels = " ".join(f"{key}={value}" for key, value in TEST_LABELS.items())
    name = f"throwaway-{RUN_ID}"
    (tmp_path / "Dockerfile").write_text(
        f"FROM {get_recipe('busybox').tag} AS build\n"
        f"LABEL {LABEL_BUILD_STAGE}={name} {labels}\n"
        "COPY note /note\n"
        "RUN cat /note > /copied\n"
        f"FROM {get_recipe('busybox').tag}\n"
        f"LABEL {labels}\n"
        "COPY --from=build /copied /copied\n"
    )
    (tmp_path / "note").write_text("one")
    recipe = Recipe(name, f"labdeck-test/{name}:latest", None, tmp_path)
    yield recipe
    with contextlib.suppress(docker.errors.ImageNotFound):
        docker_client.images.remove(recipe.tag, force=True)
    docker_client.images.prune(filters={"dangling": True, "label": f"io.labdeck.test.run={RUN_ID}"})


def test_changed_recipe_is_rebuilt_and_old_images_dropped(
    docker_client: docker.DockerClient, first_build: list, throwaway: Recipe
) -> None:
    first = build_recipe(docker_client, throwaway, "online")
    same = build_recipe(docker_client, throwaway, "online")
    (throwaway.folder / "note").write_text("two")
    changed = build_recipe(docker_client, throwaway, "online")
    assert (first.built, same.built, changed.built) == (True, False, True)
    assert same.image_id == first.image_id != changed.image_id
    with pytest.raises(docker.errors.ImageNotFound):
        docker_client.images.get(first.image_id)
    stages = docker_client.images.list(
        filters={"dangling": True, "label": f"{LABEL_BUILD_STAGE}={throwaway.name}"}
    )
    assert len(stages) == 1, "only the newest build stage stays, as the next build's cache"


def test_failed_build_raises_with_the_last_log_lines(
    docker_client: docker.DockerClient, throwaway: Recipe
) -> None:
    dockerfile = throwaway.folder / "Dockerfile"
    dockerfile.write_text(dockerfile.read_text() + "RUN exit 3\n")
    with pytest.raises(ImageBuildError) as raised:
        build_recipe(docker_client, throwaway, "online")
    assert throwaway.name in str(raised.value)
    assert any("exit 3" in line for line in raised.value.log_lines)
