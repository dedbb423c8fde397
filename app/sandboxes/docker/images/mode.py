"""Offline or online: whether images build on the official Debian image or a debootstrap one."""

from __future__ import annotations

import ssl
from typing import Literal

import httpx

Mode = Literal["offline", "online"]
ModeSetting = Literal["auto", "offline", "online"]
REGISTRY_PROBE_URL = "https://registry-1.docker.io/v2/"


def detect_mode(timeout: float = 3.0) -> Mode:
    """``online`` when Docker Hub's registry answers anything over HTTPS within ``timeout``."""
    try:
        # The system trust store, not certifi's: behind a TLS-inspecting proxy only the
        # host's extra CA makes the handshake succeed.
        httpx.get(REGISTRY_PROBE_URL, timeout=timeout, verify=ssl.create_default_context())
    except httpx.HTTPError:
        return "offline"
    return "online"


def resolve_mode(setting: str) -> Mode:
    if setting == "auto":
        return detect_mode()
    if setting in ("offline", "online"):
        return "offline" if setting == "offline" else "online"
    raise ValueError(f"Unknown image build mode {setting!r}: use auto, offline or online.")
