"""`labdeck images`: build the images (idempotently) and list their state."""

from __future__ import annotations

import docker
import typer
from rich.console import Console
from rich.progress import Progress, SpinnerColumn, TaskID, TextColumn, TimeElapsedColumn
from rich.table import Table

from app.sandboxes.docker.images.builder import (
    BuildResult,
    ImageBuildError,
    Mode,
    build_recipe,
    image_status,
    resolve_mode,
)
from app.sandboxes.docker.images.catalog import RECIPES, get_recipe

console = Console()
images_app = typer.Typer(help="LabDeck's container images.", no_args_is_help=True)


def _client() -> docker.DockerClient:
    from app.sandboxes.docker.engine import EngineUnavailable, docker_client

    try:
        return docker_client(timeout=600)
    except EngineUnavailable as error:
        console.print(f"[red]{error}[/]")
        raise typer.Exit(1) from error


def _mode(offline: bool, online: bool) -> Mode:
    if offline and online:
        console.print("[red]Choose one of --offline and --online.[/]")
        raise typer.Exit(2)
    if offline or online:
        return "offline" if offline else "online"
    from app.config import Settings

    return resolve_mode(Settings().images_mode)


@images_app.command()
def build(
    offline: bool = typer.Option(
        False, "--offline", help="Build on a debootstrap base (no registry)."
    ),
    online: bool = typer.Option(
        False, "--online", help="Build on the official debian:bookworm-slim."
    ),
    force: bool = typer.Option(False, "--force", help="Rebuild even images that are up to date."),
    only: list[str] = typer.Option(None, "--only", help="Build only this recipe (repeatable)."),
) -> None:
    """Build every image that is missing or outdated (default mode: LABDECK_IMAGES_MODE)."""
    try:
        recipes = [get_recipe(name) for name in only] if only else list(RECIPES)
    except ValueError as error:
        console.print(f"[red]{error}[/]")
        raise typer.Exit(2) from error
    client = _client()
    mode = _mode(offline, online)
    console.print(f"Building LabDeck images ([bold]{mode}[/] mode)")
    columns = (
        SpinnerColumn(finished_text="[green]✓[/]"),
        TextColumn("{task.description:<12}"),
        TimeElapsedColumn(),
        TextColumn("[dim]{task.fields[line]}[/]"),
    )
    with Progress(*columns, console=console) as progress:
        tasks = {
            r.name: progress.add_task(r.name, start=False, line="waiting", total=1) for r in recipes
        }
        for recipe in recipes:
            task = tasks[recipe.name]
            progress.start_task(task)

            def show(_recipe: str, line: str, task: TaskID = task) -> None:
                progress.update(task, line=line[:70])

            try:
                result = build_recipe(client, recipe, mode, force=force, progress=show)
            except ImageBuildError as error:
                progress.update(task, line="[red]failed[/]")
                progress.stop()
                console.print(f"[red]{error}[/]")
                raise typer.Exit(1) from error
            progress.update(task, completed=1, line=_summary(result))


def _summary(result: BuildResult) -> str:
    what = "built" if result.built else "up to date"
    return f"{what}: {result.tag} in {result.seconds:.1f}s"


@images_app.command("ls")
def list_images() -> None:
    """Show each image: present, up to date, size, build mode."""
    client = _client()
    table = Table(title="LabDeck images")
    table.add_column("tag", no_wrap=True)
    for column in ("present", "up to date", "size", "mode"):
        table.add_column(column)
    for status in image_status(client):
        table.add_row(
            status.tag,
            _yes_no(status.present),
            _yes_no(status.up_to_date),
            _size(status.size),
            status.mode or "-",
        )
    console.print(table)


def _size(size: int | None) -> str:
    if size is None:
        return "-"
    return f"{size / 1e6:.1f} MB" if size < 10e6 else f"{size / 1e6:.0f} MB"


def _yes_no(value: bool) -> str:
    return "[green]yes[/]" if value else "[red]no[/]"
