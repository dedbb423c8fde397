"""The terminal draws every character: underscores included (issue 14, item 1). A fake sandbox
echoes what is typed; the test reads xterm.js's buffer and the pixels of the rendered row."""

from __future__ import annotations

from typing import Any

import pytest

from tests.support.browser import LAPTOP, bright_pixels, join, wait_for_terminal_text
from tests.support.live_server import LiveServer

pytestmark = pytest.mark.browser

# The rectangle of the terminal cells from column ``first`` to ``last`` on the row holding
# ``text`` (DOM renderer: one div per row).
CELLS = """([text, first, last]) => {
  const term = window.labdeckTerminalSession.term;
  const buffer = term.buffer.active;
  for (let y = 0; y < term.rows; y++) {
    const line = buffer.getLine(buffer.viewportY + y).translateToString(true);
    if (!line.includes(text)) continue;
    const row = document.querySelectorAll("#terminal .xterm-rows > div")[y].getBoundingClientRect();
    const screen = document.querySelector("#terminal .xterm-screen").getBoundingClientRect();
    const cell = screen.width / term.cols;
    const start = line.indexOf(text);
    return {x: screen.left + (start + first) * cell, y: row.top, width: (last - first + 1) * cell, height: row.height};
  }
  return null;
}"""


def test_the_terminal_shows_underscores(browser: Any, live_server: LiveServer) -> None:
    page = browser.new_page(viewport=LAPTOP)
    try:
        join(page, live_server.url, "Underscore Tester")
        wait_for_terminal_text(page, "")
        page.locator(".terminal-status").wait_for(state="hidden")
        page.click("#terminal")
        page.keyboard.type("BEFORE_RESTART great_elbakyan ______ AB")
        wait_for_terminal_text(page, "BEFORE_RESTART great_elbakyan ______ AB")
        page.wait_for_timeout(200)  # drawn on the next animation frame
        # The underscores alone (columns 0-5 of "______"): lit pixels where the glyphs are.
        box = page.evaluate(CELLS, ["______ AB", 0, 5])
        assert box is not None
        underscores = bright_pixels(page, page.screenshot(clip=box))
        letters = bright_pixels(
            page, page.screenshot(clip=page.evaluate(CELLS, ["______ AB", 7, 8]))
        )
        assert letters > 0  # the comparison: letters are drawn in the same row
        assert underscores >= 6 * 3, f"underscores drew {underscores} bright pixels"
    finally:
        page.close()
