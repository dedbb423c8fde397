"""`labdeck bench class`: a class rehearsal with real sandboxes, through the public surface only.

A real portal (`labdeck serve` in its own process, on the Docker engine, with a private instance,
data dir and registry, and a warm pool filled before class as the instructor does) and N scripted
attendees over real HTTP and websockets, arriving within ``--arrivals`` seconds. Each one joins
(from its own address, behind the venue's proxy), opens the first lesson page, `/ws/events` and
the terminal, types `docker info`, then for each lesson opens the page (which asks for the
lesson's setup) and for each task types its steps (content/<workshop>/proofs.yaml) into the
shell and presses Check. Meanwhile a monitor polls `/healthz` twice a second and instructor
dashboards keep `/ws/instructor` open and reload `/instructor` and `/api/class`.

The floor, in the same run: `/healthz` before anyone joined; after the class, one attendee's
checks again with the portal idle ("alone"), and the same checks as plain `docker exec`s
("raw"). Everything the instance made is removed at the end; what was left is reported.
"""

from __future__ import annotations

import asyncio
import os
import random
import shlex
import shutil
import sys
import tempfile
import time
from http.cookiejar import DefaultCookiePolicy
from pathlib import Path
from typing import Annotated, Any

import httpx
import typer

from app.bench.checks import busy_cpu_seconds
from app.bench.class_rehearsal.attendee import (
    CHECK_SECONDS,
    Abandoned,
    Attendee,
    Plan,
    Record,
)
from app.bench.class_rehearsal.floor import measure_floor
from app.bench.class_rehearsal.portal import Portal
from app.bench.class_rehearsal.report import Floor, report
from app.bench.class_rehearsal.watchers import (
    Watch,
    dashboard,
    idle_health_floor,
    poll_health,
    reload_dashboard,
)
from app.bench.cli import emit
from app.bench.dashboard import cpu_calibration_ms
from app.config import Settings
from app.lessons.proofs import Proof, steps_in_lesson_order
from app.lessons.schema import Workshop
from app.workshops import select_workshop

WARM_POOL_SECONDS = 900.0
# The class arrives once the machine is this quiet (busy cores over a window), or after the limit.
QUIET_CORES = 0.5
QUIET_WINDOW_SECONDS = 5.0
QUIET_LIMIT_SECONDS = 180.0


def build_plan(workshop: Workshop, tasks: int | None) -> Plan:
    """The first ``tasks`` tasks (all when None) in lesson order, grouped by lesson."""
    lessons: dict[str, list[tuple[str, Proof]]] = {}
    steps = steps_in_lesson_order(workshop)[:tasks]
    for lesson, task_id, proof in steps:
        lessons.setdefault(lesson, []).append((task_id, proof))
    chosen = {task_id for _, task_id, _ in steps}
    return Plan(list(lessons.items()), [t for t in workshop.all_tasks() if t.id in chosen])


def wait_for_quiet_machine(
    window: float = QUIET_WINDOW_SECONDS, limit: float = QUIET_LIMIT_SECONDS
) -> tuple[float, float]:
    """Wait until the machine has finished making the pool (its busy cores over ``window`` fall
    under ``QUIET_CORES``), as it has when a class arrives minutes after the instructor started
    the portal; returns the seconds waited and the busy cores of the last window. Measured here:
    a minute after 100 sandboxes were ready the machine still spent a core on them; once settled,
    100 idle sandboxes cost 0.14 cores."""
    started = time.monotonic()
    while True:
        before = busy_cpu_seconds()
        time.sleep(window)
        cores = (busy_cpu_seconds() - before) / window
        waited = time.monotonic() - started
        if cores < QUIET_CORES or waited >= limit:
            return waited, cores


def client_for(portal: Portal) -> httpx.AsyncClient:
    """One client for the whole class (a client each would build a TLS context each); it keeps
    no cookies: each attendee sends its own."""
    http = httpx.AsyncClient(
        base_url=portal.url,
        timeout=httpx.Timeout(CHECK_SECONDS, connect=30),
        # Idle connections expire before any server's keep-alive can close them under a request.
        limits=httpx.Limits(
            max_connections=None, max_keepalive_connections=None, keepalive_expiry=2.0
        ),
    )
    http.cookies.jar.set_policy(DefaultCookiePolicy(allowed_domains=[]))
    return http


async def run_class(
    portal: Portal, plan: Plan, attendees: int, arrivals: float, dashboards: int, seed: int
) -> tuple[Record, Watch, Floor]:
    async with client_for(portal) as http:
        floor = Floor(healthz=await idle_health_floor(http))
        record, watch = Record(), Watch()
        class_ = [Attendee(n, http, portal.ws_url, record, plan) for n in range(attendees)]
        rng = random.Random(seed)
        arriving = sorted(rng.uniform(0, arrivals) for _ in class_)
        background = [
            asyncio.create_task(poll_health(http, record, watch)),
            asyncio.create_task(reload_dashboard(http, portal.token, record, watch)),
            *(
                asyncio.create_task(dashboard(portal.ws_url, portal.token, watch, index))
                for index in range(dashboards)
            ),
        ]
        busy_before = busy_cpu_seconds()
        await asyncio.gather(*(a.attend(at) for a, at in zip(class_, arriving, strict=True)))
        floor.class_seconds, floor.busy_cpu_seconds = record.now(), busy_cpu_seconds() - busy_before
        for task in background:
            task.cancel()
        await asyncio.gather(*background, return_exceptions=True)
        await measure_alone_and_raw(class_, record, plan, floor)
    return record, watch, floor


async def measure_alone_and_raw(
    class_: list[Attendee], record: Record, plan: Plan, floor: Floor
) -> None:
    """One attendee who passed everything checks each task again, the portal idle; then the
    same checks as plain execs into that attendee's sandbox."""
    passed = {entry.split("/")[0] for entry in record.passed}
    chosen = next(
        (a for a in class_ if str(a.number) in passed and a.number in record.sandboxes), None
    )
    if chosen is None or not plan.tasks:
        return
    alone = Record()
    chosen.record = alone
    try:
        for task in plan.checked:
            await chosen.check(task.id)
    except Abandoned:
        pass
    finally:
        record.errors += alone.errors
        record.timeouts += alone.timeouts
    floor.alone = {timing.what: timing.seconds for timing in alone.checks}
    floor.raw = await asyncio.to_thread(
        measure_floor, record.sandboxes[chosen.number], plan.checked
    )


def rehearse(
    attendees: int,
    warm_pool: int,
    tasks: int | None,
    arrivals: float,
    dashboards: int,
    instance: str,
    seed: int,
    log_copy: Path | None,
) -> dict[str, Any]:
    settings = Settings()
    workshop = select_workshop(settings)
    plan = build_plan(workshop, tasks)
    load_before, calibration = os.getloadavg()[0], cpu_calibration_ms()
    with tempfile.TemporaryDirectory(prefix="labdeck-bench-class-") as data_dir:
        portal = Portal(Path(data_dir), instance, warm_pool)
        leftovers: list[str] = []
        try:
            start_seconds = portal.start()
            pool_seconds = portal.wait_for_warm_pool(WARM_POOL_SECONDS)
            settle_seconds, busy_cores = wait_for_quiet_machine()
            record, watch, floor = asyncio.run(
                run_class(portal, plan, attendees, arrivals, dashboards, seed)
            )
        finally:
            leftovers = portal.stop_and_remove()
            if log_copy is not None and portal.log_path.exists():
                shutil.copyfile(portal.log_path, log_copy)
            log = portal.log_problems()
    floor.start_seconds, floor.warm_pool_seconds = start_seconds, pool_seconds
    floor.settle_seconds, floor.busy_cores_before = settle_seconds, busy_cores
    return {
        "benchmark": "class",
        "command": " ".join(["labdeck", "bench", "class", *map(shlex.quote, sys.argv[3:])]),
        "workshop": workshop.slug,
        "attendees": attendees,
        "warm_pool": warm_pool,
        "arrivals_seconds": arrivals,
        "tasks_each": plan.tasks,
        "dashboards": dashboards,
        "cpus": os.cpu_count(),
        "cpu_calibration_ms": calibration,
        "load_average": [round(load_before, 2), round(os.getloadavg()[0], 2)],
        **report(record, watch, floor, attendees, warm_pool, plan.tasks),
        "portal_log": log,
        "leftovers": leftovers,
    }


def register(app: typer.Typer) -> None:
    @app.command("class")
    def class_command(
        attendees: Annotated[int, typer.Option(min=1, help="Scripted attendees.")] = 30,
        warm_pool: Annotated[
            int | None, typer.Option(min=0, help="Warm sandboxes before class (default: one each).")
        ] = None,
        tasks: Annotated[
            int | None,
            typer.Option(min=0, help="Tasks each attendee does, in order (default: all; 0: none)."),
        ] = None,
        arrivals: Annotated[
            float, typer.Option(min=0, help="Seconds over which the attendees join.")
        ] = 0.0,
        dashboards: Annotated[int, typer.Option(min=0, help="Instructor dashboards open.")] = 2,
        instance: Annotated[
            str | None, typer.Option(help="Instance name (default: bench-class-<pid>).")
        ] = None,
        seed: Annotated[int, typer.Option(help="Seed of the arrival times.")] = 12,
        json_output: Annotated[
            bool, typer.Option("--json", help="Print the result as JSON (the only format).")
        ] = True,
        output: Annotated[Path | None, typer.Option(help="Also write the JSON here.")] = None,
    ) -> None:
        """A class rehearsal: N attendees join, type every task's steps and press Check."""
        log_copy = output.with_suffix(".portal.log") if output is not None else None
        result = rehearse(
            attendees,
            attendees if warm_pool is None else warm_pool,
            tasks,
            arrivals,
            dashboards,
            instance or f"bench-class-{os.getpid()}",
            seed,
            log_copy,
        )
        emit(result, output)
