"""`GET /healthz`: is this instance able to serve a class right now?"""

from __future__ import annotations

from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse

from app.health import collect_health

router = APIRouter()


@router.get("/healthz", tags=["operator"])
async def healthz(request: Request) -> JSONResponse:
    report = await collect_health(request.app)
    return JSONResponse(report, status_code=200 if report["status"] == "ok" else 503)
