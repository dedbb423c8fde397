"""The SQLite engine: WAL, foreign keys and a busy timeout on every connection; Alembic at start-up."""

from __future__ import annotations

import asyncio
import functools
import shutil
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any, TypeVar

from alembic import command
from alembic.config import Config as AlembicConfig
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy import Engine, event
from sqlalchemy.exc import OperationalError
from sqlmodel import Session, create_engine

T = TypeVar("T")
BUSY_TIMEOUT_MS = 15_000
MIGRATIONS_DIR = Path(__file__).resolve().parent.parent / "migrations"


def _pragmas(busy_timeout_ms: int) -> Callable[[Any, Any], None]:
    def on_connect(dbapi_connection: Any, _record: Any) -> None:
        _on_connect(dbapi_connection, busy_timeout_ms)

    return on_connect


def _on_connect(dbapi_connection: Any, busy_timeout_ms: int) -> None:
    # Foreign keys are off by default in SQLite; WAL lets the dashboard read while checks write.
    cursor = dbapi_connection.cursor()
    cursor.execute("PRAGMA journal_mode=WAL")
    cursor.execute("PRAGMA foreign_keys=ON")
    # A writer waits this long for a lock before giving up (then the request answers 503).
    cursor.execute(f"PRAGMA busy_timeout={busy_timeout_ms}")
    cursor.execute("PRAGMA synchronous=NORMAL")
    cursor.close()


def make_engine(database_path: Path, busy_timeout_ms: int = BUSY_TIMEOUT_MS) -> Engine:
    database_path.parent.mkdir(parents=True, exist_ok=True)
    # SQLite connections are cheap: no upper bound on the pool, so a burst never queues on it
    # (a bounded QueuePool of 5+10 hung the portal under 15 simultaneous checks).
    engine = create_engine(
        f"sqlite:///{database_path}",
        connect_args={"check_same_thread": False, "timeout": busy_timeout_ms / 1000},
        pool_size=16,
        max_overflow=-1,
    )
    event.listen(engine, "connect", _pragmas(busy_timeout_ms))
    return engine


class DatabaseBusy(RuntimeError):
    """SQLite stayed locked past the busy timeout; routes answer 503 with this sentence."""


BUSY_MESSAGE = "The portal's database is busy right now; try again in a few seconds."


class Database:
    """The SQLite file, with a small pool of threads that do all async code's database work.

    ``await db.run(work)`` calls ``work(session)`` in one of those threads with a session of its
    own, committed by ``work`` and closed after it: no session ever spans an await, and the
    event loop never waits on SQLite. The connection pool has room for every one of those
    threads and for FastAPI's threads (sync routes), so nothing waits on the pool itself."""

    def __init__(
        self, path: Path, workers: int = 8, busy_timeout_ms: int = BUSY_TIMEOUT_MS
    ) -> None:
        self.path = path
        self.engine = make_engine(path, busy_timeout_ms)
        self._executor = ThreadPoolExecutor(workers, thread_name_prefix="labdeck-db")

    async def run(self, work: Callable[[Session], T]) -> T:
        loop = asyncio.get_running_loop()
        return await loop.run_in_executor(self._executor, self.run_sync, work)

    def run_sync(self, work: Callable[[Session], T]) -> T:
        """``work(session)`` here and now (for code already off the event loop)."""
        try:
            with Session(self.engine, expire_on_commit=False) as session:
                return work(session)
        except OperationalError as error:
            if is_locked(error):
                raise DatabaseBusy(BUSY_MESSAGE) from error
            raise

    def close(self) -> None:
        self._executor.shutdown(wait=True, cancel_futures=True)
        self.engine.dispose()


def is_locked(error: BaseException) -> bool:
    text = str(getattr(error, "orig", error)).lower()
    return "database is locked" in text or "database is busy" in text


def alembic_config(database_path: Path) -> AlembicConfig:
    config = _migrations_config()
    config.set_main_option("sqlalchemy.url", f"sqlite:///{database_path}")
    return config


def _migrations_config() -> AlembicConfig:
    config = AlembicConfig()
    config.set_main_option("script_location", str(MIGRATIONS_DIR))
    return config


def current_revision(engine: Engine) -> str | None:
    with engine.connect() as connection:
        return MigrationContext.configure(connection).get_current_revision()


@functools.cache
def head_revision() -> str | None:
    """The newest revision of the migrations shipped with this code: it cannot change while the
    process runs, and reading the scripts on every /healthz cost ~25 ms of CPU (py-spy, 100
    attendees arriving)."""
    return ScriptDirectory.from_config(_migrations_config()).get_current_head()


def upgrade(database_path: Path) -> bool:
    """Bring the database to the newest revision; back the file up first. True when it changed."""
    engine = make_engine(database_path)
    try:
        before = current_revision(engine)
    finally:
        engine.dispose()
    if before == head_revision():
        return False
    if before is not None and database_path.exists():
        # Like JupyterHub's dbutil: a copy to go back to if the upgrade goes wrong.
        shutil.copy2(database_path, database_path.with_suffix(f".db.{before}.bak"))
    command.upgrade(alembic_config(database_path), "head")
    return True


def downgrade(database_path: Path, revision: str) -> None:
    command.downgrade(alembic_config(database_path), revision)
