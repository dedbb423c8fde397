"""The Killercoda scenarios of tests/lessons/fixtures/killercoda/ and what importing them needs."""

from __future__ import annotations

from pathlib import Path

from app.sandboxes.docker.connect import image_recipes

SCENARIOS = Path(__file__).resolve().parents[1] / "lessons" / "fixtures" / "killercoda"
# What `labdeck content import-killercoda` passes: the images the workshop registry carries.
RECIPES = image_recipes()
# The scenarios whose imported tasks must verify on real sandboxes (test_killercoda_docker.py),
# each exercising one problem of issue 15.
USED_SCENARIOS = (
    "root-verify",
    "ks-logs",
    "assets-targets",
    "traffic-links",
    "legacy-markers",
    "unclosed-details",
    "images-used",
)
