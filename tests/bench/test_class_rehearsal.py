"""`labdeck bench class`, run as an operator runs it (a subprocess writing JSON): scripted attendees
join a real portal with real sandboxes, type each task's steps into their terminals and press
Check. A small class in every run; the full rehearsals of issue 12 with LABDECK_BENCH=1."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from tests.support.settings import REPO

pytestmark = pytest.mark.docker
FULL = pytest.mark.skipif(
    not os.environ.get("LABDECK_BENCH"), reason="set LABDECK_BENCH=1: 30 and 100 real sandboxes"
)


def rehearse(tmp_path: Path, *options: str, timeout: float) -> dict[str, Any]:
    """Run the bench under a test instance name (the session sweep knows it) and read its JSON."""
    output = tmp_path / "class.json"
    command = [sys.executable, "-m", "app", "bench", "class", "--output", str(output)]
    instance = f"test-{os.getpid()}-class"
    env = {**os.environ, "LABDECK_CONTENT_DIR": str(REPO / "content")}
    done = subprocess.run(
        [*command, "--instance", instance, *options],
        cwd=REPO,
        env=env,
        capture_output=True,
        text=True,
        timeout=timeout,
    )
    assert done.returncode == 0, done.stderr[-3000:]
    result: dict[str, Any] = json.loads(output.read_text())
    return result


def assert_clean_class(result: dict[str, Any], attendees: int, tasks: int) -> None:
    assert result["errors"] == 0, result["error_samples"]
    assert result["timeouts"] == 0, result["timeout_samples"]
    assert result["joins"] == result["terminals_ready"] == attendees
    assert result["tasks_expected"] == attendees * tasks
    assert result["tasks_passed"] == attendees * tasks, result["tasks_not_passed"]
    assert result["healthz_statuses"].keys() == {"200"}
    assert result["portal_log"]["tracebacks"] == 0, result["portal_log"]
    assert result["leftovers"] == []


def test_three_attendees_do_the_first_lessons_and_pass(tmp_path: Path) -> None:
    result = rehearse(
        tmp_path, "--attendees", "3", "--tasks", "4", "--dashboards", "1", timeout=900
    )

    assert_clean_class(result, attendees=3, tasks=4)
    assert result["sandbox_after_join"] == {"ready": 3}  # a warm pool of one each
    assert result["check_seconds"]["count"] == 12
    assert result["lesson_setup_seconds"]["count"] == 3 * 2  # two lessons each
    assert min(result["dashboard_updates_each"]) > 0  # the dashboard saw the class
    floor = result["floor"]
    assert floor["check_alone_seconds"]["count"] == floor["check_raw_exec_seconds"]["count"] == 4
    assert floor["raw_checks_failing"] == []
    assert result["ratios"]["tasks_compared"] == 4
    assert result["ratios"]["check_class_to_raw_median"] > 0


@FULL
def test_thirty_attendees_do_every_task(tmp_path: Path) -> None:
    result = rehearse(tmp_path, "--attendees", "30", timeout=3600)

    tasks = result["tasks_each"]
    assert tasks >= 17
    assert_clean_class(result, attendees=30, tasks=tasks)
    assert result["check_seconds"]["count"] == 30 * tasks
    assert result["healthz_ms"]["p99"] > 0  # recorded


@FULL
def test_a_warm_pool_of_a_hundred_serves_a_hundred_joins_within_thirty_seconds(
    tmp_path: Path,
) -> None:
    result = rehearse(
        tmp_path,
        *("--attendees", "100", "--warm-pool", "100", "--tasks", "0", "--arrivals", "30"),
        timeout=3600,
    )

    assert_clean_class(result, attendees=100, tasks=0)
    assert result["sandbox_after_join"] == {"ready": 100}  # each join handed a warm one out
    # Arrivals are spread over 30 s: the last one, near 30 s, is answered within a second too.
    assert result["joins_done_seconds"] <= result["arrivals_seconds"] + 1.0
    assert result["join_ms"]["p95"] > 0 and result["pages_ms_storm"]["p99"] > 0  # recorded
