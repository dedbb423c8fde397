"""compose.yaml as the test suite reads, builds and runs it: its services, the images they are
built from (with LabDeck's content-hash builder, so an unchanged image is not built again), and
a project run with Debian's `docker-compose`, looked at from the host afterwards."""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import time
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import docker
import yaml
from docker.utils.build import exclude_paths

from app.sandboxes.docker.images.catalog import Recipe
from tests.support.settings import REPO

COMPOSE_FILE = REPO / "compose.yaml"
ENV_EXAMPLE = REPO / ".env.example"
# ${NAME}, ${NAME:-default} and ${NAME:?error}: the forms compose.yaml uses.
VARIABLE = re.compile(r"\$\{(?P<name>\w+)(?::(?P<kind>[-?])(?P<word>[^}]*))?\}")
EXTRA_CA_FOLDER = "deploy/extra-ca"


def compose_file() -> dict[str, Any]:
    return dict(yaml.safe_load(COMPOSE_FILE.read_text()))


def services() -> dict[str, dict[str, Any]]:
    return dict(compose_file()["services"])


def interpolate(text: str, variables: Mapping[str, str]) -> str:
    """Expand compose's variables; a missing ``${NAME:?error}`` raises, as compose refuses to start."""

    def value(match: re.Match[str]) -> str:
        name, kind, word = match.group("name", "kind", "word")
        if variables.get(name):
            return variables[name]
        if kind == "?":
            raise ValueError(f"{name} is required: {word}")
        return word if kind == "-" else ""

    return VARIABLE.sub(value, text)


def dockerignore_patterns() -> list[str]:
    lines = (REPO / ".dockerignore").read_text().splitlines()
    return [line.strip() for line in lines if line.strip() and not line.startswith("#")]


def copy_build_context(destination: Path) -> Path:
    """The files `docker compose build` sends from the checkout: those .dockerignore lets through
    (the same for every service: they all build from the checkout)."""
    for relative in exclude_paths(str(REPO), dockerignore_patterns()):
        source = REPO / relative
        if source.is_file():
            (destination / relative).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(source, destination / relative)
    return destination


def image_recipes(context: Path, tag: str) -> dict[str, Recipe]:
    """Each service's image as a builder recipe, tagged ``tag`` instead of compose's default."""
    recipes = {}
    for name, service in services().items():
        build = service["build"]
        assert build["context"] == ".", name
        image = interpolate(service["image"], {"LABDECK_IMAGE_TAG": tag})
        recipes[name] = Recipe(
            # "portal" and "engine": the build-stage labels of deploy/portal.Dockerfile.
            name if name in ("portal", "engine") else f"compose-{name}",
            image,
            recipe_dir=context,
            dockerfile=build["dockerfile"],
            extra_ca_folder=EXTRA_CA_FOLDER,
            target=build.get("target"),
        )
    return recipes


@dataclass
class ComposeProject:
    """One project of compose.yaml run with ``docker-compose`` (Debian's), with ``variables``
    and nothing else: neither the checkout's .env nor the caller's LABDECK_ settings."""

    name: str
    variables: dict[str, str]
    env_file: Path  # an empty one: compose would read the checkout's .env
    profiles: list[str] = field(default_factory=list)

    def command(self, *arguments: str) -> list[str]:
        options = ["--project-name", self.name, "--file", str(COMPOSE_FILE)]
        options += ["--project-directory", str(REPO), "--env-file", str(self.env_file)]
        for profile in self.profiles:
            options += ["--profile", profile]
        return ["docker-compose", *options, *arguments]

    def environment(self) -> dict[str, str]:
        kept = {
            name: value
            for name, value in os.environ.items()
            if not name.startswith(("LABDECK_", "COMPOSE_"))
        }
        return {**kept, **self.variables}

    def run(self, *arguments: str, timeout: float = 600) -> subprocess.CompletedProcess[str]:
        done = subprocess.run(
            self.command(*arguments),
            env=self.environment(),
            capture_output=True,
            text=True,
            timeout=timeout,
        )
        if done.returncode != 0:
            raise AssertionError(
                f"docker-compose {' '.join(arguments)} failed ({done.returncode}):\n"
                f"{done.stdout[-3000:]}\n{done.stderr[-3000:]}"
            )
        return done

    def logs(self, tail: int = 40) -> str:
        done = subprocess.run(
            self.command("logs", "--no-color", "--tail", str(tail)),
            env=self.environment(),
            capture_output=True,
            text=True,
            timeout=60,
        )
        return done.stdout + done.stderr

    def containers(self, client: docker.DockerClient) -> dict[str, Any]:
        """The project's containers on the host's engine, by service."""
        found = client.containers.list(all=True, filters={"label": self.label})
        return {c.labels["com.docker.compose.service"]: c for c in found}

    @property
    def label(self) -> str:
        return f"com.docker.compose.project={self.name}"

    def wait_healthy(self, client: docker.DockerClient, service: str, seconds: float) -> None:
        deadline = time.monotonic() + seconds
        while time.monotonic() < deadline:
            container = self.containers(client).get(service)
            state = container.attrs["State"] if container else {}
            if (state.get("Health") or {}).get("Status") == "healthy":
                return
            if container is not None and state.get("Status") not in ("created", "running"):
                break
            time.sleep(2)
        raise AssertionError(f"{service} did not become healthy; the logs:\n{self.logs()}")

    def leftovers(self, client: docker.DockerClient) -> list[str]:
        """What the project left on the host's engine: containers, volumes, networks."""
        owned: dict[str, Any] = {"label": self.label}
        found = [f"container {c.name}" for c in client.containers.list(all=True, filters=owned)]
        found += [f"volume {v.name}" for v in client.volumes.list(filters=owned)]
        found += [f"network {n.name}" for n in client.networks.list(filters=owned)]
        return found


def firewall_lines(*words: str) -> list[str]:
    """Lines of the host's firewall (iptables, nft and legacy) that mention any of ``words``."""
    lines = []
    for save in ("iptables-nft-save", "iptables-legacy-save"):
        if shutil.which(save):
            dump = subprocess.run([save], capture_output=True, text=True, check=False).stdout
            lines += [line for line in dump.splitlines() if any(word in line for word in words)]
    return lines
