"""Every template renders once (Warehouse's test_templates is the model): a broken one fails here."""

from __future__ import annotations

import pytest
from jinja2 import Environment, FileSystemLoader, StrictUndefined, meta

from app.templating import TEMPLATES_DIR

TEMPLATES = sorted(p.relative_to(TEMPLATES_DIR).as_posix() for p in TEMPLATES_DIR.rglob("*.html"))


@pytest.mark.parametrize("name", TEMPLATES)
def test_template_compiles(name: str) -> None:
    environment = Environment(loader=FileSystemLoader(TEMPLATES_DIR), undefined=StrictUndefined)
    environment.get_template(name)  # parses and compiles
    parsed = environment.parse((TEMPLATES_DIR / name).read_text())
    named = {found for found in meta.find_referenced_templates(parsed) if found is not None}
    assert named <= set(TEMPLATES), f"{name} extends or includes a template that does not exist"
