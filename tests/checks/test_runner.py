from __future__ import annotations

from pathlib import Path

import pytest

from app.checks.runner import CheckResult, judge, run_check, run_checks, trim_output
from app.lessons.schema import Check
from app.sandboxes.base import ExecResult, SandboxError, SandboxGone
from tests.support.checks import ShellBackend

pytestmark = pytest.mark.anyio


def check(run: str, **fields: object) -> Check:
    return Check.model_validate({"name": "c", "run": run, "message": "hint", **fields})


async def test_exit_zero_passes_and_a_failure_carries_the_hint(shell_backend: ShellBackend) -> None:
    passed = await run_check(shell_backend, "s", check("true"), 0)
    failed = await run_check(shell_backend, "s", check("echo nope; exit 3"), 1)
    assert (passed.status, passed.message) == ("passed", "")
    assert (failed.status, failed.message, failed.index) == ("failed", "hint", 1)
    assert failed.output == "nope\n"


async def test_expect_must_match_the_output_as_well(shell_backend: ShellBackend) -> None:
    right = await run_check(
        shell_backend, "s", check("echo 'Hello from busybox'", expect="^Hello"), 0
    )
    wrong = await run_check(shell_backend, "s", check("echo 'Hi'", expect="^Hello"), 0)
    assert right.passed and not wrong.passed


async def test_a_hanging_check_is_killed_at_its_timeout(shell_backend: ShellBackend) -> None:
    result = await run_check(shell_backend, "s", check("sleep 30", timeout=1), 0)
    assert result.status == "timed_out"
    assert "did not finish within 1 s" in result.message and result.message.endswith("hint")
    assert 900 <= result.duration_ms < 5000


async def test_a_backend_that_never_returns_is_cut_off(monkeypatch: pytest.MonkeyPatch) -> None:
    class Stuck:
        async def exec(self, *args: object, **kwargs: object) -> ExecResult:
            import asyncio

            await asyncio.sleep(60)
            raise AssertionError("unreachable")

    monkeypatch.setattr("app.checks.runner.BACKEND_GRACE_SECONDS", 0.2)
    result = await run_check(Stuck(), "s", check("true", timeout=1), 0)
    assert result.status == "timed_out"


async def test_backend_errors_become_error_results_but_a_gone_sandbox_is_raised() -> None:
    class Failing:
        def __init__(self, error: Exception) -> None:
            self.error = error

        async def exec(self, *args: object, **kwargs: object) -> ExecResult:
            raise self.error

    result = await run_check(Failing(SandboxError("exec refused")), "s", check("true"), 0)
    assert result.status == "error" and "exec refused" in result.message
    with pytest.raises(SandboxGone):
        await run_check(Failing(SandboxGone("gone")), "s", check("true"), 0)


async def test_every_check_runs_in_order_and_progress_hears_running_then_the_result(
    shell_backend: ShellBackend,
) -> None:
    heard: list[tuple[int, str]] = []
    checks = [check("true"), check("false"), check("true")]
    results = await run_checks(
        shell_backend, "s", checks, lambda r: heard.append((r.index, r.status))
    )
    assert [r.status for r in results] == ["passed", "failed", "passed"]
    assert heard == [
        (0, "running"),
        (0, "passed"),
        (1, "running"),
        (1, "failed"),
        (2, "running"),
        (2, "passed"),
    ]


async def test_checks_run_in_the_home_folder_without_a_terminal(
    shell_backend: ShellBackend, tmp_path: Path
) -> None:
    result = await run_check(shell_backend, "s", check("pwd; test -t 0 || echo no-tty"), 0)
    assert result.output.splitlines() == [str(tmp_path / "sandboxes" / "s"), "no-tty"]


def test_output_keeps_the_last_bytes_on_a_character_boundary() -> None:
    text = "é" * 3000
    trimmed = trim_output(text, limit=101)
    assert trimmed.startswith("…") and set(trimmed[1:]) == {"é"}
    assert len(trimmed[1:].encode()) <= 101
    assert trim_output("short") == "short"


def test_judge_trims_output_but_matches_expect_on_all_of_it() -> None:
    output = "MARKER\n" + "x" * 10_000
    result = judge(check("x", expect="MARKER"), 0, ExecResult(0, output), 5)
    assert result.passed and len(result.output.encode()) <= 2048 + 3


def test_results_serialize_with_a_passed_flag() -> None:
    assert CheckResult(0, "n", "failed", "m").as_dict() == {
        "index": 0,
        "name": "n",
        "status": "failed",
        "message": "m",
        "output": "",
        "duration_ms": 0,
        "passed": False,
    }


async def test_a_check_runs_as_the_user_it_names() -> None:
    class Recording:
        def __init__(self) -> None:
            self.users: list[str] = []

        async def exec(
            self, name: str, command: str, *, user: str = "", timeout: float = 0
        ) -> ExecResult:
            self.users.append(user)
            return ExecResult(0, "")

    backend = Recording()
    await run_checks(backend, "s", [check("true"), check("touch /root/x", user="root")])
    assert backend.users == ["learner", "root"]
