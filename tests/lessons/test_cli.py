import shutil
from pathlib import Path

import pytest
from typer.testing import CliRunner

from app.lessons.cli import content_app

FIXTURES = Path(__file__).parent / "fixtures"
runner = CliRunner()


def test_check_a_valid_workshop() -> None:
    result = runner.invoke(content_app, ["check", str(FIXTURES / "valid")])
    assert result.exit_code == 0, result.output
    assert result.output.strip() == (
        "OK: 1 workshop(s), 2 lessons, 2 tasks, 1 questions, no problems."
    )


def test_check_a_broken_workshop() -> None:
    result = runner.invoke(content_app, ["check", str(FIXTURES / "broken" / "task-schema")])
    assert result.exit_code == 1
    lines = result.output.splitlines()
    assert lines[0].endswith(
        "task-schema/01-a.md:12: task 'incomplete': checks.0.run: field required"
    )
    assert lines[-1] == "3 problem(s) found."


def test_check_every_workshop_of_a_content_folder(tmp_path: Path) -> None:
    shutil.copytree(FIXTURES / "valid", tmp_path / "one")
    shutil.copytree(FIXTURES / "valid", tmp_path / "two")
    result = runner.invoke(content_app, ["check", str(tmp_path)])
    assert result.exit_code == 0, result.output
    assert result.output.startswith("OK: 2 workshop(s), 4 lessons")


def test_check_reports_problems_of_all_workshops(tmp_path: Path) -> None:
    shutil.copytree(FIXTURES / "broken" / "bad-regex", tmp_path / "one")
    shutil.copytree(FIXTURES / "broken" / "empty-run", tmp_path / "two")
    result = runner.invoke(content_app, ["check", str(tmp_path)])
    assert result.exit_code == 1
    assert "one/01-a.md:15:" in result.output and "two/01-a.md:13:" in result.output


def test_check_defaults_to_the_content_folder(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    shutil.copytree(FIXTURES / "valid", tmp_path / "content" / "valid")
    monkeypatch.chdir(tmp_path)
    result = runner.invoke(content_app, ["check"])
    assert result.exit_code == 0, result.output


def test_check_without_workshops(tmp_path: Path) -> None:
    result = runner.invoke(content_app, ["check", str(tmp_path)])
    assert result.exit_code == 1
    assert "No workshops found" in result.output


def test_import_killercoda(tmp_path: Path) -> None:
    dest = tmp_path / "hello-docker"
    result = runner.invoke(
        content_app, ["import-killercoda", str(FIXTURES / "killercoda" / "hello-docker"), str(dest)]
    )
    assert result.exit_code == 0, result.output
    assert "OK: 1 workshop(s), 4 lessons, 2 tasks" in result.output
    assert "Import report:\n- backend imageid `ubuntu`: sandboxes run LabDeck's" in result.output
    assert (dest / "workshop.yaml").is_file()


def test_import_killercoda_refuses_a_bad_name_before_writing(tmp_path: Path) -> None:
    src = str(FIXTURES / "killercoda" / "hello-docker")
    result = runner.invoke(content_app, ["import-killercoda", src, str(tmp_path / "My_Lab")])
    assert result.exit_code == 1
    assert "use lowercase letters, digits and dashes" in result.output
    assert list(tmp_path.iterdir()) == []


def test_import_killercoda_refuses_a_non_scenario(tmp_path: Path) -> None:
    result = runner.invoke(content_app, ["import-killercoda", str(tmp_path), str(tmp_path / "x")])
    assert result.exit_code == 1
    assert "index.json not found" in result.output
