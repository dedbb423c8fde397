"""The sandbox's welcome text folds between words at the terminal's width (issue 14, item 11):
the recipe's bashrc runs in a real bash on a pseudo-terminal of 62 and of 40 columns."""

from __future__ import annotations

import fcntl
import os
import pty
import struct
import subprocess
import termios

import pytest

from tests.support.settings import REPO

RECIPE = REPO / "app" / "sandboxes" / "docker" / "images" / "recipes" / "sandbox"


def welcome_at(columns: int) -> list[str]:
    leader, follower = pty.openpty()
    fcntl.ioctl(follower, termios.TIOCSWINSZ, struct.pack("HHHH", 24, columns, 0, 0))
    script = f". {RECIPE / 'bashrc'}; labdeck_welcome {RECIPE / 'motd'}"
    done = subprocess.run(
        ["bash", "--norc", "-c", script],
        stdin=follower,
        capture_output=True,
        text=True,
        timeout=10,
        check=True,
    )
    os.close(leader)
    os.close(follower)
    return done.stdout.splitlines()


@pytest.mark.parametrize("columns", [62, 40])
def test_the_welcome_text_breaks_between_words(columns: int) -> None:
    lines = welcome_at(columns)
    assert all(len(line) <= columns for line in lines), lines
    words = (RECIPE / "motd").read_text().split()
    assert " ".join(lines).split() == words  # no word cut in two, none lost
    assert "Welcome to your LabDeck sandbox!" in lines


def test_a_wide_terminal_keeps_lines_readable() -> None:
    assert max(len(line) for line in welcome_at(200)) <= 80


def test_the_prompt_marks_when_a_command_runs_and_when_it_ends() -> None:
    """OSC 133 marks (A: prompt, C: a command starts): how the page knows work is in progress."""
    leader, follower = pty.openpty()
    shell = subprocess.Popen(
        ["bash", "--noprofile", "--rcfile", str(RECIPE / "bashrc"), "-i"],
        stdin=follower,
        stdout=follower,
        stderr=follower,
        env={
            "TERM": "xterm",
            "HOME": "/tmp",
            "LABDECK_MOTD_SHOWN": "1",
            "PATH": os.environ["PATH"],
        },
    )
    os.close(follower)  # the shell holds it; reading ends (EIO) when the shell exits
    try:
        os.write(leader, b"echo marked; exit\n")
        shell.wait(timeout=10)
        output = b""
        while True:
            try:
                chunk = os.read(leader, 4096)
            except OSError:
                break
            if not chunk:
                break
            output += chunk
    finally:
        os.close(leader)
        shell.kill()
    prompt, command = output.find(b"\x1b]133;A\x07"), output.find(b"\x1b]133;C\x07")
    assert 0 <= prompt < command < output.find(b"marked\r\n")
