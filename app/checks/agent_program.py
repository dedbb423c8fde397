"""LabDeck's check agent: the program the portal runs once per sandbox to run checks there.

Standard library only: the portal sends this file's source to ``python3 -c`` inside the
sandbox, so nothing has to be installed beyond Debian's python3. The portal talks to it over
the exec's TTY, switched to raw mode so that bytes pass untouched, one JSON object per line:

    portal → agent   {"id": 7, "run": "docker image inspect hello", "timeout": 15, "limit": 65536}
    agent → portal   {"id": 7, "exit_code": 0, "output": "…", "timed_out": false, "seconds": 0.04}

Each check is still a process of its own: ``bash -lc`` in a new session, in the attendee's home,
its output captured (never typed into the attendee's shell), its whole session SIGKILLed at the
deadline and again when the command returns, so that background jobs it left die with it.
What the agent saves is the container exec per check: on a small host that exec costs more CPU
than the check itself. Requests are served concurrently, each on a thread of its own.
The exec path (``GUARD`` in app/sandboxes/docker/exec.py, shell) keeps the same rule for
images without python3; tests/checks/test_kill_rule.py holds both to it.
"""

from __future__ import annotations

import contextlib
import json
import os
import signal
import subprocess
import sys
import threading
import time
from typing import Any, BinaryIO

READY = {"ready": True, "protocol": 1}
KILLED_EXIT_CODE = 137  # what a shell reports for SIGKILL, as the exec path does
DRAIN_SECONDS = 1.0  # how long output may still arrive once the session is killed


class Tail:
    """The last ``limit`` bytes of a stream, read on a thread until end of file."""

    def __init__(self, limit: int) -> None:
        self.limit = limit
        self.data = bytearray()

    def read_from(self, stream: BinaryIO) -> None:
        for chunk in iter(lambda: stream.read1(1 << 16), b""):  # type: ignore[attr-defined]
            self.data += chunk
            if len(self.data) > 2 * self.limit:
                del self.data[: -self.limit]

    def text(self) -> str:
        return bytes(self.data[-self.limit :]).decode("utf-8", errors="replace")


def kill_session(session: int) -> None:
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(session, signal.SIGKILL)


def run(command: str, timeout: float, limit: int) -> dict[str, Any]:
    """Run ``command`` under ``bash -c`` for at most ``timeout`` seconds."""
    started = time.monotonic()
    process = subprocess.Popen(
        ["bash", "-lc", command],
        stdin=subprocess.DEVNULL,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        start_new_session=True,
        cwd=os.path.expanduser("~"),
    )
    tail = Tail(limit)
    reader = threading.Thread(target=tail.read_from, args=(process.stdout,), daemon=True)
    reader.start()
    timed_out = False
    try:
        exit_code = process.wait(timeout)
    except subprocess.TimeoutExpired:
        timed_out = True
    kill_session(process.pid)
    if timed_out:
        process.wait()
        exit_code = KILLED_EXIT_CODE
    reader.join(DRAIN_SECONDS)
    return {
        "exit_code": exit_code if exit_code >= 0 else 128 - exit_code,
        "output": tail.text(),
        "timed_out": timed_out,
        "seconds": round(time.monotonic() - started, 4),
    }


class Replies:
    """Writes whole reply lines to stdout, one at a time."""

    def __init__(self, fd: int) -> None:
        self.fd = fd
        self.lock = threading.Lock()

    def send(self, message: dict[str, Any]) -> None:
        data = (json.dumps(message) + "\n").encode("ascii")
        with self.lock, contextlib.suppress(OSError):  # the portal hung up: nobody to tell
            view = memoryview(data)
            while view:
                view = view[os.write(self.fd, view) :]


def serve(request: dict[str, Any], replies: Replies) -> None:
    ident = request.get("id")
    try:
        timeout = float(request.get("timeout", 15))
        limit = int(request.get("limit", 65536))
        reply = run(str(request["run"]), timeout, limit)
    except Exception as error:  # the portal falls back to an exec and says what happened
        reply = {"error": f"{type(error).__name__}: {error}"}
    replies.send({"id": ident, **reply})


def make_raw(fd: int) -> None:
    """No echo, no line editing, no CR/LF translation: the TTY carries bytes as they are."""
    if os.isatty(fd):
        import tty

        tty.setraw(fd)


def main() -> None:
    make_raw(0)
    replies = Replies(1)
    replies.send(READY)
    for line in sys.stdin.buffer:
        try:
            request = json.loads(line)
        except ValueError:
            replies.send({"id": None, "error": "not a JSON line"})
            continue
        # Not a daemon: at end of input, checks still running finish (and kill their leftovers).
        threading.Thread(target=serve, args=(request, replies)).start()


if __name__ == "__main__":
    main()
