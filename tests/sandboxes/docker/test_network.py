"""Isolation, proven on the real engine: sandboxes reach the registry and (egress allowing) the
world, but not each other, not the host's services, not the host's engine."""

from __future__ import annotations

import asyncio
import ipaddress
import socket
from collections.abc import AsyncIterator, Iterator

import docker
import pytest

from app.sandboxes import naming
from app.sandboxes.docker import network
from app.sandboxes.docker.network import NetworkInfo
from app.sandboxes.docker.runtime import Profile
from tests.support.docker_lab import SEED, TEST_LABELS, Lab, free_port, open_lab, run

pytestmark = pytest.mark.anyio
DEBIAN_MIRROR = "deb.debian.org"


def info(egress: network.Egress = "allow", port: int = 5055) -> NetworkInfo:
    return NetworkInfo("i-sandboxes", "ld-0123456789ab", "10.9.0.0/16", "10.9.0.1", egress, port)


# -- without an engine ---------------------------------------------------------------------


def test_bridge_and_chain_names_fit_the_kernel_limits() -> None:
    bridge = naming.bridge_name("a-very-long-instance-name-of-31c")
    assert len(bridge) <= 15 and bridge == naming.bridge_name("a-very-long-instance-name-of-31c")
    assert all(len(chain) <= 28 for chain in network.chain_names(bridge))


def test_egress_none_adds_a_drop_and_changes_the_hash() -> None:
    allow, none = network.install_script("i", info()), network.install_script("i", info("none"))
    assert "-A LD-0123456789ab-FWD -i ld-0123456789ab -j DROP" not in allow
    assert "-A LD-0123456789ab-FWD -i ld-0123456789ab -j DROP" in none
    assert network.rules_hash(info()) != network.rules_hash(info("none"))
    assert network.rules_hash(info()) != network.rules_hash(info(port=5056))
    assert "--dport 5055 -j ACCEPT" in allow


def test_a_registry_beside_the_portal_is_the_one_host_address_sandboxes_reach() -> None:
    beside = NetworkInfo(
        "i-sandboxes", "ld-0123456789ab", "10.9.0.0/16", "10.9.0.1", "allow", 5055, "10.8.0.1"
    )
    script = network.install_script("i", beside)
    assert "-p tcp -d 10.8.0.1 --dport 5055 -j ACCEPT" in script
    assert "--ctorigdst 10.8.0.1 --ctorigdstport 5055" in script
    assert "-d 10.9.0.1" not in script
    assert network.rules_hash(beside) != network.rules_hash(info())
    assert info().registry_host == "10.9.0.1"  # the gateway: rules as before, hash unchanged


# -- on the real engine --------------------------------------------------------------------


@pytest.fixture(scope="module")
def pair(lab: Lab) -> Iterator[tuple[str, str]]:
    """Sandboxes A and B; B serves HTTP on :8080 from a container of its own engine."""

    async def make() -> tuple[str, str]:
        a, b = await asyncio.gather(lab.ready_sandbox("a"), lab.ready_sandbox("b"))
        serve = "docker run -d -p 8080:80 busybox httpd -f -h /etc"
        result = await lab.backend.exec(b, serve, timeout=60)
        assert result.exit_code == 0, result.output
        return a, b

    a, b = run(make())
    yield a, b

    async def remove() -> None:
        await asyncio.gather(lab.backend.remove(a), lab.backend.remove(b))

    run(remove())


@pytest.fixture(scope="module")
def closed_lab(engine: docker.DockerClient, runtime_profile: Profile) -> Iterator[Lab]:
    closed = open_lab(engine, runtime_profile, "none", egress="none", seed=SEED[:1])
    yield closed
    closed.close()


async def connects(lab: Lab, sandbox: str, host: str, port: int) -> bool:
    probe = f"timeout 3 bash -c 'exec 3<>/dev/tcp/{host}/{port}'"
    return (await lab.backend.exec(sandbox, probe, timeout=10)).exit_code == 0


async def http_status(lab: Lab, sandbox: str, url: str, *extra: str) -> str:
    command = f"curl -s -o /dev/null -w '%{{http_code}}' -m 4 {' '.join(extra)} {url}"
    return (await lab.backend.exec(sandbox, command, timeout=10)).output.strip()


def host_address() -> str:
    """The host's address on its default route (no packet is sent)."""
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as probe:
        probe.connect(("192.0.2.123", 9))
        return str(probe.getsockname()[0])


def default_gateway() -> str:
    with open("/proc/net/route") as routes:
        for line in routes.readlines()[1:]:
            fields = line.split()
            if fields[1] == "00000000":
                return socket.inet_ntoa(int(fields[2], 16).to_bytes(4, "little"))
    pytest.skip("the host has no default route")


@pytest.fixture
async def host_listener() -> AsyncIterator[int]:
    """A TCP service on 0.0.0.0, as the portal or sshd would be."""
    server = await asyncio.start_server(lambda _r, writer: writer.close(), "0.0.0.0", free_port())
    yield server.sockets[0].getsockname()[1]
    server.close()
    await server.wait_closed()


@pytest.mark.docker
def test_rules_are_installed_once_and_name_the_bridge(
    engine: docker.DockerClient, lab: Lab
) -> None:
    before = network.firewall_rules(engine, lab.instance, extra_labels=TEST_LABELS)
    again = network.ensure_network(
        engine, lab.instance, registry_port=lab.registry.port, extra_labels=TEST_LABELS
    )
    assert again == lab.network
    assert network.firewall_rules(engine, lab.instance, extra_labels=TEST_LABELS) == before
    chain_in, _ = network.chain_names(lab.network.bridge)
    assert f"-A {chain_in} -m comment --comment" in "\n".join(before)
    assert any(rule.startswith(f"-A INPUT -i {lab.network.bridge}") for rule in before)


@pytest.mark.docker
async def test_sandboxes_cannot_reach_each_other(lab: Lab, pair: tuple[str, str]) -> None:
    a, b = pair
    b_url = f"http://{lab.container_ip(b)}:8080/hostname"
    assert await http_status(lab, b, b_url) == "200"
    assert await http_status(lab, a, b_url) == "000"


@pytest.mark.docker
async def test_host_services_are_out_of_reach_but_the_registry_is_not(
    lab: Lab, pair: tuple[str, str], host_listener: int
) -> None:
    a, _ = pair
    _, writer = await asyncio.open_connection("127.0.0.1", host_listener)
    writer.close()  # the host itself still reaches its service
    await writer.wait_closed()
    default_subnet = lab.client.api.inspect_network("bridge")["IPAM"]["Config"][0]["Subnet"]
    docker0 = str(ipaddress.ip_network(default_subnet)[1])
    for address in (lab.network.gateway, host_address(), docker0):
        assert not await connects(lab, a, address, host_listener), address
    assert await http_status(lab, a, f"{lab.registry.mirror_url()}/v2/") == "200"


@pytest.mark.docker
async def test_the_host_engine_is_not_inside(lab: Lab, pair: tuple[str, str]) -> None:
    a, _ = pair
    inside = await lab.backend.exec(a, "docker info --format '{{.Name}}'; docker ps -aq | wc -l")
    assert inside.output.split() == [a, "0"]


@pytest.mark.docker
async def test_egress_none_cuts_everything_but_the_registry(
    lab: Lab, closed_lab: Lab, pair: tuple[str, str]
) -> None:
    a, _ = pair
    c = await closed_lab.ready_sandbox("c")
    mirror_ip = socket.gethostbyname(DEBIAN_MIRROR)
    url, pin = f"http://{DEBIAN_MIRROR}/debian/", f"--resolve {DEBIAN_MIRROR}:80:{mirror_ip}"
    ping = f"ping -c 1 -W 2 {default_gateway()}"
    if await http_status(lab, a, url, pin) != "200":
        pytest.skip(f"{DEBIAN_MIRROR} is out of reach even with egress allowed")
    assert (await lab.backend.exec(a, ping)).exit_code == 0
    assert await http_status(closed_lab, c, url, pin) == "000"
    assert (await closed_lab.backend.exec(c, ping)).exit_code != 0
    pulled = await closed_lab.backend.exec(c, "docker run --rm hello-world", timeout=60)
    assert "Hello from LabDeck" in pulled.output, pulled.output
