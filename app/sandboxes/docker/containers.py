"""A sandbox's container and engine volume on the host's engine: made with the portal's
flags, found again by label, removed with everything it owns.

A sandbox gets the runtime profile's rights (``runtime.create_host_config``), memory, CPU and
process limits, a json-file log capped at ``Limits.log_size``, the instance's sandbox network
(``network.py``) and the workshop registry as its inner engine's mirror. Its inner engine keeps
images in a named volume ``<name>-docker`` at /var/lib/docker: overlay2 cannot sit on the
container's own overlayfs, and the volume survives a stop.

Disk quota: ``storage_opt size=`` works with btrfs (LabDeck's capped dedicated engine, see
``disk.py``: there the inner engine keeps its data in the capped layer too, with no volume, so
one limit covers everything) and with overlay2 on xfs mounted with ``pquota`` (there it caps the
container's own layer, not the inner engine's volume). Elsewhere it is skipped (logged once).

Everything here blocks: call it from a worker thread.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any
from urllib.parse import urlsplit

import docker
from docker.errors import APIError, DockerException, NotFound
from docker.types import LogConfig

from app.sandboxes import naming
from app.sandboxes.base import Limits, SandboxError, SandboxSpec
from app.sandboxes.docker import cgroups, disk
from app.sandboxes.docker.engine import engine_address
from app.sandboxes.docker.runtime import Profile, create_host_config
from app.sandboxes.naming import Role

if TYPE_CHECKING:
    from app.config import Settings

log = logging.getLogger(__name__)

ENGINE_DIR = "/var/lib/docker"
_LOG_TAIL_LINES = 20
_ALREADY_DONE = (404, 409)
_QUOTA_REFUSED = ("storage-opt", "pquota")


@dataclass(frozen=True)
class DockerBackendConfig:
    instance: str
    runtime: Profile
    network: str
    registry_mirror: str | None = None  # http://<gateway>:<port>, see WorkshopRegistry
    extra_labels: Mapping[str, str] = field(default_factory=dict)
    ready_timeout: float = 120.0
    workers: int = 32
    apparmor: bool | None = None  # None: ask the host

    @classmethod
    def from_settings(
        cls,
        settings: Settings,
        *,
        runtime: Profile,
        registry_mirror: str | None,
        network: str | None = None,
        extra_labels: Mapping[str, str] | None = None,
    ) -> DockerBackendConfig:
        return cls(
            instance=settings.instance,
            runtime=runtime,
            network=network or naming.network_name(settings.instance),
            registry_mirror=registry_mirror,
            extra_labels=dict(extra_labels or {}),
        )

    @property
    def insecure_registries(self) -> list[str]:
        """The mirror speaks plain http, so its host:port must be an insecure registry inside."""
        return [urlsplit(self.registry_mirror).netloc] if self.registry_mirror else []


def default_client(workers: int = 32) -> docker.DockerClient:
    # One pooled connection per worker thread, or urllib3 discards connections noisily.
    return docker.DockerClient(base_url=engine_address(), timeout=120, max_pool_size=workers)


def limits_host_config(limits: Limits, *, disk_quota: bool) -> dict[str, Any]:
    """docker-py ``create_host_config`` arguments for ``limits``."""
    config: dict[str, Any] = {
        "mem_limit": limits.memory,
        "memswap_limit": limits.memory,  # no swap on top of the memory limit
        "nano_cpus": int(limits.cpus * 1e9),
        "pids_limit": limits.pids,
        "log_config": LogConfig(
            type=LogConfig.types.JSON, config={"max-size": limits.log_size, "max-file": "1"}
        ),
    }
    if disk_quota and limits.disk_quota:
        config["storage_opt"] = {"size": limits.disk_quota}
    return config


def storage_supports_quota(engine_info: Mapping[str, Any]) -> bool:
    """btrfs (the capped dedicated engine, ``disk.py``), or overlay2 on xfs, where whether xfs
    has ``pquota`` only the engine's answer to a create tells."""
    status = dict(engine_info.get("DriverStatus") or [])
    if engine_info.get("Driver") == disk.STORAGE_DRIVER:
        return True
    return engine_info.get("Driver") == "overlay2" and status.get("Backing Filesystem") == "xfs"


def remapped_root_of(pid: int) -> tuple[int, int]:
    """The host uid and gid that root is inside the user namespace of process ``pid``."""
    ids = []
    for kind in ("uid_map", "gid_map"):
        for line in Path(f"/proc/{pid}/{kind}").read_text().splitlines():
            inside, outside, _count = line.split()
            if inside == "0":
                ids.append(int(outside))
                break
        else:
            raise OSError(f"root is not mapped in /proc/{pid}/{kind}")
    return ids[0], ids[1]


def start_container(
    api: docker.APIClient, name: str, runtime: Profile, *, delegate: bool = True
) -> None:
    """Start a sandbox's container; in a user namespace (the ``userns`` profile: the engine remaps
    users), then hand it its cgroups (``cgroups.py``), which its init waits for, unless
    ``delegate`` is False: an engine that delegates them itself (``engine_service.py``)."""
    api.start(name)
    if not delegate:
        return
    pid = int((api.inspect_container(name).get("State") or {}).get("Pid") or 0)
    if not pid:
        return  # it stopped at once; its log says why
    try:
        uid, gid = remapped_root_of(pid)
        if uid:
            cgroups.delegate(pid, uid, gid)
    except FileNotFoundError:
        return  # it has stopped already; the ready probe reports it with its log
    except OSError as error:
        if runtime != "userns":
            return  # a portal in a container may not see the host's /proc; nothing is due
        raise SandboxError(
            f"Could not hand sandbox {name} its cgroups ({error}); the portal must run as "
            "root on the host of the sandbox engine for the userns profile."
        ) from error


class SandboxContainers:
    """The containers and engine volumes of one instance's sandboxes. Never touches a container
    of another instance, or one that is not a sandbox."""

    def __init__(self, config: DockerBackendConfig, api: Callable[[], docker.APIClient]) -> None:
        self.config = config
        self._get_api = api  # connects on first use
        self._quota_supported: bool | None = None
        self._delegated_by_engine: bool | None = None
        self._storage_driver = ""

    @property
    def api(self) -> docker.APIClient:
        return self._get_api()

    def inspect_own(self, name: str) -> dict[str, Any] | None:
        """The container, only when it is a sandbox of this instance (never touch others)."""
        try:
            attrs: dict[str, Any] = self.api.inspect_container(name)
        except NotFound:
            return None
        labels = (attrs.get("Config") or {}).get("Labels")
        if attrs.get("Name") != f"/{name}" or not naming.belongs_to(
            labels, self.config.instance, Role.SANDBOX
        ):
            return None
        return attrs

    def create(self, spec: SandboxSpec) -> None:
        labels = naming.labels_for(
            self.config.instance,
            Role.SANDBOX,
            workshop=spec.workshop,
            attendee=spec.attendee,
            extra={**self.config.extra_labels, **spec.labels},
        )
        quota = self._disk_quota_supported()
        volume = None if self._engine_in_layer(spec) else self._engine_volume(spec, labels)
        try:
            self._create_with_limits(spec, labels, volume, quota=quota)
        except APIError as error:
            if not spec.limits.disk_quota or not any(
                word in str(error.explanation) for word in _QUOTA_REFUSED
            ):
                raise
            log.warning("The engine refused a disk quota (%s); sandboxes run without one.", error)
            self._quota_supported = False
            volume = self._engine_volume(spec, labels)
            self._create_with_limits(spec, labels, volume, quota=False)

    def _engine_volume(self, spec: SandboxSpec, labels: dict[str, str]) -> str:
        volume = naming.engine_volume_name(spec.name)
        self.api.create_volume(volume, labels=labels)
        return volume

    def _engine_in_layer(self, spec: SandboxSpec) -> bool:
        """On the capped btrfs engine (``disk.py``) the inner engine keeps its data in the
        sandbox's own capped layer, where overlay2 works, rather than in an uncapped volume."""
        return (
            bool(spec.limits.disk_quota)
            and self._disk_quota_supported()
            and self._storage_driver == disk.STORAGE_DRIVER
        )

    def _create_with_limits(
        self, spec: SandboxSpec, labels: dict[str, str], volume: str | None, *, quota: bool
    ) -> None:
        api, network = self.api, self.config.network
        host_config = create_host_config(
            api,
            self.config.runtime,
            apparmor=self.config.apparmor,
            binds={volume: {"bind": ENGINE_DIR, "mode": "rw"}} if volume else None,
            network_mode=network,
            **limits_host_config(spec.limits, disk_quota=quota),
        )
        api.create_container(
            spec.image,
            name=spec.name,
            hostname=spec.name,
            environment=self._environment(spec),
            labels=labels,
            host_config=host_config,
            networking_config={"EndpointsConfig": {network: {}}},
        )

    def start(self, name: str) -> None:
        start_container(self.api, name, self.config.runtime, delegate=not self._engine_delegates())

    def _engine_delegates(self) -> bool:
        """Whether the engine hands sandboxes their cgroups itself (compose.yaml's engine, whose
        containers' processes a portal in another container cannot see)."""
        if self._delegated_by_engine is None:
            labels = self.api.info().get("Labels") or []
            self._delegated_by_engine = cgroups.ENGINE_DELEGATES in labels
        return self._delegated_by_engine

    def _environment(self, spec: SandboxSpec) -> dict[str, str]:
        return {
            **spec.env,
            "LABDECK_SANDBOX_NAME": spec.name,
            "LABDECK_REGISTRY_MIRROR": self.config.registry_mirror or "",
            "LABDECK_INSECURE_REGISTRIES": ",".join(self.config.insecure_registries),
        }

    def _disk_quota_supported(self) -> bool:
        if self._quota_supported is None:
            info = self.api.info()
            self._storage_driver = str(info.get("Driver"))
            self._quota_supported = storage_supports_quota(info)
            if not self._quota_supported:
                log.info("The engine's storage driver takes no disk quota; sandboxes run without.")
        return self._quota_supported

    def log_tail(self, name: str) -> str:
        try:
            logs = self.api.logs(name, tail=_LOG_TAIL_LINES).decode("utf-8", errors="replace")
        except DockerException:
            return ""
        lines = [line for line in logs.splitlines() if line.strip()]
        return (
            "\nLast lines of its log:\n" + "\n".join(f"  | {line}" for line in lines)
            if lines
            else ""
        )

    def discard(self, name: str, error: BaseException) -> str:
        """Remove a sandbox that did not get ready; return why, with its last log lines."""
        reason = str(error) or type(error).__name__
        if isinstance(error, APIError):
            reason = str(error.explanation)
        message = f"Sandbox {name} could not be made ready: {reason}{self.log_tail(name)}"
        self.remove_everything(name)
        return message

    def remove_everything(self, name: str) -> None:
        if self.inspect_own(name) is not None:
            ignore_done(self.api.remove_container, name, force=True, v=True)
        volume = naming.engine_volume_name(name)
        try:
            labels = self.api.inspect_volume(volume).get("Labels") or {}
        except NotFound:
            return
        if naming.belongs_to(labels, self.config.instance, Role.SANDBOX):
            ignore_done(self.api.remove_volume, volume, force=True)


def ignore_done(remove: Callable[..., Any], *args: Any, **kwargs: Any) -> None:
    """Run a removal; 404 (gone) and 409 (being removed) mean it is done."""
    try:
        remove(*args, **kwargs)
    except APIError as error:
        if error.status_code not in _ALREADY_DONE:
            raise SandboxError(
                f"Docker refused to remove {args[0]}: {error.explanation}"
            ) from error
