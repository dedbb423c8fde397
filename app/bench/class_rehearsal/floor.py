"""The floor, measured in the same run: the same checks as plain `docker exec`s into a sandbox of
the class, without the portal (and `true`, the least an exec costs). Blocking docker-py calls."""

from __future__ import annotations

import time
from typing import Any

from app.lessons.schema import Task
from app.sandboxes.docker.engine import docker_client

HOME = "/home/learner"


def exec_seconds(client: Any, container: str, command: list[str]) -> tuple[float, int]:
    """Seconds for one exec as the attendee's user, and its exit code."""
    started = time.perf_counter()
    exec_id = client.api.exec_create(container, command, user="learner", workdir=HOME)["Id"]
    client.api.exec_start(exec_id)
    exit_code = int(client.api.exec_inspect(exec_id).get("ExitCode") or 0)
    return time.perf_counter() - started, exit_code


def measure_floor(container: str, tasks: list[Task], count: int = 10) -> dict[str, Any]:
    """Seconds per exec of `true`; seconds per task for its checks, each a `bash -lc` exec as the
    checks run them; the tasks whose raw checks did not all pass (a later task changed what an
    earlier one made: restarting the engine stops containers without a restart policy)."""
    client = docker_client()
    try:
        true_seconds = [exec_seconds(client, container, ["true"])[0] for _ in range(count)]
        per_task, failing = {}, []
        for task in tasks:
            runs = [exec_seconds(client, container, ["bash", "-lc", c.run]) for c in task.checks]
            per_task[task.id] = sum(took for took, _ in runs)
            if any(exit_code != 0 for _, exit_code in runs):
                failing.append(task.id)
    finally:
        client.close()
    return {"exec_true": true_seconds, "task_checks": per_task, "failing": failing}
