"""Every test here runs on the tiny workshop (tests/support/portal.py)."""

from __future__ import annotations

from tests.support.portal import client, instructor, tiny_app, tiny_settings

__all__ = ["client", "instructor", "tiny_app", "tiny_settings"]  # fixtures, registered by import
