"""`labdeck bench dashboard` runs end to end (a small class, so it stays quick)."""

from __future__ import annotations

import asyncio

from app.bench.dashboard import run_bench


def test_dashboard_bench_measures_render_and_delivery() -> None:
    result = asyncio.run(
        run_bench(attendees=6, tasks=7, dashboards=2, events=4, interval=0.01, rounds=2)
    )
    assert result["render_ms"]["count"] == 2 and result["model_ms"]["count"] == 2
    assert result["delivery_ms"]["count"] == 8 and result["lost"] == 0
    assert result["page_bytes"] > 1000
    assert set(result["met"]) == {"render_p95_ms", "delivery_p95_ms"}
