"""`labdeck bench spawn`: from asking for a sandbox to its inner engine answering `docker info`.

Three ways, measured in the same run on the same engine, image and flags:
  raw   create and start the container with docker-py, then wait inside with the portal's own
        probe (``READY_PROBE``: the engine answers `GET /info`, the request of `docker info`),
        without the portal around it: the floor;
  cold  through the portal's service: admission queue, database rows, events, ready probe;
  warm  a warm-pool hand-out, then one `docker info` inside (``hand_out_only``: without it).
``--concurrency`` clients ask at once (each timed from its own request); the portal creates
``--workers`` sandboxes at a time, as ``LABDECK_SPAWN_WORKERS`` would. The ratio cold/raw of the
medians is the portal's overhead. Everything made here is removed at the end.
"""

from __future__ import annotations

import asyncio
import os
import shlex
import sys
import tempfile
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Annotated, Any

import typer

from app.bench.checks import bench_settings, busy_cpu_seconds
from app.bench.cli import emit, summarize
from app.bench.dashboard import cpu_calibration_ms
from app.config import Settings
from app.sandboxes.base import SandboxSpec
from app.sandboxes.docker.backend import DockerBackend
from app.sandboxes.docker.exec import READY_PROBE
from app.sandboxes.lab import Lab, throwaway_lab
from app.sandboxes.naming import sandbox_name

TARGET_WARM_P95_SECONDS = 0.2
TARGET_COLD_OVERHEAD = 0.20
TARGET_ALL_READY_SECONDS = 10.0
CLASS_AT_ONCE = 20
READY_TIMEOUT_SECONDS = 300.0


@dataclass(frozen=True)
class Timed:
    samples: list[float]  # seconds each one took
    wall: float  # seconds until the last one was done
    machine_cpu: float  # busy CPU-seconds of the whole machine meanwhile

    def summary(self) -> dict[str, Any]:
        per_item = self.machine_cpu / len(self.samples) if self.samples else float("nan")
        return {
            **summarize(self.samples),
            "all_ready_seconds": round(self.wall, 3),
            "machine_cpu_seconds_each": round(per_item, 3),
        }


async def timed_in_parallel(
    items: list[Any], concurrency: int, one: Callable[[Any], Awaitable[None]]
) -> Timed:
    """Time each ``one(item)`` with ``concurrency`` at a time."""
    gate = asyncio.Semaphore(concurrency)

    async def timed(item: Any) -> float:
        async with gate:
            started = time.perf_counter()
            await one(item)
            return time.perf_counter() - started

    started, busy_before = time.perf_counter(), busy_cpu_seconds()
    samples = await asyncio.gather(*(timed(item) for item in items))
    wall = time.perf_counter() - started
    return Timed(list(samples), wall, busy_cpu_seconds() - busy_before)


def raw_run(backend: DockerBackend, spec: SandboxSpec) -> None:
    """`docker run` and wait for `docker info` inside, in plain docker-py (blocks)."""
    # The backend's own container builder, so that image, limits, runtime profile, volume,
    # network, labels and environment are exactly what the portal uses.
    backend.containers.create(spec)
    backend.containers.start(spec.name)  # under userns, also hands it its cgroups
    # The portal's own wait for `docker info` (without its timeout guard): the same question,
    # asked as cheaply, so that the ratio is the portal's overhead and nothing else.
    exec_id = str(backend.api.exec_create(spec.name, ["bash", "-c", READY_PROBE])["Id"])
    backend.api.exec_start(exec_id)
    if backend.api.exec_inspect(exec_id).get("ExitCode") != 0:
        raise RuntimeError(f"the engine in {spec.name} never answered")


async def measure_raw(lab: Lab, count: int, concurrency: int) -> dict[str, Any]:
    backend = lab.sandboxes.backend
    assert isinstance(backend, DockerBackend)
    config = lab.sandboxes.config
    specs = [
        SandboxSpec(
            sandbox_name(config.instance),
            config.workshop,
            config.image,
            config.limits,
            labels=dict(config.labels),
        )
        for _ in range(count)
    ]
    try:
        timed = await timed_in_parallel(
            specs, concurrency, lambda spec: asyncio.to_thread(raw_run, backend, spec)
        )
    finally:
        await asyncio.gather(*(backend.remove(spec.name) for spec in specs))
    return timed.summary()


async def measure_cold(lab: Lab, count: int, concurrency: int) -> dict[str, Any]:
    people = [lab.add_attendee(f"cold-{n}") for n in range(count)]

    async def one(attendee_id: int) -> None:
        await lab.sandboxes.ensure_for(attendee_id)
        await lab.sandboxes.ready_sandbox(attendee_id, timeout=READY_TIMEOUT_SECONDS)

    try:
        timed = await timed_in_parallel(people, concurrency, one)
    finally:
        await lab.sandboxes.prune(everything=True)
    return timed.summary()


async def measure_warm(lab: Lab, count: int, concurrency: int) -> dict[str, Any]:
    """Fill the pool with ``count``, then hand them out; refills run meanwhile, as in class."""
    service = lab.sandboxes
    service.set_warm_pool_size(count)
    async with asyncio.timeout(READY_TIMEOUT_SECONDS):
        while (await service.pool_counts())["ready"] < count:
            await asyncio.sleep(0.1)
    people = [lab.add_attendee(f"warm-{n}") for n in range(count)]
    hand_outs: list[float] = []

    async def one(attendee_id: int) -> None:
        started = time.perf_counter()
        await service.ensure_for(attendee_id)
        name = await service.ready_sandbox(attendee_id, timeout=READY_TIMEOUT_SECONDS)
        hand_outs.append(time.perf_counter() - started)
        answer = await service.backend.exec(name, "docker info >/dev/null", user="root")
        if answer.exit_code != 0:
            raise RuntimeError(f"docker info failed in {name}: {answer.output}")

    try:
        timed = await timed_in_parallel(people, concurrency, one)
    finally:
        service.set_warm_pool_size(0)
        await service.prune(everything=True)
    # The hand-out alone (the database, no container work) next to the full figure.
    hand_out = {key: value for key, value in summarize(hand_outs).items() if key != "count"}
    return {**timed.summary(), "hand_out_only": hand_out}


async def run_bench(settings: Settings, count: int, concurrency: int) -> dict[str, Any]:
    from app.workshops import select_workshop

    load_before, calibration = os.getloadavg()[0], cpu_calibration_ms()
    async with throwaway_lab(settings, select_workshop(settings), {"io.labdeck.bench": "1"}) as lab:
        raw = await measure_raw(lab, count, concurrency)
        cold = await measure_cold(lab, count, concurrency)
        warm = await measure_warm(lab, count, concurrency)
    overhead = cold["p50"] / raw["p50"] - 1
    return {
        "benchmark": "spawn",
        "command": " ".join(["labdeck", "bench", "spawn", *map(shlex.quote, sys.argv[3:])]),
        "unit": "seconds",
        "count": count,
        "concurrency": concurrency,
        "spawn_workers": settings.spawn_workers,
        "cpu_calibration_ms": calibration,
        "load_average": [round(load_before, 2), round(os.getloadavg()[0], 2)],
        "raw": raw,
        "cold": cold,
        "warm": warm,
        "ratio_cold_raw_p50": round(cold["p50"] / raw["p50"], 3),
        "ratio_cold_raw_p95": round(cold["p95"] / raw["p95"], 3),
        "targets": {
            "warm_p95": TARGET_WARM_P95_SECONDS,
            "cold_overhead": TARGET_COLD_OVERHEAD,
            "all_ready": TARGET_ALL_READY_SECONDS,
        },
        "met": {
            "warm_p95": warm["p95"] <= TARGET_WARM_P95_SECONDS,
            "cold_overhead": overhead <= TARGET_COLD_OVERHEAD,
            # The target is about a class arriving at once: 20 or more asking together.
            "all_ready": cold["all_ready_seconds"] <= TARGET_ALL_READY_SECONDS
            if concurrency >= CLASS_AT_ONCE and count >= CLASS_AT_ONCE
            else None,
        },
    }


def register(app: typer.Typer) -> None:
    @app.command("spawn")
    def spawn_command(
        count: Annotated[int, typer.Option(min=1, help="Sandboxes made in each way.")] = 10,
        concurrency: Annotated[int, typer.Option(min=1, help="Requests at the same time.")] = 4,
        workers: Annotated[
            int | None,
            typer.Option(min=1, help="Creations the portal runs at once (default: concurrency)."),
        ] = None,
        json_output: Annotated[
            bool, typer.Option("--json", help="Print the result as JSON.")
        ] = True,
        output: Annotated[Path | None, typer.Option(help="Also write the JSON here.")] = None,
    ) -> None:
        """Time to a ready sandbox: raw docker run, cold through the portal, warm pool."""
        with tempfile.TemporaryDirectory(prefix="labdeck-bench-") as data_dir:
            settings = bench_settings(Path(data_dir)).model_copy(
                update={"spawn_workers": workers or concurrency}
            )
            result = asyncio.run(run_bench(settings, count, concurrency))
        emit(result, output)
