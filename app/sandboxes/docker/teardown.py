"""`labdeck teardown`: everything one instance made, removed from the engines and the host.

What an instance makes carries ``io.labdeck.instance`` (containers: sandboxes, the registry
and its seeder, firewall helpers; volumes; the sandbox network), on the engine sandboxes run
on and, for instances from before the dedicated engine, the host's. Its firewall rules live in
the host's iptables, each with a comment ``labdeck:<instance>`` (jumps) or
``labdeck:<instance>:<hash>`` (chain rules, ``network.py``); they go last, once no sandbox of
the instance is left to guard. Rules are looked for in both iptables flavours (nft and legacy):
an engine that once used the other leaves its rules there.

An instance is *stale* when rules carry its tag but no engine that answers has its network:
what a removed network (or an old portal's crash) left behind.

These functions block; removing what is already gone counts as done.
"""

from __future__ import annotations

import contextlib
import re
import shlex
from collections.abc import Iterator, Mapping

import docker
from docker.errors import APIError, ImageNotFound, NotFound

from app.sandboxes import naming
from app.sandboxes.base import SandboxError
from app.sandboxes.docker import network
from app.sandboxes.docker.engine import (
    EngineUnavailable,
    docker_client,
    engine_address,
    host_address,
)

_EACH_FLAVOUR = 'for IPT in "iptables-nft -w" "iptables-legacy -w"; do\n'
_TAG = re.compile(r"^labdeck:([a-z0-9][a-z0-9-]*)$")


def tag_pattern(instance: str) -> str:
    """An ERE matching the comment of every rule ``instance`` installed, as ``iptables -S``
    prints it (quoted or not)."""
    return f'--comment "?labdeck:{instance}(:[0-9a-f]+)?"?( |$)'


def remove_rules_script(instance: str) -> str:
    """Shell for the helper: delete every rule tagged with ``instance`` and every jump to its
    chains, then the chains; prints ``removed N``."""
    chain_in, chain_fwd = network.chain_names(naming.bridge_name(instance))
    return f"""set -eu
PATTERN={shlex.quote(tag_pattern(instance))}
count=0
{_EACH_FLAVOUR}    $IPT -S >/dev/null 2>&1 || continue
    $IPT -S | grep '^-A ' | grep -E -e "$PATTERN" -e ' -j {chain_in}( |$)' -e ' -j {chain_fwd}( |$)' \\
        | sed 's/^-A /-D /' > /tmp/rules || true
    while read -r rule; do eval "$IPT $rule"; count=$((count + 1)); done < /tmp/rules
    for chain in {chain_in} {chain_fwd}; do
        $IPT -F "$chain" 2>/dev/null && $IPT -X "$chain" 2>/dev/null || true
    done
done
echo "removed $count"
echo labdeck-netguard-ok
"""


def list_tags_script() -> str:
    """Shell for the helper: every ``labdeck:<instance>`` tag in either flavour, one a line."""
    return f"""set -eu
{_EACH_FLAVOUR}    $IPT -S 2>/dev/null | grep -o -E 'labdeck:[a-z0-9][a-z0-9-]*' || true
done
echo labdeck-netguard-ok
"""


def _engines() -> Iterator[tuple[str, docker.DockerClient]]:
    """Each engine that answers: where sandboxes run first, then the host's."""
    for address in dict.fromkeys([engine_address(), host_address()]):
        try:
            client = docker_client(timeout=30, address=address)
        except EngineUnavailable:
            continue
        try:
            yield address, client
        finally:
            client.close()


def _owned(instance: str) -> dict[str, list[str]]:
    return {"label": [f"{naming.LABEL_INSTANCE}={instance}"]}


def objects_of(client: docker.DockerClient, instance: str) -> list[tuple[str, str]]:
    """``(kind, name)`` of every container, network and volume labelled with ``instance``."""
    api, owned = client.api, _owned(instance)
    found = [
        ("container", c["Names"][0].lstrip("/")) for c in api.containers(all=True, filters=owned)
    ]
    found += [("network", n["Name"]) for n in api.networks(filters=owned)]
    found += [("volume", v["Name"]) for v in api.volumes(filters=owned).get("Volumes") or []]
    return found


def _remove(client: docker.DockerClient, kind: str, name: str) -> None:
    api = client.api
    try:
        if kind == "container":
            api.remove_container(name, force=True, v=True)
        elif kind == "network":
            api.remove_network(name)
        else:
            api.remove_volume(name, force=True)
    except NotFound:
        return
    except APIError as error:
        if error.status_code != 409:
            raise SandboxError(
                f"Docker refused to remove {kind} {name}: {error.explanation}"
            ) from error


def _run_guard(
    script: str, guard_image: str, extra_labels: Mapping[str, str] | None, owner: str = "labdeck"
) -> str:
    """Run a firewall script on the first engine that has the helper's image; the helper is
    labelled as ``owner``'s."""
    problem = "no Docker engine answers, so the firewall rules could not be reached"
    for _address, client in _engines():
        try:
            client.api.inspect_image(guard_image)
        except ImageNotFound:
            problem = (
                f"the firewall helper's image {guard_image} is missing (`labdeck images build`)"
            )
            continue
        try:
            return network.run_netguard(
                client, owner, script, image=guard_image, extra_labels=extra_labels
            )
        except network.FirewallError as error:
            raise SandboxError(str(error)) from error
    raise SandboxError(f"Could not remove the firewall rules: {problem}.")


def count_rules(
    instance: str, guard_image: str, extra_labels: Mapping[str, str] | None = None
) -> int:
    """How many host firewall rules carry ``instance``'s tag, in both flavours."""
    output = _run_guard(list_tags_script(), guard_image, extra_labels, owner=instance)
    return sum(
        1 for line in output.splitlines() if (tag := _TAG.match(line)) and tag[1] == instance
    )


def plan(
    instance: str, guard_image: str, extra_labels: Mapping[str, str] | None = None
) -> list[str]:
    """What ``teardown`` would remove, one line each (nothing is changed)."""
    lines = [
        f"{kind} {name} on {address}"
        for address, client in _engines()
        for kind, name in objects_of(client, instance)
    ]
    with contextlib.suppress(SandboxError):
        rules = count_rules(instance, guard_image, extra_labels)
        if rules:
            lines.append(f"{rules} firewall rules tagged labdeck:{instance}")
    return lines


def teardown(
    instance: str, guard_image: str, extra_labels: Mapping[str, str] | None = None
) -> list[str]:
    """Remove ``instance``'s containers, then its networks and volumes, on every engine that
    answers, then its firewall rules. Idempotent; what was removed, one line each."""
    removed = []
    for address, client in _engines():
        found = objects_of(client, instance)
        order = {"container": 0, "network": 1, "volume": 2}
        for kind, name in sorted(found, key=lambda item: order[item[0]]):
            _remove(client, kind, name)
            removed.append(f"{kind} {name} on {address}")
    removed += remove_rules(instance, guard_image, extra_labels)
    return removed


def remove_rules(
    instance: str, guard_image: str, extra_labels: Mapping[str, str] | None = None
) -> list[str]:
    output = _run_guard(remove_rules_script(instance), guard_image, extra_labels, owner=instance)
    count = next(
        (int(line.split()[1]) for line in output.splitlines() if line.startswith("removed ")), 0
    )
    return [f"{count} firewall rules of {instance}"] if count else []


def stale_instances(guard_image: str, extra_labels: Mapping[str, str] | None = None) -> list[str]:
    """Instances whose tag is on firewall rules while no engine that answers has their network."""
    output = _run_guard(list_tags_script(), guard_image, extra_labels)
    tagged = {match[1] for line in output.splitlines() if (match := _TAG.match(line))}
    live = set()
    for _address, client in _engines():
        for attrs in client.api.networks(filters={"label": [naming.LABEL_INSTANCE]}):
            live.add((attrs.get("Labels") or {}).get(naming.LABEL_INSTANCE))
    return sorted(tagged - live)


def teardown_stale(guard_image: str, extra_labels: Mapping[str, str] | None = None) -> list[str]:
    """Remove the rules of every stale instance, and chains whose bridge is gone."""
    removed = []
    for instance in stale_instances(guard_image, extra_labels):
        removed += remove_rules(instance, guard_image, extra_labels)
    output = _run_guard(network.orphan_sweep_script(), guard_image, extra_labels)
    chains = [line.split()[-1] for line in output.splitlines() if line.startswith("removed ")]
    return removed + [f"chains {chain}-IN/-FWD of a bridge that is gone" for chain in chains]
