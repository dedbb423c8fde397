"""`labdeck content ...`: check workshops, verify their tasks on real sandboxes, and import
Killercoda scenarios."""

from __future__ import annotations

import time
from functools import partial
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer
from rich.console import Console

from app.config import Settings
from app.lessons.killercoda import KillercodaImportError, import_killercoda
from app.lessons.loader import META_FILE, find_workshops, is_workshop, load_workshop
from app.lessons.problems import ContentError, ContentProblem
from app.lessons.schema import Workshop
from app.lessons.validate import check_workshop
from app.sandboxes.base import SandboxError
from app.workshops import WorkshopNotFound, describe_problems, workshops_named

if TYPE_CHECKING:
    from app.checks.verify import Trial

content_app = typer.Typer(
    help="Check and verify workshop content, and import Killercoda scenarios.",
    no_args_is_help=True,
)


@content_app.command("check")
def check(
    path: Annotated[
        Path,
        typer.Argument(help="A workshop folder, or a folder of workshops (default: ./content)."),
    ] = Path("content"),
) -> None:
    """Report every problem in the workshop(s) as file:line: message; exit 1 if there is any."""
    console = Console(highlight=False, soft_wrap=True)
    workshops = [path] if is_workshop(path) else find_workshops(path)
    if not workshops:
        console.print(f"No workshops found in {path}: a workshop is a folder with {META_FILE}.")
        raise typer.Exit(1)
    problems = [problem for workshop in workshops for problem in check_workshop(workshop)]
    if problems:
        _print_problems(console, problems)
        raise typer.Exit(1)
    console.print(_summary(workshops), style="green", markup=False)


@content_app.command("verify")
def verify(
    workshop: Annotated[
        str | None,
        typer.Argument(
            help="A folder name under the content folder, or a workshop's path "
            "(default: LABDECK_WORKSHOP, else every workshop)."
        ),
    ] = None,
    task: Annotated[str | None, typer.Option("--task", help="Verify only this task.")] = None,
    parallel: Annotated[
        int, typer.Option("--parallel", min=1, help="Sandboxes at once (each task has its own).")
    ] = 2,
) -> None:
    """Prove each task on real sandboxes: its checks fail on a fresh sandbox, its solution runs,
    then they pass. Prints a table; exits 1 on any mismatch."""
    from app.checks import verdicts
    from app.checks.verify import plan

    console = Console(highlight=False, soft_wrap=True)
    settings = Settings()
    plans = [(found, plan(found, task)) for found in _chosen(settings, workshop)]
    if not any(trials for _, trials in plans):
        names = ", ".join(found.slug for found, _ in plans)
        console.print(f"No task {task} in {names}.", style="red", markup=False)
        raise typer.Exit(1)
    started = time.perf_counter()
    results = [_verify_one(console, settings, *each, parallel) for each in plans if each[1]]
    tasks, all_ok = sum(len(trials) for _, trials in plans), all(results)
    conclusion = verdicts.conclusion(tasks, all_ok, time.perf_counter() - started)
    console.print(conclusion, style="green" if all_ok else "red", markup=False)
    if not all_ok:
        raise typer.Exit(1)


def _verify_one(
    console: Console, settings: Settings, workshop: Workshop, trials: list[Trial], parallel: int
) -> bool:
    """Verify one workshop's ``trials`` and print its report; True when all of them verify."""
    from app.checks import verdicts, verify

    progress = Console(stderr=True, highlight=False, soft_wrap=True)
    say = partial(_say, progress, workshop.slug)
    try:
        found = verify.run(settings, workshop, trials, parallel, say)
    except SandboxError as error:
        console.print(f"No sandboxes for {workshop.slug}: {error}", style="red", markup=False)
        raise typer.Exit(1) from None
    except KeyboardInterrupt:
        progress.print("Stopped; what it made is removed.", markup=False)
        raise typer.Exit(130) from None
    console.print(verdicts.report(workshop.slug, found), markup=False)
    return all(verdict.ok for verdict in found)


@content_app.command("import-killercoda")
def import_killercoda_command(
    src: Annotated[Path, typer.Argument(help="The scenario folder (with index.json).")],
    dest: Annotated[Path, typer.Argument(help="The new workshop folder, e.g. content/my-lab.")],
) -> None:
    """Convert a Killercoda scenario into a workshop folder, report what did not carry over,
    then check it."""
    from app.sandboxes.backends import image_recipes

    console = Console(highlight=False, soft_wrap=True)
    try:
        imported = import_killercoda(src, dest, image_recipes(Settings()))
    except KillercodaImportError as error:
        console.print(str(error), style="red", markup=False)
        raise typer.Exit(1) from None
    workshop_dir = imported.path
    console.print(f"Imported {src} into {workshop_dir}.", markup=False)
    if report := imported.report.text():
        console.print("Import report:", markup=False)
        console.print(report.rstrip("\n"), markup=False)
    problems = check_workshop(workshop_dir)
    if problems:
        _print_problems(console, problems)
        console.print("Fix these problems before serving the workshop.", markup=False)
        raise typer.Exit(1)
    console.print(_summary([workshop_dir]), style="green", markup=False)


def _chosen(settings: Settings, name: str | None) -> list[Workshop]:
    """The workshops a WORKSHOP argument names; stops with a sentence when there are none."""
    try:
        return workshops_named(settings, name)
    except WorkshopNotFound as error:
        Console(highlight=False, soft_wrap=True).print(str(error), style="red", markup=False)
        raise typer.Exit(1) from None
    except ContentError as error:
        console = Console(highlight=False, soft_wrap=True)
        console.print(describe_problems(error), markup=False)
        console.print("Fix these problems first (`labdeck content check`).", markup=False)
        raise typer.Exit(1) from None


def _say(console: Console, workshop: str, line: str) -> None:
    console.print(f"[verify {workshop}] {line}", markup=False)


def _print_problems(console: Console, problems: list[ContentProblem]) -> None:
    for problem in problems:
        console.print(str(problem), markup=False)
    console.print(f"{len(problems)} problem(s) found.", style="red", markup=False)


def _summary(workshop_dirs: list[Path]) -> str:
    workshops = [load_workshop(path) for path in workshop_dirs]
    lessons = sum(len(workshop.lessons) for workshop in workshops)
    tasks = sum(len(workshop.all_tasks()) for workshop in workshops)
    questions = sum(len(lesson.questions) for w in workshops for lesson in w.lessons)
    return (
        f"OK: {len(workshops)} workshop(s), {lessons} lessons, {tasks} tasks, "
        f"{questions} questions, no problems."
    )
