"""What `labdeck content verify` found, task by task: the verdicts, the table and the report."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from app.checks.service import TaskRun

COLUMNS = ("task", "fail-fresh", "solution", "pass-after", "seconds")


@dataclass(frozen=True)
class Step:
    """One column of the table: whether it went as it should, and what to show."""

    ok: bool
    said: str


SKIPPED = Step(False, "skipped")


@dataclass(frozen=True)
class Verdict:
    task_id: str
    fail_fresh: Step
    solution: Step
    pass_after: Step
    seconds: float
    details: str = ""  # for a mismatch: what the checks said, or the solution's output

    @property
    def ok(self) -> bool:
        return self.fail_fresh.ok and self.solution.ok and self.pass_after.ok


def failed_fresh(run: TaskRun) -> Step:
    if run.unavailable:
        return Step(False, "unavailable")
    return Step(True, "ok") if run.status == "failed" else Step(False, "all passed")


def passed_after(run: TaskRun) -> Step:
    if run.unavailable:
        return Step(False, "unavailable")
    failing = sum(not check.passed for check in run.checks)
    return Step(True, "ok") if run.passed else Step(False, f"{failing}/{len(run.checks)} failed")


def describe(run: TaskRun) -> str:
    """Each check's status, name and output, indented; or why the sandbox was unavailable."""
    if run.unavailable:
        return f"    unavailable: {run.unavailable}\n"
    return "".join(
        f"    {check.status:9} {check.name}{_hint(check.message)}\n"
        + indented(check.output, "      ")
        for check in run.checks
    )


def _hint(message: str) -> str:
    return f": {' '.join(message.split())}" if message else ""


def indented(text: str, prefix: str = "    ") -> str:
    return "".join(f"{prefix}{line}\n" for line in text.strip().splitlines())


def table(verdicts: Sequence[Verdict]) -> str:
    """The verdicts as a plain-text table: one row per task, each column padded to fit."""
    rows = [COLUMNS] + [
        (v.task_id, v.fail_fresh.said, v.solution.said, v.pass_after.said, f"{v.seconds:.1f}")
        for v in verdicts
    ]
    widths = [max(len(row[column]) for row in rows) for column in range(len(COLUMNS))]
    return "\n".join(
        "  ".join(cell.ljust(width) for cell, width in zip(row, widths, strict=True)).rstrip()
        for row in rows
    )


def report(slug: str, verdicts: Sequence[Verdict]) -> str:
    """The workshop's table, then what went wrong, task by task, for those that did not verify."""
    wrong = "".join(f"{v.task_id}:\n{v.details}" for v in verdicts if not v.ok)
    return f"{slug}\n{table(verdicts)}\n" + (f"\nMismatches:\n{wrong}" if wrong else "")


def conclusion(tasks: int, ok: bool, seconds: float) -> str:
    if ok:
        return f"OK: {tasks} task(s) verified in {seconds:.0f} s."
    return f"Some of {tasks} task(s) do not verify (see Mismatches); {seconds:.0f} s."
