from pathlib import Path

import pytest

from app.lessons.assets import asset_file, asset_path, asset_url, media_type


@pytest.mark.parametrize(
    ("href", "path"),
    [
        ("assets/x.png", "assets/x.png"),
        ("./assets/a/b.png#top", "assets/a/b.png"),
        ("assets/a/../b.png", "assets/b.png"),
        ("assets/../workshop.yaml", None),
        ("assets", None),
        ("/assets/x.png", None),
        ("https://example.org/assets/x.png", None),
        ("01-intro.md", None),
        ("#assets", None),
    ],
)
def test_only_relative_paths_into_assets_are_assets(href: str, path: str | None) -> None:
    assert asset_path(href) == path


def test_the_url_keeps_the_query_and_anchor() -> None:
    assert asset_url("./assets/x.svg?v=1#y") == "/workshop/assets/x.svg?v=1#y"


def test_asset_files_stay_inside_the_assets_folder(tmp_path: Path) -> None:
    (tmp_path / "assets" / "sub").mkdir(parents=True)
    (tmp_path / "assets" / "sub" / "x.png").write_bytes(b"png")
    (tmp_path / "workshop.yaml").write_text("join_code: secret\n")
    (tmp_path / "assets" / "link").symlink_to(tmp_path / "workshop.yaml")
    assert asset_file(tmp_path, "sub/x.png") == (tmp_path / "assets" / "sub" / "x.png").resolve()
    for outside in ("../workshop.yaml", "sub/../../workshop.yaml", "/etc/passwd", "link", "sub",
                    "", "x\0.png"):  # fmt: skip
        assert asset_file(tmp_path, outside) is None


@pytest.mark.parametrize(
    ("name", "kind"),
    [
        ("a.png", "image/png"),
        ("a.svg", "image/svg+xml"),
        ("a.html", "text/plain; charset=utf-8"),
        ("a.js", "text/plain; charset=utf-8"),
        ("a.sh", "text/plain; charset=utf-8"),
        ("Dockerfile", "text/plain; charset=utf-8"),
        ("a.tar.gz", "application/octet-stream"),
    ],
)
def test_media_types(name: str, kind: str) -> None:
    assert media_type(Path(name)) == kind
