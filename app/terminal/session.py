"""The attendee's shell inside the sandbox: how a terminal connection attaches to it and
leaves it again.

Each connection runs ``labdeck-session attach COLS ROWS MODE`` (the session holder of the
sandbox image, app/sandboxes/docker/images/recipes/sandbox/labdeck_session.py) in a docker exec with a TTY. The
holder owns the shell, so closing the tab, a network drop or a portal restart ends only that
attach; the next one finds the same shell, with its recent output replayed, and two tabs are
two attaches of one shell. ``read`` mode (the instructor watching) never types or resizes.
"""

from __future__ import annotations

import re

from app.terminal.frames import TerminalSize

# The attach's first output names its TTY in an OSC sequence xterm.js ignores, so that the
# portal can end exactly that attach when the page leaves: docker never ends an exec whose
# connection closed, and an attach left behind would linger in the sandbox.
CLIENT_TTY = re.compile(rb"\x1b\]6973;(/dev/pts/[0-9]{1,6})\x07")
HEAD_BYTES = 512

# bash -c ATTACH_SCRIPT labdeck-terminal COLS ROWS MODE, as the attendee. A sandbox made from
# an image older than labdeck-session gets a plain shell, which ends with its connection,
# rather than a reconnect loop; the line it prints says how to get the lasting one.
ATTACH_SCRIPT = r"""
if command -v labdeck-session >/dev/null 2>&1; then
    exec labdeck-session attach "$@"
fi
printf '\033]6973;%s\007' "$(tty)"
stty cols "$1" rows "$2" 2>/dev/null
printf '%s\r\n' "This sandbox's image is older than LabDeck's session keeper, so this shell \
ends when the connection does. Rebuild the images and recreate the sandbox to fix that."
if [ "$3" = write ]; then cd && exec bash -l; fi
exec sleep infinity
"""


def attach_command(size: TerminalSize, *, read_only: bool) -> list[str]:
    """The argv that attaches to (or starts) the attendee's shell in the sandbox."""
    mode = "read" if read_only else "write"
    return ["bash", "-c", ATTACH_SCRIPT, "labdeck-terminal", str(size.cols), str(size.rows), mode]


def detach_command(client_tty: str) -> str:
    """Ends the attach on ``client_tty`` (a ``/dev/pts/N`` from ``CLIENT_TTY``), and with it its
    exec; the holder notices and lets go of that TTY. The shell lives on."""
    return f"pkill -HUP -t {client_tty.removeprefix('/dev/')}"


class ClientTtyFinder:
    """Reads the TTY name an attach announces at the start of its output."""

    def __init__(self) -> None:
        self.tty: str | None = None
        self._head = b""

    def notice(self, chunk: bytes) -> None:
        if self.tty is not None or len(self._head) > HEAD_BYTES:
            return
        self._head += chunk
        found = CLIENT_TTY.search(self._head)
        if found:
            self.tty = found.group(1).decode()
