"""`GET /healthz`: is this instance able to serve a class right now?"""

from __future__ import annotations

from fastapi import APIRouter
from fastapi.responses import JSONResponse

from app.deps import ServicesDep
from app.health import collect_health

router = APIRouter()


@router.get("/healthz", tags=["operator"])
async def healthz(services: ServicesDep) -> JSONResponse:
    report = await collect_health(services)
    return JSONResponse(report, status_code=200 if report["status"] == "ok" else 503)
