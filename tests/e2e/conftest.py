"""A real portal on 127.0.0.1 for Debian's Chromium (the ``browser`` fixture, tests/conftest.py),
its sandboxes over a fake backend (tests/support/browser.py)."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from app.config import Settings
from tests.support.browser import ClassroomBackend, portal
from tests.support.live_server import LiveServer


@pytest.fixture
def backend() -> ClassroomBackend:
    return ClassroomBackend()


@pytest.fixture
def live_server(settings: Settings, backend: ClassroomBackend) -> Iterator[LiveServer]:
    with LiveServer(portal(settings, backend)) as server:
        yield server
