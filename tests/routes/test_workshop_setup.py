"""A workshop as the Killercoda importer writes it (issue 15): its assets served to the page and
nothing else of its folder, its setup run as the sandbox's root (files, then the script), and a
setup that fails said to the attendee and on the dashboard, never passed off as ready."""

from __future__ import annotations

import base64
import json
from collections.abc import Iterator
from pathlib import Path

import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient

from app.config import Settings
from app.sandboxes.base import ExecResult
from app.sandboxes.fake import FakeBackend
from tests.support.portal import csrf, portal, sign_in

PNG = base64.b64decode(
    "iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAYAAAAfFcSJAAAADUlEQVR42mNk+M9QDwADhgGAWjR9awAAAABJRU5ErkJggg=="
)
TASK = {
    "id": "use-the-tool",
    "title": "Use the tool",
    "instructions": "Run it.",
    "checks": [{"name": "ran", "run": "test -f /root/ran", "message": "Not yet.", "user": "root"}],
}
LESSON = f"""---
title: The only lesson
minutes: 5
setup: prepare-the-lesson
setup_user: root
---

![the picture](assets/pic.png)

````task
{json.dumps(TASK)}
````
"""


def write_lab(content: Path) -> Path:
    lab = content / "lab"
    (lab / "assets").mkdir(parents=True)
    meta = {
        "title": "Lab",
        "description": "A workshop with a setup.",
        "join_code": "secret-code",
        "setup": {
            "user": "root",
            "files": [
                {"source": "assets/tool.sh", "target": "/usr/local/bin/tool.sh", "mode": "+x"}
            ],
            "run": "prepare-the-lab",
        },
    }
    (lab / "workshop.yaml").write_text(json.dumps(meta))
    (lab / "01-only.md").write_text(LESSON)
    (lab / "assets" / "tool.sh").write_text("echo tool\n")
    (lab / "assets" / "pic.png").write_bytes(PNG)
    (lab / "assets" / "page.html").write_text("<script>alert(1)</script>")
    (lab / "assets" / "pic.svg").write_text('<svg xmlns="http://www.w3.org/2000/svg"/>')
    (lab / "assets" / "escape").symlink_to(lab / "workshop.yaml")
    return content


class Sandbox:
    """What ran in the fake sandbox, as whom; commands containing a word in ``failing`` fail."""

    def __init__(self) -> None:
        self.ran: list[tuple[str, str]] = []
        self.failing: dict[str, ExecResult] = {}

    def __call__(self, name: str, command: str, user: str) -> ExecResult:
        self.ran.append((command, user))
        for word, result in self.failing.items():
            if word in command:
                return result
        return ExecResult(0, "")


@pytest.fixture
def sandbox() -> Sandbox:
    return Sandbox()


@pytest.fixture
def lab_app(settings: Settings, tmp_path: Path, sandbox: Sandbox) -> FastAPI:
    app = portal(settings.model_copy(update={"content_dir": write_lab(tmp_path / "content")}))
    app.state.sandbox_backend = FakeBackend(exec_handler=sandbox)
    return app


@pytest.fixture
def client(lab_app: FastAPI) -> Iterator[TestClient]:
    with TestClient(lab_app) as client:
        response = client.post("/join", data={"name": "Ada", "code": "secret-code"})
        assert response.status_code == 200, response.text
        yield client


def prepare(client: TestClient) -> dict[str, object]:
    response = client.post("/lessons/only/setup", headers=csrf(client))
    assert response.status_code == 200
    answer: dict[str, object] = response.json()
    return answer


# -- assets -------------------------------------------------------------------------------------


def test_the_lesson_loads_its_image_from_the_workshop_s_assets(client: TestClient) -> None:
    page = client.get("/lessons/only").text
    assert '<img src="/workshop/assets/pic.png" alt="the picture"' in page
    assert 'id="setup-notice"' in page
    image = client.get("/workshop/assets/pic.png")
    assert image.status_code == 200 and image.content == PNG
    assert image.headers["content-type"] == "image/png"
    assert "sandbox" in image.headers["content-security-policy"]
    assert image.headers["x-content-type-options"] == "nosniff"


def test_files_that_could_run_script_are_served_as_text_or_sandboxed(client: TestClient) -> None:
    assert client.get("/workshop/assets/page.html").headers["content-type"].startswith("text/plain")
    svg = client.get("/workshop/assets/pic.svg")
    assert svg.headers["content-type"] == "image/svg+xml"
    assert "default-src 'none'" in svg.headers["content-security-policy"]
    assert client.get("/workshop/assets/tool.sh").headers["content-type"].startswith("text/plain")


@pytest.mark.parametrize(
    "path",
    [
        "/workshop/assets/..%2fworkshop.yaml",
        "/workshop/assets/%2e%2e/workshop.yaml",
        "/workshop/assets/..%2f01-only.md",
        "/workshop/assets/%2fetc%2fpasswd",
        "/workshop/assets/escape",  # a symbolic link out of assets/
        "/workshop/assets/",
        "/workshop/assets/missing.png",
    ],
)
def test_nothing_outside_the_assets_folder_is_served(client: TestClient, path: str) -> None:
    response = client.get(path)
    assert response.status_code == 404
    assert "secret-code" not in response.text


def test_assets_need_an_attendee(lab_app: FastAPI) -> None:
    with TestClient(lab_app) as anonymous:
        assert anonymous.get("/workshop/assets/pic.png").status_code == 401


# -- setup ----------------------------------------------------------------------------------------


def test_the_workshop_s_files_then_scripts_run_as_root_once(
    client: TestClient, sandbox: Sandbox
) -> None:
    assert prepare(client) == {"lesson": "only", "ready": True, "failed": False, "message": ""}
    setup = [(command, user) for command, user in sandbox.ran if "ready" not in command]
    assert all(user == "root" for _, user in setup)
    commands = [command for command, _ in setup]
    wrote = next(i for i, command in enumerate(commands) if "/usr/local/bin/tool.sh" in command)
    assert wrote < commands.index("prepare-the-lab") < commands.index("prepare-the-lesson")
    assert any(command.startswith("chmod +x -- /usr/local/bin/tool.sh") for command in commands)
    before = len(sandbox.ran)
    assert prepare(client)["ready"] is True
    assert client.post("/api/tasks/use-the-tool/check").json()["passed"] is True
    assert [command for command, _ in sandbox.ran[before:]] == ["test -f /root/ran"]
    assert sandbox.ran[-1][1] == "root"  # the check's user


def test_a_failing_setup_is_said_on_the_page_the_card_and_the_dashboard(
    client: TestClient, sandbox: Sandbox
) -> None:
    sandbox.failing["prepare-the-lab"] = ExecResult(3, "cp: cannot stat '/scenario/x'\n")
    answer = prepare(client)
    assert answer["ready"] is False and answer["failed"] is True
    assert str(answer["message"]).startswith(
        "The workshop's setup failed in your sandbox (it ended with exit status 3)"
    )
    assert "prepare-the-lesson" not in [command for command, _ in sandbox.ran]
    check = client.post("/api/tasks/use-the-tool/check").json()
    assert check["passed"] is False and check["checks"] == []
    assert check["message"] == answer["message"]
    assert client.get("/api/me").json()["tasks"]["use-the-tool"] == "not_tried"
    sign_in(client)
    dashboard = client.get("/instructor").text
    assert "setup of the workshop failed (exit 3)" in dashboard
    assert "cp: cannot stat" in dashboard  # the output, for the instructor


def test_a_click_does_not_wait_for_a_failed_setup_again_but_a_reload_retries(
    client: TestClient, sandbox: Sandbox
) -> None:
    sandbox.failing["prepare-the-lesson"] = ExecResult(137, "", timed_out=True)
    answer = prepare(client)
    assert "this lesson's setup failed" in str(answer["message"]).lower()
    assert "did not finish within 120 s" in str(answer["message"])

    def runs(command: str) -> int:
        return [ran for ran, _ in sandbox.ran].count(command)

    assert runs("prepare-the-lesson") == 1
    client.post("/api/tasks/use-the-tool/check")
    assert runs("prepare-the-lesson") == 1
    del sandbox.failing["prepare-the-lesson"]
    assert prepare(client)["ready"] is True
    assert runs("prepare-the-lesson") == 2
    assert runs("prepare-the-lab") == 1  # it had worked: never again in this sandbox
    sign_in(client)
    assert "setup-failed" not in client.get("/instructor").text
