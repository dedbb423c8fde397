"""Backups: taken while the portal writes, kept in rotation, restored only from a sound copy and
never under a serving portal; a damaged file makes doctor and serve name the backup to restore."""

from __future__ import annotations

import sqlite3
import threading
import time
from pathlib import Path

import pytest
from fastapi.testclient import TestClient
from sqlmodel import Session, select
from typer.testing import CliRunner

from app import backup, cli, db
from app.config import Settings
from app.doctor import check_database
from app.main import create_app
from app.models import Attendee, TaskProgress, utcnow
from app.sandboxes.fake import FakeBackend
from tests.support.database import migrated_database
from tests.support.settings import settings_for


def class_with_progress(path: Path, attendees: int = 12) -> dict[str, list[tuple[str, int]]]:
    """Attendees with passed and failed tasks; what each one has, to compare after a restore."""
    engine = db.make_engine(path)
    with Session(engine) as session:
        for number in range(attendees):
            person = Attendee(workshop="w", name=f"attendee {number}", resume_key=f"key-{number}")
            session.add(person)
            session.flush()
            assert person.id is not None
            for task in range(number % 4 + 1):
                passed = utcnow() if task % 2 == 0 else None
                session.add(
                    TaskProgress(
                        attendee_id=person.id,
                        task_id=f"task-{task}",
                        attempts=task + 1,
                        first_passed_at=passed,
                    )
                )
        session.commit()
    progress = progress_of(path)
    engine.dispose()
    return progress


def progress_of(path: Path) -> dict[str, list[tuple[str, int]]]:
    engine = db.make_engine(path)
    with Session(engine) as session:
        rows = session.exec(
            select(Attendee.name, TaskProgress.task_id, TaskProgress.attempts).join(
                TaskProgress, TaskProgress.attendee_id == Attendee.id
            )
        ).all()
    engine.dispose()
    found: dict[str, list[tuple[str, int]]] = {}
    for name, task_id, attempts in rows:
        found.setdefault(name, []).append((task_id, attempts))
    return {name: sorted(tasks) for name, tasks in found.items()}


def corrupt(path: Path) -> None:
    """Scribble over every page but the first, as a failing disk or a stray write would."""
    connection = sqlite3.connect(path)
    connection.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    connection.close()
    size = path.stat().st_size
    with open(path, "r+b") as file:
        file.seek(4096)
        file.write(b"\xa5" * (size - 4096))


@pytest.fixture
def settings(tmp_path: Path) -> Settings:
    found = settings_for(tmp_path / "data", "test-backup", backup_keep=3)
    migrated_database(found.database_path)
    return found


def test_a_backup_taken_while_another_connection_writes_is_whole(settings: Settings) -> None:
    path, stop = settings.database_path, threading.Event()
    written: list[int] = []

    def write() -> None:
        connection = sqlite3.connect(path, timeout=15)
        connection.execute("PRAGMA journal_mode=WAL")
        while not stop.is_set():
            number = len(written)
            connection.execute(
                "INSERT INTO attendee (workshop, name, resume_key, joined_at, last_seen_at) "
                "VALUES ('w', ?, ?, '2026-01-01', '2026-01-01')",
                (f"writer {number}", f"writer-key-{number}"),
            )
            connection.commit()
            written.append(number)
        connection.close()

    writer = threading.Thread(target=write)
    writer.start()
    try:
        copies = []
        while len(copies) < 5:
            time.sleep(0.02)
            copies.append(backup.take_backup(settings))
    finally:
        stop.set()
        writer.join()
    counts = [
        sqlite3.connect(copy).execute("SELECT count(*) FROM attendee").fetchone()[0]
        for copy in copies
        if copy.exists()
    ]
    assert len(written) > 50  # the writer went on the whole time
    assert all(
        backup.integrity_problem(copy, thorough=True) is None
        for copy in backup.list_backups(backup.backups_dir(settings))
    )
    assert counts == sorted(counts) and counts[-1] <= len(written)
    assert len(backup.list_backups(backup.backups_dir(settings))) == settings.backup_keep


def test_a_restore_brings_back_every_attendee_s_progress(settings: Settings) -> None:
    path = settings.database_path
    before = class_with_progress(path)
    taken = backup.take_backup(settings)
    corrupt(path)
    assert backup.damage_report(settings) is not None

    aside = backup.restore_database(taken, path)

    assert progress_of(path) == before and len(before) == 12
    assert backup.damage_report(settings) is None
    assert aside is not None and aside.exists() and "before-restore" in aside.name


def test_a_restore_refuses_while_a_portal_serves_the_database(settings: Settings) -> None:
    taken = backup.take_backup(settings)
    with (
        backup.serving(settings.database_path),
        pytest.raises(backup.BackupError, match="Stop it first"),
    ):
        backup.restore_database(taken, settings.database_path)


def test_a_damaged_backup_is_refused_and_nothing_changes(settings: Settings) -> None:
    before = class_with_progress(settings.database_path, attendees=2)
    damaged = backup.take_backup(settings)
    corrupt(damaged)
    with pytest.raises(backup.BackupError, match="not a sound LabDeck database"):
        backup.restore_database(damaged, settings.database_path)
    assert progress_of(settings.database_path) == before


def test_doctor_names_the_newest_backup_and_the_command_to_restore_it(settings: Settings) -> None:
    backup.take_backup(settings)
    newest = backup.take_backup(settings)
    corrupt(settings.database_path)
    finding = check_database(settings)
    assert not finding.ok
    assert "is damaged" in finding.detail
    assert f"`./labdeck db restore {newest}`" in finding.fix
    assert newest.name in finding.fix


def test_doctor_without_a_backup_says_so(settings: Settings) -> None:
    corrupt(settings.database_path)
    finding = check_database(settings)
    assert not finding.ok and "No backup under" in finding.fix


def test_serve_on_a_damaged_database_says_what_to_restore(
    settings: Settings, monkeypatch: pytest.MonkeyPatch
) -> None:
    newest = backup.take_backup(settings)
    corrupt(settings.database_path)
    monkeypatch.setenv("LABDECK_DATA_DIR", str(settings.data_dir))
    result = CliRunner().invoke(cli.cli, ["serve"])
    assert result.exit_code == 1
    assert f"./labdeck db restore {newest}" in result.output
    assert "Traceback" not in result.output


def test_the_commands_back_up_and_restore(
    settings: Settings, monkeypatch: pytest.MonkeyPatch
) -> None:
    before = class_with_progress(settings.database_path, attendees=3)
    monkeypatch.setenv("LABDECK_DATA_DIR", str(settings.data_dir))
    target = settings.data_dir.parent / "by-hand.db"
    made = CliRunner().invoke(cli.cli, ["db", "backup", str(target)])
    assert made.exit_code == 0, made.output
    corrupt(settings.database_path)
    restored = CliRunner().invoke(cli.cli, ["db", "restore", str(target)])
    assert restored.exit_code == 0, restored.output
    assert "kept as" in restored.output
    assert progress_of(settings.database_path) == before


def test_a_serving_portal_backs_up_on_its_own(settings: Settings) -> None:
    settings = settings.model_copy(update={"backup_interval": 0.1})
    app = create_app(settings)
    app.state.sandbox_backend = FakeBackend()
    with TestClient(app):
        deadline = time.monotonic() + 10
        while len(backup.list_backups(backup.backups_dir(settings))) < 2:
            assert time.monotonic() < deadline, "no automatic backup within 10 s"
            time.sleep(0.05)
        taken = backup.list_backups(backup.backups_dir(settings))
        with pytest.raises(backup.BackupError, match="A portal is serving"):
            backup.restore_database(taken[0], settings.database_path)
    assert backup.integrity_problem(taken[0], thorough=True) is None
