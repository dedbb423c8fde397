"""One rule, written twice: the check agent (Python, one process per sandbox) and the exec
guard (``GUARD``, shell: the agent's fall-back, for images without python3) must run a check
the same way. Both run here, locally, on the same cases, so that neither drifts:

- in a login bash of its own session, in the home directory;
- the command's exit status, stdout and stderr interleaved;
- killed at the deadline (status 137), and whatever it left running killed when it returns.
"""

from __future__ import annotations

import os
import subprocess
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from app.sandboxes.docker.exec import GUARD
from tests.support.checks import converse


@dataclass
class Outcome:
    exit_code: int
    output: str
    seconds: float


Runner = Callable[[str, float], Outcome]


def run_in_agent(home: Path, command: str, timeout: float) -> Outcome:
    started = time.monotonic()
    replies = converse({"id": 1, "run": command, "timeout": timeout}, home=home)
    reply = replies[-1]
    return Outcome(int(str(reply["exit_code"])), str(reply["output"]), time.monotonic() - started)


def run_in_guard(home: Path, command: str, timeout: float) -> Outcome:
    started = time.monotonic()
    done = subprocess.run(
        ["sh", "-c", GUARD, "labdeck-exec", f"{timeout:g}", command],
        stdin=subprocess.DEVNULL,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        timeout=30,
        cwd=home,  # docker exec starts in the user's home (its workdir)
        env={**os.environ, "HOME": str(home)},
    )
    return Outcome(done.returncode, done.stdout, time.monotonic() - started)


@pytest.fixture(params=["agent", "guard"])
def run(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Runner]:
    implementation = run_in_agent if request.param == "agent" else run_in_guard

    def run_at_home(command: str, timeout: float) -> Outcome:
        return implementation(tmp_path, command, timeout)

    yield run_at_home


def survivors(marker: str) -> str:
    found = subprocess.run(["pgrep", "-f", marker], capture_output=True, text=True)
    return found.stdout


def test_exit_status_and_interleaved_output(run: Runner) -> None:
    outcome = run("echo out; echo err >&2; exit 3", 5)
    assert (outcome.exit_code, outcome.output) == (3, "out\nerr\n")


def test_a_login_bash_leading_its_own_session_at_home(run: Runner, tmp_path: Path) -> None:
    command = (
        'shopt -q login_shell && echo login; echo "$PWD";'
        ' [ "$(ps -o sid= -p $$ | tr -d " ")" = "$$" ] && echo leader'
    )
    outcome = run(command, 5)
    assert outcome.output == f"login\n{tmp_path}\nleader\n"


def test_a_hanging_command_is_killed_at_the_deadline(run: Runner) -> None:
    outcome = run("sleep 30", 0.5)
    assert outcome.exit_code == 137
    assert outcome.seconds < 5


def test_what_a_command_left_running_dies_when_it_returns(run: Runner) -> None:
    marker = f"labdeck-kill-rule-{os.getpid()}"
    outcome = run(f"(exec -a {marker} sleep 30) & echo started", 5)
    assert (outcome.exit_code, outcome.output) == (0, "started\n")
    assert outcome.seconds < 5
    deadline = time.monotonic() + 2  # SIGKILL is sent; the process may take a moment to go
    while survivors(marker) and time.monotonic() < deadline:
        time.sleep(0.05)
    assert survivors(marker) == "", "a background job outlived its check"
