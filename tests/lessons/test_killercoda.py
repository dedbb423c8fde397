"""The Killercoda importer on small scenarios of our own (tests/lessons/fixtures/killercoda/),
each written to exercise one of the problems of issue 15. test_killercoda_docker.py proves on
real sandboxes that their imported tasks fail fresh and pass once solved."""

import json
from pathlib import Path

import pytest

from app.checks.verify import solution_fences
from app.lessons.killercoda import (
    ImportResult,
    KillercodaImportError,
    import_killercoda,
    slugify,
)
from app.lessons.killercoda_markdown import convert_markers, fence_for
from app.lessons.loader import load_workshop
from app.lessons.schema import Lesson, Task, Workshop
from app.lessons.validate import check_workshop
from tests.support.killercoda import RECIPES, SCENARIOS, USED_SCENARIOS


def imported(name: str, tmp_path: Path) -> Workshop:
    return load_workshop(import_killercoda(SCENARIOS / name, tmp_path / name, RECIPES).path)


def report_of(name: str, tmp_path: Path) -> str:
    return import_killercoda(SCENARIOS / name, tmp_path / name, RECIPES).report.text()


def only_task(workshop: Workshop) -> tuple[Lesson, Task]:
    [(lesson, task)] = [(lesson, task) for lesson in workshop.lessons for task in lesson.tasks]
    return lesson, task


@pytest.mark.parametrize("name", sorted(path.name for path in SCENARIOS.iterdir()))
def test_every_scenario_imports_into_a_workshop_that_passes_the_check(
    name: str, tmp_path: Path
) -> None:
    result = import_killercoda(SCENARIOS / name, tmp_path / name, RECIPES)
    assert result == ImportResult(tmp_path / name, result.report)
    assert check_workshop(result.path) == []


def test_the_fixtures_used_for_proofs_are_all_there() -> None:
    assert set(USED_SCENARIOS) <= {path.name for path in SCENARIOS.iterdir()}


# -- root-only verify scripts (/root, /ks) ------------------------------------------------------


def test_verify_scripts_run_as_root_with_the_step_s_title_and_text(tmp_path: Path) -> None:
    workshop = imported("root-verify", tmp_path)
    greeting, container = workshop.all_tasks()
    assert (greeting.id, greeting.title) == ("leave-a-greeting", "Leave a greeting")
    assert greeting.instructions == (
        "Write the word hello into `/tmp/greeting`, where the checker looks for it."
    )
    assert (
        container.instructions == "Run a container named `greeter` that prints one line and exits."
    )
    [check] = greeting.checks
    assert check.user == "root" and check.name == "Leave a greeting"
    assert check.run.startswith("# Notes for the scenario's author")
    assert "touch /root/.step1-verified" in check.run
    assert "“Leave a greeting”" in check.message


def test_each_task_s_solution_is_its_step_s_exec_commands_after_the_earlier_ones(
    tmp_path: Path,
) -> None:
    greeting, container = imported("root-verify", tmp_path).all_tasks()
    assert solution_fences(greeting.solution) == "echo hello > /tmp/greeting\n"
    assert solution_fences(container.solution) == (
        "echo hello > /tmp/greeting\ndocker run --name greeter busybox echo hi\n"
    )
    assert container.solution is not None and "“Leave a greeting”" in container.solution


# -- setup scripts that log to /ks and wait for each other -------------------------------------


def test_the_intro_s_scripts_are_the_workshop_s_setup_as_root(tmp_path: Path) -> None:
    workshop = imported("ks-logs", tmp_path)
    setup = workshop.meta.setup
    assert setup is not None and setup.user == "root" and setup.files == []
    assert setup.run is not None
    background = setup.run.index("touch /ks/background-finished")
    assert background < setup.run.index("while [ ! -f /ks/background-finished ]")
    assert setup.run.startswith("clear() { :; }")  # a setup has no terminal to clear
    intro = workshop.lessons[0]
    assert intro.setup is None and intro.workshop_setup == setup


def test_a_step_s_scripts_are_its_lesson_s_setup_as_root(tmp_path: Path) -> None:
    lesson = imported("hello-docker", tmp_path).lessons[1]
    assert lesson.setup_user == "root"
    assert lesson.setup is not None and "docker rm -f first" in lesson.setup


# -- assets with targets, and images beside the steps ------------------------------------------


def test_host01_assets_become_setup_files_at_their_targets(tmp_path: Path) -> None:
    setup = imported("assets-targets", tmp_path).meta.setup
    assert setup is not None and setup.run is None and setup.user == "root"
    assert [(file.source, file.target, file.mode) for file in setup.files] == [
        ("assets/greet.sh", "/usr/local/bin/greet.sh", "+x"),
        ("assets/app/Dockerfile", "/opt/app/Dockerfile", None),
        ("assets/app/config.yaml", "/opt/app/config.yaml", None),
        ("assets/notes.txt", "/root/notes.txt", None),
    ]


def test_assets_and_images_beside_the_steps_are_copied_into_assets(tmp_path: Path) -> None:
    workshop = imported("assets-targets", tmp_path)
    copied = sorted(
        path.relative_to(workshop.path / "assets").as_posix()
        for path in (workshop.path / "assets").rglob("*")
        if path.is_file()
    )
    assert copied == [
        "app/Dockerfile",
        "app/config.yaml",
        "diagram.png",
        "greet.sh",
        "notes.txt",
        "step1/flow.svg",
    ]
    assert "![How the files travel](assets/diagram.png)" in workshop.lessons[0].body
    assert '<img src="assets/step1/flow.svg"' in workshop.lessons[1].body
    source = SCENARIOS / "assets-targets" / "assets" / "diagram.png"
    assert (workshop.path / "assets" / "diagram.png").read_bytes() == source.read_bytes()


def test_assets_copied_to_root_are_reported(tmp_path: Path) -> None:
    assert "assets copied to /root" in report_of("assets-targets", tmp_path)


# -- traffic links ------------------------------------------------------------------------------


def test_traffic_addresses_become_port_previews_in_links_and_text(tmp_path: Path) -> None:
    body = imported("traffic-links", tmp_path).lessons[0].body
    assert "[the page](preview:8080/index.html)" in body
    assert "visit\n[port 8080 of your sandbox](preview:8080) yourself" in body
    assert (
        "curl -s --retry 10 --retry-connrefused --retry-delay 1 http://localhost:8080/index.html"
        in body
    )
    assert "TRAFFIC" not in body


def test_traffic_in_raw_html_and_katacoda_addresses() -> None:
    text = (
        '<a href="{{TRAFFIC_HOST1_3000}}/x">app</a> and '
        "[old](https://[[HOST_SUBDOMAIN]]-80-[[KATACODA_HOST]].environments.katacoda.com/) "
        "and `curl [[HOST_IP]]:80`"
    )
    assert convert_markers(text) == (
        '<a href="/preview/3000/x">app</a> and [old](preview:80/) and `curl localhost:80`\n'
    )


# -- legacy Katacoda markers and fence options --------------------------------------------------


def test_katacoda_markers_become_ours(tmp_path: Path) -> None:
    lesson = imported("legacy-markers", tmp_path).lessons[1]
    assert "```bash run\ndocker volume create data\n```" in lesson.body  # ```x```{{execute T1}}
    assert "```bash run\ndocker volume ls --filter name=data\n```" in lesson.body  # cmd{{execute}}
    assert "List the volumes with `docker volume ls` and look at it with\n" in lesson.body
    assert "`docker volume inspect data` (copy that one)" in lesson.body  # `x`{{}}
    assert "Open `app.conf` in the editor" in lesson.body  # {{open}}
    assert "```\ndocker volume ls -q\n```" in lesson.body  # {{copy}}
    assert "{{" not in lesson.body.partition("````task")[0]


def test_fence_options_stay_data_and_never_become_the_language(tmp_path: Path) -> None:
    lesson = imported("legacy-markers", tmp_path).lessons[1]
    assert "```yaml{2,5,6}\nservices:" in lesson.body
    assert convert_markers("```plain{1}\nls\n```{{exec}}\n") == "```bash{1} run\nls\n```\n"


def test_katacoda_intro_keys_are_run_or_reported(tmp_path: Path) -> None:
    workshop = imported("legacy-markers", tmp_path)
    assert workshop.meta.setup is not None and workshop.meta.setup.run is not None
    assert "docker volume rm -f data" in workshop.meta.setup.run  # courseData
    report = report_of("legacy-markers", tmp_path / "again")
    for line in [
        "index.json `pathwayTitle`: pathways are not imported",
        "index.json `environment`: environment (uilayout, dashboards, terminals)",
        "intro `courseData` (Katacoda): run as its background script",
        "intro `credits`: credits are not shown",
        "step 1 `answer`: the answer file is not imported",
        "backend imageid `docker`: sandboxes run LabDeck's Debian 12 image",
    ]:
        assert f"- {line}" in report


def test_a_command_the_next_one_interrupts_runs_a_few_seconds_in_the_solution(
    tmp_path: Path,
) -> None:
    _, task = only_task(imported("legacy-markers", tmp_path))
    script = solution_fences(task.solution) or ""
    assert "timeout -s KILL 5 bash -c 'docker volume ls --filter name=data' || true\n" in script
    assert script.endswith("echo stopped\n")


# -- an unclosed <details> ----------------------------------------------------------------------


def test_an_unclosed_details_is_closed_at_the_step_s_end_and_reported(tmp_path: Path) -> None:
    lesson, task = only_task(imported("unclosed-details", tmp_path))
    body = lesson.body.partition("````task")[0]
    assert body.rstrip().endswith("```bash run\ndocker network create labnet\n```\n\n</details>")
    assert solution_fences(task.solution) == "docker network create labnet\n"
    assert "1 <details> not closed in the source; closed at the page's end" in report_of(
        "unclosed-details", tmp_path / "again"
    )


def test_the_solution_stays_inside_its_details_on_the_page(tmp_path: Path) -> None:
    from app.lessons.render import render_lesson

    lesson, _ = only_task(imported("unclosed-details", tmp_path))
    html = render_lesson(lesson)[0].html
    details = html[html.index("<details>") : html.index("</details>")]
    assert "<summary>Solution</summary>" in details and 'class="run"' in details
    assert 'class="run"' not in html[html.index("</details>") :]


# -- images the steps use -----------------------------------------------------------------------


def test_images_used_are_listed_with_their_recipe_when_there_is_one(tmp_path: Path) -> None:
    images = [(image.name, image.recipe) for image in imported("images-used", tmp_path).meta.images]
    assert images == [
        ("busybox:latest", "busybox"),
        ("postgres:16", None),
        ("golang:1.22", None),
        ("nginx:alpine", None),
        ("redis:7", None),
        ("hello-world:latest", "hello-world"),  # the welcome banner's
    ]


def test_images_the_registry_cannot_carry_offline_are_reported(tmp_path: Path) -> None:
    report = report_of("images-used", tmp_path)
    for image in ("postgres:16", "golang:1.22", "nginx:alpine", "redis:7"):
        assert f"- image {image}: LabDeck has no recipe for it" in report
    assert "busybox" not in report and "hello-world" not in report


# -- what cannot work, and what is not carried over ---------------------------------------------


def test_a_kubernetes_scenario_says_why_it_cannot_work(tmp_path: Path) -> None:
    report = report_of("kubernetes-only", tmp_path)
    lines = report.splitlines()
    assert lines[0].startswith(
        "- cannot work in a Docker sandbox: backend imageid `kubernetes-kubeadm-2nodes`"
    )
    assert "- index.json `interface`: interface layout: LabDeck shows the lesson" in report
    assert len(lines) == len(set(lines))


def test_a_step_without_exec_commands_is_reported_for_content_verify(tmp_path: Path) -> None:
    scenario = tmp_path / "scenario"
    (scenario / "s").mkdir(parents=True)
    (scenario / "s" / "text.md").write_text("Create `/tmp/x` with an editor.\n")
    (scenario / "s" / "verify.sh").write_text("test -f /tmp/x\n")
    index = {"title": "T", "details": {"steps": [{"title": "Edit", "text": "s/text.md",
                                                  "verify": "s/verify.sh"}]}}  # fmt: skip
    (scenario / "index.json").write_text(json.dumps(index))
    result = import_killercoda(scenario, tmp_path / "out")
    assert "step 1 'Edit': no {{exec}} commands" in result.report.text()
    assert load_workshop(result.path).all_tasks()[0].solution is None


def test_unknown_settings_and_other_hosts_are_reported_one_line_each(tmp_path: Path) -> None:
    scenario = tmp_path / "scenario"
    scenario.mkdir()
    index = {
        "title": "T",
        "colour": "blue",
        "details": {"steps": [{"title": "S", "mood": "x"}], "assets": {"host02": []}},
        "backend": {"imageid": "ubuntu", "cpu": 2},
    }
    (scenario / "index.json").write_text(json.dumps(index))
    report = import_killercoda(scenario, tmp_path / "out").report.text()
    assert "- index.json `colour`: not a setting LabDeck knows; ignored\n" in report
    assert "- step 1 `mood`: not a setting LabDeck knows; ignored\n" in report
    assert "- assets for `host02`: not copied; a sandbox is one host (host01)\n" in report
    assert "- backend `cpu`: not used" in report


# -- the destination ----------------------------------------------------------------------------


@pytest.mark.parametrize("name", ["My_Lab", "MyLab", "my lab"])
def test_a_bad_destination_name_is_refused_before_anything_is_written(
    name: str, tmp_path: Path
) -> None:
    with pytest.raises(KillercodaImportError, match="lowercase letters, digits and dashes"):
        import_killercoda(SCENARIOS / "hello-docker", tmp_path / "new" / name)
    assert list(tmp_path.iterdir()) == []


def test_a_failed_import_leaves_nothing_and_a_second_try_works(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    def broken_disk(self: Path, data: bytes) -> int:
        raise OSError("No space left on device")

    dest = tmp_path / "content" / "lab"
    with monkeypatch.context() as patched:
        patched.setattr(Path, "write_bytes", broken_disk)
        with pytest.raises(OSError, match="No space left"):
            import_killercoda(SCENARIOS / "hello-docker", dest)
    assert list(tmp_path.iterdir()) == []
    assert import_killercoda(SCENARIOS / "hello-docker", dest).path == dest
    assert sorted(path.name for path in tmp_path.glob("content/*")) == ["lab"]


def test_an_empty_destination_folder_is_used(tmp_path: Path) -> None:
    (tmp_path / "lab").mkdir()
    assert import_killercoda(SCENARIOS / "hello-docker", tmp_path / "lab").path.is_dir()
    assert (tmp_path / "lab" / "workshop.yaml").is_file()


def test_refuses_to_overwrite(tmp_path: Path) -> None:
    (tmp_path / "taken").mkdir()
    (tmp_path / "taken" / "workshop.yaml").write_text("title: mine\n")
    with pytest.raises(KillercodaImportError, match="not empty"):
        import_killercoda(SCENARIOS / "hello-docker", tmp_path / "taken")
    assert (tmp_path / "taken" / "workshop.yaml").read_text() == "title: mine\n"


def test_refuses_a_folder_without_index_json(tmp_path: Path) -> None:
    with pytest.raises(KillercodaImportError, match=r"index\.json not found"):
        import_killercoda(tmp_path, tmp_path / "out")
    assert not (tmp_path / "out").exists()


def test_refuses_broken_index_json(tmp_path: Path) -> None:
    (tmp_path / "index.json").write_text("{not json")
    with pytest.raises(KillercodaImportError, match="not valid JSON"):
        import_killercoda(tmp_path, tmp_path / "out")


# -- the older scenarios ------------------------------------------------------------------------


def test_lessons_from_intro_steps_and_finish(tmp_path: Path) -> None:
    workshop = imported("hello-docker", tmp_path)
    assert workshop.meta.title == "Hello, Docker"
    assert [lesson.path.name for lesson in workshop.lessons] == [
        "01-intro.md",
        "02-run-your-first-container.md",
        "03-list-containers.md",
        "04-finish.md",
    ]


def test_exec_markers_become_run_blocks(tmp_path: Path) -> None:
    body = imported("hello-docker", tmp_path).lessons[1].body
    assert "```bash run\ndocker run --name first hello-world\n```" in body
    assert "```bash run interrupt\ndocker ps -a\n```" in body
    assert "```text\ndocker rm -f ticker\n```" in body


def test_inline_exec_alone_becomes_a_block_otherwise_inline_code(tmp_path: Path) -> None:
    body = imported("hello-docker", tmp_path).lessons[2].body
    assert "```bash run\ndocker ps -a\n```" in body
    assert "run `docker container ls` or copy `docker ps -q` into" in body
    assert "```yaml\nservices:" in body


def test_odd_titles_get_unique_slugs(tmp_path: Path) -> None:
    workshop = imported("katacoda-style", tmp_path)
    assert workshop.meta.description == "Über volumes"
    assert [lesson.slug for lesson in workshop.lessons] == [
        "uber-volumes",
        "uber-volumes-2",
        "intro",
    ]
    assert "    ```bash run\n    docker volume ls\n    ```" in workshop.lessons[1].body
    assert workshop.lessons[1].tasks == []


def test_scripts_outside_the_scenario_are_ignored(tmp_path: Path) -> None:
    scenario = tmp_path / "scenario"
    scenario.mkdir()
    (tmp_path / "secret.sh").write_text("echo secret\n")
    index = {"title": "T", "details": {"steps": [{"title": "S", "text": "../secret.sh"}]}}
    (scenario / "index.json").write_text(json.dumps(index))
    lesson = load_workshop(import_killercoda(scenario, tmp_path / "out").path).lessons[0]
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
