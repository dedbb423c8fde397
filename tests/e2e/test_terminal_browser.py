"""The terminal in Debian's Chromium: join, open a lesson, type into xterm.js, read the rows."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest

from tests.support.browser import TERMINAL_TEXT
from tests.support.live_portal import Portal
from tests.support.live_portal import docker_portal as open_docker_portal

pytestmark = [pytest.mark.browser, pytest.mark.docker]


@pytest.fixture(scope="module")
def docker_portal(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Portal]:
    with open_docker_portal(tmp_path_factory.mktemp("terminal") / "data") as served:
        yield served


def joined_lesson_page(browser: Any, portal: Portal, name: str) -> Any:
    page = browser.new_page()
    page.goto(portal.url + "/")
    page.fill("#name", name)
    page.click("button[type=submit]")
    page.wait_for_url("**/lessons/*")
    return page


def type_into_terminal(page: Any, text: str) -> None:
    page.click("#terminal")
    page.keyboard.type(text)
    page.keyboard.press("Enter")


def wait_for_rows(page: Any, text: str, timeout: float = 60_000) -> None:
    page.wait_for_function(
        f"(text) => ({TERMINAL_TEXT})().includes(text)", arg=text, timeout=timeout
    )


def test_typing_in_the_page_terminal_runs_the_command_in_the_sandbox(
    browser: Any, docker_portal: Portal
) -> None:
    page = joined_lesson_page(browser, docker_portal, "Browser Tester")
    try:
        wait_for_rows(page, "$ ", timeout=180_000)  # the sandbox is made on first visit
        type_into_terminal(page, "echo browser-$((6*7))")
        wait_for_rows(page, "browser-42")
        assert page.locator(".terminal-status").is_hidden()
        cols, rows = page.evaluate("(t => [t.cols, t.rows])(window.labdeckTerminalSession.term)")
        type_into_terminal(page, "echo size=$(stty size)")
        wait_for_rows(page, f"size={rows} {cols}")  # the shell has the page's size
    finally:
        page.close()


def test_run_buttons_a_dropped_connection_and_the_hint(browser: Any, docker_portal: Portal) -> None:
    page = joined_lesson_page(browser, docker_portal, "Browser Runner")
    try:
        assert page.locator(".terminal-hint").is_visible()  # copy/paste hint, first visit only
        wait_for_rows(page, "$ ", timeout=180_000)
        page.evaluate("window.labdeckTerminal.run('LD_KEEP=run-$((5+5)); echo $LD_KEEP')")
        wait_for_rows(page, "run-10")
        # A network drop: the socket dies, the page says so, reconnects, and the shell is the same.
        page.evaluate("window.labdeckTerminalSession.socket.close()")
        page.locator(".terminal-status").wait_for(state="visible", timeout=5_000)
        page.locator(".terminal-status").wait_for(state="hidden", timeout=30_000)
        type_into_terminal(page, "echo again-$LD_KEEP")
        wait_for_rows(page, "again-run-10")
        page.reload()
        wait_for_rows(page, "again-run-10", timeout=30_000)  # scrollback comes back too
        assert page.locator(".terminal-hint").count() == 0
    finally:
        page.close()


def test_copy_and_paste_with_ctrl_shift_c_and_v(browser: Any, docker_portal: Portal) -> None:
    context = browser.new_context(permissions=["clipboard-read", "clipboard-write"])
    page = context.new_page()
    try:
        page.goto(docker_portal.url + "/")
        page.fill("#name", "Browser Paster")
        page.click("button[type=submit]")
        page.wait_for_url("**/lessons/*")
        wait_for_rows(page, "$ ", timeout=180_000)
        type_into_terminal(page, "echo copy-$((20+1))")
        wait_for_rows(page, "copy-21")
        page.evaluate("window.labdeckTerminalSession.term.selectAll()")
        page.keyboard.press("Control+Shift+C")
        copied = ""
        for _ in range(50):  # the clipboard write is a promise of its own
            copied = page.evaluate("navigator.clipboard.readText()")
            if "copy-21" in copied:
                break
            page.wait_for_timeout(100)
        assert "copy-21" in copied
        page.evaluate("navigator.clipboard.writeText('echo pasted-$((1+2))')")
        page.click("#terminal")
        page.keyboard.press("Control+Shift+V")
        wait_for_rows(page, "echo pasted-$((1+2))")  # the paste waits for a clipboard promise
        page.keyboard.press("Enter")
        wait_for_rows(page, "pasted-3")
    finally:
        context.close()


def test_the_welcome_text_breaks_between_words_in_a_narrow_terminal(
    browser: Any, docker_portal: Portal
) -> None:
    """Issue 14, item 11: at about 60 columns the sandbox's welcome text is folded by the shell
    between words, so xterm.js never has to wrap a row in the middle of a word."""
    context = browser.new_context(viewport={"width": 1000, "height": 700})
    page = context.new_page()
    try:
        page.goto(docker_portal.url + "/")
        page.fill("#name", "Narrow Reader")
        page.click("button[type=submit]")
        page.wait_for_url("**/lessons/*")
        wait_for_rows(page, "Welcome to your LabDeck sandbox!", timeout=180_000)
        wait_for_rows(page, "$ ")
        cols = page.evaluate("window.labdeckTerminalSession.term.cols")
        assert cols < 80  # narrower than the text was written for
        rows = page.evaluate(
            """() => { const buffer = window.labdeckTerminalSession.term.buffer.active; const rows = [];
                       for (let y = 0; y < buffer.length; y++) { const line = buffer.getLine(y);
                         rows.push([line.isWrapped, line.translateToString(true)]); }
                       return rows; }"""
        )
        welcome = [text for wrapped, text in rows if "$ " not in text]
        assert not any(wrapped for wrapped, text in rows if "$ " not in text), welcome
        assert "sudo service docker restart" in " ".join(welcome)
    finally:
        context.close()
