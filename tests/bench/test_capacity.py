"""`labdeck bench capacity`: the sizing formula, the committed figures docs/hosting.md's table
comes from, and a small run on the real engine that leaves nothing behind."""

from __future__ import annotations

import asyncio
import itertools
import json
import os
from pathlib import Path

import pytest
from typer.testing import CliRunner

from app.bench.capacity import (
    CLASS_SIZES,
    GB,
    GIB,
    INPUTS,
    inputs_from,
    run_bench,
    size_machine,
    sizing,
    table_rows,
)
from app.bench.cli import bench_app, register_all
from tests.support.live_server import free_port
from tests.support.settings import REPO, TEST_LABELS, settings_for

COMMITTED = REPO / "docs" / "bench" / "capacity.json"
MIB = 1024**2
EXAMPLE = {
    "idle_memory_bytes": 40 * MIB,
    "busy_memory_bytes": 100 * MIB,
    "running_cpu_cores": 0.03,
    "creation_cpu_seconds": 1.0,
    "creation_seconds": 1.2,
    "build_cpu_seconds": 6.0,
    "click_cpu_seconds": 0.15,
    "disk_bytes": 0.1 * GB,
    "shared_disk_bytes": 0.6 * GB,
}


def test_capacity_is_a_bench_command() -> None:
    register_all()
    result = CliRunner().invoke(bench_app, ["capacity", "--help"])
    assert result.exit_code == 0
    assert "--sandboxes" in result.output and "--output" in result.output


def test_the_formula_by_hand() -> None:
    size = size_machine(EXAMPLE, 50)
    # 2 GiB + 1.5 x (50 x 100 MiB + 5 x 40 MiB) = 2 GiB + 7800 MiB = 9.6 GiB -> 10
    assert size["memory_gib"] == 10
    # 1 + 1.5 x 50 x (0.03 + max(6 / 60, 0.15 / 10)) = 10.75 -> 11 cores
    assert size["cores"] == 11
    # 20 GB + 0.6 GB + 1.5 x 55 x 0.1 GB = 28.85 GB -> 30 (tens of GB)
    assert size["disk_gb"] == 30
    # 55 x max(1.0 / 11 cores, 1.2 s / 4 workers) = 16.5 -> 17 s
    assert size["pool_fill_seconds"] == 17


def test_a_bigger_class_never_needs_a_smaller_machine() -> None:
    sizes = [size_machine(EXAMPLE, n) for n in CLASS_SIZES]
    for smaller, bigger in itertools.pairwise(sizes):
        assert all(bigger[key] >= smaller[key] for key in smaller)
    assert size_machine(EXAMPLE, 100)["memory_gib"] * GIB > 100 * EXAMPLE["busy_memory_bytes"]


def test_the_committed_figures_give_the_committed_sizing() -> None:
    """docs/bench/capacity.json is a real run: its inputs are its own medians, and its sizing
    is the formula applied to them (tests/test_docs.py holds docs/hosting.md to that sizing)."""
    result = json.loads(COMMITTED.read_text())
    assert result["benchmark"] == "capacity" and result["samples"] >= 5
    assert set(result["inputs"]) == set(INPUTS)
    assert inputs_from(result) == result["inputs"]
    assert sizing(result["inputs"]) == result["sizing"]
    hosting = (REPO / "docs" / "hosting.md").read_text()
    assert all(row in hosting for row in table_rows(result["inputs"]))


@pytest.mark.docker
def test_a_small_run_measures_every_figure_and_leaves_nothing(tmp_path: Path) -> None:
    settings = settings_for(
        tmp_path / "data",
        f"test-{os.getpid()}-capacity",
        registry_port=free_port(),
        warm_pool_size=0,
    )
    result = asyncio.run(
        run_bench(settings, sandboxes=1, clicks=1, settle=0, window=1, labels=TEST_LABELS)
    )
    assert result["samples"] == 1
    for figures in (
        result["creation"],
        result["floor"]["raw_creation"],
        result["build"],
        result["checks"]["per_click"],
    ):
        assert figures["cpu_seconds"]["p50"] > 0 and figures["seconds"]["p50"] > 0
    # a sandbox's engine is what costs: far more than a container of the same image that sleeps
    assert (
        result["idle"]["memory_bytes"]["p50"]
        > 5 * result["floor"]["bare_container"]["memory_bytes"]["p50"]
    )
    assert result["build"]["peak_memory_bytes"]["p50"] >= result["idle"]["memory_bytes"]["p50"]
    assert result["disk"]["after_workload_bytes"]["p50"] > result["disk"]["fresh_bytes"]["p50"]
    assert result["idle"]["shim_memory_bytes"]["p50"] > 0
    assert set(result["inputs"]) == set(INPUTS)
    assert set(result["sizing"]) == {"assumptions", *map(str, CLASS_SIZES)}
    # the session's sweep (tests/conftest.py) fails the run if anything labelled was left
