"""What `/healthz` and `labdeck doctor` both want to know about the database and the backend."""

from __future__ import annotations

from typing import Any

from sqlalchemy import text

from app import db
from app.services import Services


def database_status(database: db.Database) -> str:
    """``ok``, or why not. Blocks (one tiny read)."""
    try:
        with database.engine.connect() as connection:
            connection.execute(text("SELECT 1"))
        revision = db.current_revision(database.engine)
    except Exception as error:  # any driver error means "not ok"; the reason goes to the report
        return f"error: {error.__class__.__name__}"
    head = db.head_revision()
    return "ok" if revision == head else f"outdated: at {revision}, head is {head}"


async def collect_health(services: Services) -> dict[str, Any]:
    database = await services.db.run(lambda _session: database_status(services.db))
    backend = await services.sandboxes.health()
    report: dict[str, Any] = {
        "db": database,
        "engine": backend.engine,
        "images": backend.images if backend.engine == "ok" else "unknown: engine down",
        "registry": backend.registry,
    }
    healthy = database == "ok" and backend.ok
    report["status"] = "ok" if healthy else "degraded"
    return report
