"""`labdeck bench ...`: each benchmark lives in its own module with a ``register(app)`` function."""

from __future__ import annotations

import importlib
import json
import statistics
from pathlib import Path
from typing import Any

import typer

bench_app = typer.Typer(
    help="Benchmarks that write JSON (medians, p95/p99, ratios).", no_args_is_help=True
)
BENCHMARKS = ("spawn", "terminal", "checks", "dashboard", "class_rehearsal", "capacity")


def register_all() -> None:
    for name in BENCHMARKS:
        importlib.import_module(f"app.bench.{name}").register(bench_app)


def percentile(values: list[float], fraction: float) -> float:
    """Nearest-rank percentile; ``fraction`` in [0, 1]."""
    if not values:
        return float("nan")
    ordered = sorted(values)
    rank = max(0, min(len(ordered) - 1, round(fraction * len(ordered) + 0.5) - 1))
    return ordered[rank]


def summarize(values: list[float]) -> dict[str, float]:
    """p50/p95/p99/max/mean of a list of measurements, rounded for JSON."""
    return {
        "count": len(values),
        "p50": round(statistics.median(values), 4) if values else float("nan"),
        "p95": round(percentile(values, 0.95), 4),
        "p99": round(percentile(values, 0.99), 4),
        "max": round(max(values), 4) if values else float("nan"),
        "mean": round(statistics.fmean(values), 4) if values else float("nan"),
    }


def emit(result: dict[str, Any], output: Path | None) -> None:
    """Print the JSON result, and write it to ``output`` when given."""
    text = json.dumps(result, indent=2, sort_keys=True)
    if output is not None:
        output.parent.mkdir(parents=True, exist_ok=True)
        output.write_text(text + "\n")
    typer.echo(text)
