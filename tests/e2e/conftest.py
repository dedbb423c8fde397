"""A real portal on 127.0.0.1 for Debian's Chromium (the ``browser`` fixture, tests/conftest.py)."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from app.config import Settings
from app.main import create_app
from tests.support.live_server import LiveServer


@pytest.fixture
def live_server(settings: Settings) -> Iterator[LiveServer]:
    with LiveServer(create_app(settings)) as server:
        yield server
