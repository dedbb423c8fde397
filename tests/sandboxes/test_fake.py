from __future__ import annotations

import asyncio
import time

import pytest

from app.sandboxes.base import (
    OUTPUT_LIMIT,
    ExecResult,
    Limits,
    SandboxBackend,
    SandboxError,
    SandboxGone,
    SandboxSpec,
    SandboxState,
)
from app.sandboxes.fake import ExecAnswer, FakeBackend

pytestmark = pytest.mark.anyio
S = SandboxState


def spec(name: str = "test-sbx-1") -> SandboxSpec:
    return SandboxSpec(name=name, workshop="w", image="img", limits=Limits())


async def create(backend: FakeBackend, name: str = "test-sbx-1") -> list[SandboxState]:
    return [state async for state in backend.create(spec(name))]


def test_fake_keeps_the_contract() -> None:
    assert isinstance(FakeBackend(), SandboxBackend)


async def test_create_goes_through_the_stages_and_again_is_a_no_op() -> None:
    backend = FakeBackend()
    assert await create(backend) == [S.CREATING, S.STARTING, S.READY]
    assert await create(backend) == [S.READY]
    assert (await backend.status("test-sbx-1")).state is S.READY
    assert [info.name for info in await backend.list()] == ["test-sbx-1"]


async def test_create_refuses_bad_names() -> None:
    with pytest.raises(ValueError):
        await create(FakeBackend(), "Bad Name")


async def test_create_delay_is_spent_before_ready() -> None:
    backend = FakeBackend(create_delay=0.2)
    started = time.monotonic()
    await create(backend)
    assert time.monotonic() - started >= 0.2


async def test_never_ready_hangs_in_starting_until_cancelled_and_leaves_nothing() -> None:
    backend = FakeBackend(never_ready=True)
    seen: list[SandboxState] = []

    async def consume() -> None:
        async for state in backend.create(spec()):
            seen.append(state)

    task = asyncio.create_task(consume())
    await asyncio.sleep(0.05)
    assert seen == [S.CREATING, S.STARTING]
    assert (await backend.status("test-sbx-1")).state is S.STARTING
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    assert (await backend.status("test-sbx-1")).state is S.MISSING


async def test_fail_create_times_fails_that_many_creates_then_works() -> None:
    backend = FakeBackend(fail_create_times=2)
    for _ in range(2):
        with pytest.raises(SandboxError, match="injected"):
            await create(backend)
        assert (await backend.status("test-sbx-1")).state is S.MISSING
    assert (await create(backend))[-1] is S.READY


async def test_crash_makes_it_missing_and_exec_raise_gone() -> None:
    backend = FakeBackend()
    await create(backend)
    tty = await backend.open_tty("test-sbx-1", ["bash"])
    backend.crash("test-sbx-1")
    assert (await backend.status("test-sbx-1")).state is S.MISSING
    with pytest.raises(SandboxGone):
        await backend.exec("test-sbx-1", "true")
    with pytest.raises(SandboxGone):
        await tty.write(b"ls\n")


async def test_exec_handler_scripts_answers_in_every_form() -> None:
    answers: dict[str, ExecAnswer] = {"a": ExecResult(2, "two"), "b": "plain", "c": (1, "pair")}

    async def slow(name: str, command: str, user: str) -> str:
        await asyncio.sleep(0)
        return f"{user}@{name}: {command}"

    backend = FakeBackend(exec_handler=lambda name, command, user: answers[command])
    await create(backend)
    assert (await backend.exec("test-sbx-1", "a")).exit_code == 2
    assert (await backend.exec("test-sbx-1", "b")).output == "plain"
    assert (await backend.exec("test-sbx-1", "c")) == ExecResult(1, "pair")
    backend.exec_handler = slow
    assert (await backend.exec("test-sbx-1", "ls", user="root")).output == "root@test-sbx-1: ls"


async def test_exec_times_out_and_caps_output() -> None:
    async def hang(name: str, command: str, user: str) -> str:
        await asyncio.sleep(10)
        return ""

    backend = FakeBackend(exec_handler=hang)
    await create(backend)
    result = await backend.exec("test-sbx-1", "sleep 10", timeout=0.05)
    assert result.timed_out and result.exit_code == 137
    backend.exec_handler = lambda *_: "x" * OUTPUT_LIMIT + "END"
    assert (await backend.exec("test-sbx-1", "big")).output.endswith("xEND")
    assert len((await backend.exec("test-sbx-1", "big")).output) == OUTPUT_LIMIT


async def test_exec_stream_hands_out_lines_then_the_result() -> None:
    backend = FakeBackend(exec_handler=lambda *_: (3, "one\ntwo\n"))
    await create(backend)
    stream = backend.exec_stream("test-sbx-1", "x")
    with pytest.raises(RuntimeError):
        _ = stream.result
    assert [chunk async for chunk in stream] == [b"one\n", b"two\n"]
    assert stream.result.exit_code == 3


async def test_tty_echoes_resizes_and_closes() -> None:
    backend = FakeBackend()
    await create(backend)
    tty = await backend.open_tty("test-sbx-1", ["bash"])
    await tty.write(b"echo hi\n")
    assert await tty.read() == b"echo hi\n"
    await tty.resize(120, 40)
    assert backend.ttys[0].size == (120, 40)
    await tty.close()
    assert await tty.read() == b""


async def test_stop_start_remove_and_stats() -> None:
    backend = FakeBackend()
    await create(backend)
    await backend.stop("test-sbx-1")
    assert (await backend.status("test-sbx-1")).state is S.STOPPED
    with pytest.raises(SandboxGone):
        await backend.stats("test-sbx-1")
    assert [s async for s in backend.start("test-sbx-1")] == [S.STARTING, S.READY]
    assert (await backend.stats("test-sbx-1")).pids > 0
    await backend.remove("test-sbx-1")
    await backend.remove("test-sbx-1")
    await backend.stop("test-sbx-1")
    with pytest.raises(SandboxGone):
        [s async for s in backend.start("test-sbx-1")]
    assert ("remove", "test-sbx-1") in backend.calls
