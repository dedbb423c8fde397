from __future__ import annotations

import anyio
import pytest

from app.events import QUEUE_SIZE, EventHub

pytestmark = pytest.mark.anyio


async def test_subscribers_get_events_of_their_topics_only() -> None:
    hub = EventHub()
    async with hub.subscribe("attendee:1") as one, hub.subscribe("attendee:2") as two:
        assert hub.publish("attendee:1", {"type": "x"}) == 1
        assert (await one.get()) == {"type": "x", "topic": "attendee:1"}
        with anyio.move_on_after(0.05):
            await two.get()
            pytest.fail("attendee 2 must not see attendee 1's events")


async def test_slow_subscriber_loses_oldest_and_publisher_never_blocks() -> None:
    hub = EventHub()
    async with hub.subscribe("instructor") as slow:
        for number in range(QUEUE_SIZE + 10):
            hub.publish("instructor", {"n": number})
        first = await slow.get()
        assert first["n"] == 10
    assert hub.subscriber_count("instructor") == 0
