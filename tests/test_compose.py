"""The hosted deployment: compose.yaml is sound, deploy/portal.Dockerfile builds here (offline
when no registry answers), and a container run the way compose runs it answers /healthz.

The image is built like LabDeck's own images (app/sandboxes/docker/images/builder.py): a content-hash label over
the build context, so a run with nothing changed builds nothing. It is tagged
labdeck/portal:test, never compose's labdeck/portal:latest, and kept as that cache."""

from __future__ import annotations

import os
import re
import shutil
import time
from collections.abc import Callable, Iterator, Mapping
from contextlib import closing
from functools import partial
from pathlib import Path
from typing import Any

import docker
import httpx
import pytest
import yaml
from docker.errors import APIError, NotFound
from docker.models.containers import Container
from docker.utils.build import exclude_paths

from app.config import Settings
from app.sandboxes.docker.engine import docker_client as sandbox_engine_client
from app.sandboxes.docker.images.builder import BuildResult, build_recipe
from app.sandboxes.docker.images.catalog import Recipe
from app.sandboxes.docker.images.mode import detect_mode
from app.sandboxes.naming import registry_name
from tests.support.live_server import free_port
from tests.support.settings import INSTRUCTOR_TOKEN, REPO, TEST_LABEL, settings_for

COMPOSE_FILE = REPO / "compose.yaml"
SOCKET = "/var/run/docker.sock"
PORTAL_RECIPE = "portal"
PORTAL_TEST_TAG = "labdeck/portal:test"
TEST_SECRET_KEY = "test-secret-key-0123456789abcdef"
# Generous: when the host's sandbox image is outdated, the portal rebuilds it before serving.
HEALTHY_WITHIN = 600
# ${NAME}, ${NAME:-default} and ${NAME:?error}: the forms compose.yaml uses.
_COMPOSE_VARIABLE = re.compile(r"\$\{(?P<name>\w+)(?::(?P<kind>[-?])(?P<word>[^}]*))?\}")


# -- compose.yaml, read the way `docker compose` reads it ---------------------------------------


def compose_services() -> dict[str, dict[str, Any]]:
    return dict(yaml.safe_load(COMPOSE_FILE.read_text())["services"])


def interpolate(text: str, variables: Mapping[str, str]) -> str:
    """Expand compose's variables; a missing ``${NAME:?error}`` raises, as compose refuses to start."""

    def value(match: re.Match[str]) -> str:
        name, kind, word = match.group("name", "kind", "word")
        if variables.get(name):
            return variables[name]
        if kind == "?":
            raise ValueError(f"{name} is required: {word}")
        return word if kind == "-" else ""

    return _COMPOSE_VARIABLE.sub(value, text)


def service_environment(service: dict[str, Any], variables: Mapping[str, str]) -> dict[str, str]:
    return {
        name: interpolate(str(value), variables) for name, value in service["environment"].items()
    }


def socket_mounts(service: dict[str, Any]) -> list[str]:
    """Volumes that hand the container a Docker socket (the host's or the sandbox engine's)."""
    return [entry for entry in service.get("volumes", []) if entry.split(":")[1] == SOCKET]


def named_volume_targets(service: dict[str, Any]) -> list[str]:
    return [
        entry.split(":")[1]
        for entry in service.get("volumes", [])
        if not entry.startswith(("/", "."))
    ]


def test_compose_builds_the_portal_from_its_dockerfile() -> None:
    build = compose_services()["portal"]["build"]
    assert build["context"] == "."
    assert (REPO / build["dockerfile"]).is_file()


def test_only_the_portal_gets_the_docker_socket() -> None:
    for name, service in compose_services().items():
        assert len(socket_mounts(service)) == (1 if name == "portal" else 0), name


def test_the_portal_keeps_its_data_in_one_volume_and_reads_content_only() -> None:
    portal = compose_services()["portal"]
    assert named_volume_targets(portal) == ["/data"]
    assert "./content:/opt/labdeck/content:ro" in portal["volumes"]


def test_compose_refuses_to_start_without_the_secrets() -> None:
    portal = compose_services()["portal"]
    for missing in ("LABDECK_INSTRUCTOR_TOKEN", "LABDECK_SECRET_KEY"):
        variables = {"LABDECK_INSTRUCTOR_TOKEN": "t" * 20, "LABDECK_SECRET_KEY": "s" * 20}
        del variables[missing]
        with pytest.raises(ValueError, match=missing):
            service_environment(portal, variables)


def test_compose_runs_production_with_known_settings_only() -> None:
    environment = compose_services()["portal"]["environment"]
    assert environment["LABDECK_ENV"] == "production"
    unknown = [
        name
        for name in environment
        if name.removeprefix("LABDECK_").lower() not in Settings.model_fields
    ]
    assert unknown == []


# -- the image -----------------------------------------------------------------------------------


def pins(lock: str) -> set[str]:
    return set(re.findall(r"^([a-z0-9_.-]+==\S+)", (REPO / lock).read_text(), re.MULTILINE))


def test_the_runtime_lock_pins_what_the_full_lock_pins() -> None:
    """The image installs requirements-runtime.lock; it must not drift from the tested lock."""
    runtime, full = pins("requirements-runtime.lock"), pins("requirements.lock")
    assert runtime and runtime <= full, sorted(runtime - full)
    assert not any(name.startswith(("pytest==", "playwright==", "mypy==")) for name in runtime)


def dockerignore_patterns() -> list[str]:
    lines = (REPO / ".dockerignore").read_text().splitlines()
    return [line.strip() for line in lines if line.strip() and not line.startswith("#")]


def test_the_build_context_leaves_secrets_and_local_state_out(tmp_path: Path) -> None:
    kept = [
        "app/main.py",
        "deploy/extra-ca/proxy.crt",
        "requirements-runtime.lock",
        "static/js/lesson.js",
    ]
    left_out = [".env", "data/labdeck.db", ".venv/bin/python", "static/vendor/htmx/htmx.min.js"]
    for relative in kept + left_out:
        (tmp_path / relative).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / relative).touch()
    sent = exclude_paths(str(tmp_path), dockerignore_patterns())
    assert sorted(path for path in sent if (tmp_path / path).is_file()) == sorted(kept)


def copy_build_context(destination: Path) -> Path:
    """The files `docker compose build` sends from the checkout: those .dockerignore lets through."""
    dockerfile = compose_services()["portal"]["build"]["dockerfile"]
    for relative in exclude_paths(str(REPO), dockerignore_patterns(), dockerfile):
        source = REPO / relative
        if source.is_file():
            (destination / relative).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(source, destination / relative)
    return destination


def build_portal_image(client: docker.DockerClient, context: Path) -> BuildResult:
    """Build the portal image from ``context`` unless an up-to-date one is present; the builder
    adds the host's extra CA certificates to deploy/extra-ca/ and hashes them with the rest."""
    recipe = Recipe(
        PORTAL_RECIPE,
        PORTAL_TEST_TAG,
        recipe_dir=context,
        dockerfile=compose_services()["portal"]["build"]["dockerfile"],
        extra_ca_folder="deploy/extra-ca",
    )
    return build_recipe(client, recipe, detect_mode())


@pytest.fixture(scope="module")
def docker_client() -> Iterator[docker.DockerClient]:
    from app.sandboxes.docker.engine import docker_client, host_address

    # The portal runs on the host's engine (it drives it through the socket compose mounts),
    # never on the dedicated sandbox engine, whose user namespaces forbid the host's network.
    client = docker_client(timeout=900, address=host_address())  # a cold build streams for minutes
    yield client
    client.close()


@pytest.fixture(scope="module")
def portal_context(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """One copy for the module: others editing the checkout meanwhile change nothing here."""
    return copy_build_context(tmp_path_factory.mktemp("portal-context"))


@pytest.fixture(scope="module")
def portal_image(docker_client: docker.DockerClient, portal_context: Path) -> BuildResult:
    result = build_portal_image(docker_client, portal_context)
    state = "built" if result.built else "up to date"
    print(f"\nportal image ({result.mode}): {state} in {result.seconds:.1f}s")
    return result


@pytest.mark.docker
def test_a_second_build_is_a_no_op(
    docker_client: docker.DockerClient, portal_image: BuildResult, portal_context: Path
) -> None:
    again = build_portal_image(docker_client, portal_context)
    assert (again.built, again.image_id) == (False, portal_image.image_id)
    assert again.seconds < 5, f"an up-to-date portal image took {again.seconds:.1f}s"


@pytest.mark.docker
def test_the_image_puts_data_and_content_where_compose_mounts_them(
    docker_client: docker.DockerClient, portal_image: BuildResult
) -> None:
    config = docker_client.api.inspect_image(portal_image.image_id)["Config"]
    portal = compose_services()["portal"]
    assert f"LABDECK_DATA_DIR={named_volume_targets(portal)[0]}" in config["Env"]
    assert config["WorkingDir"] + "/content:ro" in " ".join(portal["volumes"])


# -- a container run as compose runs it ---------------------------------------------------------


def run_like_compose(
    client: docker.DockerClient, image: str, variables: Mapping[str, str], data_dir: Path
) -> Container:
    """compose.yaml's portal service as `docker run` options; ``data_dir`` stands in for the
    named volume."""
    portal = compose_services()["portal"]
    volumes = {}
    for entry in portal["volumes"]:
        source, target, *mode = entry.split(":")
        if source.startswith("."):
            source = str((REPO / source).resolve())
        elif not source.startswith("/"):
            source = str(data_dir)
        volumes[source] = {"bind": target, "mode": mode[0] if mode else "rw"}
    return client.containers.run(
        image,
        name=f"test-{os.getpid()}-compose-portal",
        labels={TEST_LABEL: "1"},
        environment=service_environment(portal, variables),
        network_mode=portal["network_mode"],
        volumes=volumes,
        detach=True,
    )


def wait_for(what: str, done: Callable[[], bool], container: Container) -> None:
    """Poll ``done`` until it holds; fail with the portal's log when the portal stops or time runs out."""
    deadline = time.monotonic() + HEALTHY_WITHIN
    while time.monotonic() < deadline:
        container.reload()
        if container.status not in ("created", "running"):
            break
        if done():
            return
        time.sleep(1)
    logs = bytes(container.logs()).decode(errors="replace")[-4000:]
    pytest.fail(f"the portal is {container.status} and {what} did not happen; its log:\n{logs}")


def healthz(port: int) -> dict[str, Any]:
    try:
        return dict(httpx.get(f"http://127.0.0.1:{port}/healthz", timeout=5).json())
    except httpx.HTTPError:
        return {}  # not listening yet


def registry_runs(client: docker.DockerClient, instance: str) -> bool:
    found = client.containers.list(filters={"name": registry_name(instance)})
    return any(container.name == registry_name(instance) for container in found)


def remove_portal(container: Container, instance_settings: Settings) -> None:
    """The container, then what the portal made through the socket (sandbox network, registry)."""
    from app.sandboxes.docker.lab import remove_instance

    try:
        container.stop(timeout=10)
        container.remove(force=True, v=True)
    except (NotFound, APIError) as error:
        if getattr(error, "status_code", None) not in (404, 409):
            raise
    remove_instance(instance_settings)


@pytest.mark.docker
def test_the_portal_container_answers_healthz(
    docker_client: docker.DockerClient, portal_image: BuildResult, tmp_path: Path
) -> None:
    # tests/conftest.py sweeps what a test- instance named after this pid leaves behind.
    instance = f"test-{os.getpid()}-compose"
    port = free_port()
    variables = {
        "LABDECK_INSTRUCTOR_TOKEN": INSTRUCTOR_TOKEN,
        "LABDECK_SECRET_KEY": TEST_SECRET_KEY,
        "LABDECK_PORT": str(port),
        "LABDECK_REGISTRY_PORT": str(free_port()),
        "LABDECK_INSTANCE": instance,
        "LABDECK_WARM_POOL_SIZE": "0",
    }
    container = run_like_compose(docker_client, portal_image.image_id, variables, tmp_path)
    try:
        wait_for("/healthz answering ok", lambda: healthz(port).get("status") == "ok", container)
        assert healthz(port) == {
            "status": "ok",
            "db": "ok",
            "engine": "ok",
            "images": "ok",
            "registry": "ok",
        }
        vendor = httpx.get(f"http://127.0.0.1:{port}/static/vendor/htmx/htmx.min.js", timeout=5)
        assert vendor.status_code == 200
        # Through the sandbox engine's socket, the portal set up the sandbox network and the registry.
        with closing(sandbox_engine_client()) as sandbox_engine:
            started = partial(registry_runs, sandbox_engine, instance)
            wait_for("the workshop registry starting", started, container)
    finally:
        remove_portal(container, settings_for(tmp_path, instance))
