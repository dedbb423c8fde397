"""A stand-in for what an attendee runs in their sandbox: a small web app on a real loopback
port, for the port preview's tests (FakeBackend's sandboxes answer at 127.0.0.1)."""

from __future__ import annotations

from fastapi import FastAPI, Request, WebSocket
from fastapi.responses import HTMLResponse, JSONResponse, RedirectResponse, Response


def sandbox_app() -> FastAPI:
    app = FastAPI()

    @app.get("/hello")
    async def hello(request: Request) -> JSONResponse:
        seen = {name: request.headers.get(name) for name in ("cookie", "x-forwarded-prefix")}
        return JSONResponse({"hello": "from the sandbox", "path": request.url.path, **seen})

    @app.post("/upload")
    async def upload(request: Request) -> JSONResponse:
        return JSONResponse({"received": len(await request.body())})

    @app.get("/go/{where}")
    async def go(where: str, request: Request) -> RedirectResponse:
        host = request.headers["host"]
        targets = {
            "login": "/login",
            "absolute": f"http://{host}/inside?x=1",
            "other-port": "http://localhost:9000/x",
            "away": "https://example.org/",
            "relative": "next",
        }
        return RedirectResponse(targets[where], status_code=302)

    @app.get("/cookies")
    async def cookies() -> Response:
        response = Response("set")
        response.raw_headers += [
            (b"set-cookie", b"sid=abc; Path=/; Domain=example.org; HttpOnly"),
            (b"set-cookie", b"labdeck_session=evil; Path=/"),
            (b"set-cookie", b"theme=dark"),
            (b"clear-site-data", b'"cookies"'),
        ]
        return response

    @app.get("/page")
    async def page() -> HTMLResponse:
        return HTMLResponse('<link rel="stylesheet" href="/static/app.css"><h1>My site</h1>')

    @app.websocket("/ws")
    async def echo(websocket: WebSocket) -> None:
        wanted = websocket.scope.get("subprotocols") or []
        await websocket.accept(subprotocol=wanted[0] if wanted else None)
        while True:
            text = await websocket.receive_text()
            await websocket.send_text(f"echo: {text}")

    return app
