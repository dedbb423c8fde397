"""Every route of an app, looking inside included routers (FastAPI keeps them wrapped)."""

from __future__ import annotations

from collections.abc import Iterator, Sequence

from starlette.routing import BaseRoute


def flat_routes(routes: Sequence[BaseRoute]) -> Iterator[BaseRoute]:
    for route in routes:
        included = getattr(route, "original_router", None)
        if included is not None:
            yield from flat_routes(included.routes)
        else:
            yield route
