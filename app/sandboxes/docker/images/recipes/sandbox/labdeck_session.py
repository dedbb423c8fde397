#!/usr/bin/python3
"""labdeck-session: keeps the attendee's shell alive between terminal connections.

`labdeck-session attach COLS ROWS MODE` (MODE: write or read) is what each terminal connection
runs, through a docker exec with a TTY: it hands that TTY to the session holder
(`labdeck-session hold`, started on first use), a small daemon that owns the shell's pty.
Closing the connection ends only the attach; the shell and its programs go on.

Why not tmux: tmux parses every byte into a screen model, which cost 1.5 s of CPU per 50 MB
of output and capped `cat` at about 16 MB/s in a one-CPU sandbox. The holder passes bytes
through, keeps the last RING_BYTES of output and replays them to each new connection, so the
page's scrollback comes back after a reload. A connection that falls more than BACKLOG_BYTES
behind skips to the newest lines: the shell never waits for a slow connection, and the
holder's memory stays bounded. The portal's side is app/terminal/session.py; the protocol is
in docs/terminal-protocol.md.
"""

from __future__ import annotations

import contextlib
import fcntl
import os
import pwd
import re
import selectors
import signal
import socket
import struct
import sys
import termios
import time
import traceback
import tty
from collections.abc import Callable

RING_BYTES = 1024 * 1024  # replayed to every new connection: the page's scrollback
BACKLOG_BYTES = 256 * 1024  # per connection; beyond it, the connection skips ahead
SKIP_KEEP_BYTES = 32 * 1024  # what a skipping connection keeps: the newest lines
INPUT_BYTES = 64 * 1024  # keys the shell has not taken yet; beyond it, keys wait in their TTY
READ_BYTES = 64 * 1024
CONNECT_WAIT = 5.0
# Names this attach's TTY to the portal (an OSC sequence terminals ignore), so that it can
# end exactly this attach when its websocket closes: docker keeps an exec running after its
# connection closed.
TTY_MARKER = "\x1b]6973;{}\x07"
NESTED = "LABDECK_SESSION"  # set in the shell: attaching from inside it would loop output
WINSIZE = struct.Struct("HHHH")
PEER = struct.Struct("3i")  # SO_PEERCRED: pid, uid, gid
ALT_SCREEN = re.compile(rb"\x1b\[\?(?:1049|1047|47)([hl])")
# Requests a terminal answers (device attributes, cursor and mode reports, colour and window
# queries). Replayed, they would make the page answer again, into the shell's input.
QUERIES = re.compile(
    rb"\x1b\[[>=?]?[0-9;]*[cn]|\x1b\[[0-9;?]*\$p|\x1b\[>[0-9;]*q|\x1b\[[0-9;]*t"
    rb"|\x1b\][0-9]+;(?:[0-9]+;)?\?(?:\x07|\x1b\\)|\x1bP[$+]q[^\x1b]*\x1b\\"
)


def socket_address() -> str:
    """An abstract unix socket: no file that cleaning /tmp could remove."""
    name = os.environ.get("LABDECK_SESSION_SOCKET") or f"labdeck-session-{os.getuid()}"
    return "\0" + name


def get_size(fd: int) -> tuple[int, int]:
    packed = fcntl.ioctl(fd, termios.TIOCGWINSZ, bytes(WINSIZE.size))
    rows, cols, _, _ = WINSIZE.unpack(packed)
    return cols, rows


def set_size(fd: int, cols: int, rows: int) -> None:
    fcntl.ioctl(fd, termios.TIOCSWINSZ, WINSIZE.pack(rows, cols, 0, 0))


def replayable(history: bytes) -> bytes:
    return QUERIES.sub(b"", history)


def newest_lines(data: bytes | bytearray, keep: int) -> bytes:
    """The last ``keep`` bytes or fewer, from a line start when there is one."""
    start = max(len(data) - keep, 0)
    newline = data.find(b"\n", start) if start else -1
    return bytes(data[newline + 1 if newline >= 0 else start :])


# -- the holder -------------------------------------------------------------------------------


class Connection:
    """One attach: its TTY (passed over the socket) and the socket that ends with it."""

    def __init__(self, control: socket.socket, tty_fd: int, writable: bool) -> None:
        self.key = control.fileno()
        self.control = control
        self.tty = tty_fd
        self.writable = writable
        self.backlog = bytearray()
        self.history_left = 0  # bytes of the replayed history not written yet: never skipped
        os.set_blocking(tty_fd, False)

    def replay(self, history: bytes) -> None:
        self.backlog += history
        self.history_left = len(self.backlog)

    def queue(self, data: bytes) -> None:
        self.backlog += data
        if len(self.backlog) > BACKLOG_BYTES + self.history_left:  # far behind: skip ahead
            live = self.backlog[self.history_left :]
            self.backlog[self.history_left :] = newest_lines(live, SKIP_KEEP_BYTES)

    def flush(self) -> bool:
        """Write what the TTY takes now; False once the TTY is gone (its exec ended)."""
        try:
            written = os.write(self.tty, self.backlog)
        except BlockingIOError:
            return True
        except OSError:
            return False
        del self.backlog[:written]
        self.history_left = max(self.history_left - written, 0)
        return True


class Holder:
    """Owns the shell's pty; copies its output to every connection and their keys to it."""

    def __init__(self, listener: socket.socket, cols: int, rows: int) -> None:
        self.listener = listener
        self.selector = selectors.DefaultSelector()
        self.connections: dict[int, Connection] = {}
        self.history = bytearray()
        self.truncated = False
        self.alt_screen = False
        self.input = bytearray()
        self.size = (cols, rows)
        self.wakeup, self._wakeup_writer = socket.socketpair()
        self._wakeup_writer.setblocking(False)
        signal.set_wakeup_fd(self._wakeup_writer.fileno())
        signal.signal(signal.SIGCHLD, lambda *_: None)  # heard through the wakeup socket
        signal.signal(signal.SIGHUP, signal.SIG_IGN)
        self.shell_pid, self.pty = start_shell(cols, rows)
        os.set_blocking(self.pty, False)
        self.on(listener, selectors.EVENT_READ, lambda _: self.accept())
        self.on(self.wakeup, selectors.EVENT_READ, lambda _: self.child_changed())
        self.on(self.pty, selectors.EVENT_READ, self.pty_ready)

    def on(self, fd: int | socket.socket, events: int, handler: Callable[[int], None]) -> None:
        self.selector.register(fd, events, handler)

    def run(self) -> None:
        while True:
            for key, events in self.selector.select():
                if self.selector.get_map().get(key.fd) is not key:
                    continue  # dropped by an earlier event of this round
                try:
                    key.data(events)
                except Exception:  # a bug must not take the attendee's shell with it
                    traceback.print_exc()

    # -- the shell

    def pty_ready(self, events: int) -> None:
        if events & selectors.EVENT_WRITE:
            self.feed_shell()
        if events & selectors.EVENT_READ and not self.read_shell():
            self.end()

    def read_shell(self) -> bool:
        """Pass on what the shell wrote; False once its pty is gone."""
        try:
            data = os.read(self.pty, READ_BYTES)
        except BlockingIOError:
            return True
        except OSError:  # EIO: the shell and everything else on its pty have gone
            return False
        self.remember(data)
        for connection in list(self.connections.values()):
            waiting = bool(connection.backlog)  # its TTY is full: flushed once writable
            connection.queue(data)
            if waiting or connection.flush():
                self.watch(connection)
            else:
                self.drop(connection)
        return bool(data)

    def remember(self, data: bytes) -> None:
        self.history += data
        if len(self.history) > 2 * RING_BYTES:
            del self.history[: len(self.history) - RING_BYTES]
            self.truncated = True
        if b"\x1b[?" in data:
            modes = ALT_SCREEN.findall(data)
            if modes:
                self.alt_screen = modes[-1] == b"h"

    def feed_shell(self) -> None:
        with contextlib.suppress(BlockingIOError):
            del self.input[: os.write(self.pty, self.input)]
        writing = selectors.EVENT_WRITE if self.input else 0
        self.selector.modify(self.pty, selectors.EVENT_READ | writing, self.pty_ready)
        for connection in self.connections.values():
            self.watch(connection)  # keys may flow again

    def resize(self, cols: int, rows: int) -> None:
        if (cols, rows) != self.size and cols > 0 and rows > 0:
            set_size(self.pty, cols, rows)  # the kernel tells the shell (SIGWINCH)
            self.size = (cols, rows)

    def child_changed(self) -> None:
        self.wakeup.recv(64)
        with contextlib.suppress(ChildProcessError):
            if os.waitpid(self.shell_pid, os.WNOHANG)[0]:  # the shell exited
                while self.read_shell():  # its last words (until EAGAIN or EIO)
                    if not select_readable(self.pty):
                        break
                self.end()

    def end(self) -> None:
        for connection in list(self.connections.values()):
            connection.flush()
            connection.control.close()  # its attach exits, and its exec with it
        os._exit(0)

    # -- connections

    def accept(self) -> None:
        control, _ = self.listener.accept()
        _pid, uid, _gid = PEER.unpack(
            control.getsockopt(socket.SOL_SOCKET, socket.SO_PEERCRED, PEER.size)
        )
        if uid != os.getuid():  # only the attendee may type into their shell
            control.close()
            return
        control.settimeout(CONNECT_WAIT)  # the attach says hello right away
        try:
            mode, fds, _, _ = socket.recv_fds(control, 16, 1)
        except OSError:
            mode, fds = b"", []
        if len(fds) != 1:
            for fd in fds:
                os.close(fd)
            control.close()
            return
        connection = Connection(control, fds[0], writable=mode == b"write")
        self.connections[connection.key] = connection
        self.on(control, selectors.EVENT_READ, lambda _: self.control_message(connection))
        connection.replay(self.replay())
        if connection.writable:
            self.take_size_of(connection)
        if connection.flush():
            self.watch(connection)
        else:
            self.drop(connection)

    def replay(self) -> bytes:
        history = bytes(self.history[-RING_BYTES:])
        if self.truncated:
            history = newest_lines(history, RING_BYTES - 1)
        return replayable(history)

    def take_size_of(self, connection: Connection) -> None:
        before = self.size
        self.resize(*get_size(connection.tty))
        if self.size == before and self.alt_screen:  # a full-screen program: make it redraw
            with contextlib.suppress(OSError):
                os.killpg(os.tcgetpgrp(self.pty), signal.SIGWINCH)

    def control_message(self, connection: Connection) -> None:
        try:
            message = connection.control.recv(64)
        except OSError:
            message = b""
        if not message:
            self.drop(connection)
        elif connection.writable:  # "size": its TTY was resized
            self.resize(*get_size(connection.tty))

    def connection_io(self, connection: Connection, events: int) -> None:
        if events & selectors.EVENT_WRITE and not connection.flush():
            self.drop(connection)
            return
        if events & selectors.EVENT_READ:
            try:
                keys = os.read(connection.tty, READ_BYTES)
            except BlockingIOError:
                keys = b""
            except OSError:  # its exec ended
                self.drop(connection)
                return
            if keys and connection.writable:
                self.resize(*get_size(connection.tty))  # the window follows whoever types
                self.input += keys
                self.feed_shell()
        self.watch(connection)

    def watch(self, connection: Connection) -> None:
        """Select on its TTY for what it needs: writing while it has a backlog, reading while
        the shell takes keys (a read-only connection's keys are never read)."""
        events = selectors.EVENT_WRITE if connection.backlog else 0
        if connection.writable and len(self.input) < INPUT_BYTES:
            events |= selectors.EVENT_READ
        registered = self.selector.get_map().get(connection.tty)
        if registered is not None and registered.events == events:
            return
        if registered is not None:
            self.selector.unregister(connection.tty)
        if events:
            self.on(connection.tty, events, lambda mask: self.connection_io(connection, mask))

    def drop(self, connection: Connection) -> None:
        if self.connections.pop(connection.key, None) is None:
            return  # dropped already
        self.selector.unregister(connection.control)
        if connection.tty in self.selector.get_map():
            self.selector.unregister(connection.tty)
        connection.control.close()  # its attach exits
        os.close(connection.tty)


def select_readable(fd: int) -> bool:
    with selectors.DefaultSelector() as probe:
        probe.register(fd, selectors.EVENT_READ)
        return bool(probe.select(0))


def start_shell(cols: int, rows: int) -> tuple[int, int]:
    """The attendee's login shell on a new pty of that size, in their home directory."""
    user = pwd.getpwuid(os.getuid())
    shell = os.environ.get("SHELL") or user.pw_shell or "/bin/sh"
    primary, secondary = os.openpty()
    set_size(secondary, cols, rows)
    pid = os.fork()
    if pid == 0:
        os.setsid()
        fcntl.ioctl(secondary, termios.TIOCSCTTY, 0)
        for fd in (0, 1, 2):
            os.dup2(secondary, fd)
        os.chdir(user.pw_dir)
        environment = {**os.environ, NESTED: "1", "SHELL": shell}
        os.execve(shell, ["-" + os.path.basename(shell)], environment)  # "-": a login shell
    os.close(secondary)
    return pid, primary


def hold(cols: int, rows: int, told: int | None = None) -> int:
    """Serve the session until its shell ends; returns at once when a holder runs already.
    Writes a byte to the file descriptor ``told`` once it listens (see ``start_holder``)."""
    listener = socket.socket(socket.AF_UNIX, socket.SOCK_SEQPACKET)
    try:
        listener.bind(socket_address())
    except OSError:  # in use: another attach started a holder a moment ago
        return 0
    listener.listen(16)
    if told is not None:
        os.write(told, b"l")
        os.close(told)  # the shell must not inherit it
    Holder(listener, cols, rows).run()
    return 0


def start_holder(cols: int, rows: int) -> None:
    """``hold`` as a daemon (its own session, nothing of this attach's TTY kept open). Returns
    once it listens, or has found that another holder got the address first."""
    ready, told = os.pipe()
    child = os.fork()
    if child:
        os.close(told)
        os.waitpid(child, 0)
        os.read(ready, 1)  # b"" when it ended without listening
        os.close(ready)
        return
    try:
        os.setsid()
        if os.fork() == 0:
            null = os.open(os.devnull, os.O_RDWR)
            log = os.environ.get("LABDECK_SESSION_LOG")  # for tests and debugging
            errors = os.open(log, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o600) if log else null
            for fd in (0, 1, 2):
                os.dup2(errors if fd == 2 else null, fd)
            os.set_inheritable(told, True)
            script = os.path.abspath(__file__)
            argv = [sys.executable, script, "hold", str(cols), str(rows), str(told)]
            os.execv(sys.executable, argv)
    finally:
        os._exit(0)


# -- attach -----------------------------------------------------------------------------------


def connect(cols: int, rows: int) -> socket.socket:
    """A socket to the holder, started first when there is none."""
    deadline = time.monotonic() + CONNECT_WAIT
    started = False
    while True:
        control = socket.socket(socket.AF_UNIX, socket.SOCK_SEQPACKET)
        try:
            control.connect(socket_address())
            return control
        except ConnectionRefusedError:  # no holder (an abstract address has no stale file)
            control.close()
            if time.monotonic() > deadline:
                raise
        if not started:
            start_holder(cols, rows)
            started = True
        else:
            time.sleep(0.01)  # the holder that got the address first is about to listen


def attach(cols: int, rows: int, mode: str) -> int:
    if os.environ.get(NESTED):
        print("labdeck-session: this shell is the LabDeck session already.", file=sys.stderr)
        return 2
    if not os.isatty(0):
        print("labdeck-session: attach needs a terminal.", file=sys.stderr)
        return 2
    tty.setraw(0, termios.TCSANOW)  # keys pass as typed (Ctrl-C too); typed ones are kept
    if get_size(0) == (0, 0):  # a docker exec's TTY starts at 0x0, unless resized already
        set_size(0, cols, rows)
    os.write(1, TTY_MARKER.format(os.ttyname(0)).encode())  # also: raw mode is on now
    control = connect(cols, rows)
    socket.send_fds(control, [mode.encode()], [0])
    signal.signal(signal.SIGWINCH, lambda *_: tell_size(control))
    tell_size(control)  # in case the TTY was resized since the holder read its size
    while control.recv(64):  # the holder closes it when this attach ends
        pass
    return 0


def tell_size(control: socket.socket) -> None:
    """Our TTY was resized (SIGWINCH): the holder reads the new size from it."""
    with contextlib.suppress(OSError):  # the holder has gone: the attach ends anyway
        control.send(b"size")


def main(argv: list[str]) -> int:
    match argv:
        case ["attach", cols, rows, ("read" | "write") as mode]:
            return attach(int(cols), int(rows), mode)
        case ["hold", cols, rows, *told]:
            return hold(int(cols), int(rows), *(int(fd) for fd in told[:1]))
    print("usage: labdeck-session attach COLS ROWS write|read", file=sys.stderr)
    return 2


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
