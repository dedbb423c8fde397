"""`labdeck content ...`: check workshops and import Killercoda scenarios."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console

from app.lessons.killercoda import KillercodaImportError, import_killercoda
from app.lessons.loader import LESSON_FILE_NAME, META_FILE, find_workshops, load_workshop
from app.lessons.problems import ContentProblem
from app.lessons.validate import check_workshop

content_app = typer.Typer(
    help="Check workshop content and import Killercoda scenarios.", no_args_is_help=True
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
    workshops = [path] if _is_workshop(path) else find_workshops(path)
    if not workshops:
        console.print(f"No workshops found in {path}: a workshop is a folder with {META_FILE}.")
        raise typer.Exit(1)
    problems = [problem for workshop in workshops for problem in check_workshop(workshop)]
    if problems:
        _print_problems(console, problems)
        raise typer.Exit(1)
    console.print(_summary(workshops), style="green", markup=False)


@content_app.command("import-killercoda")
def import_killercoda_command(
    src: Annotated[Path, typer.Argument(help="The scenario folder (with index.json).")],
    dest: Annotated[Path, typer.Argument(help="The new workshop folder, e.g. content/my-lab.")],
) -> None:
    """Convert a Killercoda scenario into a workshop folder, then check it."""
    console = Console(highlight=False, soft_wrap=True)
    try:
        workshop_dir = import_killercoda(src, dest)
    except KillercodaImportError as error:
        console.print(str(error), style="red", markup=False)
        raise typer.Exit(1) from None
    console.print(f"Imported {src} into {workshop_dir}.", markup=False)
    problems = check_workshop(workshop_dir)
    if problems:
        _print_problems(console, problems)
        console.print("Fix these problems before serving the workshop.", markup=False)
        raise typer.Exit(1)
    console.print(_summary([workshop_dir]), style="green", markup=False)


def _is_workshop(path: Path) -> bool:
    if (path / META_FILE).is_file():
        return True
    return path.is_dir() and any(LESSON_FILE_NAME.match(file.name) for file in path.glob("*.md"))


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
