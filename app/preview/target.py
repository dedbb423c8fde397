"""Where a preview goes: the caller's own sandbox (looked up by attendee id, never taken from
the request) and a port given as a plain number."""

from __future__ import annotations

import asyncio
from dataclasses import dataclass

from app.sandboxes.base import SandboxError
from app.sandboxes.service import SandboxService

MAX_PORT = 65535
READY = "ready"


class PreviewUnavailable(Exception):
    """Why the preview cannot be served now, as a page: ``status``, ``title`` and a sentence."""

    def __init__(self, status: int, title: str, detail: str) -> None:
        super().__init__(detail)
        self.status = status
        self.title = title
        self.detail = detail


@dataclass(frozen=True)
class Target:
    """One port of one sandbox, and the path prefix the browser sees it under."""

    host: str
    port: int
    base: str  # "/preview" or "/instructor-preview/<grant>": a port follows it

    @property
    def prefix(self) -> str:
        return self.prefix_of(self.port)

    def prefix_of(self, port: int) -> str:
        return f"{self.base}/{port}"


def parse_port(text: str) -> int | None:
    """1-65535 written plainly (no sign, spaces or leading zeros); None otherwise."""
    if not text.isascii() or not text.isdigit() or text.startswith("0") or len(text) > 5:
        return None
    port = int(text)
    return port if port <= MAX_PORT else None


async def sandbox_target(
    sandboxes: SandboxService, attendee_id: int, port: int, base: str
) -> Target:
    """The address of ``attendee_id``'s sandbox, when it runs; else ``PreviewUnavailable``.
    Never makes or wakes a sandbox: the preview only looks at what runs."""
    view = await asyncio.to_thread(sandboxes.view, attendee_id)  # one read: off the loop
    if view is None or view.name is None:
        raise PreviewUnavailable(
            409, "No sandbox yet", "There is no sandbox to preview yet. Open a lesson to get one."
        )
    if view.state != READY:
        raise PreviewUnavailable(503, "The sandbox is not running", _not_running(view.state))
    try:
        host = await sandboxes.backend.address(view.name)
    except SandboxError as error:
        raise PreviewUnavailable(503, "The sandbox is not running", _not_running("gone")) from error
    return Target(host=host, port=port, base=base)


def _not_running(state: str) -> str:
    return (
        f"The sandbox is not running right now ({state}), so nothing in it can be opened. "
        "Open a lesson page: it starts the sandbox again; then start your server and reload."
    )
