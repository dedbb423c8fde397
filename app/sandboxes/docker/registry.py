"""The workshop registry: where the sandboxes' inner engines pull images from.

Offline (the default), it is a plain registry seeded from the host engine with LabDeck's
workshop images, pushed as ``library/<name>`` because that is where Docker Hub keeps official
images: an inner engine asked for ``hello-world`` asks its mirror for ``library/hello-world``.
Online (``proxy_remoteurl`` set), it is a pull-through cache of that upstream and is not seeded.

It runs on the host engine's default network, published on the sandbox network's gateway IP
(for the sandboxes, see ``network.py``) and on 127.0.0.1 (for pushes from the host engine, which
trusts loopback registries without TLS).

These methods block; call them from a thread (``asyncio.to_thread``) in async code.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

import docker
import httpx
from docker.errors import APIError, DockerException, ImageNotFound, NotFound
from docker.types import LogConfig

from app.sandboxes import naming
from app.sandboxes.docker.network import DEFAULT_REGISTRY_PORT, NetworkInfo
from app.sandboxes.naming import Role

log = logging.getLogger(__name__)

REGISTRY_IMAGE = "labdeck/workshop/registry:2"
CONTAINER_PORT = "5000/tcp"
DATA_DIR = "/var/lib/registry"
_MANIFEST_TYPES = ", ".join(
    [
        "application/vnd.docker.distribution.manifest.v2+json",
        "application/vnd.oci.image.manifest.v1+json",
    ]
)
_HEALTHY_WITHIN_SECONDS = 20.0


class RegistryError(RuntimeError):
    """The workshop registry cannot run or take an image; the message says what to do."""


@dataclass(frozen=True)
class SeedResult:
    local_tag: str
    reference: str  # what sandboxes pull, e.g. library/hello-world:latest
    pushed: bool  # False: already there with the same image
    seconds: float


def split_reference(hub_name: str) -> tuple[str, str]:
    """``hello-world`` -> (``library/hello-world``, ``latest``); ``me/app`` keeps its namespace."""
    name, _, tag = hub_name.partition(":")
    repository = name if "/" in name else f"library/{name}"
    return repository, tag or "latest"


class WorkshopRegistry:
    def __init__(
        self,
        client: docker.DockerClient,
        instance: str,
        network: NetworkInfo,
        port: int = DEFAULT_REGISTRY_PORT,
        proxy_remoteurl: str | None = None,
        *,
        image: str = REGISTRY_IMAGE,
        extra_labels: Mapping[str, str] | None = None,
    ) -> None:
        self._client = client
        self._instance = instance
        self._network = network
        self.port = port
        self.proxy_remoteurl = proxy_remoteurl
        self._image = image
        self._extra_labels = dict(extra_labels or {})
        self.name = naming.registry_name(instance)
        self.volume = naming.registry_volume_name(instance)

    @property
    def local_url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def mirror_url(self) -> str:
        """What the sandboxes' inner engines use as registry mirror."""
        return f"http://{self._network.gateway}:{self.port}"

    # -- running ---------------------------------------------------------------------------

    def ensure_running(self) -> None:
        """Create or start the registry (replacing one with other settings), then wait until it
        answers ``GET /v2/``; restart it once if it does not. Idempotent."""
        attrs = self._inspect()
        if attrs is not None and not self._is_as_wanted(attrs):
            log.info("Replacing registry %s: its settings changed.", self.name)
            remove_registry(self._client, self._instance)
            attrs = None
        if attrs is None:
            self._create()
        elif not (attrs.get("State") or {}).get("Running"):
            self._client.api.start(self.name)
        if self._wait_healthy():
            return
        log.warning("Registry %s does not answer; restarting it.", self.name)
        self._client.api.restart(self.name, timeout=5)
        if not self._wait_healthy():
            raise RegistryError(
                f"The workshop registry {self.name} does not answer on {self.local_url}/v2/. "
                f"Is port {self.port} free"
                + (f", and {self.proxy_remoteurl} reachable?" if self.proxy_remoteurl else "?")
                + self._log_tail()
            )

    def _log_tail(self, lines: int = 5) -> str:
        try:
            logs = self._client.api.logs(self.name, tail=lines).decode("utf-8", errors="replace")
        except DockerException:
            return ""
        return "\nIts last log lines:\n" + logs.strip() if logs.strip() else ""

    def healthy(self) -> bool:
        try:
            return httpx.get(f"{self.local_url}/v2/", timeout=2).status_code == 200
        except httpx.HTTPError:
            return False

    def remove(self, *, data: bool = False) -> None:
        """Remove the container, and with ``data`` its volume. Missing ones are done."""
        remove_registry(self._client, self._instance, data=data)

    def _wait_healthy(self) -> bool:
        deadline = time.monotonic() + _HEALTHY_WITHIN_SECONDS
        while time.monotonic() < deadline:
            if self.healthy():
                return True
            time.sleep(0.1)
        return False

    def _inspect(self) -> dict[str, Any] | None:
        try:
            attrs: dict[str, Any] = self._client.api.inspect_container(self.name)
        except NotFound:
            return None
        return attrs

    def _wanted_bindings(self) -> list[tuple[str, str]]:
        return [(self._network.gateway, str(self.port)), ("127.0.0.1", str(self.port))]

    def _wanted_env(self) -> list[str]:
        return [f"REGISTRY_PROXY_REMOTEURL={self.proxy_remoteurl}"] if self.proxy_remoteurl else []

    def _is_as_wanted(self, attrs: Mapping[str, Any]) -> bool:
        bindings = ((attrs.get("HostConfig") or {}).get("PortBindings") or {}).get(CONTAINER_PORT)
        have = sorted((b.get("HostIp", ""), b.get("HostPort", "")) for b in bindings or [])
        env = (attrs.get("Config") or {}).get("Env") or []
        proxy = [entry for entry in env if entry.startswith("REGISTRY_PROXY_REMOTEURL=")]
        try:
            image_id = self._client.api.inspect_image(self._image)["Id"]
        except ImageNotFound:
            image_id = attrs.get("Image")
        return (
            have == sorted(self._wanted_bindings())
            and proxy == self._wanted_env()
            and attrs.get("Image") == image_id
            and naming.belongs_to(
                (attrs.get("Config") or {}).get("Labels"), self._instance, Role.REGISTRY
            )
        )

    def _create(self) -> None:
        api = self._client.api
        labels = naming.labels_for(self._instance, Role.REGISTRY, extra=self._extra_labels)
        api.create_volume(self.volume, labels=labels)
        try:
            api.create_container(
                self._image,
                name=self.name,
                labels=labels,
                environment=self._wanted_env(),
                ports=[5000],
                host_config=api.create_host_config(
                    port_bindings={5000: self._wanted_bindings()},
                    binds={self.volume: {"bind": DATA_DIR, "mode": "rw"}},
                    restart_policy={"Name": "unless-stopped"},
                    log_config=LogConfig(type=LogConfig.types.JSON, config={"max-size": "10m"}),
                ),
            )
            api.start(self.name)
        except ImageNotFound as error:
            raise RegistryError(
                f"The registry image {self._image} is missing. "
                "Build it with `labdeck images build`."
            ) from error
        except APIError as error:
            raise RegistryError(
                f"The workshop registry could not start on port {self.port}: {error.explanation}. "
                "Pick another port if this one is taken."
            ) from error

    # -- seeding ---------------------------------------------------------------------------

    def seed(self, images: Iterable[tuple[str, str]]) -> list[SeedResult]:
        """Push each ``(local_tag, hub_name)`` unless the registry holds that very image. In
        pull-through mode nothing is pushed (such a registry refuses pushes)."""
        if self.proxy_remoteurl:
            return []
        return [self._seed_one(local_tag, hub_name) for local_tag, hub_name in images]

    def _seed_one(self, local_tag: str, hub_name: str) -> SeedResult:
        started = time.monotonic()
        repository, tag = split_reference(hub_name)
        api = self._client.api
        try:
            image_id = api.inspect_image(local_tag)["Id"]
        except ImageNotFound as error:
            raise RegistryError(
                f"Image {local_tag} is missing, so it cannot go into the workshop registry. "
                "Build it with `labdeck images build`."
            ) from error
        reference = f"{repository}:{tag}"
        if self.config_digest(repository, tag) == image_id:
            return SeedResult(local_tag, reference, False, round(time.monotonic() - started, 2))
        target = f"127.0.0.1:{self.port}/{repository}"
        api.tag(image_id, target, tag)
        try:
            self._push(target, tag)
        finally:
            try:
                api.remove_image(f"{target}:{tag}", noprune=True)
            except APIError as error:
                log.debug("untagging %s:%s: %s", target, tag, error)
        return SeedResult(local_tag, reference, True, round(time.monotonic() - started, 2))

    def _push(self, target: str, tag: str) -> None:
        try:
            for line in self._client.api.push(target, tag, stream=True, decode=True):
                if "error" in line:
                    raise RegistryError(f"Pushing {target}:{tag} failed: {line['error']}")
        except DockerException as error:
            raise RegistryError(f"Pushing {target}:{tag} failed: {error}") from error

    def config_digest(self, repository: str, tag: str) -> str | None:
        """The image ID (config digest) the registry holds under ``repository:tag``, if any."""
        try:
            response = httpx.get(
                f"{self.local_url}/v2/{repository}/manifests/{tag}",
                headers={"Accept": _MANIFEST_TYPES},
                timeout=5,
            )
        except httpx.HTTPError:
            return None
        if response.status_code != 200:
            return None
        config = response.json().get("config") or {}
        digest = config.get("digest")
        return str(digest) if digest else None


def remove_registry(client: docker.DockerClient, instance: str, *, data: bool = False) -> None:
    """Remove ``instance``'s registry container, and with ``data`` its volume, without needing
    its network (a throw-away instance's teardown has none at hand). Missing ones are done."""
    removals = [
        lambda: client.api.remove_container(naming.registry_name(instance), force=True, v=True)
    ]
    if data:
        removals.append(
            lambda: client.api.remove_volume(naming.registry_volume_name(instance), force=True)
        )
    for remove in removals:
        try:
            remove()
        except APIError as error:
            if error.status_code not in (404, 409):  # gone, or going already
                raise
