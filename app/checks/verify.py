"""`labdeck content verify`: proof that each task's checks tell the truth (issue 15, item 3).

Each task gets a sandbox of its own, fresh as an attendee is handed one, and in it: the checks
fail (after the lesson's setup, as when the attendee opens the lesson), the solution runs as
the attendee would type it (``do`` in proofs.yaml, else the bash fences of the task's
``solution``), and the checks pass. Checks run through ``CheckService.check``, the path the
Check button takes; tasks run side by side, at most ``parallel`` sandboxes at once.
"""

from __future__ import annotations

import asyncio
import secrets
import signal
import tempfile
import time
from collections.abc import Callable, Coroutine, Sequence
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any, TypeVar

from app.checks.runner import trim_output
from app.checks.verdicts import (
    SKIPPED,
    Step,
    Verdict,
    describe,
    failed_fresh,
    indented,
    passed_after,
)
from app.config import Settings
from app.lessons.markdown import FenceInfo, parser
from app.lessons.proofs import MissingProofs, Proof, load_proofs
from app.lessons.schema import Lesson, Task, Workshop
from app.ports import free_port
from app.sandboxes.base import SandboxError, SandboxUnavailable
from app.sandboxes.lab import Lab, throwaway_lab

SOLUTION_TIMEOUT_SECONDS = 300.0
SHELL_FENCES = {"bash", "sh", "shell"}
NO_SOLUTION = "no solution script"
NO_SOLUTION_HELP = "write its steps in proofs.yaml, or a bash block in the task's solution."
Progress = Callable[[str], None]
T = TypeVar("T")


@dataclass(frozen=True)
class Trial:
    """One task to verify, with its solution script (None: it has none) and where it is from."""

    lesson: Lesson
    task: Task
    script: str | None
    source: str = ""


def plan(workshop: Workshop, task_id: str | None = None) -> list[Trial]:
    """Every task of ``workshop`` in lesson order (only ``task_id`` when given)."""
    try:
        proofs = load_proofs(workshop)
    except MissingProofs:
        proofs = {}
    return [
        _trial(lesson, task, proofs.get(task.id))
        for lesson in workshop.lessons
        for task in lesson.tasks
        if task_id in (None, task.id)
    ]


def solution_fences(solution: str | None) -> str | None:
    """The shell code blocks of a task's ``solution`` Markdown, joined; None when it has none."""
    tokens = parser().parse(solution or "")
    blocks = [
        token.content
        for token in tokens
        if token.type == "fence" and FenceInfo.parse(token.info).lang in SHELL_FENCES
    ]
    return "".join(blocks) or None


def _trial(lesson: Lesson, task: Task, proof: Proof | None) -> Trial:
    if proof is not None:
        return Trial(lesson, task, proof.do, "proofs.yaml")
    script = solution_fences(task.solution)
    return Trial(lesson, task, script, "solution" if script else "")


def throwaway_settings(settings: Settings, data_dir: Path, parallel: int) -> Settings:
    """The settings of an instance of its own (``<instance>-verify-<hex>``), so it never
    touches what a serving portal made, and the sweep of tests finds what it leaves."""
    instance = f"{settings.instance[:17]}-verify-{secrets.token_hex(3)}"
    changes = {"instance": instance, "data_dir": data_dir, "warm_pool_size": 0}
    changes |= {"registry_port": free_port("0.0.0.0"), "spawn_workers": parallel}
    return settings.model_copy(update=changes)


def run(
    settings: Settings, workshop: Workshop, trials: Sequence[Trial], parallel: int, say: Progress
) -> list[Verdict]:
    """``verify_workshop``, blocking. Ctrl-C or SIGTERM stop it once all it made is removed
    (KeyboardInterrupt). Raises ``SandboxError`` when no sandbox can be made."""
    try:
        with asyncio.Runner() as runner:
            work = verify_workshop(settings, workshop, trials, parallel, say)
            return runner.run(_cancelled_by_sigterm(work))
    except asyncio.CancelledError:  # SIGTERM; Ctrl-C is KeyboardInterrupt already
        raise KeyboardInterrupt from None


async def _cancelled_by_sigterm(work: Coroutine[Any, Any, T]) -> T:
    loop, task = asyncio.get_running_loop(), asyncio.current_task()
    assert task is not None
    loop.add_signal_handler(signal.SIGTERM, task.cancel)
    try:
        return await work
    finally:
        loop.remove_signal_handler(signal.SIGTERM)


async def verify_workshop(
    settings: Settings, workshop: Workshop, trials: Sequence[Trial], parallel: int, say: Progress
) -> list[Verdict]:
    """Verify ``trials`` on sandboxes of a throw-away instance, removed on the way out."""
    with tempfile.TemporaryDirectory(prefix="labdeck-verify-") as data_dir:
        own = throwaway_settings(settings, Path(data_dir), parallel)
        say(f"setting up {own.instance} ({own.sandbox_backend} backend)")
        async with throwaway_lab(own, workshop) as lab:
            verdicts = await verify_trials(lab, trials, parallel, say)
            say(f"removing {own.instance}")
            return verdicts


async def verify_trials(
    lab: Lab, trials: Sequence[Trial], parallel: int, say: Progress
) -> list[Verdict]:
    """One verdict per trial, in the order given; at most ``parallel`` run at once."""
    turns = asyncio.Semaphore(parallel)
    done: list[str] = []

    async def take_turn(trial: Trial) -> Verdict:
        async with turns:
            say(f"started  {trial.task.id}")
            verdict = await verify_trial(lab, trial)
            done.append(trial.task.id)
            mark = "ok      " if verdict.ok else "MISMATCH"
            say(f"{mark} {trial.task.id} in {verdict.seconds:.1f} s ({len(done)}/{len(trials)})")
            return verdict

    return list(await asyncio.gather(*(take_turn(trial) for trial in trials)))


async def verify_trial(lab: Lab, trial: Trial) -> Verdict:
    """Checks fail fresh, the solution runs, checks pass: in a new sandbox, removed after."""
    started = time.perf_counter()
    attendee_id = lab.add_attendee(f"verify {trial.task.id}")
    try:
        sandbox = await lab.sandbox_for(attendee_id)
        verdict = await _prove(lab, attendee_id, sandbox, trial)
    except (SandboxUnavailable, SandboxError) as error:
        unavailable = Step(False, "unavailable")
        verdict = Verdict(trial.task.id, unavailable, SKIPPED, SKIPPED, 0, f"  {error}\n")
    finally:
        await lab.sandboxes.release(attendee_id)
    return replace(verdict, seconds=time.perf_counter() - started)


async def _prove(lab: Lab, attendee_id: int, sandbox: str, trial: Trial) -> Verdict:
    lesson, task = trial.lesson, trial.task
    fresh = await lab.checks.check(attendee_id, lesson, task)
    fail_fresh = failed_fresh(fresh)
    details = "" if fail_fresh.ok else f"  on a fresh sandbox:\n{describe(fresh)}"
    if trial.script is None:
        details += f"  {NO_SOLUTION}: {NO_SOLUTION_HELP}\n"
        return Verdict(task.id, fail_fresh, Step(False, NO_SOLUTION), SKIPPED, 0, details)
    ran = await lab.sandboxes.backend.exec(
        sandbox, f"set -e\n{trial.script}", user="learner", timeout=SOLUTION_TIMEOUT_SECONDS
    )
    if ran.timed_out or ran.exit_code != 0:
        failed = "timed out" if ran.timed_out else f"exit {ran.exit_code}"
        details += (
            f"  the solution ({trial.source}), {failed}:\n{indented(trim_output(ran.output))}"
        )
        return Verdict(task.id, fail_fresh, Step(False, failed), SKIPPED, 0, details)
    after = await lab.checks.check(attendee_id, lesson, task)
    if not after.passed:
        details += f"  after the solution ({trial.source}):\n{describe(after)}"
    solution = Step(True, f"ok ({trial.source})")
    return Verdict(task.id, fail_fresh, solution, passed_after(after), 0, details)
