"""What the engine says about a sandbox container, in LabDeck's terms: state, info, stats."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from app.sandboxes import naming
from app.sandboxes.base import SandboxInfo, SandboxState, SandboxStats


def state_of(container_state: str, oom_killed: bool = False) -> tuple[SandboxState, str]:
    if container_state == "running":
        return SandboxState.READY, ""
    if container_state == "restarting":
        return SandboxState.STARTING, ""
    if container_state in ("exited", "paused"):
        if oom_killed:
            return SandboxState.FAILED, "it ran out of memory"
        return SandboxState.STOPPED, ""
    if container_state == "created":
        return SandboxState.FAILED, "it was created but never started"
    if container_state == "removing":
        return SandboxState.MISSING, ""
    return SandboxState.FAILED, f"its container is {container_state}"


def info_of(name: str, state: SandboxState, labels: Mapping[str, str], message: str) -> SandboxInfo:
    return SandboxInfo(
        name=name,
        state=state,
        workshop=labels.get(naming.LABEL_WORKSHOP, ""),
        attendee=labels.get(naming.LABEL_ATTENDEE, ""),
        created_at=naming.parse_created(labels.get(naming.LABEL_CREATED)),
        labels=dict(labels),
        message=message,
    )


def stats_from_docker(name: str, raw: Mapping[str, Any]) -> SandboxStats:
    """The engine's one-shot stats as LabDeck's numbers (cache excluded, like `docker stats`)."""
    memory = raw.get("memory_stats") or {}
    details = memory.get("stats") or {}
    cache = details.get("total_inactive_file", details.get("inactive_file", 0))
    cpu, previous = raw.get("cpu_stats") or {}, raw.get("precpu_stats") or {}
    cpu_delta = (cpu.get("cpu_usage") or {}).get("total_usage", 0) - (
        previous.get("cpu_usage") or {}
    ).get("total_usage", 0)
    system_delta = cpu.get("system_cpu_usage", 0) - previous.get("system_cpu_usage", 0)
    cpus = cpu.get("online_cpus") or len((cpu.get("cpu_usage") or {}).get("percpu_usage") or [1])
    percent = cpu_delta / system_delta * cpus * 100 if system_delta > 0 and cpu_delta > 0 else 0.0
    return SandboxStats(
        name=name,
        memory_bytes=max(int(memory.get("usage", 0)) - int(cache), 0),
        memory_limit_bytes=int(memory.get("limit", 0)),
        cpu_percent=round(percent, 2),
        pids=int((raw.get("pids_stats") or {}).get("current", 0)),
    )


# Reads the sandbox's own cgroup (v1 first: hybrid hosts also mount an empty v2), sampling
# CPU time twice, half a second apart.
CGROUP_STATS = r"""
cg=/sys/fs/cgroup
if [ -r $cg/memory/memory.usage_in_bytes ]; then
    memory=$(cat $cg/memory/memory.usage_in_bytes); limit=$(cat $cg/memory/memory.limit_in_bytes)
    inactive=$(awk '$1 == "total_inactive_file" {print $2}' $cg/memory/memory.stat)
    pids=$(cat $cg/pids/pids.current)
    cpu_ns() { cat $cg/cpuacct/cpuacct.usage; }
else
    memory=$(cat $cg/memory.current); limit=$(cat $cg/memory.max)
    inactive=$(awk '$1 == "inactive_file" {print $2}' $cg/memory.stat)
    pids=$(cat $cg/pids.current)
    cpu_ns() { awk '$1 == "usage_usec" {print $2 * 1000}' $cg/cpu.stat; }
fi
cpu_before=$(cpu_ns); started=$(date +%s%N)
sleep 0.5
cpu_after=$(cpu_ns); ended=$(date +%s%N)
echo "memory=$memory limit=$limit inactive=${inactive:-0} pids=$pids"
echo "cpu_ns=$((cpu_after - cpu_before)) wall_ns=$((ended - started))"
"""


def stats_from_cgroup(name: str, output: str) -> SandboxStats:
    """``CGROUP_STATS``'s output as LabDeck's numbers."""
    values: dict[str, int] = {}
    for pair in output.split():
        key, _, value = pair.partition("=")
        values[key] = int(value) if value.isdigit() else 0  # cgroup v2 writes "max"
    wall = values.get("wall_ns", 0)
    return SandboxStats(
        name=name,
        memory_bytes=max(values.get("memory", 0) - values.get("inactive", 0), 0),
        memory_limit_bytes=values.get("limit", 0),
        cpu_percent=round(values.get("cpu_ns", 0) / wall * 100, 2) if wall else 0.0,
        pids=values.get("pids", 0),
    )
