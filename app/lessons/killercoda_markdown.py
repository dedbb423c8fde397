"""Rewrite Killercoda's Markdown markers into LabDeck's, and write YAML the way authors do.

Killercoda puts its markers after the closing fence (```{{exec}}), which CommonMark does not
accept as a closing fence at all, so a Markdown parser cannot see these blocks; a small
line scanner that knows Killercoda's rule is the honest tool here.
"""

from __future__ import annotations

import re
from typing import Any

import yaml

_OPENING_FENCE = re.compile(r"^(?P<indent> {0,3})(?P<fence>`{3,}|~{3,})(?P<info>[^`]*)$")
_CLOSING_FENCE = re.compile(
    r"^ {0,3}(?P<fence>`{3,}|~{3,})\s*(?:\{\{\s*(?P<marker>[^}]*?)\s*\}\})?\s*$"
)
_INLINE_MARKER = re.compile(r"`(?P<code>[^`\n]+)`\{\{\s*(?P<marker>(?:exec|execute|copy)[^}]*)\}\}")
_SHELL_LANGS = {"", "plain", "shell", "sh", "bash", "console"}


def convert_markers(markdown: str) -> str:
    """Killercoda Markdown with {{exec}}/{{copy}} markers -> LabDeck Markdown."""
    output: list[str] = []
    lines = markdown.splitlines()
    index = 0
    while index < len(lines):
        opening = _OPENING_FENCE.match(lines[index])
        if opening is None:
            output.extend(_convert_inline(lines[index]))
            index += 1
            continue
        index = _convert_fence(lines, index, opening, output)
    return "\n".join(output) + "\n"


def _convert_fence(lines: list[str], start: int, opening: re.Match[str], output: list[str]) -> int:
    """Copy the fence opened at `start` to `output`, its info rewritten; returns the next index."""
    fence = opening["fence"]
    for end in range(start + 1, len(lines)):
        closing = _CLOSING_FENCE.match(lines[end])
        if closing and closing["fence"][0] == fence[0] and len(closing["fence"]) >= len(fence):
            info = _info(opening["info"].strip(), closing["marker"])
            output.append(f"{opening['indent']}{fence}{info}")
            output.extend(lines[start + 1 : end])
            output.append(f"{opening['indent']}{fence}")
            return end + 1
    output.extend(lines[start:])  # never closed: leave it alone
    return len(lines)


def _info(info: str, marker: str | None) -> str:
    """The new info string: `bash run [interrupt]` for exec markers, the language otherwise."""
    lang = info.split()[0] if info else ""
    if marker is None:
        return info
    words = marker.split()
    if words and words[0] in ("exec", "execute"):
        lang = "bash" if lang in _SHELL_LANGS else lang
        return f"{lang} run interrupt" if "interrupt" in words else f"{lang} run"
    return "text" if lang == "plain" else lang


def _convert_inline(line: str) -> list[str]:
    """`cmd`{{exec}} alone on a line -> a runnable block; inside a sentence -> inline code."""
    alone = _INLINE_MARKER.fullmatch(line.strip())
    if alone and alone["marker"].split()[0] in ("exec", "execute"):
        indent = line[: len(line) - len(line.lstrip())]
        info = _info("bash", alone["marker"])
        return [f"{indent}```{info}", f"{indent}{alone['code']}", f"{indent}```"]
    return [_INLINE_MARKER.sub(lambda match: f"`{match['code']}`", line)]


def fence_for(content: str) -> str:
    """A backtick fence longer than any backtick run that starts a line of `content`."""
    runs = re.finditer(r"^[ \t]*(`+)", content, re.MULTILINE)
    longest = max((len(run[1]) for run in runs), default=0)
    return "`" * max(3, longest + 1)


class _AuthorDumper(yaml.SafeDumper):
    """Writes multi-line strings as `|` blocks and indents lists, as a person would."""

    def increase_indent(self, flow: bool = False, indentless: bool = False) -> None:
        super().increase_indent(flow, False)


def _represent_str(dumper: yaml.SafeDumper, value: str) -> yaml.ScalarNode:
    style = "|" if "\n" in value else None
    return dumper.represent_scalar("tag:yaml.org,2002:str", value, style=style)


_AuthorDumper.add_representer(str, _represent_str)


def yaml_text(data: Any) -> str:
    return str(yaml.dump(data, Dumper=_AuthorDumper, sort_keys=False, allow_unicode=True))
