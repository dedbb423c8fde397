"""Backups of the SQLite file: taken with SQLite's online backup API (safe while the portal
writes), kept in ``data_dir/backups``, restored only from a copy that proves whole.

A serving portal holds a shared lock on ``labdeck.db.lock`` (``serving``); ``restore_database``
takes it exclusively, so it refuses while any portal serves that file.

These functions block; the portal calls them from a thread (``keep_backing_up``)."""

from __future__ import annotations

import asyncio
import fcntl
import logging
import os
import sqlite3
from collections.abc import Iterator
from contextlib import closing, contextmanager
from datetime import UTC, datetime
from pathlib import Path

from app.config import Settings

log = logging.getLogger("labdeck.backup")

BACKUP_PREFIX = "labdeck-"
_STAMP = "%Y%m%dT%H%M%S%fZ"
_BUSY_TIMEOUT_SECONDS = 30.0


class BackupError(RuntimeError):
    """A backup or a restore could not be made; the message says what to do."""


def backups_dir(settings: Settings) -> Path:
    return settings.data_dir / "backups"


def backup_database(source: Path, target: Path) -> Path:
    """Copy ``source`` to ``target`` in one step of the online backup API: a consistent
    snapshot, while other connections go on writing (WAL readers never block writers). The
    copy is a single self-contained file, checked whole before it takes ``target``'s place."""
    if not source.exists():
        raise BackupError(f"There is no database at {source} to back up.")
    target.parent.mkdir(parents=True, exist_ok=True)
    partial = target.with_name(target.name + ".partial")
    partial.unlink(missing_ok=True)
    try:
        with (
            closing(sqlite3.connect(source, timeout=_BUSY_TIMEOUT_SECONDS)) as origin,
            closing(sqlite3.connect(partial)) as copy,
        ):
            origin.backup(copy)
            copy.execute("PRAGMA journal_mode=DELETE")  # one file, no -wal beside it
        problem = integrity_problem(partial, thorough=True)
        if problem:
            raise BackupError(f"The copy of {source} is not sound ({problem}); it was not kept.")
        os.replace(partial, target)
    except sqlite3.Error as error:
        raise BackupError(f"Could not back up {source}: {error}.") from error
    finally:
        partial.unlink(missing_ok=True)
    return target


def integrity_problem(path: Path, *, thorough: bool = False) -> str | None:
    """None when ``path`` is a whole LabDeck database; else what is wrong, in a few words."""
    if not path.is_file():
        return "no such file"
    check = "integrity_check" if thorough else "quick_check"
    try:
        with closing(sqlite3.connect(path, timeout=_BUSY_TIMEOUT_SECONDS)) as connection:
            verdict = [row[0] for row in connection.execute(f"PRAGMA {check}").fetchall()]
            if verdict != ["ok"]:
                return "; ".join(verdict[:3])
            tables = connection.execute(
                "SELECT name FROM sqlite_master WHERE type='table' AND name='alembic_version'"
            ).fetchall()
    except sqlite3.Error as error:
        return str(error)
    return None if tables else "not a LabDeck database (no alembic_version table)"


# -- automatic backups ------------------------------------------------------------------------


def backup_name(moment: datetime) -> str:
    return f"{BACKUP_PREFIX}{moment.astimezone(UTC).strftime(_STAMP)}.db"


def list_backups(folder: Path) -> list[Path]:
    """The automatic backups in ``folder``, newest first (their names sort by time)."""
    found = folder.glob(f"{BACKUP_PREFIX}*.db") if folder.is_dir() else []
    return sorted(found, key=lambda path: path.name, reverse=True)


def prune_backups(folder: Path, keep: int) -> list[Path]:
    """Delete all but the ``keep`` newest backups; the ones deleted."""
    extra = list_backups(folder)[keep:]
    for path in extra:
        path.unlink(missing_ok=True)
    return extra


def take_backup(settings: Settings, folder: Path | None = None) -> Path:
    """A timestamped backup in ``folder`` (default: data_dir/backups); older ones beyond
    ``backup_keep`` go only once the new one is known to be whole."""
    folder = folder or backups_dir(settings)
    target = backup_database(settings.database_path, folder / backup_name(datetime.now(UTC)))
    if folder == backups_dir(settings):
        prune_backups(folder, settings.backup_keep)
    return target


async def keep_backing_up(settings: Settings) -> None:
    """Every ``backup_interval`` seconds, a backup off the event loop. A failure is logged and
    changes nothing: the older, sound backups stay."""
    while True:
        await asyncio.sleep(settings.backup_interval)
        try:
            path = await asyncio.to_thread(take_backup, settings)
            log.info("database backed up to %s", path)
        except (BackupError, OSError) as error:
            log.warning("automatic backup failed: %s", error)


# -- serving and restoring --------------------------------------------------------------------


def _lock_path(database: Path) -> Path:
    return database.with_name(database.name + ".lock")


@contextmanager
def serving(database: Path) -> Iterator[None]:
    """Held by a portal while it serves ``database``: restores refuse meanwhile."""
    database.parent.mkdir(parents=True, exist_ok=True)
    refusal = f"{database} is being restored right now; start the portal once that is done."
    with _locked(database, fcntl.LOCK_SH, refusal):
        yield


@contextmanager
def _exclusive(database: Path) -> Iterator[None]:
    refusal = (
        f"A portal is serving {database}. Stop it first (Ctrl-C in `./labdeck up`, or "
        "`docker compose stop portal`), then run the restore again."
    )
    with _locked(database, fcntl.LOCK_EX, refusal):
        yield


@contextmanager
def _locked(database: Path, mode: int, refusal: str) -> Iterator[None]:
    """The database's lock file held in ``mode`` (shared or exclusive), never waited for:
    raises ``BackupError(refusal)`` when the other kind is held."""
    with open(_lock_path(database), "a+b") as lock:
        try:
            fcntl.flock(lock, mode | fcntl.LOCK_NB)
        except BlockingIOError as error:
            raise BackupError(refusal) from error
        yield


def is_serving(database: Path) -> bool:
    """Whether a portal serves ``database`` right now."""
    if not database.parent.is_dir():
        return False
    try:
        with _exclusive(database):
            return False
    except BackupError:
        return True


def restore_database(backup: Path, database: Path) -> Path | None:
    """Put ``backup`` in ``database``'s place once it proves whole, with no portal serving.
    The file it replaces (and its -wal) is kept aside; that path, or None when there was none."""
    problem = integrity_problem(backup, thorough=True)
    if problem:
        raise BackupError(
            f"{backup} is not a sound LabDeck database ({problem}); nothing was changed. "
            "Pick another backup (they are listed by `./labdeck db backups`)."
        )
    with _exclusive(database):
        incoming = backup_database(backup, database.with_name(database.name + ".restoring"))
        aside = _move_aside(database)
        os.replace(incoming, database)
    return aside


def _move_aside(database: Path) -> Path | None:
    """Move the database and its -wal/-shm aside together: a -wal left beside the restored file
    would be replayed into it."""
    if not database.exists():
        return None
    stamp = datetime.now(UTC).strftime("%Y%m%dT%H%M%SZ")
    aside = database.with_name(f"{database.name}.before-restore-{stamp}")
    for suffix in ("-wal", "-shm", ""):
        companion = database.with_name(database.name + suffix)
        if companion.exists():
            os.replace(companion, aside.with_name(aside.name + suffix))
    return aside


def damage_report(settings: Settings) -> tuple[str, str] | None:
    """When the database file is damaged: what is wrong, and how to restore the newest backup."""
    path = settings.database_path
    if not path.exists():
        return None
    problem = integrity_problem(path)
    if problem is None:
        return None
    return f"{path} is damaged: {problem}", restore_advice(settings)


def restore_advice(settings: Settings) -> str:
    found = list_backups(backups_dir(settings))
    if not found:
        return (
            f"No backup under {backups_dir(settings)}. Move {settings.database_path} aside to start "
            "with an empty database (every attendee's progress is then lost)."
        )
    newest = found[0]
    taken = datetime.fromtimestamp(newest.stat().st_mtime, UTC).strftime("%Y-%m-%d %H:%M UTC")
    return (
        f"Restore the newest backup, {newest.name} (taken {taken}): stop the portal, then run "
        f"`./labdeck db restore {newest}` (the damaged file is kept aside)."
    )
