"""Cleaning up after throw-away LabDeck instances on the real engine (the benchmarks' portals and
the tests' own): remove all an instance made, stop a portal's process. Here, not in
``app/bench``, because tests use it too (issue 12). The throw-away instance itself, on any
backend, is ``app/sandboxes/lab.py``."""

from __future__ import annotations

import signal
import subprocess
from collections.abc import Mapping
from typing import Any

from docker.errors import APIError

from app.config import Settings
from app.sandboxes.docker.connect import remove_docker_setup
from app.sandboxes.docker.engine import docker_client
from app.sandboxes.naming import LABEL_INSTANCE


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
