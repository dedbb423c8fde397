import os
import shutil
from pathlib import Path

import pytest

from app.lessons.loader import load_workshop
from app.lessons.markdown import FenceInfo
from app.lessons.render import (
    HtmlSegment,
    QuestionSegment,
    Segment,
    TaskSegment,
    pygments_css,
    render_lesson,
    render_markdown,
)
from app.lessons.schema import Lesson

VALID = Path(__file__).parent / "fixtures" / "valid"


@pytest.fixture
def lesson() -> Lesson:
    return load_workshop(VALID).lessons[0]


@pytest.fixture
def html(lesson: Lesson) -> str:
    return "".join(str(s.html) for s in render_lesson(lesson) if isinstance(s, HtmlSegment))


def test_segments_around_tasks_and_questions(lesson: Lesson) -> None:
    segments = render_lesson(lesson)
    assert [segment.kind for segment in segments] == ["html", "task", "question", "html"]
    assert isinstance(segments[1], TaskSegment) and segments[1].task.id == "run-greeter"
    assert isinstance(segments[2], QuestionSegment)
    assert "The end." in str(segments[3].html) if isinstance(segments[3], HtmlSegment) else False


def test_task_yaml_is_not_rendered(html: str) -> None:
    assert "run-greeter" not in html and "What does" not in html


def test_front_matter_is_not_rendered(html: str) -> None:
    assert "mkdir -p ~/hello" not in html and "minutes" not in html


def test_admonitions(html: str) -> None:
    assert '<aside class="admonition tip">\n<p class="admonition-title">Why this order?</p>' in html
    assert '<aside class="admonition note">\n<p class="admonition-title">Note</p>' in html


def test_table_and_strikethrough(html: str) -> None:
    assert "<table>" in html and "<th>command</th>" in html
    assert "<s>all</s>" in html


def test_heading_anchors_and_permalinks(html: str) -> None:
    assert '<h2 id="run-a-container">Run a container' in html
    assert '<a class="header-anchor" href="#run-a-container">¶</a>' in html


def test_run_button_with_escaped_command(html: str) -> None:
    command = (
        "docker run --name greeter busybox echo &#34;hello &lt;world&gt;&#34; "
        "&amp;&amp; echo &#39;done&#39;"
    )
    assert (
        '<div class="code-block" data-run="run"><button type="button" class="run" '
        f'data-command="{command}" data-interrupt="false">Run</button>'
        '<button type="button" class="copy">Copy</button><pre class="highlight">'
    ) in html


def test_run_interrupt_button(html: str) -> None:
    assert 'data-run="interrupt"' in html
    assert 'data-command="docker ps" data-interrupt="true">Run</button>' in html


def test_other_code_gets_only_copy(html: str) -> None:
    assert (
        '<div class="code-block"><button type="button" class="copy">Copy</button>'
        '<pre class="highlight"><code class="language-python">'
    ) in html


def test_server_side_highlighting(html: str) -> None:
    assert '<span class="nb">print</span>' in html
    assert "style=" not in html


def test_pygments_css_is_class_based() -> None:
    css = pygments_css()
    assert ".highlight .k " in css and ".highlight .nb " in css


def test_raw_html_keeps_its_structure(html: str) -> None:
    assert "<details>\n<summary>Why?</summary>\n<p>Because <strong>containers</strong>" in html
    assert html.count("</details>") == 1


def test_links_between_lessons(html: str) -> None:
    assert '<a href="/lessons/next-steps#clean-up">the next lesson</a>' in html
    assert '<a href="next-steps">relative</a>' in html


def test_external_links_open_a_new_tab(html: str) -> None:
    assert '<a href="https://docs.docker.com/" target="_blank" rel="noopener noreferrer">' in html


def test_render_markdown_for_task_text(lesson: Lesson) -> None:
    task = lesson.tasks[0]
    assert str(render_markdown(task.hints[0])) == "<p>Use <code>docker run --name</code>.</p>\n"
    assert 'class="copy"' in render_markdown(task.solution or "")
    assert '<a href="#run-a-container">above</a>' in render_markdown(task.instructions)


@pytest.mark.parametrize(
    ("markdown", "forbidden"),
    [
        ("<script>alert(1)</script>\n\nText", "<script"),
        ("Text <script>alert(1)</script> inline", "alert"),
        ('<img src="x.png" onerror="alert(1)">', "onerror"),
        ('Inline <img src="x.png" onerror="alert(1)"> image', "onerror"),
        ('<div onclick="steal()">\n\n**bold**\n\n</div>', "onclick"),
        ('<a href="javascript:alert(1)">block link</a>', "javascript:"),
        ('An <a href="javascript:alert(1)">inline link</a>.', "javascript:"),
        ("A [markdown link](javascript:alert(1)).", 'href="javascript:'),
        ("A [markdown link](JAVASCRIPT:alert(1)).", "href="),
        ('<iframe src="https://evil.example"></iframe>', "<iframe"),
        ("<style>body { display: none }</style>", "<style"),
    ],
)
def test_sanitizer_removes(markdown: str, forbidden: str) -> None:
    assert forbidden not in render_markdown(markdown)


def test_sanitizer_keeps_harmless_html() -> None:
    html = render_markdown('Press <kbd class="key">Ctrl</kbd>+<kbd onclick="x()">C</kbd>.')
    assert str(html) == '<p>Press <kbd class="key">Ctrl</kbd>+<kbd>C</kbd>.</p>\n'


def test_markdown_inside_raw_html_keeps_our_buttons() -> None:
    html = render_markdown("<details onclick='x()'>\n\n```bash run\nls\n```\n\n</details>")
    assert "onclick" not in html
    assert '<button type="button" class="run" data-command="ls"' in html


def test_renders_are_cached_per_file_and_text(tmp_path: Path) -> None:
    shutil.copytree(VALID, tmp_path / "valid")
    lesson = load_workshop(tmp_path / "valid").lessons[1]
    first = render_lesson(lesson)
    assert render_lesson(lesson) is first
    stat = lesson.path.stat()
    os.utime(lesson.path, ns=(stat.st_atime_ns, stat.st_mtime_ns + 1_000_000_000))
    assert render_lesson(lesson) is first  # touched, same text: the same render
    edited = lesson.model_copy(update={"body": lesson.body + "\nA new paragraph.\n"})
    assert "A new paragraph." in _html(render_lesson(edited))


def test_the_served_text_is_rendered_while_the_file_changes(tmp_path: Path) -> None:
    """Edited on disk but not reloaded yet (or not loadable): the page shows what is served,
    and the reloaded lesson its own text, though the file's time no longer changes."""
    shutil.copytree(VALID, tmp_path / "valid")
    served = load_workshop(tmp_path / "valid").lessons[1]
    assert "Back to" in _html(render_lesson(served))
    served.path.write_text(served.path.read_text().replace("Back to", "Return to"))
    assert "Return to" not in _html(render_lesson(served))
    reloaded = load_workshop(tmp_path / "valid").lessons[1]
    assert "Return to" in _html(render_lesson(reloaded))


def _html(segments: list[Segment]) -> str:
    return "".join(str(segment.html) for segment in segments if isinstance(segment, HtmlSegment))


def test_lesson_without_a_file_renders(lesson: Lesson) -> None:
    detached = lesson.model_copy(update={"path": Path("/nowhere/01-x.md"), "body": "# Hi\n"})
    [segment] = render_lesson(detached)
    assert isinstance(segment, HtmlSegment) and "<h1" in segment.html


@pytest.mark.parametrize(
    ("info", "lang", "marked"),
    [
        ("yaml{2,5,6}", "yaml", (2, 5, 6)),
        ("yaml {2-4}", "yaml", (2, 3, 4)),
        ("bash{1} run interrupt", "bash", (1,)),
        ("python{title=x}", "python", ()),
        ("{1}", "", (1,)),
    ],
)
def test_fence_options_mark_lines_and_never_join_the_language(
    info: str, lang: str, marked: tuple[int, ...]
) -> None:
    fence = FenceInfo.parse(info)
    assert (fence.lang, fence.marked_lines) == (lang, marked)


def test_marked_lines_are_highlighted_and_the_class_is_the_language() -> None:
    html = str(render_markdown("```yaml{2}\na: 1\nb: 2\n```\n"))
    assert 'class="language-yaml"' in html and "{" not in html.split("<code")[1].split(">")[0]
    assert html.count('<span class="hll">') == 1 and '<span class="hll"><span class="nt">b' in html


@pytest.mark.parametrize(
    ("markdown", "url"),
    [
        ("![a](assets/x.png)", '<img src="/workshop/assets/x.png"'),
        ("![a](./assets/sub/x.png?v=2)", '<img src="/workshop/assets/sub/x.png?v=2"'),
        ('<img src="assets/x.svg" width="3">', '<img src="/workshop/assets/x.svg" width="3">'),
        ("[get it](assets/app.py)", '<a href="/workshop/assets/app.py" target="_blank"'),
        ("![a](assets/../workshop.yaml)", '<img src="assets/../workshop.yaml"'),
        ("![a](https://example.org/x.png)", '<img src="https://example.org/x.png"'),
    ],
)
def test_files_of_the_assets_folder_load_from_the_workshop(markdown: str, url: str) -> None:
    assert url in str(render_markdown(markdown))
