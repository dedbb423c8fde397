"""Issue 15, item 5: the imported tasks of our Killercoda-style scenarios are proven on real
sandboxes by `labdeck content verify`: each fails on a fresh sandbox and passes once its
solution (the step's exec commands) ran. The controls show what each scenario exercises: with
checks as `learner` (LabDeck before issue 15) the root-only ones cannot pass, a setup that
logs to /ks fails, and a setup that fails is reported as such, never as ready."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

from app.lessons.killercoda import import_killercoda
from app.sandboxes.docker.engine import docker_client
from tests.support.killercoda import RECIPES, SCENARIOS, USED_SCENARIOS
from tests.support.settings import REPO

pytestmark = pytest.mark.docker

INSTANCE = f"test-{os.getpid()}-kc"
# The ids of each scenario's imported tasks.
TASKS = {
    "root-verify": ["leave-a-greeting", "name-a-container"],
    "ks-logs": ["tag-your-own-copy"],
    "assets-targets": ["greet-from-a-copied-script", "build-the-copied-app"],
    "traffic-links": ["serve-a-page"],
    "legacy-markers": ["create-a-volume"],
    "unclosed-details": ["create-a-network"],
    "images-used": ["pull-the-small-image"],
}


def imported(name: str, tmp_path: Path) -> Path:
    return import_killercoda(SCENARIOS / name, tmp_path / name, RECIPES).path


def verify(tmp_path: Path, workshop: Path) -> subprocess.CompletedProcess[str]:
    env = {key: value for key, value in os.environ.items() if not key.startswith("LABDECK_")}
    env |= {"LABDECK_INSTANCE": INSTANCE, "LABDECK_DATA_DIR": str(tmp_path / "data")}
    command = [sys.executable, "-m", "app", "content", "verify", str(workshop)]
    return subprocess.run(
        command, cwd=REPO, env=env, capture_output=True, text=True, timeout=600, check=False
    )


def rows(output: str) -> dict[str, list[str]]:
    """Table rows by task, without the seconds."""
    table = output[output.index("task ") :].split("\n\n")[0]
    return {line.split()[0]: line.split()[1:-1] for line in table.splitlines()[1:]}


def as_learner(workshop: Path) -> None:
    """The workshop as LabDeck ran imports before issue 15: every script as `learner`."""
    for file in [workshop / "workshop.yaml", *workshop.glob("*.md")]:
        text = re.sub(
            r"^(\s*)(user|setup_user): root$", r"\1\2: learner", file.read_text(), flags=re.M
        )
        file.write_text(text)


def left_behind() -> list[str]:
    client = docker_client()
    try:
        return [c.name for c in client.containers.list(all=True) if c.name.startswith(INSTANCE)]
    finally:
        client.close()


def test_every_scenario_is_proven() -> None:
    assert sorted(TASKS) == sorted(USED_SCENARIOS)


@pytest.mark.parametrize("name", USED_SCENARIOS)
def test_imported_tasks_fail_fresh_and_pass_once_solved(name: str, tmp_path: Path) -> None:
    done = verify(tmp_path, imported(name, tmp_path))
    assert done.returncode == 0, done.stdout + done.stderr
    assert rows(done.stdout) == {task: ["ok", "ok", "(solution)", "ok"] for task in TASKS[name]}
    assert left_behind() == []


def test_root_only_checks_cannot_pass_as_learner(tmp_path: Path) -> None:
    workshop = imported("root-verify", tmp_path)
    as_learner(workshop)
    done = verify(tmp_path, workshop)
    assert done.returncode == 1
    assert rows(done.stdout) == {
        "leave-a-greeting": ["ok", "ok", "(solution)", "1/1", "failed"],
        "name-a-container": ["ok", "ok", "(solution)", "1/1", "failed"],
    }
    assert "Permission denied" in done.stdout


def test_a_setup_logging_to_ks_fails_as_learner_and_says_so(tmp_path: Path) -> None:
    """As `learner` the background script cannot write /ks, so the foreground script waits for
    it for ever: killed at the setup's timeout (10 s here), and said."""
    workshop = imported("ks-logs", tmp_path)
    as_learner(workshop)
    meta = workshop / "workshop.yaml"
    meta.write_text(meta.read_text().replace("timeout: 300", "timeout: 10"))
    done = verify(tmp_path, workshop)
    assert done.returncode == 1
    assert rows(done.stdout)["tag-your-own-copy"][:1] == ["unavailable"]
    assert "The workshop's setup failed in your sandbox (it did not finish within 10 s)" in (
        done.stdout
    )


def test_a_failing_setup_is_never_ready(tmp_path: Path) -> None:
    done = verify(tmp_path, imported("failing-setup", tmp_path))
    assert done.returncode == 1
    assert rows(done.stdout)["use-the-prepared-file"][:1] == ["unavailable"]
    assert "This lesson's setup failed in your sandbox (it ended with exit status 1)" in done.stdout
    assert left_behind() == []
