"""What the page sends over `WS /ws/terminal` (docs/terminal-protocol.md): binary frames are
keys, text frames JSON control messages. ``parse_client_frame`` makes one ASGI message into
``Keys``, ``Resize`` or ``Control``, or refuses it with the code the socket closes with."""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from app.routes.ws_auth import MESSAGE_TOO_BIG, POLICY_VIOLATION

MAX_CLIENT_FRAME = 64 * 1024
MAX_COLS = 1000
MAX_ROWS = 500


@dataclass(frozen=True)
class TerminalSize:
    cols: int = 80
    rows: int = 24


class FrameRefused(Exception):
    """A client frame the protocol does not allow; the socket closes with ``code``."""

    def __init__(self, code: int, reason: str) -> None:
        super().__init__(reason)
        self.code = code
        self.reason = reason


@dataclass(frozen=True)
class Keys:
    data: bytes


@dataclass(frozen=True)
class Resize:
    size: TerminalSize


@dataclass(frozen=True)
class Control:
    """``pause``, ``resume`` or ``ping``; unknown types are ignored (forward compatibility)."""

    kind: str


ClientMessage = Keys | Resize | Control


def parse_client_frame(message: Mapping[str, Any]) -> ClientMessage:
    """One ASGI ``websocket.receive`` message as a protocol message, or ``FrameRefused``."""
    data = message.get("bytes")
    if data is not None:
        if len(data) > MAX_CLIENT_FRAME:
            raise FrameRefused(MESSAGE_TOO_BIG, "frame larger than 64 KiB")
        return Keys(data)
    text = message.get("text") or ""
    if len(text) > MAX_CLIENT_FRAME or len(text.encode()) > MAX_CLIENT_FRAME:
        raise FrameRefused(MESSAGE_TOO_BIG, "frame larger than 64 KiB")
    try:
        control = json.loads(text)
    except ValueError:
        raise FrameRefused(POLICY_VIOLATION, "text frames must be JSON") from None
    if not isinstance(control, dict) or not isinstance(control.get("type"), str):
        raise FrameRefused(POLICY_VIOLATION, 'control messages are objects with a "type"')
    if control["type"] == "resize":
        return Resize(_size_of(control))
    return Control(control["type"])


def _size_of(control: Mapping[str, Any]) -> TerminalSize:
    cols = _dimension(control, "cols", MAX_COLS)
    return TerminalSize(cols, _dimension(control, "rows", MAX_ROWS))


def _dimension(control: Mapping[str, Any], key: str, limit: int) -> int:
    value = control.get(key)
    if type(value) is not int or not 1 <= value <= limit:  # bool is an int: not allowed
        raise FrameRefused(POLICY_VIOLATION, f"resize needs an integer {key} from 1 to {limit}")
    return value
