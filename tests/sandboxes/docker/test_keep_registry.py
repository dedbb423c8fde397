"""The workshop registry follows a reloaded workshop's images (issue 15, item 4), no engine."""

from __future__ import annotations

import asyncio
import contextlib
from typing import Any

import pytest

from app.sandboxes.docker import connect


class StubRegistry:
    """Records what it was asked to seed; healthy once running."""

    def __init__(self) -> None:
        self.seeded: list[list[tuple[str, str]]] = []

    def healthy(self) -> bool:
        return True

    def ensure_running(self) -> None:
        pass

    def seed(self, images: list[tuple[str, str]]) -> list[Any]:
        self.seeded.append(list(images))
        return []


@pytest.mark.anyio
async def test_the_registry_is_seeded_again_when_the_images_change(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(connect, "REGISTRY_CHECK_SECONDS", 0.01)
    registry, backend = StubRegistry(), type("Backend", (), {"registry_problem": "x"})()
    images = [("labdeck/workshop/hello-world:latest", "hello-world:latest")]
    keeping = asyncio.create_task(
        connect.keep_registry(backend, registry, lambda: list(images))  # type: ignore[arg-type]
    )
    try:
        await asyncio.sleep(0.1)
        assert registry.seeded == [images]  # once while nothing changes
        assert backend.registry_problem is None
        images.append(("labdeck/workshop/busybox:latest", "busybox:latest"))
        async with asyncio.timeout(2):
            while len(registry.seeded) < 2:
                await asyncio.sleep(0.01)
        assert registry.seeded[-1] == images
    finally:
        keeping.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await keeping
