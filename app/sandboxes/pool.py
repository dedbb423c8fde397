"""The warm pool ("hot start"): ready sandboxes that belong to nobody yet.

Handing one out only writes its owner into the database (the truth; container labels are not
rewritten), so it starts no container and takes milliseconds. The pool refills in the background
through admission, behind every waiting attendee.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Callable

from app.models import Sandbox
from app.sandboxes.admission import Admission
from app.sandboxes.base import SandboxSpec, SandboxState
from app.sandboxes.lifecycle import IN_PROGRESS, Lifecycle

log = logging.getLogger("labdeck.sandboxes")

# After a warm-pool creation failed twice, wait this long before trying new ones.
FAILURE_PAUSE_SECONDS = 60.0
# The pool also looks at itself this often, in case a sandbox died unnoticed.
CHECK_INTERVAL_SECONDS = 30.0
# Refilling waits until no hand-out happened for this long: new engines booting take CPU that a
# class arriving needs for its joins, pages and terminals. It starts at once when the pool ran
# dry (the next arrival would wait for a new sandbox anyway), and never waits longer than the
# maximum, so a steady trickle of arrivals still gets a pool.
REFILL_QUIET_SECONDS = 1.0
REFILL_MAX_DELAY_SECONDS = 120.0
# Hand-out prefers a ready sandbox, then one nearly there.
HAND_OUT_ORDER = (SandboxState.READY, SandboxState.STARTING, SandboxState.CREATING)


class WarmPool:
    def __init__(
        self,
        admission: Admission,
        lifecycle: Lifecycle,
        new_spec: Callable[[], SandboxSpec],
        size: int,
    ) -> None:
        self.admission = admission
        self.lifecycle = lifecycle
        self.records = lifecycle.records
        self.new_spec = new_spec
        self.size = size
        self._wakeup = asyncio.Event()
        self._paused_until = 0.0
        self._last_hand_out = 0.0
        self._ran_dry = asyncio.Event()
        self.refill_quiet = REFILL_QUIET_SECONDS

    async def hand_out(self, attendee_id: int) -> Sandbox | None:
        """Give the attendee a pool sandbox (ready, else one being made), or None when empty."""
        row = await self.records.claim_unassigned(attendee_id, HAND_OUT_ORDER)
        if row is None:
            self._ran_dry.set()
            self.request_refill()
        else:
            self._last_hand_out = time.monotonic()
            self.lifecycle.transitions.publish(row)
            log.info("handed warm sandbox %s to attendee %s", row.container_name, attendee_id)
            self.request_refill()
        return row

    def resize(self, size: int) -> None:
        self.size = max(0, size)
        self._paused_until = 0.0
        self.request_refill()

    def request_refill(self) -> None:
        self._wakeup.set()

    def counts_of(self, rows: list[Sandbox]) -> dict[str, int]:
        """The pool's figures among ``rows`` (every sandbox row of the instance)."""
        workshop = self.records.workshop
        rows = [row for row in rows if row.attendee_id is None and row.workshop == workshop]
        return {
            "size": self.size,
            "ready": sum(row.state == SandboxState.READY for row in rows),
            "in_progress": sum(row.state in IN_PROGRESS for row in rows),
        }

    async def refill(self) -> int:
        """Bring the pool to ``size``: drop broken ones, queue missing ones, shrink extras.
        Returns how many creations were queued."""
        rows = await self.records.unassigned()
        broken = [row for row in rows if row.state not in (SandboxState.READY, *IN_PROGRESS)]
        for row in broken:
            await self.lifecycle.discard_unassigned(row.container_name)
        if any(row.state == SandboxState.FAILED for row in broken):
            self._paused_until = time.monotonic() + FAILURE_PAUSE_SECONDS
            log.warning(
                "a warm-pool sandbox failed; refilling again in %.0f s", FAILURE_PAUSE_SECONDS
            )
        live = [row for row in rows if row.state in (SandboxState.READY, *IN_PROGRESS)]
        if len(live) > self.size:
            await self._shrink(live)
            return 0
        if time.monotonic() < self._paused_until:
            return 0
        missing = self.size - len(live)
        for _ in range(missing):
            spec = self.new_spec()
            await self.records.add(spec.name, None)
            self.admission.submit(spec)
        return missing

    async def _shrink(self, live: list[Sandbox]) -> None:
        # Least advanced first: a queued creation costs nothing to drop.
        order = {
            state: index for index, state in enumerate(("queued", "creating", "starting", "ready"))
        }
        surplus = sorted(live, key=lambda row: (order.get(row.state, 0), -(row.id or 0)))
        for row in surplus[: len(live) - self.size]:
            self.admission.cancel(row.container_name)
            await self.lifecycle.discard_unassigned(row.container_name)

    async def run(self) -> None:
        while True:
            self._wakeup.clear()  # before refilling: a hand-out meanwhile wakes the next round
            try:
                await self.refill()
            except Exception:  # the next round retries; a pool that stops refilling is worse
                log.exception("refilling the warm pool failed")
            pause_left = self._paused_until - time.monotonic()
            timeout = CHECK_INTERVAL_SECONDS
            if pause_left > 0:
                timeout = min(timeout, pause_left)
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(timeout):
                    await self._wakeup.wait()
            await self._quiet_moment()

    async def _quiet_moment(self) -> None:
        """Return once no hand-out happened for ``refill_quiet`` seconds, once an attendee found
        the pool empty, or after the maximum."""
        latest = time.monotonic() + REFILL_MAX_DELAY_SECONDS
        while (now := time.monotonic()) < latest:
            quiet_for = now - self._last_hand_out
            if quiet_for >= self.refill_quiet or self._ran_dry.is_set():
                self._ran_dry.clear()
                return
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(min(self.refill_quiet - quiet_for, latest - now)):
                    await self._ran_dry.wait()
