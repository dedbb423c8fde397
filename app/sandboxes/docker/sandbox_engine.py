"""The dedicated sandbox engine: a second dockerd that LabDeck starts and owns, with user-namespace
remapping, so every sandbox's root is an unprivileged host uid (issue 13).

It has its own socket, data root, exec root, pidfile, log and bridge (``labdeck0``; never
``--bridge none``, which deletes the host engine's ``docker0``), and address pools apart from
the host engine's, so the host's own Docker setup is never reconfigured. Its data root survives
between runs: images loaded there once stay.

``LABDECK_SANDBOX_ENGINE`` selects it: ``dedicated`` always, ``host`` never, ``auto`` (the default)
whenever its socket exists (``./labdeck up`` starts it when run as root on Linux).

Everything here blocks.
"""

from __future__ import annotations

import json
import logging
import os
import shutil
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

import docker
from docker.errors import DockerException

from app.sandboxes.docker import cgroups, disk

log = logging.getLogger(__name__)

DEFAULT_SOCKET = "/run/labdeck/engine.sock"
DEFAULT_ROOT = "/var/lib/labdeck/engine"
RUN_DIR = Path("/run/labdeck")
BRIDGE = "labdeck0"
HOST_BRIDGE = "docker0"
BRIDGE_ADDRESS = "10.213.0.1/24"
ADDRESS_POOL = "base=10.214.0.0/16,size=24"
START_TIMEOUT_SECONDS = 60.0
UNCAPPED_DRIVER = "overlay2"  # without the disk cap (disk.py)


class SandboxEngineError(RuntimeError):
    """The dedicated engine cannot start here; the message says why and what to do instead."""


@dataclass(frozen=True)
class EnginePlaces:
    socket: Path
    data_root: Path
    log: Path
    exec_root: Path = RUN_DIR / "engine-exec"
    pidfile: Path = RUN_DIR / "engine.pid"

    @property
    def address(self) -> str:
        return f"unix://{self.socket}"


def selection() -> str:
    """``auto``, ``dedicated`` or ``host``, from the environment (read before any Settings)."""
    return os.environ.get("LABDECK_SANDBOX_ENGINE", "auto").strip().lower() or "auto"


def socket_path() -> Path:
    return Path(os.environ.get("LABDECK_SANDBOX_ENGINE_SOCKET") or DEFAULT_SOCKET)


def selected_address() -> str | None:
    """The dedicated engine's address when sandboxes should run there, else None."""
    choice, path = selection(), socket_path()
    if choice == "dedicated" or (choice == "auto" and path.is_socket()):
        return f"unix://{path}"
    return None


def places(data_dir: Path) -> EnginePlaces:
    root = os.environ.get("LABDECK_SANDBOX_ENGINE_ROOT") or DEFAULT_ROOT
    return EnginePlaces(socket_path(), Path(root), Path(data_dir) / "sandbox-engine.log")


def why_impossible() -> str | None:
    """None when this host can run the dedicated engine, else the reason in one sentence."""
    if not sys.platform.startswith("linux"):
        return "the dedicated sandbox engine needs Linux"
    if os.geteuid() != 0:
        return "starting the dedicated sandbox engine needs root (run ./labdeck as root)"
    if shutil.which("dockerd") is None:
        return "dockerd is not installed (Debian: apt-get install docker.io)"
    if not Path("/proc/self/uid_map").exists():
        return "this kernel has no user namespaces"
    return None


def answers(address: str, timeout: int = 5) -> bool:
    try:
        client = docker.DockerClient(base_url=address, timeout=timeout)
    except DockerException:
        return False
    try:
        return bool(client.ping())
    except (DockerException, OSError):
        return False
    finally:
        client.close()


def dockerd_command(
    where: EnginePlaces,
    storage_driver: str = UNCAPPED_DRIVER,
    *,
    bridge: str = BRIDGE,
    address_pool: str | None = ADDRESS_POOL,
    labels: tuple[str, ...] = (),
) -> list[str]:
    """``address_pool`` None: networks get the subnets they are created with (or Docker's own
    pools); a pool makes a restart over an existing network store delete ``docker0``."""
    pool = [f"--default-address-pool={address_pool}"] if address_pool else []
    return [
        "dockerd",
        f"--host={where.address}",
        f"--data-root={where.data_root}",
        f"--exec-root={where.exec_root}",
        f"--pidfile={where.pidfile}",
        f"--bridge={bridge}",
        *pool,
        "--userns-remap=default",
        f"--storage-driver={storage_driver}",
        f"--cgroup-parent=/{cgroups.SANDBOX_PARENT}",
        *(f"--label={label}" for label in labels),
    ]


def ensure_bridge(name: str = BRIDGE, address: str = BRIDGE_ADDRESS) -> None:
    """The engine's own bridge: dockerd uses an existing one and leaves docker0 alone."""
    if Path(f"/sys/class/net/{name}").exists():
        return
    for command in (
        ["ip", "link", "add", name, "type", "bridge"],
        ["ip", "addr", "add", address, "dev", name],
        ["ip", "link", "set", name, "up"],
    ):
        subprocess.run(command, check=True, capture_output=True)


def prepare_data_root(root: Path) -> str:
    """Make dockerd's data root ready and return its storage driver: with a disk cap wanted,
    the capped btrfs root (``disk.py``), else a plain folder for overlay2."""
    if not disk.wanted():
        root.mkdir(parents=True, exist_ok=True)
        return UNCAPPED_DRIVER
    try:
        disk.ensure_capped_root(root)
    except disk.DiskCapError as error:
        raise disk_cap_failed(error) from error
    return disk.STORAGE_DRIVER


def disk_cap_failed(reason: object) -> SandboxEngineError:
    return SandboxEngineError(
        f"Cannot give sandboxes a disk cap: {reason}. Or set LABDECK_SANDBOX_DISK_QUOTA= "
        "(empty) to run them without one."
    )


def launch(where: EnginePlaces) -> None:
    """Start dockerd detached (its own session; it outlives this process), logging to ``log``.
    With a disk cap wanted, its data root is the capped btrfs one (``disk.py``)."""
    for directory in (where.socket.parent, where.log.parent, RUN_DIR):
        directory.mkdir(parents=True, exist_ok=True)
    driver = prepare_data_root(where.data_root)
    with where.log.open("ab") as log:
        subprocess.Popen(
            dockerd_command(where, driver),
            stdin=subprocess.DEVNULL,
            stdout=log,
            stderr=log,
            start_new_session=True,
            close_fds=True,
        )


# Every sandbox's root is the same remapped host uid (dockerd remaps one range for all), and the
# kernel's key quota for a non-root uid is 200 keys / 20000 bytes by default: runc makes a
# session keyring per container, so about 30 sandboxes running a few containers each exhausted
# it ("unable to create session key: disk quota exceeded", measured in `bench class`). Root's
# own defaults are 1000000 / 25000000; these leave room for a class of 100 and more.
KEY_QUOTAS = {"maxkeys": 200_000, "maxbytes": 20_000_000}
KEYS_SYSCTL = Path("/proc/sys/kernel/keys")


def raise_key_quotas(sysctl: Path = KEYS_SYSCTL) -> dict[str, int]:
    """Raise the kernel's per-uid key quotas to ``KEY_QUOTAS`` where they are lower (never
    lowers them); the values set. A read-only /proc/sys (a container) is logged, not fatal."""
    raised = {}
    for name, wanted in KEY_QUOTAS.items():
        path = sysctl / name
        try:
            if int(path.read_text()) < wanted:
                path.write_text(f"{wanted}\n")
                raised[name] = wanted
        except OSError as error:
            log.warning("cannot raise the kernel's key quota %s: %s", name, error)
    return raised


def prepare_host() -> None:
    """What the host's kernel must give the sandbox engine, wherever it runs (``labdeck engine
    up`` or compose.yaml's engine): a key quota for the uid all sandboxes share, and the low-CPU-
    weight parent cgroup its sandboxes live in."""
    raise_key_quotas()
    cgroups.ensure_sandbox_parent()


def ensure_running(data_dir: Path) -> EnginePlaces:
    """Start the dedicated engine unless it answers already; return where it lives. Idempotent."""
    where = places(data_dir)
    if os.geteuid() == 0:
        prepare_host()  # also for an engine started before these rules
    if answers(where.address):
        return where
    reason = why_impossible()
    if reason:
        raise SandboxEngineError(f"Cannot start the dedicated sandbox engine: {reason}.")
    ensure_bridge()
    host_bridge = bridge_addresses(HOST_BRIDGE)
    launch(where)
    try:
        _wait_until_it_answers(where)
    finally:
        restore_bridge(HOST_BRIDGE, host_bridge)
    return where


def bridge_addresses(name: str) -> list[str] | None:
    """The IPv4 addresses of bridge ``name``; None when there is no such interface."""
    shown = subprocess.run(
        ["ip", "-j", "addr", "show", "dev", name], capture_output=True, text=True
    )
    if shown.returncode != 0:
        return None
    found = json.loads(shown.stdout or "[]")
    return [
        f"{address['local']}/{address['prefixlen']}"
        for link in found
        for address in link.get("addr_info", [])
        if address.get("family") == "inet"
    ]


def restore_bridge(name: str, addresses: list[str] | None) -> None:
    """Put back the host engine's bridge: a dockerd started with ``--bridge=X`` and a network
    store from an earlier run deletes ``docker0`` when it starts (dockerd 20.10, measured here),
    and the host engine's containers then fail with "could not find bridge docker0"."""
    if addresses is None or Path(f"/sys/class/net/{name}").exists():
        return
    commands = [["ip", "link", "add", name, "type", "bridge"]]
    commands += [["ip", "addr", "add", address, "dev", name] for address in addresses]
    for command in [*commands, ["ip", "link", "set", name, "up"]]:
        subprocess.run(command, check=True, capture_output=True)


def _wait_until_it_answers(where: EnginePlaces) -> None:
    deadline = time.monotonic() + START_TIMEOUT_SECONDS
    while time.monotonic() < deadline:
        if answers(where.address):
            return
        time.sleep(0.3)
    raise SandboxEngineError(
        f"The dedicated sandbox engine did not answer within {START_TIMEOUT_SECONDS:g} s; "
        f"its log is {where.log}."
    )


def copy_images(
    source: docker.DockerClient, target: docker.DockerClient, tags: list[str]
) -> list[str]:
    """Copy each image in ``tags`` that ``source`` has and ``target`` lacks (or has an older build
    of) by ``docker save | docker load``; the tags copied. An image keeps its ID and labels, so
    ``labdeck images build`` then finds it up to date. Measured here: 30 s for the sandbox image
    (533 MB), against minutes to build it again."""
    copied = []
    for tag in tags:
        have, offered = _image_created(target, tag), _image_created(source, tag)
        if offered is None or (have is not None and have >= offered):
            continue  # never replace a build made in the target with an older one
        for message in target.api.load_image(source.api.get_image(tag)):
            if isinstance(message, dict) and message.get("error"):
                raise SandboxEngineError(f"Could not load {tag}: {message['error']}")
        copied.append(tag)
    return copied


def _image_created(client: docker.DockerClient, tag: str) -> str | None:
    """When the image was built (RFC 3339, so comparable as text), or None when it is missing."""
    try:
        return str(client.api.inspect_image(tag)["Created"])
    except DockerException:
        return None


def stop(data_dir: Path, timeout: float = 30.0) -> bool:
    """Stop the dedicated engine (its sandboxes stop with it); whether one was running."""
    where = places(data_dir)
    try:
        pid = int(where.pidfile.read_text().strip())
        os.kill(pid, 15)
    except (OSError, ValueError):
        return False
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline and Path(f"/proc/{pid}").exists():
        time.sleep(0.3)
    return True
