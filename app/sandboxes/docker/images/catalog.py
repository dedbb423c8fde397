"""The images LabDeck builds, each from a recipe folder under ``app/sandboxes/docker/images/recipes/``."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from app.sandboxes.docker.images.context import CONTEXT_CA_DIR

RECIPES_DIR = Path(__file__).parent / "recipes"

# Offline, every recipe builds FROM this debootstrap image (build arg BASE); online, the
# Dockerfiles keep their default ``ARG BASE=debian:bookworm-slim``.
OFFLINE_BASE_TAG = "labdeck/debian-base:bookworm"
BASE_RECIPE = "debian-base"


@dataclass(frozen=True)
class Recipe:
    """One image: where its files are, what it is tagged, and what attendees call it."""

    name: str
    tag: str
    # How attendees refer to it inside their sandbox, e.g. ``hello-world:latest``.
    workshop_name: str | None = None
    # Where the recipe's files are when not in RECIPES_DIR (tests build throwaway recipes).
    recipe_dir: Path | None = None
    # Both relative to the build context: a recipe folder that is a whole source tree (the
    # portal's, see tests/test_compose.py) keeps its Dockerfile and CA folder elsewhere.
    dockerfile: str = "Dockerfile"
    extra_ca_folder: str = CONTEXT_CA_DIR
    # The Dockerfile's stage to build, when not its last (compose.yaml's portal and engine).
    target: str | None = None

    @property
    def is_workshop_image(self) -> bool:
        return self.workshop_name is not None

    @property
    def folder(self) -> Path:
        return self.recipe_dir or RECIPES_DIR / self.name


RECIPES: tuple[Recipe, ...] = (
    Recipe(BASE_RECIPE, "labdeck/workshop/debian:bookworm-slim", "debian:bookworm-slim"),
    Recipe("hello-world", "labdeck/workshop/hello-world:latest", "hello-world:latest"),
    Recipe("busybox", "labdeck/workshop/busybox:latest", "busybox:latest"),
    Recipe("registry", "labdeck/workshop/registry:2", "registry:2"),
    Recipe("sandbox", "labdeck/sandbox:latest"),
)


def recipe_names() -> list[str]:
    return [recipe.name for recipe in RECIPES]


def get_recipe(name: str) -> Recipe:
    for recipe in RECIPES:
        if recipe.name == name:
            return recipe
    raise ValueError(
        f"There is no image recipe {name!r}. Known recipes: {', '.join(recipe_names())}."
    )


def workshop_images() -> list[Recipe]:
    """The images a sandbox's inner engine gets, in build order."""
    return [recipe for recipe in RECIPES if recipe.is_workshop_image]
