"""Isolation: sandboxes reach the workshop registry and (unless egress is ``none``) the outside
world, but neither each other nor the host's services.

Design
- One bridge network per instance, ``<instance>-sandboxes``, with inter-container traffic off
  (``enable_icc=false``) and a fixed interface name ``ld-<hash>`` that firewall rules can name.
- The workshop registry is not on that network. It is published on the network's gateway IP
  and on 127.0.0.1. Docker sends traffic from any of its bridges to a host address to the
  userland proxy (its nat rules ``RETURN`` for bridges), so sandboxes reach the registry as a
  host service, through the INPUT chain; the host engine pushes to 127.0.0.1, which Docker
  trusts without TLS. A registry run beside the portal (compose.yaml's ``registry`` service)
  listens on another host address instead (``registry_address``); the rules name that one.
- The network's subnet is the engine's choice unless one is given: compose.yaml gives one, so
  that its engine needs no ``--default-address-pool`` (with one, a dockerd restarted over its
  network store deletes the host's ``docker0``).
- Two chains per instance, installed from a short-lived helper container (host network,
  NET_ADMIN) because the portal may not run as root:
    ``LD-<hash>-IN``, jumped to from INPUT for packets from the bridge: replies pass, new
    connections to the registry port on the gateway pass, everything else is dropped: the
    portal, sshd and every other host service are out of reach on every host address.
    ``LD-<hash>-FWD``, jumped to from DOCKER-USER for packets from or to the bridge: lets the
    registry through when an engine without userland proxy DNATs it (Docker's cross-bridge
    isolation would drop it), and with egress ``none`` drops every other new connection.
- Rules carry a hash of their settings in a comment; ``ensure_network`` rewrites a chain only
  when that hash differs, so running it again is cheap and changes nothing.

These functions block; call them from a thread (``asyncio.to_thread``) in async code.
"""

from __future__ import annotations

import hashlib
import json
import logging
import shlex
from collections.abc import Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Literal

import docker
from docker.errors import APIError, DockerException, ImageNotFound, NotFound
from docker.types import IPAMConfig, IPAMPool

from app.sandboxes import naming
from app.sandboxes.naming import Role

if TYPE_CHECKING:
    from app.config import Settings

log = logging.getLogger(__name__)

Egress = Literal["allow", "none"]
GUARD_IMAGE = "labdeck/sandbox:latest"
DEFAULT_REGISTRY_PORT = 5055
_GUARD_TIMEOUT_SECONDS = 60
ICC_OPTION = "com.docker.network.bridge.enable_icc"
BRIDGE_OPTION = "com.docker.network.bridge.name"


class FirewallError(RuntimeError):
    """The isolation rules could not be installed or removed; the message says what to check."""


@dataclass(frozen=True)
class NetworkInfo:
    name: str
    bridge: str
    subnet: str
    gateway: str
    egress: Egress
    registry_port: int
    registry_address: str = ""  # set when the registry runs beside the portal, not by it

    @property
    def registry_host(self) -> str:
        """Where sandboxes reach the workshop registry."""
        return self.registry_address or self.gateway


def chain_names(bridge: str) -> tuple[str, str]:
    """The INPUT and DOCKER-USER chains of one bridge (iptables allows 28 characters)."""
    suffix = bridge.removeprefix("ld-")
    return f"LD-{suffix}-IN", f"LD-{suffix}-FWD"


# Picks the iptables flavour the host engine uses: the one that has Docker's DOCKER-USER chain.
_PICK_IPTABLES = """
IPT=
for candidate in iptables-nft iptables-legacy; do
    if $candidate -w -n -L DOCKER-USER >/dev/null 2>&1; then IPT="$candidate -w"; break; fi
done
if [ -z "$IPT" ]; then
    echo "no DOCKER-USER chain in iptables-nft or iptables-legacy: does the engine manage iptables?"
    exit 3
fi
"""

_JUMPS = """
jump() {  # jump CHAIN MATCH TARGET: add once, at the top
    $IPT -C "$1" $2 -m comment --comment "$JUMP_TAG" -j "$3" 2>/dev/null \\
        || $IPT -I "$1" 1 $2 -m comment --comment "$JUMP_TAG" -j "$3"
}
"""


def _rules(info: NetworkInfo) -> dict[str, list[str]]:
    """Each chain's rules, in order, as iptables arguments after ``-A CHAIN``."""
    chain_in, chain_fwd = chain_names(info.bridge)
    registry = f"-p tcp -d {info.registry_host} --dport {info.registry_port}"
    forward = [
        f"-o {info.bridge} -m conntrack --ctstate ESTABLISHED,RELATED -j ACCEPT",
        f"-i {info.bridge} -p tcp -m conntrack --ctorigdst {info.registry_host} "
        f"--ctorigdstport {info.registry_port} -j ACCEPT",
    ]
    if info.egress == "none":
        forward.append(f"-i {info.bridge} -j DROP")
    return {
        chain_in: [
            "-m conntrack --ctstate ESTABLISHED,RELATED -j ACCEPT",
            f"{registry} -j ACCEPT",
            "-j DROP",
        ],
        chain_fwd: forward,
    }


def rules_hash(info: NetworkInfo) -> str:
    return hashlib.sha256(json.dumps(_rules(info), sort_keys=True).encode()).hexdigest()[:12]


def install_script(instance: str, info: NetworkInfo) -> str:
    """Shell for the helper: fill each chain unless it already holds exactly these rules."""
    tag = f"labdeck:{instance}:{rules_hash(info)}"
    lines = [
        _PICK_IPTABLES,
        f"TAG={shlex.quote(tag)}",
        f"JUMP_TAG={shlex.quote(f'labdeck:{instance}')}",
        _JUMPS,
    ]
    for chain, rules in _rules(info).items():
        expected = len(rules)
        lines.append(
            f"$IPT -N {chain} 2>/dev/null || true\n"
            f'if [ "$($IPT -S {chain} | grep -c -F -- "$TAG")" != {expected} ] || '
            f'[ "$($IPT -S {chain} | grep -c -- "^-A ")" != {expected} ]; then\n'
            f"    $IPT -F {chain}"
        )
        lines += [f'    $IPT -A {chain} {rule} -m comment --comment "$TAG"' for rule in rules]
        lines.append("fi")
    chain_in, chain_fwd = chain_names(info.bridge)
    lines += [
        f'jump INPUT "-i {info.bridge}" {chain_in}',
        f'jump DOCKER-USER "-i {info.bridge}" {chain_fwd}',
        f'jump DOCKER-USER "-o {info.bridge}" {chain_fwd}',
        "echo labdeck-netguard-ok",
    ]
    return "set -eu\n" + "\n".join(lines) + "\n"


def remove_script(bridge: str) -> str:
    """Shell for the helper: drop the jumps (whatever their tag) and both chains."""
    chain_in, chain_fwd = chain_names(bridge)
    lines = [_PICK_IPTABLES]
    for parent, chain in (("INPUT", chain_in), ("DOCKER-USER", chain_fwd)):
        # Delete every rule that jumps to the chain, as `iptables -S` prints it.
        lines.append(
            f"$IPT -S {parent} | grep -F -- '-j {chain}' | sed 's/^-A /-D /' "
            f'| while read -r rule; do eval "$IPT $rule"; done'
        )
    for chain in (chain_in, chain_fwd):
        lines.append(f"$IPT -F {chain} 2>/dev/null && $IPT -X {chain} || true")
    lines.append("echo labdeck-netguard-ok")
    return "set -eu\n" + "\n".join(lines) + "\n"


def orphan_sweep_script() -> str:
    """Shell for the helper: remove the chains of bridges that no longer exist."""
    return (
        "set -eu\n"
        + _PICK_IPTABLES
        + """
for chain in $($IPT -S | sed -n 's/^-N \\(LD-[0-9a-f]*\\)-IN$/\\1/p'); do
    bridge="ld-${chain#LD-}"
    ip link show "$bridge" >/dev/null 2>&1 && continue
    for pair in "INPUT $chain-IN" "DOCKER-USER $chain-FWD"; do
        set -- $pair
        $IPT -S "$1" | grep -F -- "-j $2" | sed 's/^-A /-D /' \\
            | while read -r rule; do eval "$IPT $rule"; done
        $IPT -F "$2" 2>/dev/null && $IPT -X "$2" || true
    done
    echo "removed $chain"
done
echo labdeck-netguard-ok
"""
    )


def run_netguard(
    client: docker.DockerClient,
    instance: str,
    script: str,
    *,
    image: str = GUARD_IMAGE,
    extra_labels: Mapping[str, str] | None = None,
) -> str:
    """Run ``script`` in a short-lived container in the host's network namespace; its output."""
    api = client.api
    try:
        container = api.create_container(
            image,
            name=naming.netguard_name(instance),
            entrypoint=["/bin/sh", "-c", script],
            # The host's /run: legacy iptables must share the host's xtables lock with dockerd.
            environment={"XTABLES_LOCKFILE": "/host-run/xtables.lock"},
            labels=naming.labels_for(instance, Role.NETGUARD, extra=extra_labels),
            host_config=api.create_host_config(
                network_mode="host",
                # On the dedicated engine (user namespaces remapped) a host-network container
                # must be in the host's user namespace too: its iptables act on the host's.
                userns_mode="host",
                cap_add=["NET_ADMIN", "NET_RAW"],
                binds={"/run": {"bind": "/host-run", "mode": "rw"}},
            ),
        )
    except ImageNotFound as error:
        raise FirewallError(
            f"The firewall helper needs the image {image}. Build it with `labdeck images build`."
        ) from error
    try:
        api.start(container)
        status = api.wait(container, timeout=_GUARD_TIMEOUT_SECONDS).get("StatusCode")
        output = api.logs(container).decode("utf-8", errors="replace")
    except DockerException as error:
        raise FirewallError(f"The firewall helper did not run: {error}") from error
    finally:
        _remove_quietly(api, container["Id"])
    if status != 0 or "labdeck-netguard-ok" not in output:
        raise FirewallError(
            "Could not apply LabDeck's firewall rules, so sandboxes would reach the host's "
            f"services: {output.strip() or 'no output'} (exit {status}). The engine must manage "
            "iptables and let containers have NET_ADMIN; `labdeck doctor` checks both."
        )
    return output


def _remove_quietly(api: docker.APIClient, container: str) -> None:
    try:
        api.remove_container(container, force=True, v=True)
    except APIError as error:
        if error.status_code not in (404, 409):
            raise


def _describe(
    attrs: Mapping[str, Any], egress: Egress, registry_port: int, registry_address: str | None
) -> NetworkInfo:
    config = _ipam_config(attrs)
    return NetworkInfo(
        name=str(attrs["Name"]),
        bridge=str((attrs.get("Options") or {}).get(BRIDGE_OPTION, "")),
        subnet=str(config.get("Subnet", "")),
        gateway=str(config.get("Gateway", "")),
        egress=egress,
        registry_port=registry_port,
        registry_address=registry_address or "",
    )


def _ipam_config(attrs: Mapping[str, Any]) -> dict[str, Any]:
    return dict(((attrs.get("IPAM") or {}).get("Config") or [{}])[0])


def _inspect_network(client: docker.DockerClient, name: str) -> dict[str, Any] | None:
    try:
        attrs: dict[str, Any] = client.api.inspect_network(name)
    except NotFound:
        return None
    return attrs


def _is_as_wanted(attrs: Mapping[str, Any], instance: str, subnet: str | None) -> bool:
    options = attrs.get("Options") or {}
    return (
        options.get(ICC_OPTION) == "false"
        and options.get(BRIDGE_OPTION) == naming.bridge_name(instance)
        and naming.belongs_to(attrs.get("Labels"), instance, Role.NETWORK)
        and (subnet is None or _ipam_config(attrs).get("Subnet") == subnet)
    )


def _create_network(
    client: docker.DockerClient,
    instance: str,
    extra_labels: Mapping[str, str] | None,
    subnet: str | None,
) -> dict[str, Any]:
    name = naming.network_name(instance)
    pools = [IPAMPool(subnet=subnet)] if subnet else []
    client.api.create_network(
        name,
        driver="bridge",
        options={ICC_OPTION: "false", BRIDGE_OPTION: naming.bridge_name(instance)},
        ipam=IPAMConfig(pool_configs=pools) if pools else None,
        labels=naming.labels_for(instance, Role.NETWORK, extra=extra_labels),
    )
    attrs = _inspect_network(client, name)
    if attrs is None:
        raise FirewallError(f"Docker created network {name} but cannot find it.")
    return attrs


def ensure_network(
    client: docker.DockerClient,
    instance: str,
    *,
    registry_port: int = DEFAULT_REGISTRY_PORT,
    egress: Egress = "allow",
    guard_image: str = GUARD_IMAGE,
    extra_labels: Mapping[str, str] | None = None,
    registry_address: str | None = None,
    subnet: str | None = None,
) -> NetworkInfo:
    """Create the instance's sandbox network if needed (in ``subnet`` when given) and make its
    firewall rules current; they let sandboxes reach the registry on ``registry_address`` (when
    it runs beside the portal) or else on the gateway.

    Idempotent. Raises ``FirewallError`` when the rules cannot be applied, and when a network of
    that name exists with other settings and sandboxes attached (it cannot be replaced then)."""
    name = naming.network_name(instance)
    attrs = _inspect_network(client, name)
    if attrs is not None and not _is_as_wanted(attrs, instance, subnet):
        if attrs.get("Containers"):
            raise FirewallError(
                f"Network {name} exists without LabDeck's isolation settings and has containers "
                "attached. Remove them (`labdeck sandboxes prune`), then start again."
            )
        log.warning("Replacing network %s: it lacks LabDeck's isolation settings.", name)
        client.api.remove_network(name)
        attrs = None
    if attrs is None:
        attrs = _create_network(client, instance, extra_labels, subnet)
    info = _describe(attrs, egress, registry_port, registry_address)
    run_netguard(
        client,
        instance,
        install_script(instance, info),
        image=guard_image,
        extra_labels=extra_labels,
    )
    return info


def guard_sandbox_network(
    client: docker.DockerClient,
    settings: Settings,
    extra_labels: Mapping[str, str] | None = None,
) -> NetworkInfo:
    """``ensure_network`` for the instance, as the settings want it (the portal at its start,
    compose.yaml's engine at its own)."""
    return ensure_network(
        client,
        settings.instance,
        registry_port=settings.registry_port,
        egress=settings.sandbox_egress,
        guard_image=settings.sandbox_image,
        extra_labels=extra_labels,
        registry_address=str(settings.registry_address) if settings.registry_address else None,
        subnet=str(settings.sandbox_subnet) if settings.sandbox_subnet else None,
    )


def teardown_network(
    client: docker.DockerClient,
    instance: str,
    *,
    guard_image: str = GUARD_IMAGE,
    extra_labels: Mapping[str, str] | None = None,
) -> None:
    """Remove the instance's firewall rules and its network. Idempotent; refuses (with
    ``FirewallError``) while sandboxes are still attached, so none is left unguarded."""
    name = naming.network_name(instance)
    attrs = _inspect_network(client, name)
    if attrs is not None and attrs.get("Containers"):
        attached = ", ".join(c.get("Name", "?") for c in attrs["Containers"].values())
        raise FirewallError(f"Network {name} still has containers attached: {attached}.")
    bridge = naming.bridge_name(instance)
    run_netguard(
        client, instance, remove_script(bridge), image=guard_image, extra_labels=extra_labels
    )
    if attrs is not None:
        try:
            client.api.remove_network(name)
        except APIError as error:
            if error.status_code != 404:
                raise FirewallError(
                    f"Could not remove network {name}: {error.explanation}"
                ) from error


def firewall_rules(
    client: docker.DockerClient,
    instance: str,
    *,
    guard_image: str = GUARD_IMAGE,
    extra_labels: Mapping[str, str] | None = None,
) -> list[str]:
    """The instance's rules as ``iptables -S`` prints them (for doctor and tests)."""
    bridge = naming.bridge_name(instance)
    script = (
        "set -eu\n"
        + _PICK_IPTABLES
        + f"$IPT -S | grep -F -e {bridge} -e {bridge.replace('ld-', 'LD-', 1)} || true\n"
        + "echo labdeck-netguard-ok\n"
    )
    output = run_netguard(client, instance, script, image=guard_image, extra_labels=extra_labels)
    return [line for line in output.splitlines() if line.startswith(("-A ", "-N "))]


def sweep_orphan_rules(
    client: docker.DockerClient,
    *,
    guard_image: str = GUARD_IMAGE,
    extra_labels: Mapping[str, str] | None = None,
) -> list[str]:
    """Remove LabDeck chains whose bridge is gone (a network removed behind our back)."""
    output = run_netguard(
        client, "labdeck", orphan_sweep_script(), image=guard_image, extra_labels=extra_labels
    )
    return [line.split()[-1] for line in output.splitlines() if line.startswith("removed ")]
