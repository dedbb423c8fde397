"""The check agent: its program run locally, CheckAgents over it, and the fall-back to exec."""

from __future__ import annotations

import asyncio
import subprocess

import pytest

from app.checks.agent import CheckAgents
from app.sandboxes.base import SandboxGone
from tests.support.checks import ShellBackend, converse

pytestmark = pytest.mark.anyio


def by_id(replies: list[dict[str, object]]) -> dict[object, dict[str, object]]:
    return {reply.get("id"): reply for reply in replies}


def test_program_says_ready_then_answers_with_exit_code_and_interleaved_output() -> None:
    replies = converse({"id": 1, "run": "echo out; echo err >&2; exit 3", "timeout": 5})
    assert replies[0] == {"ready": True, "protocol": 1}
    answer = by_id(replies)[1]
    assert answer["exit_code"] == 3
    assert answer["output"] == "out\nerr\n"
    assert answer["timed_out"] is False


def test_program_kills_a_hanging_check_and_what_a_check_left_running() -> None:
    marker = "labdeck-agent-test-leftover"
    replies = by_id(
        converse(
            {"id": 1, "run": "sleep 30", "timeout": 0.3},
            {"id": 2, "run": f"exec -a {marker} sleep 30 & echo started", "timeout": 5},
        )
    )
    assert replies[1]["timed_out"] is True
    assert replies[1]["exit_code"] == 137
    assert replies[2] == {**replies[2], "exit_code": 0, "output": "started\n"}
    survivors = subprocess.run(["pgrep", "-f", marker], capture_output=True, text=True)
    assert survivors.stdout == "", "a check's background job outlived it"


def test_program_keeps_the_end_of_long_output_and_survives_garbage_lines() -> None:
    replies = by_id(
        converse(
            "this is not json",
            {"id": 1, "run": "seq 1 100000", "timeout": 5, "limit": 64},
        )
    )
    assert "error" in replies[None]
    output = str(replies[1]["output"])
    assert len(output) <= 64 and output.endswith("99999\n100000\n")


def test_program_runs_requests_concurrently() -> None:
    replies = by_id(
        converse(*({"id": n, "run": "sleep 0.5; echo $PWD", "timeout": 5} for n in range(4)))
    )
    # Four half-second checks in one agent: all answered, each with its own time.
    assert all(float(str(replies[n]["seconds"])) < 2 for n in range(4))
    assert all(replies[n]["exit_code"] == 0 for n in range(4))


@pytest.fixture
async def agents(shell_backend: ShellBackend):  # type: ignore[no-untyped-def]
    shell_backend.agent = True
    agents = CheckAgents(shell_backend)
    yield agents
    await agents.aclose()


async def test_checks_go_through_one_agent_per_sandbox(
    agents: CheckAgents, shell_backend: ShellBackend
) -> None:
    results = await asyncio.gather(*(agents.exec("sbx-1", f"echo {n}") for n in range(5)))
    assert [r.output for r in results] == [f"{n}\n" for n in range(5)]
    await agents.exec("sbx-2", "true")
    assert shell_backend.agents_opened == 2
    assert shell_backend.commands == [], "no check should have needed an exec"


async def test_a_killed_agent_is_replaced_by_a_new_one(
    agents: CheckAgents, shell_backend: ShellBackend
) -> None:
    await agents.exec("sbx-1", "true")
    agent = agents._agents["sbx-1"]
    agent._tty.process.kill()  # type: ignore[attr-defined]  # the attendee kills it, say
    await agent._tty.process.wait()  # type: ignore[attr-defined]
    result = await agents.exec("sbx-1", "echo still-answered")
    assert result.output == "still-answered\n"
    after = await agents.exec("sbx-1", "echo fine")
    assert after.output == "fine\n"
    assert shell_backend.agents_opened == 2


async def test_a_check_in_flight_when_the_agent_dies_is_run_again_by_exec(
    agents: CheckAgents, shell_backend: ShellBackend
) -> None:
    await agents.exec("sbx-1", "true")
    agent = agents._agents["sbx-1"]
    running = asyncio.create_task(agents.exec("sbx-1", "sleep 0.5; echo answered"))
    await asyncio.sleep(0.2)
    agent._tty.process.kill()  # type: ignore[attr-defined]
    assert (await running).output == "answered\n"
    assert shell_backend.commands == ["sleep 0.5; echo answered"]


async def test_without_python_checks_use_exec_and_do_not_retry_at_once(
    shell_backend: ShellBackend,
) -> None:
    agents = CheckAgents(shell_backend)  # shell_backend.agent is off: open_tty fails
    assert (await agents.exec("sbx-1", "echo via-exec")).output == "via-exec\n"
    assert (await agents.exec("sbx-1", "echo again")).output == "again\n"
    assert shell_backend.commands == ["echo via-exec", "echo again"]
    await agents.aclose()


async def test_other_users_and_gone_sandboxes_use_exec(
    agents: CheckAgents, shell_backend: ShellBackend
) -> None:
    await agents.exec("sbx-1", "id -u", user="root")
    assert shell_backend.commands == ["id -u"] and shell_backend.agents_opened == 0
    shell_backend.gone.add("sbx-3")
    with pytest.raises(SandboxGone):
        await agents.exec("sbx-3", "true")


async def test_a_check_that_times_out_in_the_agent_is_reported_as_timed_out(
    agents: CheckAgents,
) -> None:
    result = await agents.exec("sbx-1", "sleep 5", timeout=0.3)
    assert result.timed_out and result.exit_code == 137
