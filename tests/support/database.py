"""One database migrated per test session, copied for each test that needs one: running the
migrations for every test (and every app start) cost more than the tests themselves."""

from __future__ import annotations

import shutil
import tempfile
from functools import cache
from pathlib import Path

from app import db


@cache
def _template() -> Path:
    folder = Path(tempfile.mkdtemp(prefix="labdeck-template-db-"))
    path = folder / "labdeck.db"
    db.upgrade(path)
    engine = db.make_engine(path)
    with engine.connect() as connection:  # fold the WAL into the file, so one copy is enough
        connection.exec_driver_sql("PRAGMA wal_checkpoint(TRUNCATE)")
    engine.dispose()
    return path


def migrated_database(path: Path) -> Path:
    """A database at the newest revision at ``path`` (a copy of the session's template)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    shutil.copyfile(_template(), path)
    return path


def open_database(path: Path, workers: int = 4) -> db.Database:
    return db.Database(migrated_database(path), workers=workers)
