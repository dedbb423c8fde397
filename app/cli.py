"""The `labdeck` command: serve, doctor, images, db, content, sandboxes, bench."""

from __future__ import annotations

import sys
from typing import Any

import typer
from rich.console import Console
from rich.table import Table

from app import db
from app.config import Settings

console = Console()
cli = typer.Typer(
    help="LabDeck: hands-on Docker workshops with a sandbox per attendee.", no_args_is_help=True
)
db_app = typer.Typer(help="The SQLite database.", no_args_is_help=True)
cli.add_typer(db_app, name="db")


def _register_sub_apps(command: str | None) -> None:
    """Import only the sub-app a command needs: `serve` must not pay for the benchmarks' imports
    (it matters for a second `./labdeck up`, which should serve within seconds)."""

    def wanted(name: str) -> bool:
        return command is None or command.startswith("-") or command == name

    if wanted("images"):
        from app.sandboxes.docker.images.cli import images_app

        cli.add_typer(images_app, name="images")
    if wanted("engine"):
        from app.sandboxes.docker.engine_cli import engine_app

        cli.add_typer(engine_app, name="engine")
    if wanted("content"):
        from app.lessons.cli import content_app

        cli.add_typer(content_app, name="content")
    if wanted("sandboxes"):
        from app.sandboxes.cli import sandboxes_app

        cli.add_typer(sandboxes_app, name="sandboxes")
    if wanted("bench"):
        from app.bench.cli import bench_app, register_all

        register_all()
        cli.add_typer(bench_app, name="bench")


@cli.command()
def serve(
    host: str | None = typer.Option(None, help="Address to listen on (default: LABDECK_HOST)."),
    port: int | None = typer.Option(None, help="Port to listen on (default: LABDECK_PORT)."),
    build_images: bool = typer.Option(
        False, "--build-images", help="First build the images that are missing or outdated."
    ),
) -> None:
    """Serve the portal (migrations are applied at start-up)."""
    import uvicorn

    from app.main import create_app

    settings = Settings()
    _refuse_broken_content(settings)
    if build_images:
        from app.sandboxes.docker.images.cli import build

        build(offline=False, online=False, force=False, only=[])

    host = host or settings.host
    port = port or settings.port
    token = settings.instructor_secret()
    shown_host = "localhost" if host in ("0.0.0.0", "127.0.0.1", "::") else host
    console.print(f"[bold green]LabDeck serving[/] at http://{shown_host}:{port}/")
    console.print(
        f"Instructor dashboard: http://{shown_host}:{port}/instructor  token: [bold]{token}[/]"
    )
    if host == "127.0.0.1":
        console.print("[dim]Only this machine can connect; for a class use --host 0.0.0.0[/]")
    uvicorn.run(create_app(settings), host=host, port=port, **uvicorn_options(settings))


def uvicorn_options(settings: Settings) -> dict[str, Any]:
    """How uvicorn serves the portal. Forwarded headers count only from the configured proxies:
    uvicorn's default believes them from loopback, so anything on the machine (a sandbox's
    published port, a local page) could name any client address and slip past rate limits."""
    proxies = [entry.strip() for entry in settings.trusted_proxies.split(",") if entry.strip()]
    return {
        "log_level": settings.log_level,
        "proxy_headers": bool(proxies),
        "forwarded_allow_ips": proxies or None,
    }


def _refuse_broken_content(settings: Settings) -> None:
    """A broken lesson stops the start with the list of problems, not a traceback."""
    from app.lessons.problems import ContentError
    from app.workshops import WorkshopNotFound, describe_problems, select_workshop

    try:
        select_workshop(settings)
    except ContentError as error:
        console.print("[red]The workshop content has problems; fix them and start again:[/]")
        console.print(describe_problems(error), markup=False)
        raise typer.Exit(1) from error
    except WorkshopNotFound as error:
        console.print(f"[red]{error}[/]")
        raise typer.Exit(1) from error


@cli.command()
def doctor() -> None:
    """Check engine, sandbox runtime, images, database, disk and content; exit 0 only when all can serve."""
    from app.doctor import run_doctor

    findings = run_doctor(Settings())
    table = Table(title="LabDeck doctor")
    for column in ("check", "", "details", "how to fix"):
        table.add_column(column)
    for finding in findings:
        mark = "[green]ok[/]" if finding.ok else "[red]FAIL[/]"
        table.add_row(finding.name, mark, finding.detail, finding.fix)
    console.print(table)
    if not all(f.ok for f in findings):
        raise typer.Exit(1)


@db_app.command("upgrade")
def db_upgrade() -> None:
    """Apply the migrations (the file is backed up before an upgrade)."""
    settings = Settings()
    changed = db.upgrade(settings.database_path)
    state = "upgraded" if changed else "already up to date"
    console.print(f"Database {settings.database_path}: {state}.")


def main() -> None:
    _register_sub_apps(sys.argv[1] if len(sys.argv) > 1 else None)
    try:
        cli()
    except KeyboardInterrupt:
        sys.exit(130)
