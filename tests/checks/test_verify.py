"""`labdeck content verify` without Docker: the plan, each kind of mismatch on sandboxes whose
commands run in local bash (tests/support/checks.py), the table and the command's exit code."""

from __future__ import annotations

import os
import shutil
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from typer.testing import CliRunner

from app.checks.verify import NO_SOLUTION, plan, solution_fences, verify_trials
from app.lessons.cli import content_app
from app.lessons.loader import load_workshop
from app.sandboxes.fake import FakeBackend
from app.sandboxes.lab import Lab, throwaway_lab
from tests.support.checks import FIXTURES, ShellBackend
from tests.support.settings import settings_for

VERIFY_DEMO = FIXTURES / "verify-demo"
WORKSHOP = load_workshop(VERIFY_DEMO)


@pytest.fixture
async def lab(tmp_path: Path) -> AsyncIterator[Lab]:
    """A throw-away lab on the fake backend whose sandboxes run commands in local bash."""
    settings = settings_for(tmp_path / "data", f"test-{os.getpid()}", sandbox_backend="fake")
    shell = ShellBackend(tmp_path / "homes")
    async with throwaway_lab(settings, WORKSHOP) as found:
        backend = found.sandboxes.backend
        assert isinstance(backend, FakeBackend)
        backend.exec_handler = lambda name, command, user: shell.exec(name, command, user=user)
        yield found


def test_the_solution_is_the_proof_else_the_shell_fences_of_the_task_s_solution() -> None:
    scripts = {trial.task.id: (trial.script, trial.source) for trial in plan(WORKSHOP)}
    assert scripts["make-file"] == ("echo hello > made.txt\n", "proofs.yaml")
    assert scripts["from-solution"] == ("echo hi > note.txt\ncat note.txt\n", "solution")
    assert scripts["no-solution"] == (None, "")
    assert list(scripts) == [task.id for task in WORKSHOP.all_tasks()]


def test_without_a_proofs_file_every_task_falls_back_to_its_solution(tmp_path: Path) -> None:
    shutil.copytree(VERIFY_DEMO, tmp_path / "demo", ignore=shutil.ignore_patterns("proofs.yaml"))
    trials = plan(load_workshop(tmp_path / "demo"))
    assert [trial.script for trial in trials if trial.task.id == "make-file"] == [None]


def test_one_task_or_none() -> None:
    assert [trial.task.id for trial in plan(WORKSHOP, "always-passes")] == ["always-passes"]
    assert plan(WORKSHOP, "not-a-task") == []
    assert solution_fences("Only words, and a `bash` word.") is None


@pytest.mark.anyio
async def test_each_task_is_verified_in_a_sandbox_of_its_own(lab: Lab) -> None:
    said: list[str] = []
    verdicts = {v.task_id: v for v in await verify_trials(lab, plan(WORKSHOP), 2, said.append)}

    assert verdicts["make-file"].ok and verdicts["from-solution"].ok
    assert verdicts["make-file"].solution.said == "ok (proofs.yaml)"
    assert verdicts["always-passes"].fail_fresh.said == "all passed"
    assert "passed    Always passes" in verdicts["always-passes"].details
    broken = verdicts["broken-solution"]
    assert (broken.solution.said, broken.pass_after.said) == ("exit 1", "skipped")
    assert "no such luck" in broken.details
    assert verdicts["no-solution"].solution.said == NO_SOLUTION
    assert not any(verdicts[task].ok for task in ("always-passes", "broken-solution"))
    assert "started  make-file" in said and "MISMATCH no-solution" in "\n".join(said)
    backend = lab.sandboxes.backend
    assert isinstance(backend, FakeBackend) and backend.sandboxes == {}, "each one removed"


def invoke_verify(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, *args: str) -> str:
    monkeypatch.chdir(tmp_path)  # no developer's .env
    monkeypatch.setenv("LABDECK_SANDBOX_BACKEND", "fake")
    monkeypatch.setenv("LABDECK_INSTANCE", f"test-{os.getpid()}")
    monkeypatch.delenv("LABDECK_WORKSHOP", raising=False)
    result = CliRunner().invoke(content_app, ["verify", *args])
    assert result.exit_code == 1, result.output
    return result.output


def test_a_mismatch_prints_the_table_and_exits_1(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # The fake backend answers every command with success: the checks pass on a fresh sandbox.
    output = invoke_verify(tmp_path, monkeypatch, str(VERIFY_DEMO), "--task", "always-passes")
    header = output.index("task ")
    assert [line.split()[:-1] for line in output[header:].splitlines()[:2]] == [
        ["task", "fail-fresh", "solution", "pass-after"],
        ["always-passes", "all", "passed", "ok", "(solution)", "ok"],
    ]
    assert "Mismatches:\nalways-passes:\n  on a fresh sandbox:\n" in output
    assert output.rstrip().splitlines()[-1].startswith("Some of 1 task(s) do not verify")


def test_an_unknown_task_or_workshop_is_a_sentence(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    output = invoke_verify(tmp_path, monkeypatch, str(VERIFY_DEMO), "--task", "nope")
    assert "No task nope in verify-demo." in output
    output = invoke_verify(tmp_path, monkeypatch, "no-such-workshop")
    assert "No workshop at no-such-workshop" in output
