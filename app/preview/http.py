"""HTTP through the preview: the request streams to the app, the answer streams back.

One ``httpx.AsyncClient`` for the portal (built by the lifespan, app/services.py). It keeps no
cookies (a jar shared by every attendee would hand one's cookies to another), follows no
redirect (the browser does, after ``headers.moved_location``) and ignores proxy variables.
"""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator
from http.cookiejar import CookieJar
from typing import Any

import httpx
from starlette.background import BackgroundTask
from starlette.requests import Request
from starlette.responses import Response, StreamingResponse

from app.preview import CONNECT_TIMEOUT, MAX_REQUEST_BODY, READ_TIMEOUT, headers
from app.preview.target import PreviewUnavailable, Target

log = logging.getLogger("labdeck.preview")

METHODS = ["GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"]


class _NoCookies(CookieJar):
    def extract_cookies(self, *args: Any, **kwargs: Any) -> None:
        return None

    def add_cookie_header(self, *args: Any, **kwargs: Any) -> None:
        return None


class BodyTooLarge(Exception):
    pass


class PreviewClient:
    """The client every preview request goes through; ``aclose`` on shutdown."""

    def __init__(self, transport: httpx.AsyncBaseTransport | None = None) -> None:
        self.client = httpx.AsyncClient(
            timeout=httpx.Timeout(READ_TIMEOUT, connect=CONNECT_TIMEOUT),
            limits=httpx.Limits(max_connections=200, max_keepalive_connections=40),
            cookies=_NoCookies(),
            follow_redirects=False,
            trust_env=False,
            transport=transport,
        )

    async def aclose(self) -> None:
        await self.client.aclose()

    async def forward(self, request: Request, target: Target, *, instructor: bool) -> Response:
        """The app's answer for ``request``; ``PreviewUnavailable`` when there is none."""
        outgoing = self.client.build_request(
            request.method,
            app_url(request, target),
            headers=headers.to_the_app(
                request.headers.items(),
                client=request.client.host if request.client else "",
                scheme=request.url.scheme,
                prefix=target.prefix,
                keep_auth=not instructor,
            ),
            content=_body(request),
        )
        try:
            upstream = await self.client.send(outgoing, stream=True)
        except BodyTooLarge as error:
            raise _too_large() from error
        except httpx.TimeoutException as error:
            raise _silent(target) from error
        except httpx.HTTPError as error:
            raise _nothing_listens(target) from error
        response = StreamingResponse(
            _relayed(upstream), upstream.status_code, background=BackgroundTask(upstream.aclose)
        )
        portal_host = request.headers.get("host", "")
        answer = headers.to_the_browser(
            upstream.headers.multi_items(), target, portal_host, instructor=instructor
        )
        response.raw_headers = [(name.lower().encode(), value.encode()) for name, value in answer]
        return response


def app_url(request: Request, target: Target) -> httpx.URL:
    """The sandbox's address and port, with the request's path after the prefix, exactly as the
    browser encoded it."""
    raw_path: bytes = request.scope.get("raw_path") or request.url.path.encode()
    rest = raw_path[len(target.prefix) :] if raw_path.startswith(target.prefix.encode()) else b"/"
    query = request.scope.get("query_string", b"")
    return httpx.URL(
        scheme="http",
        host=target.host,
        port=target.port,
        raw_path=(rest or b"/") + (b"?" + query if query else b""),
    )


def _body(request: Request) -> AsyncIterator[bytes] | None:
    """The request body as it arrives, refused past ``MAX_REQUEST_BODY``; None without one."""
    length = request.headers.get("content-length")
    if length is None and "transfer-encoding" not in request.headers:
        return None
    if length is not None and length.isdigit() and int(length) > MAX_REQUEST_BODY:
        raise _too_large()
    return _limited(request.stream())


async def _limited(chunks: AsyncIterator[bytes]) -> AsyncIterator[bytes]:
    size = 0
    async for chunk in chunks:
        size += len(chunk)
        if size > MAX_REQUEST_BODY:
            raise BodyTooLarge
        yield chunk


async def _relayed(upstream: httpx.Response) -> AsyncIterator[bytes]:
    """The app's body as it comes, still encoded (gzip stays gzip); an app that stops halfway
    ends the response halfway, as a direct connection would."""
    try:
        async for chunk in upstream.aiter_raw():
            yield chunk
    except httpx.HTTPError as error:
        log.info("preview answer cut short: %s", error)


def _too_large() -> PreviewUnavailable:
    limit = MAX_REQUEST_BODY // (1024 * 1024)
    return PreviewUnavailable(
        413, "That upload is too large", f"The preview passes on at most {limit} MiB per request."
    )


def _silent(target: Target) -> PreviewUnavailable:
    return PreviewUnavailable(
        504,
        f"Port {target.port} did not answer in time",
        f"Something listens on port {target.port} in the sandbox but did not answer within "
        f"{READ_TIMEOUT:g} s. Look at its logs in the terminal, then reload.",
    )


def _nothing_listens(target: Target) -> PreviewUnavailable:
    return PreviewUnavailable(
        502,
        f"Nothing is listening on port {target.port}",
        f"Nothing in the sandbox answers on port {target.port}. Start the server first, for "
        f"example `docker run -d -p {target.port}:80 nginx`, check it with `docker ps`, then "
        "reload this page.",
    )
