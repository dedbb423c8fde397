"""`labdeck bench spawn` on the real engine, small: every way measured, nothing left behind."""

from __future__ import annotations

import asyncio
import os
from pathlib import Path

import pytest

from app.bench.spawn import run_bench
from tests.support.live_server import free_port
from tests.support.settings import settings_for

pytestmark = pytest.mark.docker


def test_spawn_bench_times_raw_cold_and_warm(tmp_path: Path) -> None:
    settings = settings_for(
        tmp_path / "data",
        f"test-{os.getpid()}-spawn-bench",
        registry_port=free_port(),
        warm_pool_size=0,
        spawn_workers=2,
    )
    result = asyncio.run(run_bench(settings, count=2, concurrency=2))
    for way in ("raw", "cold", "warm"):
        figures = result[way]
        assert figures["count"] == 2
        assert 0 < figures["p50"] <= figures["p95"] <= figures["all_ready_seconds"] + 0.01
        assert figures["machine_cpu_seconds_each"] > 0
    # a hand-out alone starts no container: well under a cold start
    assert result["warm"]["hand_out_only"]["p95"] < result["cold"]["p50"]
    assert result["ratio_cold_raw_p50"] > 0
    assert result["met"]["all_ready"] is None  # judged only for a class of 20 at once
    assert set(result["met"]) == {"warm_p95", "cold_overhead", "all_ready"}
