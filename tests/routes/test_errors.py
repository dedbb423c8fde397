from __future__ import annotations

from fastapi.testclient import TestClient


def test_unknown_api_route_answers_json(client: TestClient) -> None:
    response = client.get("/api/nothing-here")
    assert response.status_code == 404
    assert response.json() == {"error": "Not Found", "status": 404}


def test_unknown_page_is_friendly_html(client: TestClient) -> None:
    response = client.get("/nothing-here")
    assert response.status_code == 404
    assert "text/html" in response.headers["content-type"]
    assert "Nothing here" in response.text
    assert "Traceback" not in response.text


def test_unexpected_error_hides_the_traceback(client: TestClient) -> None:
    @client.app.get("/api/boom")  # type: ignore[attr-defined]
    async def boom() -> None:
        raise RuntimeError("secret internals")

    fresh = TestClient(client.app, raise_server_exceptions=False)
    response = fresh.get("/api/boom")
    assert response.status_code == 500
    assert "secret internals" not in response.text
    assert response.json()["error"].startswith("The portal hit an unexpected error")
