from __future__ import annotations

from pathlib import Path

from alembic import command
from alembic.script import ScriptDirectory
from sqlalchemy import inspect, text
from sqlmodel import Session, select

from app import db
from app.models import Attempt, Attendee, TaskProgress


def test_upgrade_downgrade_upgrade_on_a_real_file(tmp_path: Path) -> None:
    path = tmp_path / "labdeck.db"
    assert db.upgrade(path) is True
    engine = db.make_engine(path)
    assert {"attendee", "sandbox", "attempt", "taskprogress"} <= set(
        inspect(engine).get_table_names()
    )
    engine.dispose()

    db.downgrade(path, "base")
    engine = db.make_engine(path)
    assert "attendee" not in inspect(engine).get_table_names()
    assert db.current_revision(engine) is None
    engine.dispose()

    assert db.upgrade(path) is True
    assert db.upgrade(path) is False  # already at head: nothing to do


def test_every_connection_has_wal_and_foreign_keys(tmp_path: Path) -> None:
    engine = db.make_engine(tmp_path / "x.db")
    with engine.connect() as connection:
        assert connection.execute(text("PRAGMA journal_mode")).scalar() == "wal"
        assert connection.execute(text("PRAGMA foreign_keys")).scalar() == 1
        assert connection.execute(text("PRAGMA busy_timeout")).scalar() == db.BUSY_TIMEOUT_MS
    engine.dispose()


def test_a_database_made_at_the_first_migration_upgrades_with_its_data(tmp_path: Path) -> None:
    path = tmp_path / "labdeck.db"
    command.upgrade(db.alembic_config(path), "0001")
    first = ScriptDirectory.from_config(db.alembic_config(path)).get_base()
    engine = db.make_engine(path)
    with engine.begin() as connection:
        assert db.current_revision(engine) == first == "0001"
        connection.execute(
            text(
                "INSERT INTO attendee (id, workshop, name, resume_key, joined_at, last_seen_at) "
                "VALUES (1, 'w', 'Ada', 'key-ada', '2026-01-01 10:00:00', '2026-01-01 10:05:00')"
            )
        )
        connection.execute(
            text(
                "INSERT INTO taskprogress (attendee_id, task_id, attempts, first_passed_at, "
                "solution_shown, updated_at) VALUES (1, 'run-hello', 2, '2026-01-01 10:04:00', "
                "0, '2026-01-01 10:04:00')"
            )
        )
        connection.execute(
            text(
                "INSERT INTO attempt (attendee_id, task_id, passed, started_at, duration_ms, "
                "results) VALUES (1, 'run-hello', 1, '2026-01-01 10:04:00', 120, '[]')"
            )
        )
    engine.dispose()

    assert db.upgrade(path) is True

    engine = db.make_engine(path)
    assert db.current_revision(engine) == db.head_revision()
    with Session(engine) as session:
        ada = session.exec(select(Attendee)).one()
        progress = session.exec(select(TaskProgress)).one()
        attempt = session.exec(select(Attempt)).one()
    engine.dispose()
    assert (ada.name, ada.resume_key) == ("Ada", "key-ada")
    assert (progress.task_id, progress.attempts, progress.first_passed_at is not None) == (
        "run-hello",
        2,
        True,
    )
    assert attempt.passed and attempt.duration_ms == 120
    assert (tmp_path / "labdeck.db.0001.bak").exists()  # the copy made before upgrading
