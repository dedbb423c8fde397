"""The sandbox side of the terminal: the portal's attach and detach commands
(app/terminal/session.py), and the session holder of the sandbox image
(app/sandboxes/docker/images/recipes/sandbox/labdeck_session.py) run for real here, on ptys of this machine."""

from __future__ import annotations

import importlib.util
import os
import re
import select
import signal
import socket
import struct
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from types import ModuleType

import pytest

from app.terminal.frames import TerminalSize
from app.terminal.session import (
    ATTACH_SCRIPT,
    CLIENT_TTY,
    ClientTtyFinder,
    attach_command,
    detach_command,
)

HOLDER = (
    Path(__file__).resolve().parents[1]
    / "app/sandboxes/docker/images/recipes/sandbox/labdeck_session.py"
)


def load_holder() -> ModuleType:
    spec = importlib.util.spec_from_file_location("labdeck_session", HOLDER)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


holder = load_holder()


# -- the portal's commands ---------------------------------------------------------------------


def test_attach_command_passes_size_and_mode_as_arguments() -> None:
    argv = attach_command(TerminalSize(100, 30), read_only=False)
    assert argv[:2] == ["bash", "-c"] and argv[2] == ATTACH_SCRIPT
    assert argv[3:] == ["labdeck-terminal", "100", "30", "write"]
    assert attach_command(TerminalSize(), read_only=True)[-1] == "read"
    assert 'exec labdeck-session attach "$@"' in ATTACH_SCRIPT


def test_detach_ends_the_processes_on_exactly_that_tty() -> None:
    assert detach_command("/dev/pts/12") == "pkill -HUP -t pts/12"


def test_the_tty_marker_is_found_across_chunks_and_only_with_a_pts_path() -> None:
    finder = ClientTtyFinder()
    finder.notice(b"\x1b]6973;/dev/p")
    finder.notice(b"ts/7\x07$ ")
    assert finder.tty == "/dev/pts/7"
    assert CLIENT_TTY.search(b"\x1b]6973;/dev/pts/3; rm -rf ~\x07") is None


def test_replays_drop_the_questions_a_terminal_would_answer_again() -> None:
    history = b"a\x1b[6nb\x1b[>cc\x1b]11;?\x07d\x1b[?2004h\x1b[1;32me"
    assert holder.replayable(history) == b"abcd\x1b[?2004h\x1b[1;32me"


def test_skipping_keeps_the_newest_whole_lines() -> None:
    assert holder.newest_lines(b"one\ntwo\nthree\n", 8) == b"three\n"
    assert holder.newest_lines(b"short\n", 100) == b"short\n"
    assert holder.newest_lines(b"x" * 20, 5) == b"xxxxx"


# -- the holder, on real ptys ------------------------------------------------------------------


class Attach:
    """``labdeck-session attach`` on a pty of its own, as a docker exec runs it."""

    def __init__(self, environment: dict[str, str], size: tuple[int, int], mode: str) -> None:
        self.terminal, secondary = os.openpty()
        self.tty = os.ttyname(secondary)
        holder.set_size(secondary, *size)
        command = [sys.executable, str(HOLDER), "attach", str(size[0]), str(size[1]), mode]
        self.process = subprocess.Popen(
            ["setsid", "-w", "-c", *command],
            stdin=secondary,
            stdout=secondary,
            stderr=secondary,
            env=environment,
        )
        os.close(secondary)
        self.seen = b""

    def read_until(self, pattern: bytes, timeout: float = 10) -> bytes:
        wanted = re.compile(pattern)
        deadline = time.monotonic() + timeout
        while not wanted.search(self.seen):
            left = deadline - time.monotonic()
            assert left > 0, f"no {pattern!r} in {self.seen[-300:]!r}"
            if select.select([self.terminal], [], [], left)[0]:
                self.seen += os.read(self.terminal, 65536)
        return self.seen

    def run(self, command: bytes, answer: bytes) -> bytes:
        os.write(self.terminal, command + b"\r")
        return self.read_until(answer)

    def drain(self, seconds: float) -> int:
        """Reads for ``seconds``; how many bytes came."""
        count, deadline = 0, time.monotonic() + seconds
        while (left := deadline - time.monotonic()) > 0:
            if select.select([self.terminal], [], [], left)[0]:
                try:
                    chunk = os.read(self.terminal, 65536)
                except OSError:
                    break
                count += len(chunk)
                self.seen = (self.seen + chunk)[-4096:]
        return count

    def leave(self) -> None:
        """What the portal's detach does: SIGHUP to the processes on this TTY."""
        self.process.send_signal(signal.SIGHUP)
        self.process.wait(5)
        os.close(self.terminal)


class Session:
    def __init__(self, environment: dict[str, str]) -> None:
        self.environment = environment
        self.attaches: list[Attach] = []

    def attach(self, size: tuple[int, int] = (80, 24), mode: str = "write") -> Attach:
        attach = Attach(self.environment, size, mode)
        self.attaches.append(attach)
        # the TTY's name, then the holder's first output (history, or a new shell's prompt)
        attach.read_until(rb"\x1b\]6973;/dev/pts/\d+\x07[\s\S]")
        return attach

    def holder_pid(self) -> int | None:
        with socket.socket(socket.AF_UNIX, socket.SOCK_SEQPACKET) as probe:
            try:
                probe.connect("\0" + self.environment["LABDECK_SESSION_SOCKET"])
            except ConnectionRefusedError:
                return None
            credentials = probe.getsockopt(socket.SOL_SOCKET, socket.SO_PEERCRED, 12)
        return int(struct.unpack("3i", credentials)[0])


@pytest.fixture
def session(tmp_path: Path) -> Iterator[Session]:
    environment = {
        "PATH": os.environ["PATH"],
        "HOME": str(tmp_path),
        "SHELL": "/bin/bash",
        "TERM": "xterm-256color",
        "LABDECK_SESSION_SOCKET": f"labdeck-test-{uuid.uuid4().hex}",
        "LABDECK_SESSION_LOG": str(tmp_path / "holder.log"),
    }
    started = Session(environment)
    yield started
    pid = started.holder_pid()
    if pid is not None:
        os.kill(pid, signal.SIGTERM)  # its shell gets SIGHUP when the pty closes
    time.sleep(0.3)  # a holder that lost the race to listen may still be starting
    end_processes_with(environment["LABDECK_SESSION_SOCKET"])
    for attach in started.attaches:
        if attach.process.poll() is None:
            attach.process.kill()
        attach.process.wait(5)
    log = tmp_path / "holder.log"
    assert not log.exists() or log.read_text() == "", log.read_text()


def end_processes_with(marker: str) -> None:
    """Kills what this test started: every process whose environment holds ``marker``."""
    for environ in Path("/proc").glob("[0-9]*/environ"):
        try:
            if marker.encode() in environ.read_bytes():
                os.kill(int(environ.parent.name), signal.SIGKILL)
        except (OSError, ValueError):
            continue  # gone meanwhile, or not ours to read


def test_an_attach_names_its_tty_and_runs_commands(session: Session) -> None:
    attach = session.attach()
    found = CLIENT_TTY.search(attach.seen)
    assert found is not None and found.group(1).decode() == attach.tty
    assert b"hello-42" in attach.run(b"echo hello-$((6*7))", rb"hello-42")


def test_a_new_attach_finds_the_same_shell_with_its_history(session: Session) -> None:
    first = session.attach()
    first.run(b"LD_MARK=kept; echo first-$((1+1))", rb"first-2")
    first.leave()
    second = session.attach()
    second.read_until(rb"first-2")  # replayed before anything is typed
    assert b"kept-4" in second.run(b"echo $LD_MARK-$((2*2))", rb"kept-4")


def test_the_whole_history_is_replayed_not_only_what_fits_a_backlog(session: Session) -> None:
    first = session.attach()
    first.run(b"echo early-$((2*4)); seq 100000 | tr -d '\\n' | fold -w 1000", rb"99999100000")
    first.leave()  # about 500 KB since "early-8": more than a connection's backlog
    second = session.attach()
    replayed = second.read_until(rb"early-8[\s\S]*99999100000", timeout=20)
    assert replayed.index(b"early-8") < replayed.rindex(b"99999100000")


def test_two_attaches_share_the_shell_and_a_reader_never_types(session: Session) -> None:
    writer = session.attach((90, 30))
    reader = session.attach((50, 10), mode="read")
    os.write(reader.terminal, b"echo from-reader-$((1+1))\r")
    writer.run(b"stty size; echo both-$((3*3))", rb"both-9")
    assert b"30 90" in reader.read_until(rb"both-9")
    assert b"from-reader-2" not in writer.seen


def test_a_resize_reaches_the_shell(session: Session) -> None:
    attach = session.attach((80, 24))
    holder.set_size(attach.terminal, 101, 37)  # the kernel tells the attach (SIGWINCH)
    time.sleep(0.2)
    attach.run(b"echo size=$(stty size)", rb"size=\d+ \d+")
    assert b"size=37 101" in attach.seen


def test_a_connection_that_stops_reading_skips_ahead_and_stalls_nobody(session: Session) -> None:
    stalled = session.attach()
    active = session.attach()
    started = time.monotonic()
    active.run(b"yes 0123456789 | head -c 20000000; echo flood-$((5*5))", rb"flood-25")
    assert time.monotonic() - started < 30
    received = stalled.drain(1.0)
    assert received < 2_000_000  # kernel buffers, the holder's backlog, the newest lines
    assert b"flood-25" in stalled.seen


def test_exit_ends_every_attach_and_the_next_one_gets_a_new_shell(session: Session) -> None:
    first, second = session.attach(), session.attach()
    first.run(b"echo pid=$$-end", rb"pid=\d+-end")
    old_pid = re.findall(rb"pid=(\d+)-end", first.seen)[-1]
    os.write(first.terminal, b"exit\r")
    assert first.process.wait(10) == 0 and second.process.wait(10) == 0
    third = session.attach()
    third.run(b"echo pid=$$-end", rb"pid=\d+-end")
    assert re.findall(rb"pid=(\d+)-end", third.seen)[-1] != old_pid


def test_attaching_from_inside_the_session_is_refused(session: Session) -> None:
    environment = {**session.environment, "LABDECK_SESSION": "1"}
    command = [sys.executable, str(HOLDER), "attach", "80", "24", "write"]
    refused = subprocess.run(command, env=environment, capture_output=True, check=False)
    assert refused.returncode == 2 and b"already" in refused.stderr
