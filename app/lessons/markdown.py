"""The one Markdown parser for lessons: CommonMark + tables, and LabDeck's extensions as plugins.

Extensions: `::: note|tip|warning [title]` admonitions, heading anchors, `<lang> run [interrupt]`
code fences with Run and Copy buttons, Pygments highlighting (`yaml{2,5-6}` marks lines 2, 5
and 6), links between lesson files, `preview:PORT` links to the attendee's port preview, images
and links into the workshop's `assets/` folder (assets.py), and raw HTML cleaned by nh3
(sanitize.py).
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass
from functools import cache

from markdown_it import MarkdownIt
from markdown_it.rules_core import StateCore
from markdown_it.token import Token
from markdown_it.utils import EnvType, OptionsDict
from markupsafe import escape
from mdit_py_plugins.anchors import anchors_plugin
from mdit_py_plugins.container import container_plugin
from mdit_py_plugins.front_matter import front_matter_plugin
from pygments import highlight
from pygments.formatters import HtmlFormatter
from pygments.lexer import Lexer
from pygments.lexers import TextLexer, get_lexer_by_name
from pygments.util import ClassNotFound

from app.lessons.assets import asset_url
from app.lessons.sanitize import sanitize_plugin

ADMONITION_KINDS = ("note", "tip", "warning")
HIGHLIGHT_CLASS = "highlight"
# `02-images.md#tags` in a lesson: works on GitHub, and is served as /lessons/images#tags.
LESSON_FILE_LINK = re.compile(r"^(?P<number>\d\d)-(?P<slug>[a-z0-9-]+)\.md(?P<anchor>#.*)?$")
# `[open the site](preview:8080)` or `(preview:8080/admin)`: the attendee's port preview.
PREVIEW_LINK = re.compile(r"^preview:(?P<port>[1-9][0-9]{0,4})(?P<rest>[/?#].*)?$")
# `yaml{2,5-6}` or `yaml {2,5-6}`: the language, then the lines to mark (Killercoda, VitePress).
_FENCE_OPTIONS = re.compile(r"^(?P<lang>[^{\s]*)(?:\{(?P<options>[^}]*)\})?$")
_LINE_RANGE = re.compile(r"^\s*(\d+)\s*(?:-\s*(\d+))?\s*$")
MAX_MARKED_LINE = 10_000


@dataclass(frozen=True)
class FenceInfo:
    """What a code fence's info string asks for: `bash run interrupt` -> bash, runnable, Ctrl-C;
    `yaml{2,5}` -> yaml with lines 2 and 5 marked."""

    lang: str
    runnable: bool
    interrupt: bool
    marked_lines: tuple[int, ...] = ()

    @classmethod
    def parse(cls, info: str) -> FenceInfo:
        words = info.split()
        if len(words) > 1 and words[1].startswith("{"):  # `yaml {2,5}`: one word, as `yaml{2,5}`
            words[:2] = [words[0] + words[1]]
        lang, marked = _language_and_lines(words[0] if words else "")
        runnable = len(words) > 1 and words[1] == "run"
        interrupt = runnable and "interrupt" in words[2:]
        return cls(lang=lang, runnable=runnable, interrupt=interrupt, marked_lines=marked)


def _language_and_lines(word: str) -> tuple[str, tuple[int, ...]]:
    """`yaml{2,5-6}` -> ("yaml", (2, 5, 6)); options that are not line numbers are dropped,
    never kept in the language (it becomes a class name)."""
    match = _FENCE_OPTIONS.match(word)
    if match is None:
        return re.split(r"[{\s]", word, maxsplit=1)[0], ()
    lines: set[int] = set()
    for part in (match["options"] or "").split(","):
        if found := _LINE_RANGE.match(part):
            first = int(found[1])
            last = min(int(found[2] or first), first + MAX_MARKED_LINE)
            lines.update(range(first, last + 1))
    return match["lang"], tuple(sorted(line for line in lines if 0 < line <= MAX_MARKED_LINE))


@cache
def parser() -> MarkdownIt:
    md = MarkdownIt("commonmark", {"html": True}).enable(["table", "strikethrough"])
    md.use(front_matter_plugin)
    for kind in ADMONITION_KINDS:
        md.use(container_plugin, kind, render=_render_admonition)
    md.use(anchors_plugin, min_level=1, max_level=6, permalink=True)
    md.core.ruler.push("lesson_links", _rewrite_links)
    md.add_render_rule("fence", _render_fence)
    md.add_render_rule("code_block", _render_fence)
    # Last: it renders Markdown nested in raw HTML early, so every other rule must be done.
    md.use(sanitize_plugin)
    return md


def pygments_css(style: str = "default") -> str:
    """The stylesheet for highlighted code (class-based: `.highlight .k { ... }`)."""
    return str(HtmlFormatter(style=style).get_style_defs(f".{HIGHLIGHT_CLASS}"))


def _render_admonition(
    self: object, tokens: Sequence[Token], idx: int, options: OptionsDict, env: EnvType
) -> str:
    token = tokens[idx]
    if token.nesting == -1:
        return "</aside>\n"
    kind, _, title = token.info.strip().partition(" ")
    title = title.strip() or kind.capitalize()
    return f'<aside class="admonition {kind}">\n<p class="admonition-title">{escape(title)}</p>\n'


def _lexer(lang: str) -> Lexer:
    try:
        return get_lexer_by_name(lang) if lang else TextLexer()
    except ClassNotFound:
        return TextLexer()


def _render_fence(
    self: object, tokens: Sequence[Token], idx: int, options: OptionsDict, env: EnvType
) -> str:
    token = tokens[idx]
    fence = FenceInfo.parse(token.info)
    formatter = HtmlFormatter(nowrap=True, hl_lines=list(fence.marked_lines))
    code = highlight(token.content, _lexer(fence.lang), formatter)
    lang_class = f' class="language-{escape(fence.lang)}"' if fence.lang else ""
    pre = f'<pre class="{HIGHLIGHT_CLASS}"><code{lang_class}>{code}</code></pre>'
    copy_button = '<button type="button" class="copy">Copy</button>'
    if not fence.runnable:
        return f'<div class="code-block">{copy_button}{pre}</div>\n'
    command = escape(token.content.rstrip("\n"))
    interrupt = "true" if fence.interrupt else "false"
    run_button = (
        f'<button type="button" class="run" data-command="{command}" '
        f'data-interrupt="{interrupt}">Run</button>'
    )
    mode = "interrupt" if fence.interrupt else "run"
    return f'<div class="code-block" data-run="{mode}">{run_button}{copy_button}{pre}</div>\n'


def _rewrite_links(state: StateCore) -> None:
    """Serve links to lesson files and assets at their URL; open other sites in a new tab."""
    for token in state.tokens:
        for child in token.children or []:
            if child.type == "image":
                src = str(child.attrGet("src") or "")
                child.meta["source_href"] = src
                child.attrSet("src", asset_url(src) or src)
            if child.type != "link_open":
                continue
            href = str(child.attrGet("href") or "")
            child.meta["source_href"] = href
            if url := asset_url(href):
                child.attrSet("href", url)
                child.attrSet("target", "_blank")  # a file opened here would lose the terminal
            elif match := LESSON_FILE_LINK.match(href):
                child.attrSet("href", f"/lessons/{match['slug']}{match['anchor'] or ''}")
            elif match := PREVIEW_LINK.match(href):
                rest = match["rest"] or "/"
                child.attrSet(
                    "href", f"/preview/{match['port']}{'' if rest[0] == '/' else '/'}{rest}"
                )
                child.attrSet("target", "_blank")
                child.attrSet("rel", "noopener")
            elif href.startswith(("http://", "https://")):
                # The terminal lives in this page; following a link must not lose it.
                child.attrSet("target", "_blank")
                child.attrSet("rel", "noopener noreferrer")
