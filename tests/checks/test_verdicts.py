"""The report of `labdeck content verify`: a plain table (columns padded, whatever the
terminal's width), then what went wrong for each task that did not verify."""

from __future__ import annotations

from app.checks.runner import CheckResult
from app.checks.service import TaskRun
from app.checks.verdicts import (
    SKIPPED,
    Step,
    Verdict,
    conclusion,
    describe,
    failed_fresh,
    passed_after,
    report,
)

OK = Step(True, "ok")
GOOD = Verdict("run-hello-world", OK, Step(True, "ok (proofs.yaml)"), OK, 3.25)
BROKEN = Verdict("always-passes", Step(False, "all passed"), OK, OK, 12.0, "  on a fresh ...\n")


def test_the_table_pads_each_column_and_the_report_names_the_mismatches() -> None:
    lines = report("demo", [GOOD, BROKEN]).splitlines()
    assert lines[:4] == [
        "demo",
        "task             fail-fresh  solution          pass-after  seconds",
        "run-hello-world  ok          ok (proofs.yaml)  ok          3.2",
        "always-passes    all passed  ok                ok          12.0",
    ]
    assert lines[5:] == ["Mismatches:", "always-passes:", "  on a fresh ..."]
    assert "Mismatches" not in report("demo", [GOOD])


def test_a_verdict_is_ok_only_when_every_step_is() -> None:
    assert GOOD.ok and not BROKEN.ok
    assert not Verdict("t", OK, Step(False, "exit 1"), SKIPPED, 1.0).ok


def test_steps_and_descriptions_come_from_the_check_runs() -> None:
    failing = CheckResult(0, "A file exists", "failed", "No file\n  yet.", "ls: no such file")
    passing = CheckResult(1, "It is readable", "passed")
    run = TaskRun("t", [failing, passing])
    assert failed_fresh(run) == OK and passed_after(run) == Step(False, "1/2 failed")
    assert describe(run) == (
        "    failed    A file exists: No file yet.\n"
        "      ls: no such file\n"
        "    passed    It is readable\n"
    )
    gone = TaskRun("t", [], unavailable="Your sandbox is starting again.")
    assert failed_fresh(gone) == passed_after(gone) == Step(False, "unavailable")
    assert failed_fresh(TaskRun("t", [passing])) == Step(False, "all passed")


def test_the_conclusion_says_how_many_and_how_long() -> None:
    assert conclusion(17, True, 70.4) == "OK: 17 task(s) verified in 70 s."
    assert conclusion(2, False, 9).startswith("Some of 2 task(s) do not verify")
