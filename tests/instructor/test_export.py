"""The export's exact content, CSV and JSON, and what /api/class says."""

from __future__ import annotations

from datetime import timedelta

from fastapi import FastAPI
from sqlmodel import Session

from app.models import Attendee
from tests.support.portal import Person, join, record


def seed(app: FastAPI, client: Person) -> str:
    ada, bob = join(client, "Ada"), join(client, '=HYPERLINK("http://x")')
    record(app, ada, "one", attempts=2, passed_after=timedelta(minutes=3), solution_shown=True)
    record(app, ada, "two", attempts=1, failed_check="It is done")
    record(app, bob, "three", attempts=0, solution_shown=True)
    with Session(app.state.services.db.engine) as session:
        attendee = session.get(Attendee, ada)
        assert attendee is not None
        return (attendee.joined_at + timedelta(minutes=3)).isoformat()


def test_csv_has_one_row_per_attendee_and_task(tiny_app: FastAPI, instructor: Person) -> None:
    passed_at = seed(tiny_app, instructor)
    response = instructor.get("/instructor/export.csv")
    assert response.status_code == 200
    assert response.headers["content-type"] == "text/csv; charset=utf-8"
    assert 'filename="tiny-progress.csv"' in response.headers["content-disposition"]
    assert response.text == (
        "name,task_id,status,attempts,first_passed_at,solution_shown\r\n"
        f"Ada,one,passed,2,{passed_at},true\r\n"
        "Ada,two,failed,1,,false\r\n"
        "Ada,three,not_tried,0,,false\r\n"
        # A name a spreadsheet would run as a formula is quoted (CSV injection).
        '"\'=HYPERLINK(""http://x"")",one,not_tried,0,,false\r\n'
        '"\'=HYPERLINK(""http://x"")",two,not_tried,0,,false\r\n'
        '"\'=HYPERLINK(""http://x"")",three,not_tried,0,,true\r\n'
    )


def test_json_export_has_the_same_rows_unquoted(tiny_app: FastAPI, instructor: Person) -> None:
    passed_at = seed(tiny_app, instructor)
    rows = instructor.get("/instructor/export.json").json()
    assert rows[:2] == [
        {
            "name": "Ada",
            "task_id": "one",
            "status": "passed",
            "attempts": 2,
            "first_passed_at": passed_at,
            "solution_shown": True,
        },
        {
            "name": "Ada",
            "task_id": "two",
            "status": "failed",
            "attempts": 1,
            "first_passed_at": None,
            "solution_shown": False,
        },
    ]
    assert len(rows) == 6 and rows[5]["name"] == '=HYPERLINK("http://x")'
    assert rows[5]["solution_shown"] is True


def test_api_class_lists_attendees_with_sandbox_and_task_status(
    tiny_app: FastAPI, instructor: Person
) -> None:
    seed(tiny_app, instructor)
    body = instructor.get("/api/class").json()
    assert body["workshop"] == "tiny"
    assert [task["id"] for task in body["tasks"]] == ["one", "two", "three"]
    ada = body["attendees"][0]
    assert ada["name"] == "Ada"
    assert ada["sandbox"] == {"state": "ready"}  # the join set it going (a fake backend: at once)
    assert ada["tasks"] == {"one": "passed", "two": "failed", "three": "not_tried"}
    assert ada["passed"] == 1 and ada["hand_raised"] is False
