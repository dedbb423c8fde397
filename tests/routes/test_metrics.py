from __future__ import annotations

from fastapi.testclient import TestClient

from tests.support.portal import join


def test_metrics_are_prometheus_text_with_the_labdeck_prefix(client: TestClient) -> None:
    join(client, "Ada")
    join(client, "Grace")
    response = client.get("/metrics")
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/plain")
    samples = [line for line in response.text.splitlines() if line and not line.startswith("#")]
    assert samples and all(line.startswith("labdeck_") for line in samples)
    assert "labdeck_attendees 2" in samples
    assert 'labdeck_check_attempts_total{result="passed"} 0' in samples


def test_metrics_never_show_names(client: TestClient) -> None:
    join(client, "Secret Name")
    assert "Secret Name" not in client.get("/metrics").text
