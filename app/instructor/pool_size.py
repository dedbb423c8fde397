"""The warm pool's size as the instructor set it on the dashboard, kept across restarts (it wins
over ``LABDECK_WARM_POOL_SIZE`` until the instructor changes it again)."""

from __future__ import annotations

from sqlmodel import Session

from app.models import PortalSetting, utcnow

KEY = "warm_pool_size"


def saved_warm_pool_size(session: Session, workshop: str) -> int | None:
    row = session.get(PortalSetting, (workshop, KEY))
    return int(row.value) if row is not None and row.value.isdigit() else None


def save_warm_pool_size(session: Session, workshop: str, size: int) -> None:
    row = session.get(PortalSetting, (workshop, KEY)) or PortalSetting(
        workshop=workshop, key=KEY, value=""
    )
    row.value = str(size)
    row.changed_at = utcnow()
    session.add(row)
    session.commit()
