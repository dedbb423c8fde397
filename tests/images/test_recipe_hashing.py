"""Content hashing, build contexts, apt mirror detection and the catalog: no Docker needed."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from app.sandboxes.docker.images import rootfs
from app.sandboxes.docker.images.catalog import RECIPES, get_recipe
from app.sandboxes.docker.images.context import (
    assemble_context,
    content_hash,
    find_extra_ca_files,
    recipe_files,
)
from app.sandboxes.docker.images.mode import resolve_mode


@pytest.fixture
def recipe_dir(tmp_path: Path) -> Path:
    folder = tmp_path / "recipe"
    (folder / "files").mkdir(parents=True)
    (folder / "Dockerfile").write_text("ARG BASE=debian:bookworm-slim\nFROM ${BASE}\n")
    (folder / "files" / "motd").write_text("hello\n")
    return folder


@pytest.fixture
def ca_dir(tmp_path: Path) -> Path:
    folder = tmp_path / "ca"
    (folder / "corp").mkdir(parents=True)
    (folder / "proxy.crt").write_text("-----BEGIN CERTIFICATE-----\nproxy\n")
    (folder / "corp" / "root.crt").write_text("-----BEGIN CERTIFICATE-----\nroot\n")
    (folder / "README").write_text("not a certificate")
    return folder


def test_hash_is_stable(recipe_dir: Path) -> None:
    assert content_hash(recipe_dir, {"BASE": "x"}) == content_hash(recipe_dir, {"BASE": "x"})


def test_hash_changes_when_a_recipe_file_changes(recipe_dir: Path) -> None:
    before = content_hash(recipe_dir, {})
    (recipe_dir / "files" / "motd").write_text("hello again\n")
    assert content_hash(recipe_dir, {}) != before


def test_hash_changes_when_a_file_is_added_or_renamed(recipe_dir: Path) -> None:
    before = content_hash(recipe_dir, {})
    (recipe_dir / "extra.sh").write_text("")
    added = content_hash(recipe_dir, {})
    (recipe_dir / "extra.sh").rename(recipe_dir / "other.sh")
    assert len({before, added, content_hash(recipe_dir, {})}) == 3


def test_hash_changes_with_build_args_and_ca_files(recipe_dir: Path, ca_dir: Path) -> None:
    plain = content_hash(recipe_dir, {})
    offline = content_hash(recipe_dir, {"BASE": "labdeck/debian-base:bookworm"})
    cas = find_extra_ca_files(ca_dir)
    with_ca = content_hash(recipe_dir, {}, cas, ca_dir)
    (ca_dir / "proxy.crt").write_text("-----BEGIN CERTIFICATE-----\nrotated\n")
    rotated = content_hash(recipe_dir, {}, cas, ca_dir)
    assert len({plain, offline, with_ca, rotated}) == 4


def test_editor_and_python_leftovers_do_not_count(recipe_dir: Path) -> None:
    before = content_hash(recipe_dir, {})
    (recipe_dir / "__pycache__").mkdir()
    (recipe_dir / "__pycache__" / "x.pyc").write_bytes(b"\0")
    (recipe_dir / "Dockerfile~").write_text("backup")
    assert content_hash(recipe_dir, {}) == before


def test_extra_ca_files_are_found_recursively(ca_dir: Path, tmp_path: Path) -> None:
    found = find_extra_ca_files(ca_dir)
    assert [p.relative_to(ca_dir).as_posix() for p in found] == ["corp/root.crt", "proxy.crt"]
    assert find_extra_ca_files(tmp_path / "missing") == []


def test_context_holds_recipe_files_and_extra_ca(
    recipe_dir: Path, ca_dir: Path, tmp_path: Path
) -> None:
    context = assemble_context(recipe_dir, tmp_path / "ctx", find_extra_ca_files(ca_dir), ca_dir)
    assert (context / "Dockerfile").read_text().startswith("ARG BASE")
    assert (context / "files" / "motd").exists()
    assert (context / "extra-ca" / "proxy.crt").exists()
    assert (context / "extra-ca" / "corp" / "root.crt").exists()
    assert not (context / "extra-ca" / "README").exists()


def test_context_has_an_extra_ca_folder_even_without_certificates(
    recipe_dir: Path, tmp_path: Path
) -> None:
    context = assemble_context(recipe_dir, tmp_path / "ctx", [])
    assert (context / "extra-ca").is_dir()


def test_mirror_from_deb822_sources(tmp_path: Path) -> None:
    (tmp_path / "d").mkdir()
    (tmp_path / "d" / "debian.sources").write_text(
        "Types: deb\nURIs: http://mirror.example/debian\nSuites: bookworm\nComponents: main\n\n"
        "Types: deb\nURIs: http://mirror.example/debian-security\nSuites: bookworm-security\n"
    )
    (tmp_path / "d" / "node.sources").write_text(
        "Types: deb\nURIs: https://deb.nodesource.com/node_20.x\nSuites: nodistro\n"
    )
    found = rootfs.detect_mirror(tmp_path / "none.list", tmp_path / "d")
    security = rootfs.detect_mirror(tmp_path / "none.list", tmp_path / "d", "debian-security")
    assert (found, security) == (
        "http://mirror.example/debian",
        "http://mirror.example/debian-security",
    )


def test_mirror_from_one_line_sources_list_comes_first(tmp_path: Path) -> None:
    (tmp_path / "sources.list").write_text(
        "# deb http://commented.example/debian bookworm main\n"
        "deb-src http://src.example/debian bookworm main\n"
        "deb [signed-by=/usr/share/keyrings/k.gpg arch=amd64] https://one.example/debian/"
        " bookworm main\n"
    )
    (tmp_path / "d").mkdir()
    (tmp_path / "d" / "debian.sources").write_text("Types: deb\nURIs: http://two.example/debian\n")
    assert (
        rootfs.detect_mirror(tmp_path / "sources.list", tmp_path / "d")
        == "https://one.example/debian"
    )


def test_disabled_and_non_debian_sources_are_skipped(tmp_path: Path) -> None:
    (tmp_path / "a.sources").write_text(
        "Types: deb\nURIs: http://off.example/debian\nEnabled: no\n"
    )
    (tmp_path / "b.sources").write_text("Types: deb\nURIs: http://ubuntu.example/ubuntu\n")
    assert rootfs.detect_mirror(tmp_path / "none.list", tmp_path) is None


def test_missing_debootstrap_gives_a_clear_error(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(shutil, "which", lambda *args, **kwargs: None)
    with pytest.raises(rootfs.RootfsError, match="apt-get install debootstrap"):
        rootfs.debootstrap_path()


def test_every_recipe_has_a_dockerfile_and_a_unique_tag() -> None:
    for recipe in RECIPES:
        assert (recipe.folder / "Dockerfile").is_file(), recipe.name
        assert recipe_files(recipe.folder)
    assert len({recipe.tag for recipe in RECIPES}) == len(RECIPES)
    assert get_recipe("hello-world").workshop_name == "hello-world:latest"
    assert not get_recipe("sandbox").is_workshop_image
    with pytest.raises(ValueError, match="Known recipes"):
        get_recipe("nginx")


@pytest.mark.parametrize("name", ["registry", "sandbox"])
def test_https_using_images_trust_the_hosts_extra_ca(name: str) -> None:
    dockerfile = (get_recipe(name).folder / "Dockerfile").read_text()
    assert "COPY extra-ca/ /usr/local/share/ca-certificates/" in dockerfile
    assert "update-ca-certificates" in dockerfile
    assert "ca-certificates" in dockerfile


def test_explicit_modes_need_no_network() -> None:
    assert resolve_mode("offline") == "offline"
    assert resolve_mode("online") == "online"
    with pytest.raises(ValueError, match="auto, offline or online"):
        resolve_mode("sometimes")
