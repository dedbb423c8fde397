"""The `labdeck` command: serve, doctor, images, db, content, sandboxes, bench."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any

import typer
from rich.console import Console
from rich.table import Table

from app import db
from app.config import Settings

# Sentences name paths, which must reach scripts and tests whole, whatever the terminal's width
# (Rich wraps at 80 columns when it cannot tell, issue 12); tables still fit the terminal.
console = Console(soft_wrap=True)
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

    from app.sandboxes import backends

    backends.add_commands(cli, wanted)  # Docker's `images` and `engine`
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
    _refuse_damaged_database(settings)
    if build_images:
        from app.sandboxes import backends

        backends.build_images(settings)

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


KEEP_ALIVE_SECONDS = 125


def uvicorn_options(settings: Settings) -> dict[str, Any]:
    """How uvicorn serves the portal. Forwarded headers count only from the configured proxies:
    uvicorn's default believes them from loopback, so anything on the machine (a sandbox's
    published port, a local page) could name any client address and slip past rate limits."""
    from app.logging_setup import log_config

    proxies = [entry.strip() for entry in settings.trusted_proxies.split(",") if entry.strip()]
    return {
        "log_level": settings.log_level,
        "log_config": log_config(settings),  # LABDECK_LOG_FORMAT: text, or one JSON object a line
        "proxy_headers": bool(proxies),
        "forwarded_allow_ips": proxies or None,
        # Longer than the idle time of the clients and proxies in front (Caddy keeps upstream
        # connections 2 min): with uvicorn's 5 s, a request sent on a pooled connection the
        # instant the server closes it fails (a 502 behind a proxy, a ReadError in httpx).
        "timeout_keep_alive": KEEP_ALIVE_SECONDS,
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


def _refuse_damaged_database(settings: Settings) -> None:
    """A damaged database file stops the start with the backup to restore, not "malformed"."""
    from app.backup import damage_report

    report = damage_report(settings)
    if report is not None:
        problem, fix = report
        console.print(f"[red]{problem}.[/] {fix}")
        raise typer.Exit(1)


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


@cli.command()
def teardown(
    instance: str | None = typer.Option(
        None, "--instance", help="The instance to remove (default: LABDECK_INSTANCE)."
    ),
    all_stale: bool = typer.Option(
        False,
        "--all-stale",
        help="Instead, remove the firewall rules left by instances whose network is gone.",
    ),
    yes: bool = typer.Option(False, "--yes", "-y", help="Remove without asking first."),
) -> None:
    """Remove everything an instance made on the engine and the host: containers, volumes, its
    network, its registry and its firewall rules. Asks first unless --yes; the data dir (the
    database and its backups) stays."""
    from pydantic import ValidationError

    from app.backup import is_serving
    from app.sandboxes import backends
    from app.sandboxes.base import SandboxError

    try:
        settings = Settings(instance=instance) if instance else Settings()
    except ValidationError as error:
        console.print(f"[red]{instance!r} is not an instance name: {error.errors()[0]['msg']}[/]")
        raise typer.Exit(2) from error
    name = settings.instance
    if not all_stale and is_serving(settings.database_path) and name == Settings().instance:
        console.print(
            f"[red]A portal is serving instance {name} from {settings.data_dir}; it would make "
            "its sandboxes again. Stop it first, then run teardown again.[/]"
        )
        raise typer.Exit(1)

    def run(dry_run: bool) -> list[str]:
        if all_stale:
            return backends.teardown_stale(settings, dry_run=dry_run)
        return backends.teardown(settings, name, dry_run=dry_run)

    try:
        planned = run(dry_run=True)
        what = "instances that no longer exist" if all_stale else f"instance {name}"
        if not planned:
            console.print(f"Nothing of {what} is left on the engines or the host.")
            return
        console.print(f"Teardown of {what} removes:")
        for line in planned:
            console.print(f"  {line}")
        if not yes:
            typer.confirm("Remove all of this?", abort=True)
        removed = run(dry_run=False)
    except SandboxError as error:
        console.print(f"[red]{error}[/]")
        raise typer.Exit(1) from error
    console.print(f"Removed {len(removed)} things: " + "; ".join(removed))


@db_app.command("upgrade")
def db_upgrade() -> None:
    """Apply the migrations (the file is backed up before an upgrade)."""
    settings = Settings()
    changed = db.upgrade(settings.database_path)
    state = "upgraded" if changed else "already up to date"
    console.print(f"Database {settings.database_path}: {state}.")


@db_app.command("backup")
def db_backup(
    path: Path | None = typer.Argument(
        None, help="File or folder to write (default: the data dir's backups folder)."
    ),
) -> None:
    """Back the database up with SQLite's online backup: safe while the portal serves."""
    from app.backup import BackupError, backup_database, take_backup

    settings = Settings()
    try:
        if path is None or path.is_dir():
            written = take_backup(settings, path)
        else:
            written = backup_database(settings.database_path, path)
    except BackupError as error:
        console.print(f"[red]{error}[/]")
        raise typer.Exit(1) from error
    console.print(f"Database {settings.database_path} backed up to {written}.")


@db_app.command("backups")
def db_backups() -> None:
    """List the automatic backups, newest first."""
    from app.backup import backups_dir, list_backups

    settings = Settings()
    found = list_backups(backups_dir(settings))
    if not found:
        console.print(f"No backup under {backups_dir(settings)} yet.")
    for backup in found:
        console.print(f"{backup}  {backup.stat().st_size / 1e6:.1f} MB")


@db_app.command("restore")
def db_restore(path: Path = typer.Argument(..., help="The backup to bring back.")) -> None:
    """Replace the database with a backup once it proves whole; refuses while a portal serves
    it. The file it replaces is kept aside."""
    from app.backup import BackupError, restore_database

    settings = Settings()
    try:
        aside = restore_database(path, settings.database_path)
    except BackupError as error:
        console.print(f"[red]{error}[/]")
        raise typer.Exit(1) from error
    kept = f" The file it replaced is kept as {aside}." if aside else ""
    console.print(f"Database {settings.database_path} restored from {path}.{kept}")
    console.print("Start the portal again: it upgrades the restored file if it is older.")


def main() -> None:
    _register_sub_apps(sys.argv[1] if len(sys.argv) > 1 else None)
    try:
        cli()
    except KeyboardInterrupt:
        sys.exit(130)
