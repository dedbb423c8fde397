"""`GET /metrics`: Prometheus text for the operator. Aggregate counts only: no names, no tokens."""

from __future__ import annotations

from fastapi import APIRouter
from fastapi.responses import PlainTextResponse

from app.deps import ServicesDep
from app.metrics import collect

router = APIRouter()


@router.get("/metrics", response_class=PlainTextResponse, tags=["operator"])
def metrics(services: ServicesDep) -> PlainTextResponse:
    text = collect(services)
    return PlainTextResponse(text, media_type="text/plain; version=0.0.4")
