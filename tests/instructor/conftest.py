from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient

from app.config import Settings
from tests.instructor.support import Person, portal, sign_in, write_workshop

TASKS = [
    ("First steps", [("one", "Task one"), ("two", "Task two")]),
    ("More", [("three", "Task three")]),
]


@pytest.fixture
def tiny_settings(settings: Settings, tmp_path: Path) -> Settings:
    """A three-task workshop, small enough to spell out exact expectations."""
    content = write_workshop(tmp_path / "content", "tiny", "Tiny workshop", TASKS)
    return settings.model_copy(update={"content_dir": content})


@pytest.fixture
def tiny_app(tiny_settings: Settings) -> FastAPI:
    return portal(tiny_settings)


@pytest.fixture
def client(tiny_app: FastAPI) -> Iterator[TestClient]:
    with TestClient(tiny_app) as client:
        yield client


@pytest.fixture
def instructor(client: TestClient) -> Person:
    person = Person(client)
    sign_in(person)
    return person
