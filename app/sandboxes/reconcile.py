"""Reconcile at start-up: after a portal restart, make the database and the engine agree again.

Nothing that runs is stopped. Live containers are re-adopted as they are; rows whose container
is gone are marked MISSING (the attendee gets a fresh sandbox when they come back); creations
cut short by the restart are queued again; containers of this instance that no row knows are
removed once older than a grace period, since a younger one may be in the middle of being made
by a ``labdeck`` command.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime, timedelta

from app.models import Sandbox, utcnow
from app.sandboxes.admission import Admission
from app.sandboxes.base import SandboxInfo, SandboxSpec, SandboxState
from app.sandboxes.lifecycle import IN_PROGRESS, Lifecycle

log = logging.getLogger("labdeck.sandboxes")

ORPHAN_GRACE_SECONDS = 600.0
RUNNING = (SandboxState.READY, SandboxState.STARTING)


@dataclass
class ReconcileReport:
    adopted: list[str] = field(default_factory=list)
    stopped: list[str] = field(default_factory=list)
    missing: list[str] = field(default_factory=list)
    resumed: list[str] = field(default_factory=list)
    dropped: list[str] = field(default_factory=list)  # warm-pool rows without a container
    orphans_removed: list[str] = field(default_factory=list)
    orphans_kept: list[str] = field(default_factory=list)


async def reconcile(
    lifecycle: Lifecycle,
    admission: Admission,
    spec_for: Callable[[Sandbox], SandboxSpec],
    *,
    grace: float = ORPHAN_GRACE_SECONDS,
    now: datetime | None = None,
) -> ReconcileReport:
    """Compare every row with the engine's sandboxes of this instance and settle each one."""
    report = ReconcileReport()
    containers = {info.name: info for info in await lifecycle.backend.list()}
    for row in await lifecycle.records.all():
        await _settle_row(
            row, containers.pop(row.container_name, None), lifecycle, admission, spec_for, report
        )
    cutoff = (now or utcnow()) - timedelta(seconds=grace)
    for info in containers.values():
        if info.created_at is not None and info.created_at > cutoff:
            report.orphans_kept.append(info.name)
            continue
        await lifecycle.backend.remove(info.name)
        report.orphans_removed.append(info.name)
    log.info("reconciled sandboxes: %s", report)
    return report


async def _settle_row(
    row: Sandbox,
    info: SandboxInfo | None,
    lifecycle: Lifecycle,
    admission: Admission,
    spec_for: Callable[[Sandbox], SandboxSpec],
    report: ReconcileReport,
) -> None:
    name, transitions = row.container_name, lifecycle.transitions
    if row.state in IN_PROGRESS:
        # The backend's create is a no-op for a running sandbox and starts a stopped one.
        await transitions.set_state(name, SandboxState.QUEUED)
        admission.submit(spec_for(row), row.attendee_id)
        report.resumed.append(name)
    elif info is None:
        if row.attendee_id is None:
            await lifecycle.records.delete(name)
            report.dropped.append(name)
        elif row.state != SandboxState.FAILED:
            await transitions.set_state(name, SandboxState.MISSING)
            report.missing.append(name)
    elif info.state in RUNNING:
        if row.state != SandboxState.READY:
            await transitions.set_state(name, SandboxState.READY)
        report.adopted.append(name)
    elif row.state == SandboxState.READY:
        await transitions.set_state(name, SandboxState.STOPPED, info.message)
        report.stopped.append(name)
