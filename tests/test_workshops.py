"""Which workshops a command's WORKSHOP argument names (app/workshops.py)."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from app.workshops import WorkshopNotFound, workshops_named
from tests.support.settings import settings_for

VALID = Path(__file__).parent / "lessons" / "fixtures" / "valid"


@pytest.fixture
def content(tmp_path: Path) -> Path:
    for name in ("one", "two"):
        shutil.copytree(VALID, tmp_path / "content" / name)
    return tmp_path / "content"


def slugs(content: Path, name: str | None, **changes: str) -> list[str]:
    settings = settings_for(content.parent / "data", "test", **changes)
    settings = settings.model_copy(update={"content_dir": content})
    return [workshop.slug for workshop in workshops_named(settings, name)]


def test_a_folder_under_the_content_folder_or_a_path(content: Path) -> None:
    assert slugs(content, "two") == ["two"]
    assert slugs(content, str(content / "one")) == ["one"]


def test_without_a_name_the_configured_workshop_else_every_one(content: Path) -> None:
    assert slugs(content, None, workshop="two") == ["two"]
    assert slugs(content, None) == ["one", "two"]


def test_a_name_that_is_no_workshop_is_a_sentence(content: Path) -> None:
    with pytest.raises(WorkshopNotFound, match="No workshop at three"):
        slugs(content, "three")
