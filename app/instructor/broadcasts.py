"""Broadcasts: a message from the instructor on every attendee page, live and on the next page load.

Kept in memory (the newest few): a broadcast matters for minutes, not across restarts.
"""

from __future__ import annotations

import re
import time
from collections import deque
from dataclasses import dataclass
from datetime import datetime, timedelta

from fastapi import Request

from app.events import BROADCAST_TOPIC, EventHub
from app.models import utcnow
from app.templating import templates

MESSAGE_MAX = 500
SHOWN_FOR = timedelta(minutes=30)
_CONTROL = re.compile(r"[\x00-\x1f\x7f]")


class EmptyBroadcast(ValueError):
    """There is nothing to send."""


@dataclass(frozen=True)
class Broadcast:
    id: str
    text: str
    sent_at: datetime


def clean_message(raw: str) -> str:
    text = " ".join(_CONTROL.sub(" ", raw).split())[:MESSAGE_MAX]
    if not text:
        raise EmptyBroadcast("Type a message to broadcast.")
    return text


def broadcast_html(message: Broadcast | None) -> str:
    """The markup in ``#broadcast``; the same partial base.html includes on page load."""
    return templates.env.get_template("_partials/broadcast.html").render(message=message)


class BroadcastBoard:
    def __init__(self, keep: int = 20) -> None:
        self._sent: deque[Broadcast] = deque(maxlen=keep)

    def send(self, events: EventHub, raw: str) -> Broadcast:
        # Milliseconds as the id: unique across restarts, so a dismissed message stays dismissed.
        message = Broadcast(str(time.time_ns() // 1_000_000), clean_message(raw), utcnow())
        self._sent.append(message)
        event = {
            "type": "broadcast",
            "id": message.id,
            "message": message.text,
            "sent_at": message.sent_at.isoformat(),
            "html": broadcast_html(message),
        }
        events.publish(BROADCAST_TOPIC, event)
        return message

    def latest(self) -> Broadcast | None:
        """The newest broadcast, while it is recent enough to still matter."""
        if not self._sent or utcnow() - self._sent[-1].sent_at > SHOWN_FOR:
            return None
        return self._sent[-1]

    def recent(self) -> list[Broadcast]:
        return list(reversed(self._sent))


def latest_broadcast(request: Request) -> Broadcast | None:
    """For templates (base.html): None when the app keeps no board (e.g. a bare test app)."""
    services = getattr(request.app.state, "services", None)
    return services.broadcasts.latest() if services is not None else None
