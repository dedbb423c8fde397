from __future__ import annotations

from pathlib import Path

import pytest
from typer.testing import CliRunner

from app import cli


@pytest.fixture(autouse=True)
def registered() -> None:
    if not any(group.name == "images" for group in cli.cli.registered_groups):
        cli._register_sub_apps(None)


def test_help_lists_every_command_of_the_contract() -> None:
    result = CliRunner().invoke(cli.cli, ["--help"])
    assert result.exit_code == 0
    for command in ("serve", "doctor", "images", "db", "content", "sandboxes", "bench"):
        assert command in result.output


def test_db_upgrade_creates_and_then_keeps_the_database(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("LABDECK_DATA_DIR", str(tmp_path))
    first = CliRunner().invoke(cli.cli, ["db", "upgrade"])
    assert first.exit_code == 0, first.output
    assert "upgraded" in first.output
    assert (tmp_path / "labdeck.db").exists()
    second = CliRunner().invoke(cli.cli, ["db", "upgrade"])
    assert "already up to date" in second.output


def test_doctor_explains_a_missing_engine_and_exits_non_zero(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("LABDECK_DATA_DIR", str(tmp_path))
    monkeypatch.setenv("DOCKER_HOST", "tcp://127.0.0.1:9")
    result = CliRunner().invoke(cli.cli, ["doctor"], env={"COLUMNS": "200"})
    assert result.exit_code == 1
    assert "not answering" in result.output
    assert "FAIL" in result.output


def test_serve_refuses_broken_content_with_the_problems_not_a_traceback(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    workshop = tmp_path / "content" / "broken"
    workshop.mkdir(parents=True)
    (workshop / "workshop.yaml").write_text("title: Broken\ndescription: x\n")
    (workshop / "01-first.md").write_text(
        "---\ntitle: First\n---\nno minutes in the front matter\n"
    )
    monkeypatch.setenv("LABDECK_DATA_DIR", str(tmp_path / "data"))
    monkeypatch.setenv("LABDECK_CONTENT_DIR", str(tmp_path / "content"))
    result = CliRunner().invoke(cli.cli, ["serve"], env={"COLUMNS": "200"})
    assert result.exit_code == 1
    assert "content has problems" in result.output
    assert "01-first.md" in result.output
    assert "Traceback" not in result.output
