"""What the portal measures as it works, for `GET /metrics`: histograms of how long things took
and gauges of what is open right now. (The counts read from SQLite are app/metrics.py's.)

Process-wide, as Prometheus client libraries keep theirs: one portal is one process, and a test
reads a difference, not a total. Thread-safe: checks finish on the event loop, creations too,
but `/metrics` renders in a thread."""

from __future__ import annotations

import threading
import time
from collections.abc import Awaitable, Callable, MutableMapping
from typing import Any

Labels = tuple[tuple[str, str], ...]
ASGIApp = Callable[
    [MutableMapping[str, Any], Callable[[], Awaitable[Any]], Callable[[Any], Awaitable[None]]],
    Awaitable[None],
]


def _labels_text(labels: Labels, extra: str = "") -> str:
    parts = [f'{key}="{value}"' for key, value in labels] + ([extra] if extra else [])
    return "{" + ",".join(parts) + "}" if parts else ""


def _header(name: str, kind: str, help_text: str) -> list[str]:
    return [f"# HELP labdeck_{name} {help_text}", f"# TYPE labdeck_{name} {kind}"]


class Histogram:
    """Observations in cumulative buckets (upper bounds in seconds), with their sum and count."""

    def __init__(self, name: str, help_text: str, buckets: tuple[float, ...]) -> None:
        self.name, self.help_text, self.buckets = name, help_text, buckets
        self._lock = threading.Lock()
        self._series: dict[Labels, tuple[list[int], float, int]] = {}

    def observe(self, seconds: float, **labels: str) -> None:
        key = tuple(sorted(labels.items()))
        with self._lock:
            counts, total, count = self._series.get(key) or ([0] * len(self.buckets), 0.0, 0)
            for index, bound in enumerate(self.buckets):
                if seconds <= bound:
                    counts[index] += 1
            self._series[key] = (counts, total + seconds, count + 1)

    def count(self, **labels: str) -> int:
        series = self._series.get(tuple(sorted(labels.items())))
        return series[2] if series else 0

    def render(self) -> str:
        lines = _header(self.name, "histogram", self.help_text)
        with self._lock:
            series = sorted(self._series.items())
        for labels, (counts, total, count) in series:
            for bound, bucket in zip(self.buckets, counts, strict=True):
                le = _labels_text(labels, f'le="{bound:g}"')
                lines.append(f"labdeck_{self.name}_bucket{le} {bucket}")
            every = _labels_text(labels, 'le="+Inf"')
            lines.append(f"labdeck_{self.name}_bucket{every} {count}")
            lines.append(f"labdeck_{self.name}_sum{_labels_text(labels)} {total:g}")
            lines.append(f"labdeck_{self.name}_count{_labels_text(labels)} {count}")
        return "\n".join(lines)


class Gauge:
    """A value per label set that goes up and down."""

    def __init__(self, name: str, help_text: str) -> None:
        self.name, self.help_text = name, help_text
        self._lock = threading.Lock()
        self._values: dict[Labels, float] = {}

    def add(self, amount: float, **labels: str) -> None:
        key = tuple(sorted(labels.items()))
        with self._lock:
            self._values[key] = self._values.get(key, 0.0) + amount

    def value(self, **labels: str) -> float:
        return self._values.get(tuple(sorted(labels.items())), 0.0)

    def render(self) -> str:
        with self._lock:
            values = sorted(self._values.items())
        lines = _header(self.name, "gauge", self.help_text)
        lines += [
            f"labdeck_{self.name}{_labels_text(labels)} {value:g}" for labels, value in values
        ]
        return "\n".join(lines)


SANDBOX_CREATION_SECONDS = Histogram(
    "sandbox_creation_seconds",
    "From a creation's turn in the queue to a ready sandbox (retries included), by outcome.",
    (1, 2, 5, 10, 15, 20, 30, 45, 60, 90, 120, 300),
)
SANDBOX_HAND_OUT_SECONDS = Histogram(
    "sandbox_hand_out_seconds",
    "From an attendee being given a sandbox to that sandbox being ready, by source "
    "(warm: from the pool; new: queued for creation).",
    (0.05, 0.1, 0.25, 0.5, 1, 2, 5, 10, 20, 30, 60, 120, 300),
)
CHECK_SECONDS = Histogram(
    "check_duration_seconds",
    "One click's task check, from the click to the last result, by result.",
    (0.05, 0.1, 0.25, 0.5, 1, 2, 5, 10, 20, 30, 60),
)
WEBSOCKETS_OPEN = Gauge("websockets_open", "Websockets open now, by kind.")
INSTRUMENTS = (SANDBOX_CREATION_SECONDS, SANDBOX_HAND_OUT_SECONDS, CHECK_SECONDS, WEBSOCKETS_OPEN)


def render_instruments() -> str:
    return "\n".join(instrument.render() for instrument in INSTRUMENTS)


def websocket_kind(path: str) -> str:
    """``/ws/terminal`` -> terminal, ``/ws/instructor/terminal/7`` -> instructor_terminal,
    ``/preview/8080/...`` -> preview: a label with as many values as there are routes."""
    segments = [part for part in path.strip("/").split("/") if part]
    if segments[:1] == ["ws"]:
        return "_".join(part for part in segments[1:] if not part.isdigit()) or "other"
    return segments[0] if segments else "other"


class CountOpenWebsockets:
    """ASGI middleware: a websocket counts in ``WEBSOCKETS_OPEN`` from its accept to its end."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(
        self,
        scope: MutableMapping[str, Any],
        receive: Callable[[], Awaitable[Any]],
        send: Callable[[Any], Awaitable[None]],
    ) -> None:
        if scope["type"] != "websocket":
            await self.app(scope, receive, send)
            return
        kind, accepted = websocket_kind(scope.get("path", "")), False

        async def counting_send(message: Any) -> None:
            nonlocal accepted
            await send(message)
            if message["type"] == "websocket.accept" and not accepted:
                accepted = True
                WEBSOCKETS_OPEN.add(1, kind=kind)

        try:
            await self.app(scope, receive, counting_send)
        finally:
            if accepted:
                WEBSOCKETS_OPEN.add(-1, kind=kind)


def since(started: float) -> float:
    """Seconds since ``started`` (a ``time.monotonic()``)."""
    return time.monotonic() - started
