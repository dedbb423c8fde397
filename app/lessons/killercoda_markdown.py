"""Rewrite one Killercoda (or Katacoda) page's Markdown into LabDeck's, and write YAML as authors do.

Killercoda puts its markers after the closing fence (```{{exec}}), which CommonMark does not
accept as a closing fence at all, so a Markdown parser cannot see these blocks; a small
line scanner that knows Killercoda's rules is the honest tool here. What it rewrites:

* exec markers (``{{exec}}``, ``{{execute}}``, with ``interrupt``, ``T2``, ``HOST1``) after a
  fence or an inline code span (`` `x` ``, ```` ```x``` ````): a runnable block when alone on
  its line, inline code inside a sentence; every such command is kept, in order, for the
  task's solution. ``{{copy}}``, ``{{open}}`` and the empty ``{{}}``: plain code;
* fence options (```` ```yaml{2,5,6} ````): the language is kept, the lines stay marked;
  ``plain`` becomes ``text``, ``cmd`` becomes ``bash``;
* ``{{TRAFFIC_HOST1_<port>}}`` (and Katacoda's ``[[HOST_SUBDOMAIN]]-<port>-...`` address):
  the attendee's port preview (``preview:<port>``) in links, HTML and text; inside code, which
  runs in the sandbox, ``http://localhost:<port>``;
* images beside the page (``![x](diagram.png)``): copied into the workshop's ``assets/``;
* a ``<details>`` left open: closed at the page's end (else nh3 closes it at once, and the
  solution inside shows in the open under an empty "Solution").
"""

from __future__ import annotations

import posixpath
import re
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, NamedTuple

import yaml

from app.lessons.schema import ASSETS_DIR

_OPENING_FENCE = re.compile(r"^(?P<indent> {0,3})(?P<fence>`{3,}|~{3,})(?P<info>[^`]*)$")
_CLOSING_FENCE = re.compile(
    r"^ {0,3}(?P<fence>`{3,}|~{3,})\s*(?:\{\{\s*(?P<marker>[^{}]*?)\s*\}\})?\s*$"
)
_MARKER = re.compile(r"\{\{\s*(?P<marker>[^{}]*?)\s*\}\}")
# `code`{{marker}} or ```code```{{marker}}; a single backtick's code holds no backtick.
_INLINE_MARKER = re.compile(
    r"(?:```(?P<long>.+?)```|`(?P<short>[^`\n]+)`)\{\{\s*(?P<marker>[^{}]*?)\s*\}\}"
)
_CODE_SPAN = re.compile(r"(`+)(.+?)\1")
_TRAFFIC = re.compile(
    r"(?:\{\{\s*TRAFFIC_HOST1_(?P<port>\d{1,5})\s*\}\}"
    r"|https?://\[\[HOST_SUBDOMAIN\]\]-(?P<katacoda>\d{1,5})-\[\[KATACODA_HOST\]\]"
    r"\.environments\.katacoda\.com)"
    r"(?P<path>/[^\s)\"'<>\]`]*)?"
)
_OTHER_HOST_TRAFFIC = re.compile(r"\{\{\s*TRAFFIC_HOST(?!1_)\w*\s*\}\}")
_TRAFFIC_SELECTOR = re.compile(r"\{\{\s*TRAFFIC_SELECTOR\s*\}\}")
_HOST_IP = re.compile(r"\[\[HOST_IP\]\]")
_IMAGE = re.compile(r"(?P<head>!\[[^\]]*\]\(\s*)(?P<src>[^)\s]+)")
_IMG_TAG = re.compile(r"(?P<head><img\b[^>]*?\bsrc\s*=\s*[\"'])(?P<src>[^\"']+)", re.IGNORECASE)
_DETAILS_OPEN = re.compile(r"<details\b", re.IGNORECASE)
_DETAILS_CLOSE = re.compile(r"</details\s*>", re.IGNORECASE)
_URL_SCHEME = re.compile(r"^[a-zA-Z][a-zA-Z0-9+.-]*:")
_SHELL_LANGS = {"", "plain", "shell", "sh", "bash", "console", "cmd", "terminal"}
_RENAMED_LANGS = {"plain": "text", "cmd": "bash", "terminal": "bash"}
_SECOND_HOST = re.compile(r"^host0*[2-9]\d*$")


class Command(NamedTuple):
    """What an exec marker runs; ``interrupts``: Ctrl-C first (the command before runs on)."""

    text: str
    interrupts: bool = False


@dataclass
class ConvertedPage:
    """A page in LabDeck's Markdown, with what the importer needs besides the text."""

    text: str = ""
    commands: list[Command] = field(default_factory=list)  # its exec markers', in order
    notes: list[str] = field(default_factory=list)  # for the import report, one line each
    images: dict[str, str] = field(default_factory=dict)  # scenario path -> path in the workshop


def convert_page(markdown: str, page_dir: str = "") -> ConvertedPage:
    """One page's Markdown; ``page_dir`` is the folder of its file inside the scenario."""
    return _Converter(page_dir).convert(markdown)


def convert_markers(markdown: str) -> str:
    """Killercoda Markdown with {{exec}}/{{copy}} markers -> LabDeck Markdown."""
    return convert_page(markdown).text


class _Converter:
    def __init__(self, page_dir: str) -> None:
        self.page_dir = page_dir
        self.page = ConvertedPage()
        self.open_details = 0

    def convert(self, markdown: str) -> ConvertedPage:
        output: list[str] = []
        lines = markdown.splitlines()
        index = 0
        while index < len(lines):
            opening = _OPENING_FENCE.match(lines[index])
            if opening is None:
                output.extend(self._line(lines[index]))
                index += 1
                continue
            index = self._fence(lines, index, opening, output)
        output.extend(self._close_details())
        self.page.text = "\n".join(output) + "\n"
        return self.page

    def _fence(
        self, lines: list[str], start: int, opening: re.Match[str], output: list[str]
    ) -> int:
        """Copy the fence opened at `start` to `output`, its info rewritten; the next index."""
        fence = opening["fence"]
        for end in range(start + 1, len(lines)):
            closing = _CLOSING_FENCE.match(lines[end])
            if closing and closing["fence"][0] == fence[0] and len(closing["fence"]) >= len(fence):
                info, marker = _split_marker(opening["info"].strip(), closing["marker"])
                body = [_traffic_in_code(line) for line in lines[start + 1 : end]]
                new_info = self._info(info, marker, "\n".join(body))
                output.append(f"{opening['indent']}{fence}{new_info}")
                output.extend(body)
                output.append(f"{opening['indent']}{fence}")
                return end + 1
        output.extend(lines[start:])  # never closed: leave it alone
        return len(lines)

    def _info(self, info: str, marker: str | None, code: str) -> str:
        """`bash run [interrupt]` for exec markers, the language (with its options) otherwise."""
        word = info.split()[0] if info else ""
        lang, options = _lang_and_options(word)
        kind = self._marker(marker, code) if marker is not None else "plain"
        if kind.startswith("exec"):
            lang = "bash" if lang in _SHELL_LANGS else lang
            return f"{lang}{options} run" + (" interrupt" if kind == "exec interrupt" else "")
        return f"{_RENAMED_LANGS.get(lang, lang)}{options}"

    def _marker(self, marker: str | None, code: str) -> str:
        """'exec', 'exec interrupt' or 'plain'; an exec's command is kept for the solution."""
        words = (marker or "").lower().split()
        if not words or words[0] in ("copy", "open"):
            return "plain"
        if words[0] not in ("exec", "execute"):
            self.page.notes.append(f"marker {{{{{marker}}}}} is not known; shown as plain code")
            return "plain"
        if hosts := [word for word in words[1:] if _SECOND_HOST.match(word)]:
            self.page.notes.append(
                f"`{_first_line(code)}` runs on {hosts[0].upper()} in Killercoda; a LabDeck "
                "sandbox is one host, so it runs there"
            )
        self.page.commands.append(Command(code.rstrip("\n") + "\n", "interrupt" in words))
        return "exec interrupt" if "interrupt" in words else "exec"

    def _line(self, line: str) -> list[str]:
        """A line outside fences: inline markers, traffic addresses, images, <details>."""
        alone = _INLINE_MARKER.fullmatch(line.strip())
        if alone is not None and alone["marker"].lower().startswith("exec"):
            code = _traffic_in_code(alone["long"] or alone["short"])
            kind = self._marker(alone["marker"], code)
            indent = line[: len(line) - len(line.lstrip())]
            info = "bash run" + (" interrupt" if kind == "exec interrupt" else "")
            return [f"{indent}```{info}", f"{indent}{code}", f"{indent}```"]
        line = _INLINE_MARKER.sub(self._inline_code, line)
        line = _outside_code(line, self._text)
        line = _inside_code(line, _traffic_in_code)
        self._count_details(line)
        return [line]

    def _inline_code(self, found: re.Match[str]) -> str:
        code = _traffic_in_code(found["long"] or found["short"])
        self._marker(found["marker"], code)
        ticks = "``" if "`" in code else "`"
        return f"{ticks}{code}{ticks}"

    def _text(self, text: str) -> str:
        text = _IMAGE.sub(self._image, text)
        text = _IMG_TAG.sub(self._image, text)
        text = re.sub(r"(\]\(\s*)" + _TRAFFIC.pattern, _preview_link, text)
        text = re.sub(r"((?:href|src)\s*=\s*[\"'])" + _TRAFFIC.pattern, _preview_url, text)
        text = _TRAFFIC.sub(_preview_text, text)
        text = _HOST_IP.sub("localhost", text)
        if _TRAFFIC_SELECTOR.search(text):
            self.page.notes.append("{{TRAFFIC_SELECTOR}}: the ports are listed under the terminal")
            text = _TRAFFIC_SELECTOR.sub("the Ports list under the terminal", text)
        if found := _OTHER_HOST_TRAFFIC.search(text):
            self.page.notes.append(f"{found[0]}: a second host's port; a sandbox has one host")
        return text

    def _image(self, found: re.Match[str]) -> str:
        """An image of the scenario: from its assets/, or beside the page (copied there)."""
        src = found["src"]
        if src.startswith(("/", "#")) or _URL_SCHEME.match(src) or "{{" in src:
            return found[0]
        path = posixpath.normpath(posixpath.join(self.page_dir, src.split("?")[0]))
        if path.startswith("../") or path == "..":
            self.page.notes.append(f"image {src} is outside the scenario folder; not copied")
            return found[0]
        target = path if path.startswith(ASSETS_DIR + "/") else f"{ASSETS_DIR}/{path}"
        if target != path:
            self.page.images[path] = target
        return f"{found['head']}{target}"

    def _count_details(self, line: str) -> None:
        self.open_details += len(_DETAILS_OPEN.findall(line))
        self.open_details = max(0, self.open_details - len(_DETAILS_CLOSE.findall(line)))

    def _close_details(self) -> list[str]:
        if not self.open_details:
            return []
        self.page.notes.append(
            f"{self.open_details} <details> not closed in the source; closed at the page's end"
        )
        return ["", *["</details>"] * self.open_details]


def _split_marker(info: str, closing_marker: str | None) -> tuple[str, str | None]:
    """An opening ```bash{{exec}} says what a closing ```{{exec}} would."""
    found = _MARKER.search(info)
    if found is None:
        return info, closing_marker
    return (info[: found.start()] + info[found.end() :]).strip(), closing_marker or found["marker"]


def _lang_and_options(word: str) -> tuple[str, str]:
    """`yaml{2,5,6}` -> ("yaml", "{2,5,6}"): the options stay data, never part of the name."""
    lang, brace, rest = word.partition("{")
    return lang, f"{brace}{rest}" if brace else ""


def _first_line(code: str) -> str:
    return code.strip().splitlines()[0] if code.strip() else ""


def _outside_code(line: str, change: Callable[[str], str]) -> str:
    """``change`` applied to the parts of ``line`` that are not inline code."""
    parts, last = [], 0
    for span in _CODE_SPAN.finditer(line):
        parts += [change(line[last : span.start()]), span[0]]
        last = span.end()
    return "".join([*parts, change(line[last:])])


def _inside_code(line: str, change: Callable[[str], str]) -> str:
    return _CODE_SPAN.sub(lambda span: span[1] + change(span[2]) + span[1], line)


def _port_and_path(found: re.Match[str]) -> tuple[str, str]:
    return found["port"] or found["katacoda"], found["path"] or ""


def _traffic_in_code(code: str) -> str:
    """Code runs in the sandbox, where the port is on localhost."""
    return _HOST_IP.sub("localhost", _TRAFFIC.sub(_localhost, code))


def _localhost(found: re.Match[str]) -> str:
    port, path = _port_and_path(found)
    return f"http://localhost:{port}{path}"


def _preview_link(found: re.Match[str]) -> str:
    port, path = _port_and_path(found)
    return f"{found[1]}preview:{port}{path}"


def _preview_url(found: re.Match[str]) -> str:
    port, path = _port_and_path(found)
    return f"{found[1]}/preview/{port}{path or '/'}"


def _preview_text(found: re.Match[str]) -> str:
    port, path = _port_and_path(found)
    return f"[port {port} of your sandbox{' (' + path + ')' if path else ''}](preview:{port}{path})"


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
