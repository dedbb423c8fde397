"""`labdeck engine run`: LabDeck's dedicated sandbox engine as the main process of a container
(compose.yaml's ``engine`` service), owning what it puts on the host (issue 16).

It runs the dockerd that ``labdeck engine up`` starts (user-namespace remapping, its own data
root, exec root and bridge) in the foreground, and does what a portal in another container
cannot:

- it builds the images sandboxes need into its data root, skipping up-to-date ones;
- it hands each container it starts its cgroups (``cgroups.py``), from its own events, and says
  so in an engine label (``cgroups.ENGINE_DELEGATES``): the portal cannot see those processes;
- it puts back its sandbox network's firewall rules before any sandbox can start again;
- only then does it answer on the socket the portal uses (a link to dockerd's own), so an
  engine that answers there is ready;
- when it stops, it removes what it put on the host: its bridges, Docker's rules for them and
  the instance's firewall rules (dockerd puts its own back when it starts: measured). A
  stack taken down with ``docker compose down`` leaves nothing on the host.

It is given no ``--default-address-pool``: the sandbox network gets ``LABDECK_SANDBOX_SUBNET``,
and a dockerd with a pool, restarted over its network store, deletes the host's ``docker0``.
Needs root, the host's network namespace and its /sys/fs/cgroup: compose.yaml gives them.
"""

from __future__ import annotations

import logging
import os
import shlex
import signal
import subprocess
import threading
import time
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

import docker
import requests
from docker.errors import DockerException, NotFound

from app.config import Settings
from app.sandboxes import naming
from app.sandboxes.docker import cgroups, sandbox_engine, teardown
from app.sandboxes.docker.containers import remapped_root_of
from app.sandboxes.docker.images.builder import build_all
from app.sandboxes.docker.network import BRIDGE_OPTION, guard_sandbox_network

log = logging.getLogger("labdeck.engine")
PRIVATE_SOCKET = ".dockerd.sock"  # dockerd's own, beside the one the portal uses
STOP_SECONDS = 60
# Bridges an engine in a container must never take, nor delete when it stops.
FOREIGN_BRIDGES = (sandbox_engine.HOST_BRIDGE, sandbox_engine.BRIDGE)
MASKED_PLACES = ("/proc/", "/sys/firmware")
STOP_SIGNALS = (signal.SIGTERM, signal.SIGINT)


class EngineServiceError(RuntimeError):
    """The engine cannot run as asked; the message says why."""


@dataclass(frozen=True)
class EngineService:
    socket: Path  # what the portal connects to; answers once the engine is ready
    data_root: Path
    exec_root: Path
    bridge: str
    bridge_address: str  # with its prefix, e.g. 10.215.0.1/24
    build_images: bool = True

    @property
    def private_socket(self) -> Path:
        return self.socket.parent / PRIVATE_SOCKET

    @property
    def private_address(self) -> str:
        return f"unix://{self.private_socket}"

    def dockerd_command(self) -> list[str]:
        where = sandbox_engine.EnginePlaces(
            self.private_socket,
            self.data_root,
            Path("/dev/stdout"),  # dockerd logs into the container's log
            exec_root=self.exec_root,
            pidfile=self.exec_root / "dockerd.pid",
        )
        return sandbox_engine.dockerd_command(
            where, bridge=self.bridge, address_pool=None, labels=(cgroups.ENGINE_DELEGATES,)
        )


def check_bridge(name: str) -> None:
    if name in FOREIGN_BRIDGES or not 0 < len(name) <= naming.MAX_BRIDGE_LENGTH:
        raise EngineServiceError(
            f"The engine's bridge {name!r} must be a name of its own of at most "
            f"{naming.MAX_BRIDGE_LENGTH} characters, not {' or '.join(FOREIGN_BRIDGES)}."
        )


class StopRequested(Exception):
    """SIGTERM or SIGINT: stop, whatever the engine is doing (building images, serving)."""


def stop_on_signals() -> None:
    def stop(_signum: int, _frame: object) -> None:
        for signum in STOP_SIGNALS:  # once: the clean-up that follows must not be cut short
            signal.signal(signum, signal.SIG_IGN)
        raise StopRequested

    for signum in STOP_SIGNALS:
        signal.signal(signum, stop)


def run(service: EngineService, settings: Settings) -> int:
    """Run the engine until SIGTERM; 0 after a requested stop, 1 when dockerd ended by itself."""
    check_bridge(service.bridge)
    bridges = {service.bridge, naming.bridge_name(settings.instance)}
    unpublish(service)
    clean_host(settings.instance, bridges)  # what an engine that was killed left
    reveal_kernel_files()
    sandbox_engine.prepare_host()
    sandbox_engine.ensure_bridge(service.bridge, service.bridge_address)
    service.data_root.mkdir(parents=True, exist_ok=True)
    dockerd: subprocess.Popen[bytes] | None = None
    client = None
    stop_on_signals()
    try:
        dockerd = subprocess.Popen(service.dockerd_command(), stdin=subprocess.DEVNULL)
        client = wait_for_dockerd(service, dockerd)
        prepare(client, settings, service)
        threading.Thread(target=delegate_cgroups, args=(service,), daemon=True).start()
        publish(service)
        log.info("The sandbox engine is ready on unix://%s.", service.socket)
        dockerd.wait()
        log.error("dockerd ended by itself (exit %s); see its log above.", dockerd.returncode)
        return 1
    except StopRequested:
        return 0
    finally:
        unpublish(service)
        if client is not None:
            bridges |= owned_bridges(client)
            client.close()
        if dockerd is not None:
            stop_dockerd(dockerd)
        clean_host(settings.instance, bridges)


def reveal_kernel_files() -> None:
    """Take away what Docker mounts over parts of /proc and /sys/firmware in a container, as
    ``--security-opt systempaths=unconfined`` would (a docker CLI option that docker-compose 1.x
    cannot pass): the kernel lets a process in a user namespace, as every sandbox and every
    image build here is, mount a /proc of its own only where /proc is fully visible."""
    for _ in range(3):  # masks may be stacked
        mount_points = [
            line.split()[4] for line in Path("/proc/self/mountinfo").read_text().splitlines()
        ]
        covering = {point for point in mount_points if point.startswith(MASKED_PLACES)}
        if not covering:
            return
        for point in sorted(covering, key=len, reverse=True):
            subprocess.run(["umount", point], check=False, capture_output=True)
    raise EngineServiceError(
        "Could not unmask /proc in the engine's container; it needs CAP_SYS_ADMIN (compose.yaml)."
    )


def wait_for_dockerd(
    service: EngineService, dockerd: subprocess.Popen[bytes]
) -> docker.DockerClient:
    deadline = time.monotonic() + sandbox_engine.START_TIMEOUT_SECONDS
    while not sandbox_engine.answers(service.private_address):
        if dockerd.poll() is not None:
            raise EngineServiceError(f"dockerd ended (exit {dockerd.returncode}); see its log.")
        if time.monotonic() > deadline:
            raise EngineServiceError("dockerd did not answer within a minute; see its log above.")
        time.sleep(0.3)
    return docker.DockerClient(base_url=service.private_address, timeout=900)


def prepare(client: docker.DockerClient, settings: Settings, service: EngineService) -> None:
    """The images (built where missing or outdated), then the sandbox network's rules."""
    if service.build_images:
        log.info("Building the images that are missing or outdated (%s).", settings.images_mode)
        for result in build_all(client, settings.images_mode):
            state = f"built in {result.seconds:.0f}s" if result.built else "up to date"
            log.info("image %s: %s", result.tag, state)
    try:
        client.api.inspect_network(naming.network_name(settings.instance))
    except NotFound:
        return  # the portal makes it, rules and all
    guard_sandbox_network(client, settings)
    log.info("Firewall rules of %s are in place.", naming.network_name(settings.instance))


def publish(service: EngineService) -> None:
    unpublish(service)
    service.socket.symlink_to(PRIVATE_SOCKET)


def unpublish(service: EngineService) -> None:
    if service.socket.is_symlink() or service.socket.exists():
        service.socket.unlink()


def delegate_cgroups(service: EngineService) -> None:
    """Forever: hand every container this engine starts its cgroups; the running ones first."""
    while True:
        try:
            api = docker.APIClient(base_url=service.private_address)  # events never time out
            events = api.events(decode=True, filters={"type": "container", "event": "start"})
            for container in api.containers():
                delegate_container(api, container["Id"])
            for event in events:
                delegate_container(api, event["id"])
        except (DockerException, requests.RequestException, OSError) as error:
            log.debug("cgroup delegation: %s", error)
        time.sleep(1)


def delegate_container(api: docker.APIClient, container_id: str) -> None:
    try:
        pid = int((api.inspect_container(container_id).get("State") or {}).get("Pid") or 0)
        uid, gid = remapped_root_of(pid) if pid else (0, 0)
        if uid:
            cgroups.delegate(pid, uid, gid)
    except (NotFound, FileNotFoundError, ProcessLookupError):
        return  # it has stopped already
    except OSError as error:
        log.warning("Could not hand container %s its cgroups: %s", container_id[:12], error)


def owned_bridges(client: docker.DockerClient) -> set[str]:
    """The host interfaces of this engine's bridge networks."""
    try:
        networks = client.api.networks()
    except DockerException:
        return set()
    return {
        (network.get("Options") or {}).get(BRIDGE_OPTION) or f"br-{network['Id'][:12]}"
        for network in networks
        if network.get("Driver") == "bridge"
    } - set(FOREIGN_BRIDGES)


def stop_dockerd(dockerd: subprocess.Popen[bytes]) -> None:
    """SIGTERM: dockerd stops its containers first; killed after STOP_SECONDS."""
    if dockerd.poll() is None:
        dockerd.terminate()
        try:
            dockerd.wait(timeout=STOP_SECONDS)
        except subprocess.TimeoutExpired:
            dockerd.kill()
            dockerd.wait()


def docker_rules_script(bridges: Iterable[str]) -> str:
    """Shell: delete every rule (filter and nat, both iptables flavours) that names one of
    ``bridges`` as its in or out interface, as Docker's rules for a bridge all do."""
    names = "|".join(sorted(bridges))
    pattern = shlex.quote(f" (-i|-o) ({names})( |$)")
    return f"""set -eu
for IPT in "iptables-nft -w" "iptables-legacy -w"; do
    for table in filter nat; do
        $IPT -t $table -S >/dev/null 2>&1 || continue
        $IPT -t $table -S | grep '^-A ' | grep -E -e {pattern} | sed 's/^-A /-D /' > /tmp/rules || true
        while read -r rule; do eval "$IPT -t $table $rule"; done < /tmp/rules
    done
done
"""


def clean_host(instance: str, bridges: Iterable[str]) -> None:
    """The instance's firewall rules, Docker's rules for ``bridges``, then the bridges."""
    bridges = sorted(set(bridges) - set(FOREIGN_BRIDGES))
    for script in (teardown.remove_rules_script(instance), docker_rules_script(bridges)):
        done = subprocess.run(["sh", "-c", script], capture_output=True, text=True)
        if done.returncode != 0:
            log.warning("Removing firewall rules failed: %s", done.stderr.strip())
    for bridge in bridges:
        if os.path.exists(f"/sys/class/net/{bridge}"):
            subprocess.run(["ip", "link", "delete", bridge], check=False, capture_output=True)
