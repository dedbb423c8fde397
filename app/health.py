"""What `/healthz` and `labdeck doctor` both want to know about the database, engine and images."""

from __future__ import annotations

import asyncio
from typing import Any

from fastapi import FastAPI
from sqlalchemy import text

from app import db


def database_status(app: FastAPI) -> str:
    try:
        with app.state.db_engine.connect() as connection:
            connection.execute(text("SELECT 1"))
        revision = db.current_revision(app.state.db_engine)
    except Exception as error:  # any driver error means "not ok"; the reason goes to the report
        return f"error: {error.__class__.__name__}"
    head = db.head_revision(app.state.settings.database_path)
    return "ok" if revision == head else f"outdated: at {revision}, head is {head}"


def missing_images(app: FastAPI) -> list[str]:
    client = app.state.docker.client()
    wanted = [app.state.settings.sandbox_image]
    missing = []
    for tag in wanted:
        try:
            client.images.get(tag)
        except Exception:
            missing.append(tag)
    return missing


async def collect_health(app: FastAPI) -> dict[str, Any]:
    database = await asyncio.to_thread(database_status, app)
    engine_ok = await app.state.docker.ping_async()
    if engine_ok:
        missing = await asyncio.to_thread(missing_images, app)
        images = "ok" if not missing else "missing: " + ", ".join(missing)
    else:
        images = "unknown: engine down"
    report: dict[str, Any] = {
        "db": database,
        "engine": "ok" if engine_ok else "unreachable",
        "images": images,
    }
    report["status"] = "ok" if all(value == "ok" for value in report.values()) else "degraded"
    return report
