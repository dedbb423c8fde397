from __future__ import annotations

import re
from pathlib import Path

import httpx
import pytest
from typer.testing import CliRunner

from app import cli
from app.config import Settings
from app.main import create_app
from app.sandboxes.fake import FakeBackend
from app.services import WRONG_TOKENS_PER_ADDRESS_PER_MINUTE
from tests.support.live_server import LiveServer


@pytest.fixture(autouse=True)
def registered() -> None:
    if not any(group.name == "images" for group in cli.cli.registered_groups):
        cli._register_sub_apps(None)


CONTRACT_COMMANDS = ("serve", "doctor", "teardown", "images", "db", "content", "sandboxes", "bench")


def test_help_lists_every_command_of_the_contract() -> None:
    result = CliRunner().invoke(cli.cli, ["--help"])
    assert result.exit_code == 0
    commands = {c.name or c.callback.__name__ for c in cli.cli.registered_commands if c.callback}
    groups = {group.name for group in cli.cli.registered_groups}
    for command in CONTRACT_COMMANDS:
        assert command in commands | groups, f"`labdeck {command}` is in the contract"
        assert f" {command} " in result.output, f"`labdeck --help` should list {command}"


def test_db_upgrade_creates_and_then_keeps_the_database(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    data_dir = tmp_path / ("a-data-dir-with-a-name-long-enough-to-wrap-at-80-columns" * 2)
    monkeypatch.setenv("LABDECK_DATA_DIR", str(data_dir))
    first = CliRunner().invoke(cli.cli, ["db", "upgrade"])
    assert first.exit_code == 0, first.output
    assert "upgraded" in first.output
    assert (data_dir / "labdeck.db").exists()
    second = CliRunner().invoke(cli.cli, ["db", "upgrade"])
    assert f"{data_dir / 'labdeck.db'}: already up to date." in second.output


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


# -- forwarded headers (issue 13) ---------------------------------------------------------------


def login_statuses(server_url: str, tries: int) -> list[int]:
    """Wrong sign-ins from this machine, each claiming another client address."""
    statuses = []
    with httpx.Client(base_url=server_url) as browser:
        browser.get("/")  # the CSRF cookie and the page's token
        token = csrf_token_in(browser.get("/instructor").text)
        for attempt in range(tries):
            response = browser.post(
                "/instructor/login",
                data={"token": "wrong", "csrf_token": token},
                headers={"X-Forwarded-For": f"203.0.113.{attempt}"},
            )
            statuses.append(response.status_code)
    return statuses


def csrf_token_in(html: str) -> str:
    match = re.search(r'<meta name="csrf-token" content="([^"]+)">', html)
    assert match
    return match.group(1)


def served(settings: Settings) -> LiveServer:
    """The portal under uvicorn with the options `labdeck serve` gives it."""
    app = create_app(settings)
    app.state.sandbox_backend = FakeBackend()
    return LiveServer(app, **cli.uvicorn_options(settings))


def test_forwarded_addresses_from_loopback_do_not_reset_the_limit(settings: Settings) -> None:
    """uvicorn believes X-Forwarded-For from 127.0.0.1 unless told otherwise: anything on the
    machine could then name a new address per try and guess the token without end."""
    with served(settings) as server:
        statuses = login_statuses(server.url, WRONG_TOKENS_PER_ADDRESS_PER_MINUTE + 2)
    assert statuses == [403] * WRONG_TOKENS_PER_ADDRESS_PER_MINUTE + [429, 429]


def test_a_configured_proxy_is_believed(settings: Settings) -> None:
    behind_proxy = settings.model_copy(update={"trusted_proxies": "10.9.9.9, 127.0.0.1"})
    with served(behind_proxy) as server:
        statuses = login_statuses(server.url, WRONG_TOKENS_PER_ADDRESS_PER_MINUTE + 2)
    assert statuses == [403] * (WRONG_TOKENS_PER_ADDRESS_PER_MINUTE + 2)  # one try per client
