import json
from pathlib import Path

import pytest

from app.lessons.killercoda import KillercodaImportError, import_killercoda, slugify
from app.lessons.killercoda_markdown import convert_markers, fence_for
from app.lessons.loader import load_workshop
from app.lessons.schema import Workshop
from app.lessons.validate import check_workshop

SCENARIOS = Path(__file__).parent / "fixtures" / "killercoda"


def imported(name: str, tmp_path: Path) -> Workshop:
    return load_workshop(import_killercoda(SCENARIOS / name, tmp_path / name))


@pytest.mark.parametrize("name", ["hello-docker", "katacoda-style"])
def test_imported_scenario_passes_the_check(name: str, tmp_path: Path) -> None:
    assert check_workshop(import_killercoda(SCENARIOS / name, tmp_path / name)) == []


def test_lessons_from_intro_steps_and_finish(tmp_path: Path) -> None:
    workshop = imported("hello-docker", tmp_path)
    assert workshop.meta.title == "Hello, Docker"
    assert workshop.meta.images == []
    assert [lesson.path.name for lesson in workshop.lessons] == [
        "01-intro.md",
        "02-run-your-first-container.md",
        "03-list-containers.md",
        "04-finish.md",
    ]


def test_scripts_become_setup(tmp_path: Path) -> None:
    intro, step1, step2, _ = imported("hello-docker", tmp_path).lessons
    assert intro.setup == (
        "# Killercoda background script (ran as root there)\ndocker pull hello-world\n"
    )
    assert step1.setup is not None and "docker rm -f first" in step1.setup
    assert step2.setup is not None and "foreground script" in step2.setup


def test_verify_becomes_a_task_with_one_check(tmp_path: Path) -> None:
    workshop = imported("hello-docker", tmp_path)
    assert [task.id for task in workshop.all_tasks()] == [
        "run-your-first-container",
        "list-containers",
    ]
    [check] = workshop.all_tasks()[0].checks
    assert check.name == "Run your first container: done"
    assert check.run == (
        "docker ps -a --filter name=^first$ --format '{{.Names}}' | grep -q first\n"
    )


def test_exec_markers_become_run_blocks(tmp_path: Path) -> None:
    body = imported("hello-docker", tmp_path).lessons[1].body
    assert "```bash run\ndocker run --name first hello-world\n```" in body
    assert "```bash run interrupt\ndocker ps -a\n```" in body
    assert "```text\ndocker rm -f ticker\n```" in body
    assert "{{" not in body.partition("```task")[0]


def test_inline_exec_alone_becomes_a_block_otherwise_inline_code(tmp_path: Path) -> None:
    body = imported("hello-docker", tmp_path).lessons[2].body
    assert "```bash run\ndocker ps -a\n```" in body
    assert "run `docker container ls` or copy `docker ps -q` into" in body
    assert "```yaml\nservices:" in body


def test_katacoda_markers_and_odd_titles(tmp_path: Path) -> None:
    workshop = imported("katacoda-style", tmp_path)
    assert workshop.meta.description == "Über volumes"
    assert [lesson.slug for lesson in workshop.lessons] == [
        "uber-volumes",
        "uber-volumes-2",
        "intro",
    ]
    assert "```bash run interrupt\ndocker ps\n```" in workshop.lessons[0].body
    assert "    ```bash run\n    docker volume ls\n    ```" in workshop.lessons[1].body
    assert workshop.lessons[1].tasks == []


def test_assets_are_copied(tmp_path: Path) -> None:
    imported("hello-docker", tmp_path)
    assert (tmp_path / "hello-docker" / "assets" / "app.conf").read_text() == "greeting=hello\n"


def test_refuses_a_folder_without_index_json(tmp_path: Path) -> None:
    with pytest.raises(KillercodaImportError, match=r"index\.json not found"):
        import_killercoda(tmp_path, tmp_path / "out")


def test_refuses_broken_index_json(tmp_path: Path) -> None:
    (tmp_path / "index.json").write_text("{not json")
    with pytest.raises(KillercodaImportError, match="not valid JSON"):
        import_killercoda(tmp_path, tmp_path / "out")


def test_refuses_to_overwrite(tmp_path: Path) -> None:
    (tmp_path / "taken").mkdir()
    (tmp_path / "taken" / "workshop.yaml").write_text("title: mine\n")
    with pytest.raises(KillercodaImportError, match="not empty"):
        import_killercoda(SCENARIOS / "hello-docker", tmp_path / "taken")


def test_scripts_outside_the_scenario_are_ignored(tmp_path: Path) -> None:
    scenario = tmp_path / "scenario"
    scenario.mkdir()
    (tmp_path / "secret.sh").write_text("echo secret\n")
    index = {"title": "T", "details": {"steps": [{"title": "S", "text": "../secret.sh"}]}}
    (scenario / "index.json").write_text(json.dumps(index))
    lesson = load_workshop(import_killercoda(scenario, tmp_path / "out")).lessons[0]
    assert "secret" not in lesson.body


@pytest.mark.parametrize(
    ("title", "slug"),
    [("Run your first container!", "run-your-first-container"), ("Über  Volumes", "uber-volumes")],
)
def test_slugify(title: str, slug: str) -> None:
    assert slugify(title) == slug


def test_convert_markers_leaves_plain_fences_alone() -> None:
    text = "```python\nprint(1)\n```\n\n~~~\nx\n~~~{{exec}}\n"
    assert convert_markers(text) == "```python\nprint(1)\n```\n\n~~~bash run\nx\n~~~\n"


def test_convert_markers_keeps_an_unclosed_fence() -> None:
    assert convert_markers("```plain\nls\n") == "```plain\nls\n"


def test_fence_for_outgrows_fences_inside() -> None:
    assert fence_for("run: ls\n") == "```"
    assert fence_for("solution: |\n  ```bash\n  ls\n  ```\n") == "````"
