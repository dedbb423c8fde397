"""Every setting is documented where operators look (Datasette's test_docs is the model)."""

from __future__ import annotations

import json
import re

import pytest

from app.config import Settings
from tests.support.settings import REPO

README = (REPO / "README.md").read_text()
HOSTING = REPO / "docs" / "hosting.md"
# `labdeck bench capacity --output docs/bench/capacity.json`: the run hosting.md's table comes
# from (tests/bench/test_capacity.py holds its sizing to the formula applied to its inputs).
CAPACITY = REPO / "docs" / "bench" / "capacity.json"
CLASS_SIZES = ("20", "50", "100")
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


def test_readme_links_every_doc() -> None:
    for doc in sorted((REPO / "docs").glob("*.md")):
        assert f"](docs/{doc.name})" in README, f"README.md does not link docs/{doc.name}"


def capacity_rows(text: str) -> dict[str, list[str]]:
    """The capacity table's rows by class size: ``| 50 | 10 GiB | 9 | 30 GB | 14 s |``."""
    rows = {}
    for line in text.splitlines():
        cells = [cell.strip() for cell in line.strip().strip("|").split("|")]
        if line.startswith("|") and cells[0] in CLASS_SIZES and len(cells) == 5:
            rows[cells[0]] = cells[1:]
    return rows


def test_hosting_has_the_capacity_table_of_the_committed_bench() -> None:
    sizing = json.loads(CAPACITY.read_text())["sizing"]
    rows = capacity_rows(HOSTING.read_text())
    assert set(rows) == set(CLASS_SIZES), "docs/hosting.md lacks its capacity table"
    for attendees in CLASS_SIZES:
        size = sizing[attendees]
        assert rows[attendees] == [
            f"{size['memory_gib']} GiB",
            str(size["cores"]),
            f"{size['disk_gb']} GB",
            f"{size['pool_fill_seconds']} s",
        ], f"the row for {attendees} is not docs/bench/capacity.json's sizing"


def test_hosting_names_every_formula_input_and_choice_of_the_bench() -> None:
    """The formula's inputs are the bench's medians (``inputs.*``) and its choices
    (``sizing.assumptions``): the doc names each one, with the value the table used."""
    result = json.loads(CAPACITY.read_text())
    text = HOSTING.read_text()
    named = set(re.findall(r"`inputs\.(\w+)`", text))
    assert named == set(result["inputs"])
    assert all(value > 0 for value in result["inputs"].values())
    for key, value in result["sizing"]["assumptions"].items():
        assert f"| `{key}` | {value:g} |" in text, f"docs/hosting.md lacks the choice {key}"
