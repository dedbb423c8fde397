"""`GET /metrics`: Prometheus text for the operator. Aggregate counts only: no names, no tokens."""

from __future__ import annotations

import asyncio

from fastapi import APIRouter, Request
from fastapi.responses import PlainTextResponse

from app.metrics import collect

router = APIRouter()


@router.get("/metrics", response_class=PlainTextResponse, tags=["operator"])
async def metrics(request: Request) -> PlainTextResponse:
    text = await asyncio.to_thread(collect, request.app)
    return PlainTextResponse(text, media_type="text/plain; version=0.0.4")
