from __future__ import annotations

from pathlib import Path

from sqlalchemy import inspect, text

from app import db


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
