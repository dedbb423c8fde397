"""`labdeck bench checks`: how long a three-check task takes, alone and with 20 attendees at once.

Real sandboxes on the local engine (their own network, workshop registry and instance name, all
removed afterwards); the measured path is the one the Check button takes: ready_sandbox, the
lesson setup (already done), three execs, storing the attempt and publishing the events.
"""

from __future__ import annotations

import asyncio
import os
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Annotated, Any

import typer

from app.bench.cli import emit, summarize
from app.config import Settings
from app.lessons.schema import Check, Lesson, Task, Workshop
from app.ports import free_port
from app.sandboxes.lab import Lab, throwaway_lab

TARGET_P50_ALONE_SECONDS = 0.25
TARGET_P95_CROWD_SECONDS = 1.5
# Three checks of the kinds lessons use: an image lookup, a filtered container list, an inspect
# piped through a parser. The sandbox is prepared so that all three pass.
PREPARE = (
    "docker pull -q busybox >/dev/null && docker run --name greeter busybox echo hi >/dev/null"
)
THREE_CHECKS = [
    Check(name="busybox is stored", run="docker image inspect busybox >/dev/null", message="-"),
    Check(
        name="a busybox container ran",
        run="docker ps -a --filter ancestor=busybox -q | grep -q .",
        message="-",
    ),
    Check(
        name="greeter printed hi",
        run="docker logs greeter 2>&1 | grep -q hi",
        message="-",
    ),
]


def bench_settings(data_dir: Path, base: Settings | None = None) -> Settings:
    """The operator's settings with a private instance name, data dir and registry port."""
    base = base or Settings()
    return base.model_copy(
        update={
            "instance": f"bench-{os.getpid()}",
            "data_dir": data_dir,
            "registry_port": free_port(),
            "warm_pool_size": 0,
        }
    )


def three_check_task() -> tuple[Lesson, Task]:
    task = Task(id="bench-three-checks", title="Bench", instructions="-", checks=THREE_CHECKS)
    lesson = Lesson(
        slug="bench", number=0, title="Bench", minutes=1, path=Path("bench.md"), body=""
    )
    return lesson, task


@dataclass
class Samples:
    """Seconds per Check click, and how much of it the three execs themselves took."""

    total: list[float] = field(default_factory=list)
    execs: list[float] = field(default_factory=list)
    busy_cpu_seconds: float = 0.0  # the whole machine's, during the measured rounds
    portal_cpu_seconds: float = 0.0  # this process's (the portal's part), during the rounds

    def cpu_per_check(self) -> float:
        return self._per_check(self.busy_cpu_seconds)

    def portal_cpu_per_check(self) -> float:
        return self._per_check(self.portal_cpu_seconds)

    def _per_check(self, seconds: float) -> float:
        checks = len(self.total) * len(THREE_CHECKS)
        return round(seconds / checks, 4) if checks else float("nan")


async def measure(lab: Lab, attendees: int, rounds: int) -> Samples:
    """Each round, every attendee clicks Check at the same moment."""
    lesson, task = three_check_task()
    ids = [lab.add_attendee(f"bench-{attendees}-{n}") for n in range(attendees)]
    names = await asyncio.gather(*(lab.sandbox_for(i) for i in ids))
    await asyncio.gather(
        *(lab.sandboxes.backend.exec(name, PREPARE, timeout=120) for name in names)
    )
    samples = Samples()

    async def one(attendee_id: int) -> None:
        started = time.perf_counter()
        run = await lab.checks.check(attendee_id, lesson, task)
        if not run.passed:
            raise RuntimeError(f"the bench task failed: {run.as_json()}")
        samples.total.append(time.perf_counter() - started)
        samples.execs.append(sum(check.duration_ms for check in run.checks) / 1000)

    await asyncio.gather(*(one(i) for i in ids))  # warm-up: first exec per sandbox
    samples.total.clear()
    samples.execs.clear()
    busy_before, portal_before = busy_cpu_seconds(), time.process_time()
    for _ in range(rounds):
        await asyncio.gather(*(one(i) for i in ids))
    samples.busy_cpu_seconds = busy_cpu_seconds() - busy_before
    samples.portal_cpu_seconds = time.process_time() - portal_before
    return samples


def busy_cpu_seconds() -> float:
    """CPU time the whole machine spent busy since boot (/proc/stat), in seconds."""
    with open("/proc/stat") as stat:
        fields = [int(value) for value in stat.readline().split()[1:]]
    idle = fields[3] + fields[4]  # idle + iowait
    return (sum(fields[:8]) - idle) / os.sysconf("SC_CLK_TCK")


async def exec_floor(lab: Lab, count: int = 20) -> list[float]:
    """Seconds for an exec of `true`: the least a check can cost on this machine."""
    attendee_id = lab.add_attendee("bench-floor")
    name = await lab.sandbox_for(attendee_id)
    seconds = []
    for _ in range(count):
        started = time.perf_counter()
        await lab.sandboxes.backend.exec(name, "true")
        seconds.append(time.perf_counter() - started)
    return seconds


async def run_bench(
    settings: Settings, workshop: Workshop, rounds_alone: int, rounds_crowd: int
) -> dict[str, Any]:
    load_before = os.getloadavg()[0]
    async with throwaway_lab(settings, workshop) as lab:
        floor = await exec_floor(lab)
        alone = await measure(lab, 1, rounds_alone)
        crowd = await measure(lab, 20, rounds_crowd)
    alone_summary, crowd_summary = summarize(alone.total), summarize(crowd.total)
    return {
        "benchmark": "checks",
        "task": [check.name for check in THREE_CHECKS],
        "unit": "seconds",
        "alone": alone_summary,
        "twenty_at_once": crowd_summary,
        "breakdown": {
            "exec_of_true": summarize(floor),
            "alone_three_execs": summarize(alone.execs),
            "twenty_at_once_three_execs": summarize(crowd.execs),
            "machine_cpu_seconds_per_check_alone": alone.cpu_per_check(),
            "machine_cpu_seconds_per_check_twenty": crowd.cpu_per_check(),
            "portal_cpu_seconds_per_check_alone": alone.portal_cpu_per_check(),
            "portal_cpu_seconds_per_check_twenty": crowd.portal_cpu_per_check(),
        },
        "cpus": os.cpu_count(),
        "load_average": [round(load_before, 2), round(os.getloadavg()[0], 2)],
        "targets": {
            "alone_p50": TARGET_P50_ALONE_SECONDS,
            "twenty_at_once_p95": TARGET_P95_CROWD_SECONDS,
        },
        "met": {
            "alone_p50": alone_summary["p50"] <= TARGET_P50_ALONE_SECONDS,
            "twenty_at_once_p95": crowd_summary["p95"] <= TARGET_P95_CROWD_SECONDS,
        },
    }


def register(app: typer.Typer) -> None:
    @app.command("checks")
    def checks_command(
        json_output: Annotated[
            bool, typer.Option("--json", help="Print the result as JSON.")
        ] = True,
        output: Annotated[Path | None, typer.Option(help="Also write the JSON here.")] = None,
        rounds_alone: Annotated[int, typer.Option(help="Checks timed with one attendee.")] = 40,
        rounds_crowd: Annotated[int, typer.Option(help="Rounds of 20 simultaneous checks.")] = 5,
    ) -> None:
        """Latency of a three-check task (p50, p95), alone and with 20 attendees at once."""
        from app.workshops import select_workshop

        base = Settings()
        workshop = select_workshop(base)
        with tempfile.TemporaryDirectory(prefix="labdeck-bench-") as data_dir:
            settings = bench_settings(Path(data_dir), base)
            result = asyncio.run(run_bench(settings, workshop, rounds_alone, rounds_crowd))
        emit(result, output)
