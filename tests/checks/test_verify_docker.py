"""`labdeck content verify` for real: the command, on real sandboxes of a throw-away instance,
proves every task of content/ (docker-basics), reports a broken workshop and leaves nothing
behind. (test_task_proofs.py proves the near misses too, on one sandbox.)"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from app.lessons.loader import load_workshop
from app.sandboxes.docker.engine import docker_client
from tests.support.checks import FIXTURES
from tests.support.settings import REPO

pytestmark = pytest.mark.docker

INSTANCE = f"test-{os.getpid()}-verify"


def verify(tmp_path: Path, *args: str) -> subprocess.CompletedProcess[str]:
    env = {key: value for key, value in os.environ.items() if not key.startswith("LABDECK_")}
    env |= {"LABDECK_INSTANCE": INSTANCE, "LABDECK_DATA_DIR": str(tmp_path / "data")}
    command = [sys.executable, "-m", "app", "content", "verify", *args]
    return subprocess.run(
        command, cwd=REPO, env=env, capture_output=True, text=True, timeout=600, check=False
    )


def rows(output: str) -> dict[str, list[str]]:
    """Table rows by task, without the seconds."""
    table = output[output.index("task ") :].split("\n\n")[0]
    return {line.split()[0]: line.split()[1:-1] for line in table.splitlines()[1:]}


def left_behind() -> list[str]:
    client = docker_client()
    try:
        return [
            container.name
            for container in client.containers.list(all=True)
            if container.name.startswith(INSTANCE)
        ]
    finally:
        client.close()


def test_every_task_of_the_content_verifies(tmp_path: Path) -> None:
    tasks = [task.id for task in load_workshop(REPO / "content" / "docker-basics").all_tasks()]
    done = verify(tmp_path, "docker-basics", "--parallel", "2")
    assert done.returncode == 0, done.stdout + done.stderr
    assert rows(done.stdout) == {task: ["ok", "ok", "(proofs.yaml)", "ok"] for task in tasks}
    assert f"OK: {len(tasks)} task(s) verified" in done.stdout
    assert "started  run-hello-world" in done.stderr and "ok       run-hello-world" in done.stderr
    assert left_behind() == []


def test_one_task_is_verified_alone(tmp_path: Path) -> None:
    done = verify(tmp_path, "docker-basics", "--task", "run-hello-world")
    assert done.returncode == 0, done.stdout + done.stderr
    assert rows(done.stdout) == {"run-hello-world": ["ok", "ok", "(proofs.yaml)", "ok"]}


def test_a_broken_workshop_fails_with_each_mismatch_named(tmp_path: Path) -> None:
    done = verify(tmp_path, str(FIXTURES / "verify-demo"), "--parallel", "3")
    assert done.returncode == 1, done.stdout + done.stderr
    assert rows(done.stdout) == {
        "make-file": ["ok", "ok", "(proofs.yaml)", "ok"],
        "from-solution": ["ok", "ok", "(solution)", "ok"],
        "always-passes": ["all", "passed", "ok", "(solution)", "ok"],
        "broken-solution": ["ok", "exit", "1", "skipped"],
        "no-solution": ["ok", "no", "solution", "script", "skipped"],
    }
    assert "no such luck" in done.stdout
    assert left_behind() == []
