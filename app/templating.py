"""Jinja2 templates that can render a whole page or one named block of it (for htmx)."""

from __future__ import annotations

from pathlib import Path
from typing import Any, cast

from fastapi import Request
from fastapi.responses import HTMLResponse
from jinja2_fragments.fastapi import Jinja2Blocks

from app.instructor.sandbox_health import registry_works
from app.lessons.render import render_markdown

TEMPLATES_DIR = Path(__file__).resolve().parent.parent / "templates"
STATIC_DIR = Path(__file__).resolve().parent.parent / "static"

templates = Jinja2Blocks(directory=str(TEMPLATES_DIR))
# Lesson text (task instructions, hints, answers) is Markdown, rendered and sanitized on the way.
templates.env.globals["markdown"] = render_markdown


def resume_url(request: Request, attendee: Any) -> str:
    """The attendee's personal link back in, on this portal's public address."""
    base = request.app.state.settings.public_url or str(request.base_url)
    return f"{base.rstrip('/')}/resume/{attendee.resume_key}"


templates.env.globals["resume_url"] = resume_url
templates.env.globals["registry_works"] = registry_works


def is_htmx(request: Request) -> bool:
    return request.headers.get("HX-Request") == "true"


def render(
    request: Request,
    name: str,
    context: dict[str, Any] | None = None,
    *,
    block: str | None = None,
    status_code: int = 200,
) -> HTMLResponse:
    """Render ``name``; with ``block`` and an htmx request, only that block of the same template."""
    context = dict(context or {})
    services = getattr(request.app.state, "services", None)
    context.setdefault("workshop", services.workshop if services is not None else None)
    context.setdefault("content_notice", services.content.notice() if services else None)
    block_name = block if block and is_htmx(request) else None
    response = templates.TemplateResponse(
        request, name, context, status_code=status_code, block_name=block_name
    )
    return cast(HTMLResponse, response)
