"""The proof that every task's checks can be trusted, on one real sandbox (issue 6, item 5).

For each task of content/docker-basics, in lesson order, on a sandbox reset to a fresh state
(the lesson's setup run as when the attendee opens the lesson):
  (a) the checks fail, and each failing check carries its message (the hint);
  (b) doing the task as an attendee would (the steps in content/docker-basics/proofs.yaml, run
      through backend.exec as `learner`, the terminal's user) makes every check pass;
  (c) a near miss (almost right) fails, at the check named in the table.
Checks run through CheckService.check, the path the Check button takes.
"""

from __future__ import annotations

import asyncio
import os
from collections.abc import Iterator

import pytest

from app.checks.service import TaskRun
from app.lessons.loader import load_workshop
from app.lessons.proofs import load_proofs
from app.lessons.schema import Lesson, Task
from app.sandboxes.lab import Lab, throwaway_lab
from tests.support.live_server import free_port
from tests.support.settings import REPO, TEST_LABELS, settings_for

pytestmark = pytest.mark.docker

WORKSHOP = load_workshop(REPO / "content" / "docker-basics")


# What an attendee types for each task, and a near miss: content/docker-basics/proofs.yaml,
# which the class rehearsal (`labdeck bench class`) types too.
PROOFS = load_proofs(WORKSHOP)

# Back to a fresh sandbox between phases: no containers, volumes, networks or images of the
# attendee's (the workshop's base images stay, to save pulls), an empty home, and the engine
# settings the sandbox started with.
RESET = """docker ps -aq | xargs -r docker rm -f >/dev/null
docker volume ls -q | xargs -r docker volume rm -f >/dev/null
docker network prune -f >/dev/null
docker images --format '{{.Repository}}:{{.Tag}}' \\
  | grep -vxE 'busybox:latest|debian:bookworm-slim|registry:2|<none>:<none>' \\
  | grep -v ':<none>$' | xargs -r docker rmi -f >/dev/null
docker image prune -f >/dev/null
find /home/learner -mindepth 1 -maxdepth 1 ! -name .bashrc ! -name .profile \\
  ! -name .bash_logout -exec rm -rf {} +
"""
SAVED_ENGINE_SETTINGS = "/etc/labdeck/proof-daemon.json"
RESTORE_ENGINE_SETTINGS = f"""if ! cmp -s /etc/docker/daemon.json {SAVED_ENGINE_SETTINGS}; then
  cp {SAVED_ENGINE_SETTINGS} /etc/docker/daemon.json
  service docker restart >/dev/null
  for i in $(seq 100); do docker info >/dev/null 2>&1 && break; sleep 0.2; done
fi"""


class Proving:
    """One attendee with one real sandbox, and an event loop to drive it from plain tests."""

    def __init__(self, runner: asyncio.Runner, lab: Lab, attendee_id: int, sandbox: str) -> None:
        self.runner = runner
        self.lab = lab
        self.attendee_id = attendee_id
        self.sandbox = sandbox

    def shell(self, script: str, *, user: str = "learner", timeout: float = 300) -> str:
        backend = self.lab.sandboxes.backend
        result = self.runner.run(
            backend.exec(self.sandbox, f"set -e\n{script}", user=user, timeout=timeout)
        )
        assert result.exit_code == 0 and not result.timed_out, (
            f"the steps failed (exit {result.exit_code}):\n{script}\n"
            f"--- output ---\n{result.output}"
        )
        return result.output

    def fresh(self, lesson: Lesson) -> None:
        self.shell(RESTORE_ENGINE_SETTINGS, user="root")
        self.shell(RESET, user="root")  # root: the engine may have left root-owned files
        if lesson.setup:  # as when the attendee opens the lesson
            self.shell(lesson.setup)

    def check(self, lesson: Lesson, task: Task) -> TaskRun:
        return self.runner.run(self.lab.checks.check(self.attendee_id, lesson, task))

    def attempt(self, lesson: Lesson, task: Task, steps: str = "") -> TaskRun:
        """Check ``task`` after ``steps`` on a fresh sandbox (no steps: as it is handed out)."""
        self.fresh(lesson)
        if steps:
            self.shell(steps)
        return self.check(lesson, task)


@pytest.fixture(scope="module")
def proving(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Proving]:
    settings = settings_for(
        tmp_path_factory.mktemp("proofs"),
        f"test-{os.getpid()}-proof",
        registry_port=free_port(),
        warm_pool_size=0,
    )
    with asyncio.Runner() as runner:
        lab_context = throwaway_lab(settings, WORKSHOP, TEST_LABELS)
        lab = runner.run(lab_context.__aenter__())
        try:
            attendee_id = lab.add_attendee("prover")
            sandbox = runner.run(lab.sandbox_for(attendee_id))
            proving = Proving(runner, lab, attendee_id, sandbox)
            proving.shell(
                "mkdir -p /etc/docker && touch /etc/docker/daemon.json\n"
                f"cp /etc/docker/daemon.json {SAVED_ENGINE_SETTINGS}",
                user="root",
            )
            yield proving
        finally:
            runner.run(lab_context.__aexit__(None, None, None))


def describe(run: TaskRun) -> str:
    return (
        "\n".join(f"  {c.status:9} {c.name}: {c.message}\n{c.output}" for c in run.checks)
        or f"  unavailable: {run.unavailable}"
    )


def test_every_proof_is_for_a_task_of_the_workshop() -> None:
    tasks = {task.id for task in WORKSHOP.all_tasks()}
    assert set(PROOFS) <= tasks, f"proofs for tasks that no longer exist: {set(PROOFS) - tasks}"


@pytest.mark.parametrize("task_id", [task.id for task in WORKSHOP.all_tasks()])
def test_task_checks_fail_fresh_pass_when_done_and_fail_a_near_miss(
    task_id: str, proving: Proving
) -> None:
    proof = PROOFS.get(task_id)
    if proof is None:
        pytest.fail(f"task {task_id} has no proof: add its steps and a near miss to PROOFS")
    found = WORKSHOP.task(task_id)
    assert found is not None
    lesson, task = found
    hints = {check.name: check.message.strip() for check in task.checks}

    fresh = proving.attempt(lesson, task)
    assert fresh.status == "failed", f"(a) a fresh sandbox must fail:\n{describe(fresh)}"
    for result in fresh.checks:
        assert result.passed or result.message.endswith(hints[result.name]), describe(fresh)

    near = proving.attempt(lesson, task, proof.near_miss)
    failed = {c.name for c in near.checks if not c.passed}
    assert near.status == "failed" and proof.near_miss_fails in failed, (
        f"(c) the near miss must fail '{proof.near_miss_fails}':\n{describe(near)}"
    )

    done = proving.attempt(lesson, task, proof.do)
    assert done.passed, f"(b) doing the task must pass:\n{describe(done)}"
