"""Every test here runs on the tiny workshop (tests/instructor/support.py)."""

from __future__ import annotations

from tests.instructor.support import client, instructor, tiny_app, tiny_settings

__all__ = ["client", "instructor", "tiny_app", "tiny_settings"]  # fixtures, registered by import
