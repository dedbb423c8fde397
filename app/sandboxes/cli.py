"""`labdeck sandboxes ls|rm|prune|stats`: look at and clean up this instance's sandboxes.

These commands talk to the database and the engine directly, so they work with or without a
running portal (a running portal notices removed sandboxes and makes fresh ones on demand).
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from datetime import datetime
from typing import TypeVar

import typer
from rich.console import Console
from rich.table import Table
from sqlmodel import Session, select

from app import db
from app.config import Settings
from app.events import EventHub
from app.models import Attendee, Sandbox, utcnow
from app.sandboxes import backends
from app.sandboxes.base import Connection, SandboxError, SandboxInfo, SandboxStats
from app.sandboxes.service import SandboxService, ServiceConfig

console = Console()
sandboxes_app = typer.Typer(help="This instance's sandboxes.", no_args_is_help=True)
T = TypeVar("T")


async def offline_service(settings: Settings) -> tuple[SandboxService, Connection]:
    """A service that is never started: enough to list, remove and prune."""
    db.upgrade(settings.database_path)
    try:
        connection = await backends.connect_for_maintenance(settings)
    except SandboxError as error:
        console.print(f"[red]{error}[/]")
        raise typer.Exit(1) from error
    service_config = ServiceConfig.from_settings(settings, None)
    database = db.Database(settings.database_path, workers=2)
    service = SandboxService(database, EventHub(), service_config, connection.backend)
    return service, connection


def run(work: Callable[[SandboxService], Awaitable[T]]) -> T:
    async def with_service() -> T:
        service, connection = await offline_service(Settings())
        try:
            return await work(service)
        finally:
            if connection.close is not None:
                await connection.close()
            service.records.database.close()

    return asyncio.run(with_service())


def ago(moment: datetime | None, now: datetime) -> str:
    if moment is None:
        return "-"
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=now.tzinfo)
    seconds = max(0, int((now - moment).total_seconds()))
    if seconds < 60:
        return f"{seconds}s"
    if seconds < 3600:
        return f"{seconds // 60}m"
    return f"{seconds // 3600}h{seconds % 3600 // 60:02d}m"


def mebibytes(count: int) -> str:
    return f"{count / 2**20:.0f} MiB"


async def attendee_names(service: SandboxService) -> dict[int, str]:
    return await service.records.database.run(_attendee_names)


def _attendee_names(session: Session) -> dict[int, str]:
    return {a.id: a.name for a in session.exec(select(Attendee)) if a.id is not None}


async def stats_of(service: SandboxService, names: list[str]) -> dict[str, SandboxStats]:
    async def one(name: str) -> SandboxStats | None:
        try:
            return await service.backend.stats(name)
        except SandboxError:
            return None  # not running

    found = await asyncio.gather(*(one(name) for name in names))
    return {stats.name: stats for stats in found if stats is not None}


def describe_state(row: Sandbox | None, info: SandboxInfo | None) -> str:
    if row is None:
        return f"orphan ({info.state if info else '?'})"
    if info is None:
        return f"{row.state} (no container)"
    running = info.state in ("ready", "starting")
    if (row.state == "ready") != running:
        return f"{row.state} (container {info.state})"
    return row.state


@sandboxes_app.command("ls")
def list_sandboxes() -> None:
    """List sandboxes: name, attendee, state, age, idle time and memory in use."""

    async def work(service: SandboxService) -> None:
        rows = {row.container_name: row for row in await service.records.all()}
        containers = {info.name: info for info in await service.backend.list()}
        names = sorted(set(rows) | set(containers))
        stats = await stats_of(service, [n for n in names if n in containers])
        people, now = await attendee_names(service), utcnow()
        table = Table(title=f"Sandboxes of instance {service.config.instance}")
        for column in ("name", "attendee", "state", "age", "idle", "memory"):
            table.add_column(column)
        for name in names:
            row, info = rows.get(name), containers.get(name)
            owner = "(warm pool)" if row and row.attendee_id is None else "-"
            if row and row.attendee_id is not None:
                owner = people.get(row.attendee_id, f"#{row.attendee_id}")
            table.add_row(
                name,
                owner,
                describe_state(row, info),
                ago(row.created_at if row else info.created_at if info else None, now),
                ago(row.last_activity_at, now) if row and row.attendee_id else "-",
                mebibytes(stats[name].memory_bytes) if name in stats else "-",
            )
        console.print(table)

    run(work)


@sandboxes_app.command("rm")
def remove_sandbox(name: str = typer.Argument(..., help="The sandbox's container name.")) -> None:
    """Remove one sandbox: its container, its engine volume (images) and its database row."""

    async def work(service: SandboxService) -> bool:
        known = await service.records.by_name(name) is not None
        known = known or any(info.name == name for info in await service.backend.list())
        if known:
            await service.remove(name)
        return known

    if not run(work):
        console.print(f"[red]There is no sandbox {name!r}.[/] `labdeck sandboxes ls` lists them.")
        raise typer.Exit(1)
    console.print(f"Removed {name}.")


@sandboxes_app.command("prune")
def prune(
    everything: bool = typer.Option(
        False, "--all", help="Remove every sandbox of this instance, running ones too."
    ),
) -> None:
    """Remove sandboxes nobody can use: stopped, failed, missing, too old, or without a row."""
    removed = run(lambda service: service.prune(everything))
    listed = ": " + ", ".join(removed) if removed else "."
    console.print(f"Removed {len(removed)} sandbox(es){listed}")


@sandboxes_app.command("stats")
def stats() -> None:
    """Memory, CPU and processes of each running sandbox, with totals."""

    async def work(service: SandboxService) -> None:
        names = [info.name for info in await service.backend.list() if info.state == "ready"]
        found = await stats_of(service, names)
        table = Table(title=f"Running sandboxes of instance {service.config.instance}")
        for column in ("name", "memory", "limit", "cpu %", "pids"):
            table.add_column(column, justify="left" if column == "name" else "right")
        for name in sorted(found):
            one = found[name]
            table.add_row(
                name,
                mebibytes(one.memory_bytes),
                mebibytes(one.memory_limit_bytes),
                f"{one.cpu_percent:.1f}",
                str(one.pids),
            )
        values = list(found.values())
        table.add_row(
            f"total ({len(values)})",
            mebibytes(sum(v.memory_bytes for v in values)),
            "",
            f"{sum(v.cpu_percent for v in values):.1f}",
            str(sum(v.pids for v in values)),
        )
        console.print(table)

    run(work)
