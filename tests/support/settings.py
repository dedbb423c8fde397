"""Settings for a test portal: a data dir of its own, the repo's content, known secrets."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from app.config import Settings

REPO = Path(__file__).resolve().parents[2]
# Every Docker object a test makes carries this label; the sweep in tests/conftest.py removes them.
TEST_LABEL = "io.labdeck.test"
TEST_LABELS = {TEST_LABEL: "1"}
INSTRUCTOR_TOKEN = "test-instructor-token-0123456789"


def settings_for(data_dir: Path, instance: str, **changes: Any) -> Settings:
    """``instance`` names the portal's Docker objects: start it with ``test-`` and the pid, so the
    sweep in tests/conftest.py knows whose they are."""
    return Settings(
        _env_file=None,  # the developer's .env must not change what a test sees
        data_dir=data_dir,
        content_dir=REPO / "content",
        instance=instance,
        instructor_token=INSTRUCTOR_TOKEN,
        secret_key="test-secret-key-0123456789abcdef",
        **changes,
    )
