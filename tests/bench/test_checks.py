from __future__ import annotations

import asyncio
import os
from pathlib import Path

import pytest
from typer.testing import CliRunner

from app.bench.checks import THREE_CHECKS, exec_floor, measure
from app.bench.cli import bench_app, register_all
from app.lessons.loader import load_workshop
from app.sandboxes.lab import throwaway_lab
from tests.support.live_server import free_port
from tests.support.settings import REPO, TEST_LABELS, settings_for


def test_the_checks_benchmark_is_a_bench_command() -> None:
    register_all()
    result = CliRunner().invoke(bench_app, ["checks", "--help"])
    assert result.exit_code == 0 and "--json" in result.output and "--output" in result.output
    assert len(THREE_CHECKS) == 3


@pytest.mark.docker
def test_the_benchmark_measures_real_check_runs(tmp_path: Path) -> None:
    settings = settings_for(
        tmp_path / "data",
        f"test-{os.getpid()}-bench",
        registry_port=free_port(),
        warm_pool_size=0,
    )
    workshop = load_workshop(REPO / "content" / "docker-basics")

    async def small_run() -> tuple[list[float], list[float], list[float]]:
        async with throwaway_lab(settings, workshop, TEST_LABELS) as lab:
            floor = await exec_floor(lab, count=3)
            samples = await measure(lab, attendees=2, rounds=2)
            return floor, samples.total, samples.execs

    floor, total, execs = asyncio.run(small_run())
    assert len(floor) == 3 and len(total) == 4 and len(execs) == 4
    assert all(t >= e > 0 for t, e in zip(total, execs, strict=True))
