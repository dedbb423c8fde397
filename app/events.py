"""The in-process hub that fans events out to websockets.

Publishers never wait: each subscriber has a bounded queue, and a subscriber too slow to keep up
loses its oldest events (then gets a ``{"type": "lagged"}`` marker) instead of slowing the portal.
Topics are plain strings: ``attendee:<id>`` for one attendee's pages, ``instructor`` for dashboards,
``broadcast`` for every attendee page.
"""

from __future__ import annotations

import asyncio
import threading
from collections import defaultdict
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

Event = dict[str, Any]
QUEUE_SIZE = 256


class Subscription:
    def __init__(self, topics: tuple[str, ...]) -> None:
        self.topics = topics
        self._queue: asyncio.Queue[Event] = asyncio.Queue(maxsize=QUEUE_SIZE)

    def offer(self, event: Event) -> None:
        if self._queue.full():
            self._queue.get_nowait()
            event = {**event, "lagged": True}
        self._queue.put_nowait(event)

    async def get(self) -> Event:
        return await self._queue.get()

    def take_ready(self) -> list[Event]:
        """Every event queued now, without waiting."""
        ready = []
        while not self._queue.empty():
            ready.append(self._queue.get_nowait())
        return ready

    def __aiter__(self) -> AsyncIterator[Event]:
        return self._iterate()

    async def _iterate(self) -> AsyncIterator[Event]:
        while True:
            yield await self._queue.get()


class EventHub:
    """Publish from the event loop or from any thread (sync routes, database workers): a
    publish from another thread is handed to the loop, since asyncio queues are not
    thread-safe."""

    def __init__(self) -> None:
        self._subscribers: dict[str, set[Subscription]] = defaultdict(set)
        self._loop: asyncio.AbstractEventLoop | None = None
        self._loop_thread: int | None = None

    def bind(self, loop: asyncio.AbstractEventLoop) -> None:
        """The loop the subscribers wait on (the lifespan's); publishes from threads go there."""
        self._loop = loop
        self._loop_thread = threading.get_ident()

    def publish(self, topic: str, event: Event) -> int:
        """Queue ``event`` for every subscriber of ``topic``; returns how many got it. Never blocks."""
        if self._loop is not None and threading.get_ident() != self._loop_thread:
            count = self.subscriber_count(topic)
            if not self._loop.is_closed():
                self._loop.call_soon_threadsafe(self._publish, topic, event)
            return count
        return self._publish(topic, event)

    def _publish(self, topic: str, event: Event) -> int:
        subscribers = list(self._subscribers.get(topic, ()))
        for subscription in subscribers:
            subscription.offer({**event, "topic": topic})
        return len(subscribers)

    @asynccontextmanager
    async def subscribe(self, *topics: str) -> AsyncIterator[Subscription]:
        subscription = Subscription(topics)
        for topic in topics:
            self._subscribers[topic].add(subscription)
        try:
            yield subscription
        finally:
            for topic in topics:
                self._subscribers[topic].discard(subscription)
                if not self._subscribers[topic]:
                    del self._subscribers[topic]

    def subscriber_count(self, topic: str) -> int:
        return len(self._subscribers.get(topic, ()))


def attendee_topic(attendee_id: int) -> str:
    return f"attendee:{attendee_id}"


INSTRUCTOR_TOPIC = "instructor"
BROADCAST_TOPIC = "broadcast"
