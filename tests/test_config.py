from __future__ import annotations

from pathlib import Path

import pytest
from pydantic import ValidationError

from app.config import Settings, parse_duration


@pytest.mark.parametrize(
    ("text", "seconds"), [(90, 90), ("90", 90), ("30m", 1800), ("8h", 28800), ("1.5d", 129600)]
)
def test_durations(text: object, seconds: float) -> None:
    assert parse_duration(text) == seconds


def test_bad_duration_is_explained() -> None:
    with pytest.raises(ValueError, match="not a duration"):
        parse_duration("soon")


def test_production_refuses_missing_and_weak_secrets(tmp_path: Path) -> None:
    with pytest.raises(ValidationError, match="LABDECK_INSTRUCTOR_TOKEN"):
        Settings(_env_file=None, env="production", data_dir=tmp_path)  # type: ignore[call-arg]
    with pytest.raises(ValidationError, match="strong secret"):
        Settings(
            _env_file=None,  # type: ignore[call-arg]
            env="production",
            instructor_token="changeme",
            secret_key="x" * 32,
        )


def test_production_accepts_strong_secrets() -> None:
    settings = Settings(
        _env_file=None,  # type: ignore[call-arg]
        env="production",
        instructor_token="a-long-enough-token-123",
        secret_key="another-long-enough-key-456",
    )
    assert settings.instructor_secret() == "a-long-enough-token-123"


def test_generated_token_is_stored_and_stable(tmp_path: Path) -> None:
    settings = Settings(_env_file=None, data_dir=tmp_path)  # type: ignore[call-arg]
    first = settings.instructor_secret()
    assert len(first) >= 24
    assert Settings(_env_file=None, data_dir=tmp_path).instructor_secret() == first  # type: ignore[call-arg]
    assert (tmp_path / "instructor-token").stat().st_mode & 0o777 == 0o600


def test_environment_prefix(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("LABDECK_SANDBOX_RUNTIME", "caps")
    monkeypatch.setenv("LABDECK_SANDBOX_IDLE_STOP", "5m")
    settings = Settings(_env_file=None)  # type: ignore[call-arg]
    assert settings.sandbox_runtime == "caps"
    assert settings.sandbox_idle_stop == 300


def test_every_field_has_help_text() -> None:
    undocumented = [name for name, field in Settings.model_fields.items() if not field.description]
    assert undocumented == []
