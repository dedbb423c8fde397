"""The portal under rehearsal: `labdeck serve` in a process of its own, on the real Docker engine,
as an operator starts it; stopped and everything its instance made removed on the way out."""

from __future__ import annotations

import contextlib
import os
import re
import secrets
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import httpx

from app.bench.terminal import remove_instance
from app.config import Settings
from app.ports import free_port
from app.sandboxes.docker.engine import docker_client
from app.sandboxes.docker.lab import stop_portal
from app.sandboxes.naming import LABEL_INSTANCE

START_SECONDS = 180.0
LOG_PROBLEMS = {
    "tracebacks": re.compile(r"^Traceback "),
    "errors": re.compile(r"\bERROR\b"),
    "queue_pool": re.compile(r"QueuePool limit"),
    "database_locked": re.compile(r"database is locked"),
}


class Portal:
    """``labdeck serve`` on 127.0.0.1 with a private instance name, data dir, registry port and
    instructor token; its output goes to ``portal.log`` in the data dir."""

    def __init__(self, data_dir: Path, instance: str, warm_pool: int) -> None:
        base = Settings()
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.ws_url = f"ws://127.0.0.1:{self.port}"
        self.token = secrets.token_urlsafe(24)
        self.warm_pool = warm_pool
        self.log_path = data_dir / "portal.log"
        self.settings = base.model_copy(
            update={"instance": instance, "data_dir": data_dir, "registry_port": free_port()}
        )
        self.env = {
            **os.environ,
            "LABDECK_INSTANCE": instance,
            "LABDECK_DATA_DIR": str(data_dir),
            "LABDECK_CONTENT_DIR": str(base.content_dir.resolve()),
            "LABDECK_REGISTRY_PORT": str(self.settings.registry_port),
            "LABDECK_WARM_POOL_SIZE": str(warm_pool),
            "LABDECK_INSTRUCTOR_TOKEN": self.token,
            "LABDECK_SECRET_KEY": secrets.token_urlsafe(32),
            # The class sits behind a proxy on this machine: each attendee keeps its own address.
            "LABDECK_TRUSTED_PROXIES": "127.0.0.1",
            "LABDECK_LOG_LEVEL": "warning",
        }
        self.process: subprocess.Popen[bytes] | None = None
        # One client for the polls: a new one per call would load the CA bundle each time,
        # CPU the class needs.
        self.http = httpx.Client(base_url=self.url, timeout=10)

    def start(self) -> float:
        """Start it and wait until /healthz says ok; returns the seconds that took."""
        started = time.monotonic()
        command = [sys.executable, "-m", "app", "serve", "--host", "127.0.0.1"]
        with self.log_path.open("ab") as log:
            self.process = subprocess.Popen(
                [*command, "--port", str(self.port)],
                env=self.env,
                stdout=log,
                stderr=subprocess.STDOUT,
            )
        while time.monotonic() - started < START_SECONDS:
            if self.process.poll() is not None:
                raise RuntimeError(f"the portal exited at start-up:\n{self.log_tail()}")
            with contextlib.suppress(httpx.HTTPError, ValueError):
                if self.http.get("/healthz", timeout=2).json().get("status") == "ok":
                    return time.monotonic() - started
            time.sleep(0.3)
        raise RuntimeError(f"/healthz was not ok within {START_SECONDS:.0f} s:\n{self.log_tail()}")

    def wait_for_warm_pool(self, timeout: float) -> float:
        """Wait until ``warm_pool`` sandboxes are ready, as the instructor finds them before class;
        returns the seconds that took."""
        started = time.monotonic()
        while self.ready_sandboxes() < self.warm_pool:
            if time.monotonic() - started > timeout:
                raise RuntimeError(f"the warm pool was not ready within {timeout:.0f} s")
            time.sleep(1)
        return time.monotonic() - started

    def ready_sandboxes(self) -> int:
        text = self.http.get("/metrics").text
        found = re.search(r'^labdeck_sandboxes\{state="ready"\} (\d+)', text, re.MULTILINE)
        return int(found.group(1)) if found else 0

    def stop_and_remove(self) -> list[str]:
        """Stop the portal as an operator does, remove all its instance made; returns what was
        still there after the removal (nothing, unless removal failed)."""
        self.http.close()
        stop_portal(self.process)
        remove_instance(self.settings)
        return self.leftovers()

    def leftovers(self) -> list[str]:
        client = docker_client()
        label: dict[str, str | list[str] | bool] = {
            "label": f"{LABEL_INSTANCE}={self.settings.instance}"
        }
        try:
            containers = [c.name for c in client.containers.list(all=True, filters=label)]
            volumes = [v.name for v in client.volumes.list(filters=label)]
            networks = [n.name for n in client.networks.list(filters=label)]
        finally:
            client.close()
        return sorted(str(name) for name in containers + volumes + networks)

    def log_tail(self, lines: int = 30) -> str:
        if not self.log_path.exists():
            return ""
        return "\n".join(self.log_path.read_text(errors="replace").splitlines()[-lines:])

    def log_problems(self) -> dict[str, Any]:
        """What the portal's log says went wrong: counts, and the first lines of each kind."""
        text = self.log_path.read_text(errors="replace") if self.log_path.exists() else ""
        lines = text.splitlines()
        found: dict[str, Any] = {"lines": len(lines)}
        for kind, pattern in LOG_PROBLEMS.items():
            hits = [line for line in lines if pattern.search(line)]
            found[kind] = len(hits)
            if hits:
                found[f"{kind}_first"] = [hit[:300] for hit in hits[:3]]
        return found
