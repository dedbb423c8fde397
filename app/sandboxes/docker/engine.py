"""The Docker engine that runs sandboxes, as LabDeck sees it: one client, a cheap ping, clear errors.

That engine is ``DOCKER_HOST`` when set, else LabDeck's dedicated sandbox engine when selected
(``sandbox_engine.py``), else the host's default socket."""

from __future__ import annotations

import os

import docker
from docker.errors import DockerException

from app.sandboxes.docker import sandbox_engine

DEFAULT_SOCKET = "/var/run/docker.sock"


class EngineUnavailable(RuntimeError):
    """The Docker engine does not answer; the message tells the operator what to do."""


def engine_address() -> str:
    """Where sandboxes run."""
    return os.environ.get("DOCKER_HOST") or sandbox_engine.selected_address() or host_address()


def host_address() -> str:
    """The host's own engine (never the dedicated one)."""
    return os.environ.get("DOCKER_HOST") or f"unix://{DEFAULT_SOCKET}"


def unavailable_message() -> str:
    return (
        f"The Docker engine is not answering at {engine_address()}. "
        "Start it with `./labdeck up` (as root it starts Debian's dockerd and LabDeck's "
        "dedicated sandbox engine), or point DOCKER_HOST at a running engine."
    )


def docker_client(timeout: int = 60, address: str | None = None) -> docker.DockerClient:
    """A client for ``address`` (default: where sandboxes run); raises EngineUnavailable when it
    does not answer."""
    try:
        client = docker.DockerClient(base_url=address or engine_address(), timeout=timeout)
        client.ping()
    except DockerException as error:
        raise EngineUnavailable(unavailable_message()) from error
    return client
