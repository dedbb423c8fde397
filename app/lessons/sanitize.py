"""Raw HTML in lessons is allowed, but only once nh3 has cleaned it (imports are untrusted).

markdown-it hands raw HTML over in pieces: `<details>` is one html_block, the Markdown inside it
is parsed normally, and `</details>` is another html_block; inline, `<kbd>` and `</kbd>` are
separate html_inline tokens. Cleaning each piece alone would close every opened tag at once and
break the structure, so a core rule merges each opening piece with everything up to the piece
that closes it into one token. Its HTML pieces are cleaned together, with placeholders standing
for the Markdown in between; that Markdown is rendered by our own rules (Run buttons and all)
and put back after cleaning, so the sanitizer never strips our trusted markup.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from html.parser import HTMLParser

import nh3
from markdown_it import MarkdownIt
from markdown_it.rules_core import StateCore
from markdown_it.token import Token
from markdown_it.utils import EnvType, OptionsDict

from app.lessons.assets import asset_url

_ALLOWED_ATTRIBUTES = {tag: set(names) for tag, names in nh3.ALLOWED_ATTRIBUTES.items()}
_ALLOWED_ATTRIBUTES["*"] = {"class", "title", "lang"}


def _point_at_assets(element: str, attribute: str, value: str) -> str:
    """`<img src="assets/x.png">` in a lesson loads from the workshop's assets (assets.py)."""
    if attribute in ("src", "href"):
        return asset_url(value) or value
    return value


_CLEANER = nh3.Cleaner(attributes=_ALLOWED_ATTRIBUTES, attribute_filter=_point_at_assets)

# Tokens that split a lesson into segments; a raw HTML run must never swallow one.
SEGMENT_FENCES = frozenset({"task", "question"})

_VOID_TAGS = frozenset(
    {"area", "base", "br", "col", "embed", "hr", "img", "input", "link", "meta", "param"}
    | {"source", "track", "wbr"}
)


def sanitize_html(fragment: str) -> str:
    """Drop scripts, event handlers, javascript: URLs and unknown tags from an HTML fragment."""
    return _CLEANER.clean(fragment)


def sanitize_plugin(md: MarkdownIt) -> None:
    md.add_render_rule("html_block", _render_clean)
    md.add_render_rule("html_inline", _render_clean)
    md.core.ruler.push("merge_raw_html", _merge_raw_html)


def _placeholder(index: int) -> str:
    # Plain text, so the sanitizer keeps it where it stands.
    return f"LABDECKTRUSTEDPART{index}END"


def _render_clean(
    self: object, tokens: Sequence[Token], idx: int, options: OptionsDict, env: EnvType
) -> str:
    token = tokens[idx]
    cleaned = sanitize_html(token.content)
    for index, trusted_html in enumerate(token.meta.get("trusted_parts", [])):
        cleaned = cleaned.replace(_placeholder(index), trusted_html, 1)
    return cleaned


class _OpenTags(HTMLParser):
    """Counts which tags a stream of HTML pieces leaves open."""

    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.stack: list[str] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        if tag not in _VOID_TAGS:
            self.stack.append(tag)

    def handle_endtag(self, tag: str) -> None:
        if tag in self.stack:
            del self.stack[len(self.stack) - 1 - self.stack[::-1].index(tag) :]


def _closing_index(tokens: Sequence[Token], start: int, html_type: str) -> int | None:
    """Index of the raw HTML token that closes what tokens[start] opens, if there is one."""
    opener = tokens[start]
    if opener.type != html_type:
        return None
    open_tags = _OpenTags()
    open_tags.feed(opener.content)
    if not open_tags.stack:
        return None
    for index in range(start + 1, len(tokens)):
        token = tokens[index]
        if token.type == "fence" and token.info.strip() in SEGMENT_FENCES:
            return None
        if token.type == html_type and token.level == opener.level:
            open_tags.feed(token.content)
            if not open_tags.stack:
                return index
    return None


Render = Callable[[list[Token]], str]


def _merge_runs(tokens: list[Token], html_type: str, render: Render) -> list[Token]:
    merged: list[Token] = []
    index = 0
    while index < len(tokens):
        end = _closing_index(tokens, index, html_type)
        if end is None:
            merged.append(tokens[index])
            index += 1
            continue
        merged.append(_merged_token(tokens[index : end + 1], html_type, render))
        index = end + 1
    return merged


def _merged_token(run: list[Token], html_type: str, render: Render) -> Token:
    """One raw HTML token: the run's HTML pieces, with placeholders for the Markdown between."""
    level = run[0].level
    skeleton: list[str] = []
    trusted_parts: list[str] = []
    pending: list[Token] = []
    for token in run:
        if token.type == html_type and token.level == level:
            if pending:
                skeleton.append(_placeholder(len(trusted_parts)))
                trusted_parts.append(render(pending))
                pending = []
            skeleton.append(token.content)
        else:
            pending.append(token)
    merged = Token(html_type, "", 0, content="".join(skeleton), level=level, block=run[0].block)
    merged.map = run[0].map
    merged.meta["trusted_parts"] = trusted_parts
    return merged


def _merge_raw_html(state: StateCore) -> None:
    def render(tokens: list[Token]) -> str:
        return str(state.md.renderer.render(tokens, state.md.options, state.env))

    for token in state.tokens:
        if token.type == "inline" and token.children:
            token.children = _merge_runs(token.children, "html_inline", render)
    state.tokens = _merge_runs(state.tokens, "html_block", render)
