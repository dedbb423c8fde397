"""Every setting is documented where operators look (Datasette's test_docs is the model)."""

from __future__ import annotations

import pytest

from app.config import Settings
from tests.support.settings import REPO

README = (REPO / "README.md").read_text()
ENV_EXAMPLE = (REPO / ".env.example").read_text()
CONTRACT_SETTINGS = [
    "DATA_DIR",
    "INSTRUCTOR_TOKEN",
    "WORKSHOP",
    "SANDBOX_RUNTIME",
    "INSTANCE",
    "REGISTRY_PORT",
]


@pytest.mark.parametrize("name", sorted(Settings.model_fields))
def test_setting_is_in_readme_and_env_example(name: str) -> None:
    variable = f"LABDECK_{name.upper()}"
    assert f"| `{variable}` |" in README
    assert variable in ENV_EXAMPLE


@pytest.mark.parametrize("name", CONTRACT_SETTINGS)
def test_contract_settings_exist(name: str) -> None:
    assert name.lower() in Settings.model_fields


def test_readme_shows_the_two_commands() -> None:
    assert "./labdeck up" in README
    assert "./labdeck test" in README
