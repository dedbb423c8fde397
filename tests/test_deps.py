"""The rule of app/deps.py: no ``async`` route or websocket takes a sync database session (it
would hold a connection across every await of the route: the pool starved under a class)."""

from __future__ import annotations

import inspect
from collections.abc import Iterator

from fastapi import FastAPI
from fastapi.dependencies.models import Dependant
from fastapi.routing import APIRoute, APIWebSocketRoute

from app.config import Settings
from app.deps import SessionDep, get_session
from app.main import create_app
from tests.support.routes import flat_routes


def _dependencies(dependant: Dependant) -> Iterator[Dependant]:
    for child in dependant.dependencies:
        yield child
        yield from _dependencies(child)


def async_routes_with_a_sync_session(app: FastAPI) -> list[str]:
    """``METHOD path`` of every async route (and every websocket) that depends on get_session."""
    found = []
    for route in flat_routes(app.routes):
        if isinstance(route, APIRoute) and inspect.iscoroutinefunction(route.endpoint):
            label = f"{','.join(sorted(route.methods))} {route.path}"
        elif isinstance(route, APIWebSocketRoute):
            label = f"WS {route.path}"
        else:
            continue
        if any(dep.call is get_session for dep in _dependencies(route.dependant)):
            found.append(label)
    return found


def test_no_async_route_or_websocket_takes_a_sync_session(settings: Settings) -> None:
    app = create_app(settings)
    assert async_routes_with_a_sync_session(app) == []
    routes = [r for r in flat_routes(app.routes) if isinstance(r, APIRoute | APIWebSocketRoute)]
    assert len(routes) > 30  # the check looked at the real routes


def test_the_check_finds_an_async_route_that_takes_one() -> None:
    app = FastAPI()

    @app.get("/bad")
    async def bad(session: SessionDep) -> None:
        return None

    @app.get("/fine")
    def fine(session: SessionDep) -> None:  # a thread of its own: allowed
        return None

    assert async_routes_with_a_sync_session(app) == ["GET /bad"]
