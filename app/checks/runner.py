"""Run a task's checks inside a sandbox: one process per check, never typed into the attendee's shell.

Each check is its own ``bash -lc`` process as ``learner`` (or as the sandbox's root when the
check says ``user: root``, as Killercoda runs its verify scripts), in a session of its own (so the
terminal and its history stay clean), killed with whatever it started at the check's timeout.
The ``Executor`` starts it: the sandbox's check agent (app/checks/agent.py), or a plain exec. Every check runs, in order, even after a failure: the
attendee sees everything that is still missing at once.
"""

from __future__ import annotations

import asyncio
import re
import time
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass
from typing import Any, Literal, Protocol

from app.lessons.schema import Check
from app.sandboxes.base import ExecResult, SandboxError, SandboxGone

CheckStatus = Literal["running", "passed", "failed", "error", "timed_out"]
OUTPUT_LIMIT = 2048  # bytes of output kept per check: the end, where the errors are
# The backend kills a check at its timeout; this extra wait only guards against a backend
# that does not come back at all.
BACKEND_GRACE_SECONDS = 5.0


class Executor(Protocol):
    """All checks need of a sandbox backend (``SandboxBackend.exec``)."""

    async def exec(
        self, name: str, command: str, *, user: str = "learner", timeout: float = 15
    ) -> ExecResult: ...


@dataclass(frozen=True)
class CheckResult:
    index: int
    name: str
    status: CheckStatus
    message: str = ""
    output: str = ""
    duration_ms: int = 0

    @property
    def passed(self) -> bool:
        return self.status == "passed"

    @property
    def finished(self) -> bool:
        return self.status != "running"

    def as_dict(self) -> dict[str, Any]:
        return {**asdict(self), "passed": self.passed}


Progress = Callable[[CheckResult], None]


def trim_output(text: str, limit: int = OUTPUT_LIMIT) -> str:
    """The last ``limit`` bytes of ``text`` (whole characters), marked with "…" when cut."""
    data = text.encode("utf-8")
    if len(data) <= limit:
        return text
    return "…" + data[-limit:].decode("utf-8", errors="ignore")


def judge(check: Check, index: int, result: ExecResult, duration_ms: int) -> CheckResult:
    """Passed when the command exits 0 and its output matches ``expect`` (when there is one)."""
    output = trim_output(result.output)
    if result.timed_out:
        message = f"This check did not finish within {check.timeout} s. {check.message}"
        return CheckResult(index, check.name, "timed_out", message.strip(), output, duration_ms)
    matched = check.expect is None or re.search(check.expect, result.output) is not None
    status: CheckStatus = "passed" if result.exit_code == 0 and matched else "failed"
    message = "" if status == "passed" else check.message.strip()
    return CheckResult(index, check.name, status, message, output, duration_ms)


async def run_check(backend: Executor, sandbox: str, check: Check, index: int) -> CheckResult:
    """Run one check. Raises ``SandboxGone`` when the sandbox is not running (the caller says
    "your sandbox is starting again"); any other backend failure becomes an ``error`` result."""
    started = time.perf_counter()
    try:
        result = await asyncio.wait_for(
            backend.exec(sandbox, check.run, user=check.user, timeout=check.timeout),
            timeout=check.timeout + BACKEND_GRACE_SECONDS,
        )
    except TimeoutError:
        result = ExecResult(exit_code=-1, output="", timed_out=True)
    except SandboxGone:
        raise
    except SandboxError as error:
        message = f"The check could not run in your sandbox ({error}). Try again in a moment."
        return CheckResult(index, check.name, "error", message, "", _elapsed_ms(started))
    return judge(check, index, result, _elapsed_ms(started))


async def run_checks(
    backend: Executor,
    sandbox: str,
    checks: Sequence[Check],
    progress: Progress | None = None,
) -> list[CheckResult]:
    """Run every check in order; ``progress`` hears "running" before each and the result after."""
    results: list[CheckResult] = []
    for index, check in enumerate(checks):
        if progress:
            progress(CheckResult(index, check.name, "running"))
        result = await run_check(backend, sandbox, check, index)
        if progress:
            progress(result)
        results.append(result)
    return results


def _elapsed_ms(started: float) -> int:
    return round((time.perf_counter() - started) * 1000)
