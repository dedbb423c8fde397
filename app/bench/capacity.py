"""`labdeck bench capacity`: what one sandbox costs the machine, and the machine a class needs.

Real sandboxes on the engine the portal uses (LabDeck's dedicated one, as root), one sample per
sandbox for each figure, medians reported (``--sandboxes`` samples):

  floor     in the same run: the machine's busy CPU before anything starts; a bare container
            of the sandbox image that starts no engine (``sleep``); a raw docker-py
            create + start + wait for the inner engine (``spawn``'s ``raw_run``), no portal;
  creation  through the portal's service (queue, rows, ready probe), one at a time;
  idle      a ready sandbox nobody uses (what a warm-pool one costs): memory from its cgroup
            (usage minus page cache), its containerd shim's outside it, CPU over a window;
  build     the workshop's heaviest step, a multi-stage `docker build` from debian:bookworm-slim
            to busybox (pulling the base through the workshop registry), one sandbox at a time:
            peak memory sampled every 0.2 s, CPU-seconds;
  running   the end of the workshop: four containers running inside (a loop printing every 5 s,
            a web server with a health check every 5 s, a registry, a capped `sleep`);
  checks    the Check button (a three-check task, ``app.bench.checks``), clicked ``--clicks``
            times per sandbox; next to it the same three commands as plain execs (no agent);
  disk      each sandbox's writable layer plus its inner engine's volume, fresh and after the
            workload; what every sandbox shares (the sandbox image, the registry's data) once;
  base      what does not grow with the class: the engine's daemons, the workshop registry.

CPU is counted two ways (``Meter``): attributed (the step's containers' cgroups and shims, the
engine's dockerd and containerd, and this process, which runs the portal's services), and the
whole machine's (/proc/stat) minus its busy rate measured just before, which moves with
whatever else shares the VM. Memory and CPU of a container are read from the cgroup of its init
process (cgroup v1 here; v2 is read too but untested), so this runs as root on the engine's
host, as a portal under the userns profile does. ``sizing`` applies the formula of
docs/hosting.md (``size_machine``) to the medians (``inputs``).
"""

from __future__ import annotations

import asyncio
import math
import os
import shlex
import statistics
import sys
import tempfile
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Annotated, Any

import typer

from app.bench.checks import (
    PREPARE,
    THREE_CHECKS,
    bench_settings,
    busy_cpu_seconds,
    three_check_task,
)
from app.bench.cli import emit, summarize
from app.bench.dashboard import cpu_calibration_ms
from app.bench.spawn import raw_run
from app.config import Settings
from app.sandboxes.base import SandboxSpec
from app.sandboxes.docker.backend import DockerBackend
from app.sandboxes.docker.cgroups import cgroup_mounts
from app.sandboxes.docker.engine import engine_address
from app.sandboxes.lab import Lab, throwaway_lab
from app.sandboxes.naming import LABEL_INSTANCE, registry_name, registry_volume_name, sandbox_name

BENCH_LABELS = {"io.labdeck.bench": "1"}
SAMPLE_EVERY_SECONDS = 0.2
GIB = 1024**3
GB = 1000**3

# The workshop's heaviest step (content/docker-basics, "multi-stage-build"), in a folder of its
# own, with a step that reads the whole base image (`find`) as real builds' steps read files;
# the base image is pulled through the workshop registry the first time, as in class.
BUILD = r"""
set -e
mkdir -p ~/capacity && cd ~/capacity
printf '#!/bin/sh\necho "hello from Debian @V@"\n' > greet.sh
cat > Dockerfile <<'EOF'
FROM debian:bookworm-slim AS build
WORKDIR /src
COPY greet.sh .
RUN mkdir -p /out \
 && sed "s/@V@/$(cat /etc/debian_version)/" greet.sh > /out/greet \
 && chmod 0755 /out/greet \
 && find / -xdev -type f 2>/dev/null | wc -l > /out/files
FROM busybox
COPY --from=build /out/ /usr/local/bin/
USER 10001:10001
ENTRYPOINT ["/usr/local/bin/greet"]
EOF
docker build -q -t capacity-build . >/dev/null
docker run --rm capacity-build
"""
# What the workshop leaves running at its end (its tasks detached-service, memory-limit,
# healthcheck and push-to-registry). No `exit`: `bash -l` would run ~/.bash_logout, whose
# clear_console fails without a terminal and changes the status.
RUN = r"""
set -e
docker run -d --name ticker --restart unless-stopped busybox \
    sh -c 'while true; do echo still alive; sleep 5; done' >/dev/null
docker run -d --name capped --memory 64m busybox sleep 3600 >/dev/null
docker run -d --name web -p 8080:8080 --health-interval 5s \
    --health-cmd 'wget -q -O /dev/null http://127.0.0.1:8080/hostname || exit 1' \
    busybox httpd -f -p 8080 -h /etc >/dev/null
docker run -d --name registry -p 5000:5000 registry:2 >/dev/null
for i in $(seq 100); do curl -fs localhost:5000/v2/ >/dev/null && break; sleep 0.2; done
curl -fs localhost:5000/v2/ >/dev/null
"""

# The formula of docs/hosting.md, and the choices in it.
HEADROOM = 1.5  # on everything measured: the VM's speed varies up to 2x, classes differ
POOL_LEFT = 5  # warm sandboxes kept once the class has joined (set on the dashboard)
BASE_MEMORY_GIB = 2.0  # the OS, the portal, both Docker engines, the workshop registry
BASE_CORES = 1.0  # the same, and the terminals' traffic
BASE_DISK_GB = 20.0  # the OS, Docker itself, logs, backups
STEP_SECONDS = 60.0  # the whole class runs the heaviest step within the same minute
CLICK_SECONDS = 10.0  # and clicks Check within the same 10 s
SPAWN_WORKERS = 4  # LABDECK_SPAWN_WORKERS's default
CLASS_SIZES = (20, 50, 100)


@dataclass(frozen=True)
class Cgroup:
    """The cgroup files of one container, found from its init process."""

    memory: Path
    cpu: Path
    v2: bool

    @classmethod
    def of(cls, pid: int) -> Cgroup:
        mounts = cgroup_mounts(Path("/proc/self/mounts").read_text())
        found: dict[str, Path] = {}
        unified: Path | None = None
        for line in Path(f"/proc/{pid}/cgroup").read_text().splitlines():
            _hierarchy, controllers, path = line.split(":", 2)
            wanted = set(controllers.split(",")) if controllers else set()
            for mount_point, options in mounts:
                if not wanted and not options:
                    unified = Path(mount_point + path.rstrip("/"))
                for controller in wanted & {"memory", "cpuacct"}:
                    if controller in options:
                        found[controller] = Path(mount_point + path.rstrip("/"))
        if "memory" in found and "cpuacct" in found:
            return cls(found["memory"], found["cpuacct"], v2=False)
        if unified is not None:
            return cls(unified, unified, v2=True)
        raise RuntimeError(f"no memory and cpu cgroup found for process {pid}")


def _stat(path: Path) -> dict[str, int]:
    values = {}
    for line in path.read_text().splitlines():
        key, _, value = line.partition(" ")
        if value.strip().isdigit():
            values[key] = int(value)
    return values


def memory_of(cgroup: Cgroup) -> tuple[int, int]:
    """(memory without page cache, page cache) of the cgroup and everything under it, bytes."""
    if cgroup.v2:
        usage = int((cgroup.memory / "memory.current").read_text())
        cache = _stat(cgroup.memory / "memory.stat").get("file", 0)
    else:
        usage = int((cgroup.memory / "memory.usage_in_bytes").read_text())
        cache = _stat(cgroup.memory / "memory.stat").get("total_cache", 0)
    return max(usage - cache, 0), cache


def cpu_seconds_of(cgroup: Cgroup) -> float:
    """CPU time the cgroup and everything under it used since it was made."""
    if cgroup.v2:
        return _stat(cgroup.cpu / "cpu.stat").get("usage_usec", 0) / 1e6
    return int((cgroup.cpu / "cpuacct.usage").read_text()) / 1e9


def resident_memory(pids: list[int]) -> int:
    """VmRSS of these processes together, bytes."""
    total = 0
    for pid in pids:
        try:
            for line in Path(f"/proc/{pid}/status").read_text().splitlines():
                if line.startswith("VmRSS:"):
                    total += int(line.split()[1]) * 1024
        except OSError:
            continue
    return total


def memory_total() -> int:
    return int(Path("/proc/meminfo").read_text().split()[1]) * 1024


def process_cpu_seconds(pid: int) -> float:
    """utime + stime of a process and of its children it has waited for (a shim's runc
    calls, a dockerd's helpers); 0 when it is gone."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except OSError:
        return 0.0
    return sum(int(value) for value in fields[11:15]) / os.sysconf("SC_CLK_TCK")


def _argv(pid: str) -> list[bytes]:
    try:
        return Path(f"/proc/{pid}/cmdline").read_bytes().split(b"\0")
    except OSError:
        return []


def engine_pids(address: str) -> list[int]:
    """The dockerd serving ``address`` and the processes it started (its containerd)."""
    socket = address.removeprefix("unix://").encode()
    daemons = []
    parents: dict[int, int] = {}
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        argv = _argv(entry.name)
        if argv and argv[0].endswith(b"dockerd"):
            hosts = [a for a in argv if a.startswith(b"--host=") or a.startswith(b"-H")]
            if any(socket in a for a in hosts) or (not hosts and socket.endswith(b"docker.sock")):
                daemons.append(int(entry.name))
        try:
            stat = (entry / "stat").read_text().rsplit(")", 1)[1].split()
            parents[int(entry.name)] = int(stat[1])
        except OSError:
            continue
    return daemons + [pid for pid, parent in parents.items() if parent in daemons]


def shim_pids() -> dict[str, int]:
    """Container id -> pid of the containerd shim holding it."""
    found = {}
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            argv = _argv(entry.name)
            if argv and argv[0].endswith(b"containerd-shim-runc-v2") and b"-id" in argv:
                found[argv[argv.index(b"-id") + 1].decode()] = int(entry.name)
    return found


def shim_memory(container_id: str) -> int:
    """Proportional memory (PSS) of the containerd shim that holds the container: what it
    costs outside its cgroup. 0 when none is found."""
    pid = shim_pids().get(container_id)
    try:
        for line in Path(f"/proc/{pid}/smaps_rollup").read_text().splitlines():
            if line.startswith("Pss:"):
                return int(line.split()[1]) * 1024
    except OSError:
        pass
    return 0


class Probe:
    """A container of the run: its id and cgroup."""

    def __init__(self, backend: DockerBackend, name: str) -> None:
        attrs = backend.api.inspect_container(name)
        self.name = name
        self.id = str(attrs["Id"])
        self.cgroup = Cgroup.of(int(attrs["State"]["Pid"]))

    def memory(self) -> tuple[int, int]:
        return memory_of(self.cgroup)

    def cpu(self) -> float:
        return cpu_seconds_of(self.cgroup)


@dataclass(frozen=True)
class Snapshot:
    at: float
    machine: float  # busy CPU-seconds of the whole machine (/proc/stat)
    own: float  # this process: the portal's services (queue, rows, checks) and the bench
    engine: float  # the engine's dockerd and containerd
    cgroups: dict[str, float]  # per container id: its cgroup's CPU
    shims: dict[str, float]  # per container id: its shim's, with the runc calls it reaped


@dataclass(frozen=True)
class Cost:
    seconds: float
    machine_cpu: float  # the machine's busy CPU-seconds, the rate measured before subtracted
    cpu: float  # attributed: the sum of ``parts``
    parts: dict[str, float]  # cgroups, shims, engine, portal (this process)


class Meter:
    """CPU-seconds a step costs. Two ways: the whole machine's (minus its busy rate just before,
    as the machine is shared), and attributed: what the step's containers (cgroup and shim), the
    engine's daemons and the portal's services (this process) used. Kernel work charged to no
    process (part of the networking) is only in the first."""

    def __init__(self, engine: list[int], background_cores: float) -> None:
        self.engine = engine
        self.background_cores = background_cores

    def snapshot(self, probes: list[Probe]) -> Snapshot:
        shims = shim_pids()
        return Snapshot(
            at=time.perf_counter(),
            machine=busy_cpu_seconds(),
            own=time.process_time(),
            engine=sum(process_cpu_seconds(pid) for pid in self.engine),
            cgroups={probe.id: probe.cpu() for probe in probes},
            shims={probe.id: process_cpu_seconds(shims.get(probe.id, -1)) for probe in probes},
        )

    def cost(self, before: Snapshot, after: Snapshot) -> Cost:
        seconds = after.at - before.at
        machine = after.machine - before.machine - self.background_cores * seconds
        parts = {
            "cgroups": _grown(before.cgroups, after.cgroups),
            "shims": _grown(before.shims, after.shims),
            "engine": after.engine - before.engine,
            "portal": after.own - before.own,
        }
        return Cost(seconds, max(machine, 0.0), sum(parts.values()), parts)

    async def measure(
        self, work: Awaitable[Any], probes: Callable[[], list[Probe]]
    ) -> tuple[Cost, Any]:
        """Run ``work``; ``probes`` says which containers it concerns (asked before and after,
        so a container it makes counts whole)."""
        before = await asyncio.to_thread(self.snapshot, probes())
        result = await work
        after = await asyncio.to_thread(self.snapshot, probes())
        return self.cost(before, after), result


def _grown(before: dict[str, float], after: dict[str, float]) -> float:
    """How much the values grew; a key new in ``after`` (a container made meanwhile) counts
    whole."""
    return sum(value - before.get(key, 0.0) for key, value in after.items())


def these(*probes: Probe) -> Callable[[], list[Probe]]:
    return lambda: list(probes)


async def machine_busy_cores(seconds: float) -> float:
    """The whole machine's busy cores over ``seconds``."""
    before, started = busy_cpu_seconds(), time.perf_counter()
    await asyncio.sleep(seconds)
    return (busy_cpu_seconds() - before) / (time.perf_counter() - started)


async def cores_of(probes: list[Probe], seconds: float) -> tuple[list[float], float]:
    """Each container's busy cores (its cgroup) over the same ``seconds``, and the machine's."""
    before = [probe.cpu() for probe in probes]
    machine = busy_cpu_seconds()
    started = time.perf_counter()
    await asyncio.sleep(seconds)
    elapsed = time.perf_counter() - started
    cores = [(probe.cpu() - b) / elapsed for probe, b in zip(probes, before, strict=True)]
    return cores, (busy_cpu_seconds() - machine) / elapsed


def disk_of(backend: DockerBackend, names: list[str]) -> dict[str, int]:
    """Bytes each sandbox holds on the engine's disk: its writable layer and its inner engine's
    volume (``<name>-docker``), from the engine's own accounting (`docker system df -v`)."""
    df = backend.api.df()
    layers = {
        str(c.get("Names", ["/"])[0]).lstrip("/"): int(c.get("SizeRw") or 0)
        for c in df.get("Containers") or []
    }
    volumes = {
        str(v["Name"]): int((v.get("UsageData") or {}).get("Size") or 0)
        for v in df.get("Volumes") or []
    }
    return {name: layers.get(name, 0) + volumes.get(f"{name}-docker", 0) for name in names}


def shared_disk(backend: DockerBackend, image: str, instance: str) -> dict[str, int]:
    """What every sandbox shares, once: the sandbox image, the workshop registry's data."""
    df = backend.api.df()
    registry = registry_volume_name(instance)
    registry_bytes = sum(
        int((v.get("UsageData") or {}).get("Size") or 0)
        for v in df.get("Volumes") or []
        if v["Name"] == registry
    )
    return {
        "sandbox_image_bytes": int(backend.api.inspect_image(image)["Size"]),
        "registry_bytes": registry_bytes,
    }


async def bare_container(
    backend: DockerBackend, lab: Lab, meter: Meter, labels: dict[str, str], number: int
) -> tuple[Cost, int]:
    """A container of the sandbox image that starts nothing (``sleep``): the floor under a
    sandbox's creation CPU and idle memory."""
    config = lab.sandboxes.config
    api = backend.api
    name = f"{config.instance}-bare-{number}"
    made: list[Probe] = []

    def run() -> None:
        api.create_container(
            config.image,
            name=name,
            entrypoint=["sleep", "infinity"],
            labels={LABEL_INSTANCE: config.instance, **labels},
            host_config=api.create_host_config(network_mode="none"),
        )
        api.start(name)
        made.append(Probe(backend, name))

    try:
        cost, _ = await meter.measure(asyncio.to_thread(run), lambda: made)
        await asyncio.sleep(2)
        memory, _cache = made[0].memory()
    finally:
        await asyncio.to_thread(api.remove_container, name, force=True, v=True)
    return cost, memory


async def raw_creation(backend: DockerBackend, lab: Lab, meter: Meter) -> Cost:
    """``spawn``'s raw way: docker-py create and start, then wait inside for the engine."""
    config = lab.sandboxes.config
    spec = SandboxSpec(
        sandbox_name(config.instance),
        config.workshop,
        config.image,
        config.limits,
        labels=dict(config.labels),
    )
    made: list[Probe] = []

    def run() -> None:
        raw_run(backend, spec)
        made.append(Probe(backend, spec.name))

    try:
        cost, _ = await meter.measure(asyncio.to_thread(run), lambda: made)
        return cost
    finally:
        await backend.remove(spec.name)


@dataclass
class Made:
    attendee: int
    cost: Cost
    probe: Probe


async def portal_creation(lab: Lab, backend: DockerBackend, meter: Meter, number: int) -> Made:
    """Through the portal's service, as a join with no warm sandbox: queue, rows, ready probe."""
    attendee = lab.add_attendee(f"capacity-{number}")
    made: list[Probe] = []

    async def make() -> None:
        await lab.sandboxes.ensure_for(attendee)
        name = await lab.sandboxes.ready_sandbox(attendee, timeout=300)
        made.append(await asyncio.to_thread(Probe, backend, name))

    cost, _ = await meter.measure(make(), lambda: made)
    return Made(attendee, cost, made[0])


async def peak_memory_while(probe: Probe, work: Awaitable[Any]) -> tuple[int, int, Any]:
    """Run ``work``, sampling the sandbox's memory; (peak without cache, peak with, result)."""
    peak, peak_total = 0, 0
    done = asyncio.Event()

    async def sample() -> None:
        nonlocal peak, peak_total
        while not done.is_set():
            memory, cache = probe.memory()
            peak, peak_total = max(peak, memory), max(peak_total, memory + cache)
            await asyncio.sleep(SAMPLE_EVERY_SECONDS)

    sampler = asyncio.create_task(sample())
    try:
        result = await work
    finally:
        done.set()
        await sampler
    return peak, peak_total, result


async def must(lab: Lab, name: str, script: str, timeout: float) -> None:
    answer = await lab.sandboxes.backend.exec(name, script, timeout=timeout)
    if answer.exit_code != 0:
        raise RuntimeError(f"the workload failed in {name} ({answer.exit_code}): {answer.output}")


def cpu_figures(costs: list[Cost], per: int = 1) -> dict[str, Any]:
    return {
        "cpu_seconds": summarize([cost.cpu / per for cost in costs]),
        "cpu_seconds_parts_p50": {
            part: round(statistics.median(cost.parts[part] / per for cost in costs), 4)
            for part in costs[0].parts
        },
        "machine_cpu_seconds": summarize([cost.machine_cpu / per for cost in costs]),
        "seconds": summarize([cost.seconds / per for cost in costs]),
    }


def byte_figures(values: list[int] | list[float]) -> dict[str, float]:
    return summarize([float(value) for value in values])


async def run_bench(
    settings: Settings,
    sandboxes: int,
    clicks: int,
    settle: float,
    window: float,
    labels: dict[str, str] | None = None,
) -> dict[str, Any]:
    from app.workshops import select_workshop

    labels = {**BENCH_LABELS, **(labels or {})}
    load_before, calibration = os.getloadavg()[0], cpu_calibration_ms()
    lesson, task = three_check_task()
    async with throwaway_lab(settings, select_workshop(settings), labels) as lab:
        backend = lab.sandboxes.backend
        assert isinstance(backend, DockerBackend), "the capacity bench measures Docker sandboxes"
        info = await asyncio.to_thread(backend.api.info)
        registry = await asyncio.to_thread(Probe, backend, registry_name(settings.instance))
        background = await machine_busy_cores(window)
        meter = Meter(engine_pids(engine_address()), background)

        # The floor: a container that starts nothing; a sandbox without the portal.
        bare = [await bare_container(backend, lab, meter, labels, n) for n in range(sandboxes)]
        raw = [await raw_creation(backend, lab, meter) for _ in range(sandboxes)]

        # Through the portal, one at a time; these sandboxes serve every later step.
        engine_before = resident_memory(meter.engine)
        made = [await portal_creation(lab, backend, meter, n) for n in range(sandboxes)]
        probes = [sandbox.probe for sandbox in made]
        names = [probe.name for probe in probes]

        await asyncio.sleep(settle)
        idle_cores, idle_machine = await cores_of(probes, window)
        idle_memory = [probe.memory() for probe in probes]
        engine_growth = (resident_memory(meter.engine) - engine_before) / sandboxes
        shims = [shim_memory(probe.id) for probe in probes]
        disk_fresh = await asyncio.to_thread(disk_of, backend, names)
        shared = await asyncio.to_thread(
            shared_disk, backend, lab.sandboxes.config.image, settings.instance
        )

        # The heaviest step, one sandbox at a time; the registry serving its pull counts too.
        meter.background_cores = idle_machine
        builds: list[tuple[int, int, Cost]] = []
        for probe in probes:
            peak, peak_total, (cost, _) = await peak_memory_while(
                probe,
                meter.measure(must(lab, probe.name, BUILD, 600), these(probe, registry)),
            )
            builds.append((peak, peak_total, cost))

        for probe in probes:
            await must(lab, probe.name, RUN, 300)
        await asyncio.sleep(settle)
        running_cores, running_machine = await cores_of(probes, window)
        running_memory = [probe.memory() for probe in probes]

        # The Check button, then the same commands as plain execs.
        meter.background_cores = running_machine
        click_costs, raw_costs = [], []
        for sandbox in made:
            attendee, probe = sandbox.attendee, sandbox.probe
            await must(lab, probe.name, PREPARE, 120)

            async def click(attendee: int = attendee) -> None:
                run = await lab.checks.check(attendee, lesson, task)
                if not run.passed:
                    raise RuntimeError(f"the bench task failed: {run.as_json()}")

            async def three_execs(name: str = probe.name) -> None:
                for check in THREE_CHECKS:
                    await lab.sandboxes.backend.exec(name, check.run)

            await click()  # the first click starts the check agent
            click_costs.append((await meter.measure(repeat(click, clicks), these(probe)))[0])
            raw_costs.append((await meter.measure(repeat(three_execs, clicks), these(probe)))[0])
        disk_used = await asyncio.to_thread(disk_of, backend, names)
        registry_memory = sum(registry.memory())

    result: dict[str, Any] = {
        "benchmark": "capacity",
        "command": " ".join(["labdeck", "bench", "capacity", *map(shlex.quote, sys.argv[3:])]),
        "samples": sandboxes,
        "cpus": os.cpu_count(),
        "memory_total_bytes": memory_total(),
        "cpu_calibration_ms": calibration,
        "load_average": [round(load_before, 2), round(os.getloadavg()[0], 2)],
        "measured_at": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
        "engine": {
            "storage_driver": info.get("Driver"),
            "userns": any("userns" in option for option in info.get("SecurityOptions") or []),
            "runtime_profile": backend.config.runtime,
            "cgroup": "v2" if probes[0].cgroup.v2 else "v1",
        },
        "base": {
            "engine_daemons_rss_bytes": resident_memory(meter.engine),
            "registry_memory_bytes": registry_memory,
            "bench_process_rss_bytes": resident_memory([os.getpid()]),
        },
        "floor": {
            "machine_busy_cores_before": round(background, 3),
            "bare_container": {
                **cpu_figures([cost for cost, _memory in bare]),
                "memory_bytes": byte_figures([memory for _cost, memory in bare]),
            },
            "raw_creation": cpu_figures(raw),
        },
        "creation": cpu_figures([sandbox.cost for sandbox in made]),
        "idle": {
            "settle_seconds": settle,
            "window_seconds": window,
            "memory_bytes": byte_figures([memory for memory, _cache in idle_memory]),
            "page_cache_bytes": byte_figures([cache for _memory, cache in idle_memory]),
            "shim_memory_bytes": byte_figures(shims),
            "cpu_cores": summarize(idle_cores),
            "machine_busy_cores": round(idle_machine, 3),
            "engine_memory_growth_per_sandbox_bytes": round(engine_growth),
        },
        "build": {
            "peak_memory_bytes": byte_figures([peak for peak, _total, _cost in builds]),
            "peak_memory_with_cache_bytes": byte_figures([total for _p, total, _c in builds]),
            **cpu_figures([cost for _peak, _total, cost in builds]),
        },
        "running": {
            "containers": ["ticker", "capped", "web (health check every 5 s)", "registry"],
            "memory_bytes": byte_figures([memory for memory, _cache in running_memory]),
            "page_cache_bytes": byte_figures([cache for _memory, cache in running_memory]),
            "cpu_cores": summarize(running_cores),
            "machine_busy_cores": round(running_machine, 3),
        },
        "checks": {
            "checks_per_click": len(THREE_CHECKS),
            "clicks": sandboxes * clicks,
            "per_click": cpu_figures(click_costs, clicks),
            "raw_three_execs": cpu_figures(raw_costs, clicks),
        },
        "disk": {
            "fresh_bytes": byte_figures([disk_fresh[name] for name in names]),
            "after_workload_bytes": byte_figures([disk_used[name] for name in names]),
            "shared": shared,
        },
    }
    result["inputs"] = inputs_from(result)
    result["sizing"] = sizing(result["inputs"])
    return result


async def repeat(work: Callable[[], Awaitable[None]], times: int) -> None:
    for _ in range(times):
        await work()


def inputs_from(result: dict[str, Any]) -> dict[str, float]:
    """The medians the formula uses, from a result: the only figures docs/hosting.md's table
    depends on. CPU is the attributed figure (the machine-wide one moves with whatever else
    runs on a shared VM); memory adds the shim's, outside the sandbox's cgroup."""
    idle, build, running = result["idle"], result["build"], result["running"]
    shim = idle["shim_memory_bytes"]["p50"]
    busiest = max(build["peak_memory_bytes"]["p50"], running["memory_bytes"]["p50"])
    return {
        "idle_memory_bytes": idle["memory_bytes"]["p50"] + shim,
        "busy_memory_bytes": busiest + shim,
        "running_cpu_cores": running["cpu_cores"]["p50"],
        "creation_cpu_seconds": result["creation"]["cpu_seconds"]["p50"],
        "creation_seconds": result["creation"]["seconds"]["p50"],
        "build_cpu_seconds": build["cpu_seconds"]["p50"],
        "click_cpu_seconds": result["checks"]["per_click"]["cpu_seconds"]["p50"],
        "disk_bytes": result["disk"]["after_workload_bytes"]["p50"],
        "shared_disk_bytes": float(sum(result["disk"]["shared"].values())),
    }


INPUTS = (
    "idle_memory_bytes",
    "busy_memory_bytes",
    "running_cpu_cores",
    "creation_cpu_seconds",
    "creation_seconds",
    "build_cpu_seconds",
    "click_cpu_seconds",
    "disk_bytes",
    "shared_disk_bytes",
)


def size_machine(inputs: dict[str, float], attendees: int) -> dict[str, float]:
    """The machine for ``attendees`` (N), by the formula of docs/hosting.md:

    memory = 2 GiB + 1.5 x (N x busy sandbox + 5 x idle sandbox)
    cores  = 1 + 1.5 x N x (running sandbox + max(build / 60 s, click / 10 s))
    disk   = 20 GB + shared + 1.5 x (N + 5) x sandbox after the workshop
    pool   = (N + 5) x max(creation CPU / cores, creation time / 4 workers): the least time
             the warm pool takes to fill
    """
    memory = BASE_MEMORY_GIB * GIB + HEADROOM * (
        attendees * inputs["busy_memory_bytes"] + POOL_LEFT * inputs["idle_memory_bytes"]
    )
    step = max(
        inputs["build_cpu_seconds"] / STEP_SECONDS, inputs["click_cpu_seconds"] / CLICK_SECONDS
    )
    cores = math.ceil(BASE_CORES + HEADROOM * attendees * (inputs["running_cpu_cores"] + step))
    disk = (
        BASE_DISK_GB * GB
        + inputs["shared_disk_bytes"]
        + HEADROOM * (attendees + POOL_LEFT) * inputs["disk_bytes"]
    )
    each = max(inputs["creation_cpu_seconds"] / cores, inputs["creation_seconds"] / SPAWN_WORKERS)
    return {
        "memory_gib": math.ceil(memory / GIB),
        "cores": cores,
        "disk_gb": math.ceil(disk / GB / 10) * 10,
        "pool_fill_seconds": math.ceil((attendees + POOL_LEFT) * each),
    }


def sizing(inputs: dict[str, float]) -> dict[str, Any]:
    return {
        "assumptions": {
            "headroom": HEADROOM,
            "pool_left": POOL_LEFT,
            "base_memory_gib": BASE_MEMORY_GIB,
            "base_cores": BASE_CORES,
            "base_disk_gb": BASE_DISK_GB,
            "step_seconds": STEP_SECONDS,
            "click_seconds": CLICK_SECONDS,
            "spawn_workers": SPAWN_WORKERS,
        },
        **{str(n): size_machine(inputs, n) for n in CLASS_SIZES},
    }


def table_rows(inputs: dict[str, float]) -> list[str]:
    """docs/hosting.md's capacity table, row by row (tests/test_docs.py holds the two equal)."""
    rows = []
    for attendees in CLASS_SIZES:
        size = size_machine(inputs, attendees)
        rows.append(
            f"| {attendees} | {size['memory_gib']} GiB | {size['cores']} | {size['disk_gb']} GB "
            f"| {size['pool_fill_seconds']} s |"
        )
    return rows


def parse_labels(values: list[str]) -> dict[str, str]:
    labels = {}
    for value in values:
        key, sep, text = value.partition("=")
        if not sep or not key:
            raise typer.BadParameter(f"{value!r}: use KEY=VALUE")
        labels[key] = text
    return labels


def register(app: typer.Typer) -> None:
    @app.command("capacity")
    def capacity_command(
        sandboxes: Annotated[int, typer.Option(min=1, help="Sandboxes measured (samples).")] = 5,
        clicks: Annotated[int, typer.Option(min=1, help="Check clicks per sandbox.")] = 10,
        settle: Annotated[
            float, typer.Option(min=0, help="Seconds to wait before idle and running figures.")
        ] = 20.0,
        window: Annotated[float, typer.Option(min=1, help="Seconds CPU is averaged over.")] = 10.0,
        label: Annotated[
            list[str] | None,
            typer.Option(help="KEY=VALUE added to everything made (e.g. io.labdeck.test=1)."),
        ] = None,
        json_output: Annotated[
            bool, typer.Option("--json", help="Print the result as JSON.")
        ] = True,
        output: Annotated[Path | None, typer.Option(help="Also write the JSON here.")] = None,
    ) -> None:
        """What a sandbox costs (memory, CPU, disk; idle, building, running, checking) and the
        machine for 20, 50 and 100 attendees (docs/hosting.md)."""
        with tempfile.TemporaryDirectory(prefix="labdeck-bench-") as data_dir:
            settings = bench_settings(Path(data_dir))
            result = asyncio.run(
                run_bench(settings, sandboxes, clicks, settle, window, parse_labels(label or []))
            )
        emit(result, output)
