"""The check agent in a real sandbox: checks use it, it kills what hangs, and losing it costs
nothing but a plain exec."""

from __future__ import annotations

import os
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from app.checks.agent import CheckAgents
from app.lessons.loader import load_workshop
from app.sandboxes.lab import Lab, throwaway_lab
from tests.support.live_server import free_port
from tests.support.settings import REPO, TEST_LABELS, settings_for

pytestmark = [pytest.mark.docker, pytest.mark.anyio]

AGENT_PROCESSES = "pgrep -u learner -f '^python3 -c' | wc -l"


@pytest.fixture
async def lab(tmp_path: Path) -> AsyncIterator[Lab]:
    settings = settings_for(
        tmp_path, f"test-{os.getpid()}-agent", registry_port=free_port(), warm_pool_size=0
    )
    async with throwaway_lab(
        settings, load_workshop(REPO / "content" / "docker-basics"), TEST_LABELS
    ) as lab:
        yield lab


async def test_checks_in_a_real_sandbox_run_through_one_agent(lab: Lab) -> None:
    sandbox = await lab.sandbox_for(lab.add_attendee("agent-user"))
    agents: CheckAgents = lab.checks.agents
    backend = lab.sandboxes.backend

    first = await agents.exec(sandbox, "id -un; pwd; docker info --format '{{.ServerVersion}}'")
    assert first.exit_code == 0, first.output
    user, home, version = first.output.split()
    assert (user, home) == ("learner", "/home/learner") and version
    assert sandbox in agents._agents

    # A hanging check is killed at its timeout, with what it started in the background.
    hung = await agents.exec(sandbox, "sleep 301 & sleep 302", timeout=0.5)
    assert hung.timed_out
    left = await backend.exec(sandbox, "pgrep -c -f '^sleep 30[12]' || true", user="root")
    assert left.output.strip() == "0"
    counted = await backend.exec(sandbox, AGENT_PROCESSES, user="root")
    assert counted.output.strip() == "1", "one agent per sandbox"

    # The attendee kills the agent: the next check still answers, through a new agent.
    await backend.exec(sandbox, "pkill -KILL -u learner -f '^python3 -c'", user="root")
    after = await agents.exec(sandbox, "echo still-checked")
    assert after.output == "still-checked\n"
