"""The SQLite engine: WAL, foreign keys and a busy timeout on every connection; Alembic at start-up."""

from __future__ import annotations

import shutil
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from alembic import command
from alembic.config import Config as AlembicConfig
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy import Engine, event
from sqlmodel import Session, create_engine

MIGRATIONS_DIR = Path(__file__).resolve().parent.parent / "migrations"


def _on_connect(dbapi_connection: Any, _record: Any) -> None:
    # Foreign keys are off by default in SQLite; WAL lets the dashboard read while checks write.
    cursor = dbapi_connection.cursor()
    cursor.execute("PRAGMA journal_mode=WAL")
    cursor.execute("PRAGMA foreign_keys=ON")
    cursor.execute("PRAGMA busy_timeout=5000")
    cursor.execute("PRAGMA synchronous=NORMAL")
    cursor.close()


def make_engine(database_path: Path) -> Engine:
    database_path.parent.mkdir(parents=True, exist_ok=True)
    engine = create_engine(
        f"sqlite:///{database_path}", connect_args={"check_same_thread": False, "timeout": 5}
    )
    event.listen(engine, "connect", _on_connect)
    return engine


def session_scope(engine: Engine) -> Iterator[Session]:
    with Session(engine) as session:
        yield session


def alembic_config(database_path: Path) -> AlembicConfig:
    config = AlembicConfig()
    config.set_main_option("script_location", str(MIGRATIONS_DIR))
    config.set_main_option("sqlalchemy.url", f"sqlite:///{database_path}")
    return config


def current_revision(engine: Engine) -> str | None:
    with engine.connect() as connection:
        return MigrationContext.configure(connection).get_current_revision()


def head_revision(database_path: Path) -> str | None:
    return ScriptDirectory.from_config(alembic_config(database_path)).get_current_head()


def upgrade(database_path: Path) -> bool:
    """Bring the database to the newest revision; back the file up first. True when it changed."""
    engine = make_engine(database_path)
    try:
        before = current_revision(engine)
    finally:
        engine.dispose()
    if before == head_revision(database_path):
        return False
    if before is not None and database_path.exists():
        # Like JupyterHub's dbutil: a copy to go back to if the upgrade goes wrong.
        shutil.copy2(database_path, database_path.with_suffix(f".db.{before}.bak"))
    command.upgrade(alembic_config(database_path), "head")
    return True


def downgrade(database_path: Path, revision: str) -> None:
    command.downgrade(alembic_config(database_path), revision)
