"""Counting events per key in a sliding window (joins, wrong codes and tokens per address)."""

from __future__ import annotations

import time
from collections import defaultdict, deque


class RateLimiter:
    """At most ``limit`` events per ``window`` seconds per key (e.g. joins per address)."""

    def __init__(self, limit: int, window: float) -> None:
        self.limit = limit
        self.window = window
        self._events: dict[str, deque[float]] = defaultdict(deque)

    def allow(self, key: str) -> bool:
        """Count one event for ``key``; False (and not counted) when it is over the limit."""
        if self.exhausted(key):
            return False
        self._events[key].append(time.monotonic())
        return True

    def exhausted(self, key: str) -> bool:
        """Whether ``key`` used up its events in the window, without counting one."""
        now = time.monotonic()
        events = self._events[key]
        while events and now - events[0] > self.window:
            events.popleft()
        return len(events) >= self.limit
