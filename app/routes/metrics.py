"""`GET /metrics`: Prometheus text for the operator. Aggregate counts only: no names, no tokens."""

from __future__ import annotations

import asyncio

from fastapi import APIRouter
from fastapi.responses import PlainTextResponse

from app.deps import ServicesDep
from app.instructor.sandbox_health import current_health
from app.metrics import collect

router = APIRouter()


@router.get("/metrics", response_class=PlainTextResponse, tags=["operator"])
async def metrics(services: ServicesDep) -> PlainTextResponse:
    health = await current_health(services.sandboxes)  # the registry's, asked at most every 10 s
    text = await asyncio.to_thread(collect, services, health)
    return PlainTextResponse(text, media_type="text/plain; version=0.0.4")
