"""The workshop registry: where the sandboxes' inner engines pull images from.

Offline (the default), it is a plain registry seeded from the host engine with LabDeck's
workshop images, pushed as ``library/<name>`` because that is where Docker Hub keeps official
images: an inner engine asked for ``hello-world`` asks its mirror for ``library/hello-world``.
Online (``proxy_remoteurl`` set), it is a pull-through cache of that upstream and is not seeded.

It runs on the host engine's default network, published on the sandbox network's gateway IP
(for the sandboxes, see ``network.py``) and on 127.0.0.1 (for the portal's own reads).

It is read-only (distribution's ``storage.maintenance.readonly``): it is every sandbox's mirror,
and an attendee with a push to it would change what every other attendee pulls (issue 13). The
seeding writes through a second registry on the same storage, the *seeder*, which lives only
while the seed is pushed and is published on a loopback port the engine picks: the host engine
pushes to it (it trusts loopback registries without TLS); the sandboxes' firewall chain drops
everything from their bridge but the read-only registry's port on the gateway.

Beside the portal (compose.yaml's ``registry`` service, ``seed_port`` given): the registry and
its writable twin are one container that the portal does not run. The registry serves the
sandboxes read-only on ``NetworkInfo.registry_address``; the twin listens on a loopback port,
out of the sandboxes' reach as the seeder is, and the portal seeds through it.

These methods block; call them from a thread (``asyncio.to_thread``) in async code.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Iterable, Iterator, Mapping
from contextlib import contextmanager
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
# distribution reads nested settings from JSON in one variable; pushes and deletes get 405.
READ_ONLY_ENV = 'REGISTRY_STORAGE_MAINTENANCE_READONLY={"enabled":true}'


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
        seed_port: int | None = None,
    ) -> None:
        """``seed_port``: the loopback port of the writable twin of a registry that runs beside
        the portal; None: this object runs the registry (and a short-lived twin) itself."""
        self._client = client
        self._instance = instance
        self._network = network
        self.port = port
        self.proxy_remoteurl = proxy_remoteurl
        self._image = image
        self._extra_labels = dict(extra_labels or {})
        self.name = naming.registry_name(instance)
        self.seeder_name = seeder_name(instance)
        self.volume = naming.registry_volume_name(instance)
        self.seed_port = seed_port

    @property
    def beside(self) -> bool:
        """Whether the registry runs beside the portal (compose.yaml), not as its container."""
        return self.seed_port is not None

    @property
    def local_url(self) -> str:
        host = self._network.registry_host if self.beside else "127.0.0.1"
        return f"http://{host}:{self.port}"

    def mirror_url(self) -> str:
        """What the sandboxes' inner engines use as registry mirror."""
        return f"http://{self._network.registry_host}:{self.port}"

    # -- running ---------------------------------------------------------------------------

    def ensure_running(self) -> None:
        """Create or start the registry (replacing one with other settings), then wait until it
        answers ``GET /v2/``; restart it once if it does not. Idempotent. A registry beside the
        portal is only waited for."""
        if self.beside:
            self._wait_beside(self.local_url, "registry")
            return
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
        return _answers(self.local_url)

    def _wait_beside(self, url: str, what: str) -> None:
        if not self._wait_healthy(url):
            raise RegistryError(
                f"The workshop {what} does not answer on {url}/v2/. It is compose.yaml's "
                "`registry` service: `docker compose ps registry` and `docker compose logs "
                "registry` say why."
            )

    def remove(self, *, data: bool = False) -> None:
        """Remove the container, and with ``data`` its volume. Missing ones are done; a registry
        beside the portal is not the portal's to remove."""
        if not self.beside:
            remove_registry(self._client, self._instance, data=data)

    def _wait_healthy(self, url: str | None = None) -> bool:
        deadline = time.monotonic() + _HEALTHY_WITHIN_SECONDS
        while time.monotonic() < deadline:
            if _answers(url or self.local_url):
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
        proxy = [f"REGISTRY_PROXY_REMOTEURL={self.proxy_remoteurl}"] if self.proxy_remoteurl else []
        return sorted([READ_ONLY_ENV, *proxy])

    def _is_as_wanted(self, attrs: Mapping[str, Any]) -> bool:
        bindings = ((attrs.get("HostConfig") or {}).get("PortBindings") or {}).get(CONTAINER_PORT)
        have = sorted((b.get("HostIp", ""), b.get("HostPort", "")) for b in bindings or [])
        env = (attrs.get("Config") or {}).get("Env") or []
        registry_env = sorted(entry for entry in env if entry.startswith("REGISTRY_"))
        try:
            image_id = self._client.api.inspect_image(self._image)["Id"]
        except ImageNotFound:
            image_id = attrs.get("Image")
        return (
            have == sorted(self._wanted_bindings())
            and registry_env == self._wanted_env()
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
        """Push each ``(local_tag, hub_name)`` unless the registry holds that very image, through
        a seeder started for the purpose (none when nothing is missing). In pull-through mode
        nothing is pushed (such a registry refuses pushes)."""
        if self.proxy_remoteurl:
            return []
        wanted = [
            (local_tag, hub_name, self._image_id(local_tag)) for local_tag, hub_name in images
        ]
        missing = [item for item in wanted if not self._holds(item[1], item[2])]
        pushed: dict[str, SeedResult] = {}
        if missing:
            with self._seeder() as port:
                for local_tag, hub_name, image_id in missing:
                    pushed[hub_name] = self._seed_one(port, local_tag, hub_name, image_id)
        return [
            pushed.get(hub_name) or SeedResult(local_tag, _reference(hub_name), False, 0.0)
            for local_tag, hub_name, _ in wanted
        ]

    def _image_id(self, local_tag: str) -> str:
        try:
            return str(self._client.api.inspect_image(local_tag)["Id"])
        except ImageNotFound as error:
            raise RegistryError(
                f"Image {local_tag} is missing, so it cannot go into the workshop registry. "
                "Build it with `labdeck images build`."
            ) from error

    def _holds(self, hub_name: str, image_id: str) -> bool:
        return self.config_digest(*split_reference(hub_name)) == image_id

    @contextmanager
    def _seeder(self) -> Iterator[int]:
        """A writable registry on the same storage for as long as the block runs; its port."""
        if self.seed_port is not None:
            seeder = f"http://127.0.0.1:{self.seed_port}"
            self._wait_beside(seeder, "registry's writable twin")
            yield self.seed_port
            return
        api = self._client.api
        _remove_container(api, self.seeder_name)  # one a crash left behind
        labels = naming.labels_for(self._instance, Role.REGISTRY, extra=self._extra_labels)
        try:
            api.create_container(
                self._image,
                name=self.seeder_name,
                labels=labels,
                ports=[5000],
                host_config=api.create_host_config(
                    port_bindings={5000: ("127.0.0.1",)},  # a free port, loopback only
                    binds={self.volume: {"bind": DATA_DIR, "mode": "rw"}},
                    log_config=LogConfig(type=LogConfig.types.JSON, config={"max-size": "1m"}),
                ),
            )
        except ImageNotFound as error:
            raise RegistryError(
                f"The registry image {self._image} is missing. "
                "Build it with `labdeck images build`."
            ) from error
        try:
            api.start(self.seeder_name)
            port = int(api.port(self.seeder_name, 5000)[0]["HostPort"])
            if not self._wait_healthy(f"http://127.0.0.1:{port}"):
                raise RegistryError(
                    f"The registry that seeds the workshop registry ({self.seeder_name}) does not "
                    f"answer on 127.0.0.1:{port}. `docker logs {self.seeder_name}` says why."
                )
            yield port
        finally:
            _remove_container(api, self.seeder_name)

    def _seed_one(self, port: int, local_tag: str, hub_name: str, image_id: str) -> SeedResult:
        started = time.monotonic()
        repository, tag = split_reference(hub_name)
        api = self._client.api
        target = f"127.0.0.1:{port}/{repository}"
        api.tag(image_id, target, tag)
        try:
            self._push(target, tag)
        finally:
            try:
                api.remove_image(f"{target}:{tag}", noprune=True)
            except APIError as error:
                log.debug("untagging %s:%s: %s", target, tag, error)
        reference = _reference(hub_name)
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


def seeder_name(instance: str) -> str:
    return naming.check_name(f"{naming.registry_name(instance)}-seed")


def _reference(hub_name: str) -> str:
    repository, tag = split_reference(hub_name)
    return f"{repository}:{tag}"


def _answers(url: str) -> bool:
    try:
        return httpx.get(f"{url}/v2/", timeout=2).status_code == 200
    except httpx.HTTPError:
        return False


def _remove_container(api: docker.APIClient, name: str) -> None:
    try:
        api.remove_container(name, force=True, v=True)
    except APIError as error:
        if error.status_code not in (404, 409):  # gone, or going already
            raise


def remove_registry(client: docker.DockerClient, instance: str, *, data: bool = False) -> None:
    """Remove ``instance``'s registry container (and a seeder left running), and with ``data``
    its volume, without needing its network (a throw-away instance's teardown has none at
    hand). Missing ones are done."""
    _remove_container(client.api, seeder_name(instance))
    _remove_container(client.api, naming.registry_name(instance))
    if data:
        try:
            client.api.remove_volume(naming.registry_volume_name(instance), force=True)
        except APIError as error:
            if error.status_code not in (404, 409):
                raise
