"""From what the class saw to the JSON: summaries, the storm window, ratios to the floor, verdicts."""

from __future__ import annotations

import statistics
from collections import Counter
from dataclasses import dataclass, field
from typing import Any

from app.bench.class_rehearsal.attendee import Record, Timing
from app.bench.class_rehearsal.watchers import Watch
from app.bench.cli import summarize

TARGET_HAND_OUT_P95_MS = 200.0
TARGET_PAGES_P99_MS = 300.0
ERROR_SAMPLES = 10


@dataclass
class Floor:
    healthz: list[float]  # seconds, before anyone joined
    alone: dict[str, float] = field(default_factory=dict)  # task -> seconds, the class done
    raw: dict[str, Any] = field(default_factory=dict)  # see floor.measure_floor
    class_seconds: float = 0.0
    busy_cpu_seconds: float = 0.0
    start_seconds: float = 0.0
    warm_pool_seconds: float = 0.0
    settle_seconds: float = 0.0  # from the pool's last sandbox ready to a quiet machine
    busy_cores_before: float = 0.0  # the machine when the class arrived


def ms(timings: list[Timing]) -> dict[str, float]:
    return summarize([t.seconds * 1000 for t in timings])


def seconds(timings: list[Timing]) -> dict[str, float]:
    return summarize([t.seconds for t in timings])


def by_route(timings: list[Timing]) -> dict[str, dict[str, float]]:
    routes = sorted({t.what for t in timings})
    return {route: ms([t for t in timings if t.what == route]) for route in routes}


def ratio(top: float, bottom: float) -> float | None:
    return round(top / bottom, 2) if bottom and top == top and bottom == bottom else None


def task_ratios(record: Record, floor: Floor) -> dict[str, float | None]:
    """Per task, the class's median check over the same task checked alone and as raw execs;
    the median of those ratios. Only tasks whose checks still pass at the end count: a check
    that now fails is a different measurement."""
    raw: dict[str, float] = floor.raw.get("task_checks", {})
    usable = [task for task in raw if task in floor.alone and task not in floor.raw["failing"]]
    in_class = {
        task: statistics.median(t.seconds for t in record.checks if t.what == task)
        for task in usable
    }

    def median_ratio(top: dict[str, float], bottom: dict[str, float]) -> float | None:
        ratios = [top[task] / bottom[task] for task in usable if bottom[task]]
        return round(statistics.median(ratios), 2) if ratios else None

    return {
        "tasks_compared": len(usable),
        "check_class_to_alone_median": median_ratio(in_class, floor.alone),
        "check_alone_to_raw_median": median_ratio(floor.alone, raw),
        "check_class_to_raw_median": median_ratio(in_class, raw),
    }


def report(
    record: Record, watch: Watch, floor: Floor, attendees: int, warm_pool: int, tasks: int
) -> dict[str, Any]:
    # The storm: from the first join until the last terminal showed its prompt.
    storm_end = max((t.at for t in record.terminals_ready), default=floor.class_seconds)
    pages = record.pages + watch.instructor_pages
    storm_pages = [t for t in pages if t.at <= storm_end]
    storm_health = [t for t in watch.health if t.at <= storm_end]
    joins = ms(record.joins)
    checks = seconds(record.checks)
    health = ms(watch.health)
    errors = record.errors + watch.errors
    raw_checks = summarize(list(floor.raw.get("task_checks", {}).values()))
    alone = summarize(list(floor.alone.values()))
    floors = {
        "healthz_idle_ms": summarize([s * 1000 for s in floor.healthz]),
        "check_alone_seconds": alone,
        "check_raw_exec_seconds": raw_checks,
        "exec_true_ms": summarize([s * 1000 for s in floor.raw.get("exec_true", [])]),
        "raw_checks_failing": floor.raw.get("failing", []),
    }
    result = {
        "portal_start_seconds": round(floor.start_seconds, 1),
        "warm_pool_ready_seconds": round(floor.warm_pool_seconds, 1),
        "settle_seconds": round(floor.settle_seconds, 1),
        "busy_cores_when_the_class_arrived": round(floor.busy_cores_before, 2),
        "class_seconds": round(floor.class_seconds, 1),
        "storm_seconds": round(storm_end, 1),
        "machine_busy_cpu_seconds": round(floor.busy_cpu_seconds, 1),
        "errors": len(errors),
        "timeouts": len(record.timeouts),
        "error_samples": errors[:ERROR_SAMPLES],
        "timeout_samples": record.timeouts[:ERROR_SAMPLES],
        "joins": len(record.joins),
        "joins_done_seconds": round(max((t.at + t.seconds for t in record.joins), default=0), 1),
        "join_ms": joins,
        "hand_out_server_ms": ms(record.hand_outs),
        "sandbox_after_join": dict(Counter(record.states_after_join)),
        "terminals_ready": len(record.terminals_ready),
        "terminal_ready_seconds": seconds(record.terminals_ready),
        "pages_ms": ms(pages),
        "pages_ms_storm": ms(storm_pages),
        "pages_ms_by_route": by_route(pages),
        "healthz_ms": health,
        "healthz_ms_storm": ms(storm_health),
        "healthz_statuses": watch.health_statuses,
        "dashboard_updates_each": watch.dashboard_frames,
        "lesson_setup_seconds": seconds(record.setups),
        "typing_seconds": seconds(record.steps),
        "check_seconds": checks,
        "check_seconds_by_task": {
            task: seconds([t for t in record.checks if t.what == task])["p50"]
            for task in dict.fromkeys(t.what for t in record.checks)
        },
        "tasks_expected": attendees * tasks,
        "tasks_passed": len(record.passed),
        "tasks_not_passed": record.not_passed[:ERROR_SAMPLES],
        "steps_with_nonzero_exit": record.nonzero_steps[:ERROR_SAMPLES],
        "floor": floors,
        "ratios": {
            **task_ratios(record, floor),
            "healthz_p99_to_idle_p50": ratio(health["p99"], floors["healthz_idle_ms"]["p50"]),
        },
    }
    result["targets"] = {
        "hand_out_p95_ms": TARGET_HAND_OUT_P95_MS,
        "pages_p99_ms_storm": TARGET_PAGES_P99_MS,
    }
    result["met"] = verdicts(result, attendees, warm_pool, tasks)
    return result


def verdicts(result: dict[str, Any], attendees: int, warm_pool: int, tasks: int) -> dict[str, Any]:
    handed_out = warm_pool >= attendees  # a hand-out target means every join found a warm one
    return {
        "no_errors": result["errors"] == 0,
        "no_timeouts": result["timeouts"] == 0,
        "every_terminal_ready": result["terminals_ready"] == attendees,
        "every_task_passed": result["tasks_passed"] == attendees * tasks,
        "healthz_always_ok": set(result["healthz_statuses"]) <= {"200"},
        "hand_out_p95_ms": result["join_ms"]["p95"] <= TARGET_HAND_OUT_P95_MS
        if handed_out
        else None,
        "pages_p99_ms_storm": result["pages_ms_storm"]["p99"] <= TARGET_PAGES_P99_MS,
    }
