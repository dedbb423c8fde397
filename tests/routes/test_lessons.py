from __future__ import annotations

from fastapi.testclient import TestClient

from tests.support.portal import join


def test_lesson_pages_need_an_attendee(client: TestClient) -> None:
    assert client.get("/lessons/first-container").status_code == 401
    assert client.get("/api/workshop").status_code == 401
    assert client.get("/api/me").json() == {
        "error": "Join the workshop on the start page first.",
        "status": 401,
    }


def test_api_workshop_lists_lessons_and_tasks_in_order(client: TestClient) -> None:
    join(client, "Ada")
    body = client.get("/api/workshop").json()
    slugs = [lesson["slug"] for lesson in body["lessons"]]
    assert slugs[0] == "first-container"
    assert all(set(lesson) >= {"slug", "title", "tasks"} for lesson in body["lessons"])
    assert sum(len(lesson["tasks"]) for lesson in body["lessons"]) >= 4
    first_task = body["lessons"][0]["tasks"][0]
    assert set(first_task) == {"id", "title"}


def test_every_lesson_renders_with_task_cards_and_pager(client: TestClient) -> None:
    join(client, "Ada")
    lessons = client.get("/api/workshop").json()["lessons"]
    for lesson in lessons:
        page = client.get(f"/lessons/{lesson['slug']}")
        assert page.status_code == 200
        for task in lesson["tasks"]:
            assert f'id="task-{task["id"]}"' in page.text
    assert "lesson-pager" in page.text


def test_unknown_and_path_like_slugs_are_404(client: TestClient) -> None:
    join(client, "Ada")
    for slug in ("nope", "..%2F..%2Fetc%2Fpasswd", "01-first-container.md"):
        response = client.get(f"/lessons/{slug}")
        assert response.status_code == 404
        assert "Traceback" not in response.text


def test_me_reports_every_task_as_not_tried_at_first(client: TestClient) -> None:
    join(client, "Ada")
    tasks = client.get("/api/me").json()["tasks"]
    assert tasks and set(tasks.values()) == {"not_tried"}
    client.get("/lessons/first-container")
    assert client.get("/api/me").json()["current_lesson"] == "first-container"
