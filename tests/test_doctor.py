"""`labdeck doctor` on the database: a fresh checkout has none yet, and that is no failure."""

from __future__ import annotations

from pathlib import Path

from app.doctor import check_database
from tests.support.database import migrated_database
from tests.support.settings import settings_for


def test_a_database_the_first_start_creates_is_not_a_failure(tmp_path: Path) -> None:
    settings = settings_for(tmp_path / "data", "test-doctor")
    finding = check_database(settings)
    assert finding.ok
    assert "created at the first start" in finding.detail
    assert not settings.database_path.exists()  # the doctor only looks


def test_a_migrated_database_is_ok_at_its_revision(tmp_path: Path) -> None:
    settings = settings_for(tmp_path / "data", "test-doctor")
    migrated_database(settings.database_path)
    finding = check_database(settings)
    assert finding.ok
    assert "at revision" in finding.detail
