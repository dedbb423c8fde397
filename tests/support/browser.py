"""What the browser tests share: a portal over FakeBackend, joining and signing in from a page,
reading the terminal, axe-core, and the screenshots kept in docs/screenshots/."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from fastapi import FastAPI
from sqlmodel import Session, select

from app.config import Settings
from app.main import create_app
from app.models import Attendee
from app.sandboxes.base import BackendHealth
from app.sandboxes.fake import FakeBackend
from tests.support.settings import INSTRUCTOR_TOKEN, REPO

SCREENSHOTS = REPO / "docs" / "screenshots"
AXE_SCRIPT = REPO / "node_modules" / "axe-core" / "axe.min.js"
LAPTOP = {"width": 1280, "height": 800}
PHONE = {"width": 390, "height": 844}

# The terminal's text, scrollback included, with wrapped rows joined back into their lines.
TERMINAL_TEXT = """() => {
  const buffer = window.labdeckTerminalSession?.term.buffer.active;
  let text = "";
  for (let row = 0; buffer && row < buffer.length; row++) {
    const line = buffer.getLine(row);
    text += (line.isWrapped ? "" : "\\n") + line.translateToString(true);
  }
  return text;
}"""


class ClassroomBackend(FakeBackend):
    """FakeBackend whose workshop registry can be told to stop answering, and whose commands
    fail while they contain one of ``failing`` (a check that is "not yet")."""

    def __init__(self) -> None:
        super().__init__(exec_handler=self._run)
        self.registry = "ok"
        self.failing: set[str] = set()

    def _run(self, name: str, command: str, user: str) -> tuple[int, str]:
        if any(part in command for part in self.failing):
            return 1, "Error: No such image: hello-world"
        return 0, ""

    async def health(self) -> BackendHealth:
        return BackendHealth(engine="ok", registry=self.registry)

    async def show(self, text: str) -> None:
        """Output of the shell in every open terminal (call it on the server's loop)."""
        for tty in self.ttys:
            if not tty.closed:
                await tty.write(text.replace("\n", "\r\n").encode())


def portal(settings: Settings, backend: FakeBackend | None = None, **changes: Any) -> FastAPI:
    """The real app over a fake backend (no warm pool unless ``changes`` says so)."""
    app = create_app(settings.model_copy(update={"warm_pool_size": 0, **changes}))
    app.state.sandbox_backend = backend or ClassroomBackend()
    return app


async def check_task(app: FastAPI, attendee_id: int, task_id: str) -> bool:
    """Check a task through the real code path; run it on the server's loop (LiveServer.call)."""
    services = app.state.services
    found = services.workshop.task(task_id)
    assert found is not None
    run = await services.checks.check(attendee_id, *found)
    return bool(run.passed)


def join(page: Any, url: str, name: str) -> None:
    """Join from the home page, as a person would; the first lesson opens."""
    page.goto(url + "/")
    page.fill("#name", name)
    page.click("form.join button[type=submit]")
    page.wait_for_url("**/lessons/*")


def attendee_id(app: FastAPI, name: str) -> int:
    with Session(app.state.services.db.engine) as session:
        found = session.exec(select(Attendee.id).where(Attendee.name == name)).one()
    assert found is not None
    return found


def sign_in(page: Any, url: str) -> None:
    page.goto(url + "/instructor")
    page.fill("#token", INSTRUCTOR_TOKEN)
    page.click("button[type=submit]")
    page.wait_for_selector("#live[data-state=live]")


def wait_for_terminal_text(page: Any, text: str, timeout: float = 15_000) -> None:
    page.wait_for_function(
        f"(text) => ({TERMINAL_TEXT})().includes(text)", arg=text, timeout=timeout
    )


def serious_accessibility_violations(page: Any) -> list[str]:
    """axe-core (npm, node_modules) on the page as it is: the serious and critical findings."""
    if not page.evaluate("Boolean(window.axe)"):
        page.add_script_tag(path=str(AXE_SCRIPT))
    results = page.evaluate("axe.run(document, {resultTypes: ['violations']})")
    return [
        f"{violation['id']} ({violation['impact']}): {violation['help']} at "
        + json.dumps([node["target"] for node in violation["nodes"]][:3])
        for violation in results["violations"]
        if violation["impact"] in ("serious", "critical")
    ]


def screenshot(page: Any, name: str, **options: Any) -> Path:
    """Save what the page shows into docs/screenshots/NAME.png (linked from the README)."""
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    path = SCREENSHOTS / f"{name}.png"
    page.screenshot(path=str(path), **options)
    return path


def page_width_overflow(page: Any) -> int:
    """How many CSS pixels the page is wider than its viewport (0 when nothing scrolls sideways)."""
    return int(
        page.evaluate(
            "Math.max(document.documentElement.scrollWidth, document.body.scrollWidth)"
            " - document.documentElement.clientWidth"
        )
    )


def bright_pixels(page: Any, png: bytes, threshold: int = 128) -> int:
    """How many pixels of a PNG (a screenshot) are brighter than ``threshold`` (0-255): decoded
    by the browser's own canvas, so no imaging package is needed."""
    import base64

    source = "data:image/png;base64," + base64.b64encode(png).decode()
    return int(
        page.evaluate(
            """async ([source, threshold]) => {
              const image = new Image();
              image.src = source;
              await image.decode();
              const canvas = document.createElement("canvas");
              canvas.width = image.width; canvas.height = image.height;
              const context = canvas.getContext("2d");
              context.drawImage(image, 0, 0);
              const data = context.getImageData(0, 0, image.width, image.height).data;
              let count = 0;
              for (let i = 0; i < data.length; i += 4) {
                if ((data[i] + data[i + 1] + data[i + 2]) / 3 > threshold) count += 1;
              }
              return count;
            }""",
            [source, threshold],
        )
    )
