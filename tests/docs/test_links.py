"""Relative links in README.md and docs/*.md lead somewhere: the file exists and, for a
``#anchor``, the Markdown file has a heading (GitHub's rule: lowercase, spaces to ``-``,
punctuation but ``-`` and ``_`` dropped, repeats numbered ``-1``, ``-2``) or an ``<a id>`` of
that name. Plain file reading: no network, no rendering."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]

FENCE = re.compile(r"^ {0,3}(`{3,}|~{3,})")
CODE_SPAN = re.compile(r"(`+)(?!`)(.*?[^`])\1(?!`)", re.DOTALL)
INLINE_LINK = re.compile(r"\]\(\s*<?([^)\s>]*)>?(?:\s+\"[^\"]*\")?\s*\)")
REF_DEF = re.compile(r"^ {0,3}\[[^\]]+\]:\s*<?(\S+?)>?(?:\s|$)", re.MULTILINE)
HEADING = re.compile(r"^ {0,3}(#{1,6})\s+(.*?)\s*#*\s*$")
HTML_ANCHOR = re.compile(r"<a\s+(?:[^>]*\s)?(?:id|name)=\"([^\"]+)\"", re.IGNORECASE)
SCHEME = re.compile(r"^[a-zA-Z][a-zA-Z0-9+.-]*:")


def markdown_files(root: Path = REPO) -> list[Path]:
    return [root / "README.md", *sorted((root / "docs").glob("*.md"))]


def unfenced(text: str) -> str:
    """The text with fenced code blocks blanked (line count kept)."""
    lines, fence = [], None
    for line in text.split("\n"):
        m = FENCE.match(line)
        if fence is None and m:
            fence = m.group(1)[0] * len(m.group(1))
            lines.append("")
        elif fence is not None:
            if line.strip().startswith(fence):
                fence = None
            lines.append("")
        else:
            lines.append(line)
    return "\n".join(lines)


def prose(text: str) -> str:
    """The text with fenced code blocks and code spans blanked (line count kept)."""
    return CODE_SPAN.sub(lambda m: "\n" * m.group(0).count("\n"), unfenced(text))


def slug(heading: str) -> str:
    """GitHub's anchor for a heading's text."""
    text = re.sub(r"!?\[([^\]]*)\]\([^)]*\)", r"\1", heading)  # a link counts by its text
    text = re.sub(r"<[^>]+>", "", text).replace("`", "").replace("*", "")
    text = re.sub(r"[^\w\- ]", "", text.strip().lower())
    return text.replace(" ", "-")


def anchors(path: Path) -> set[str]:
    text = path.read_text(encoding="utf-8")
    found: set[str] = set()
    seen: dict[str, int] = {}
    for line in unfenced(text).split("\n"):
        m = HEADING.match(line)
        if m:
            base = slug(m.group(2))
            n = seen.get(base, 0)
            seen[base] = n + 1
            found.add(base if n == 0 else f"{base}-{n}")
    found.update(HTML_ANCHOR.findall(prose(text)))  # <a id="…"> before a bold run-in paragraph
    return found


def links(path: Path) -> list[tuple[int, str]]:
    """(line number, target) of every inline link, image and link definition."""
    body = prose(path.read_text(encoding="utf-8"))
    matches = [m for pattern in (INLINE_LINK, REF_DEF) for m in pattern.finditer(body)]
    found = sorted((m.start(1), m.group(1)) for m in matches)
    return [(body.count("\n", 0, start) + 1, target) for start, target in found]


def broken_links(files: list[Path]) -> list[str]:
    problems = []
    cache: dict[Path, set[str]] = {}
    root = files[0].parent
    for path in files:
        for line, target in links(path):
            if not target or SCHEME.match(target) or target.startswith("//"):
                continue
            file_part, _, fragment = target.partition("#")
            dest = (path.parent / file_part).resolve() if file_part else path.resolve()
            where = f"{path.relative_to(root)}:{line}"
            if not dest.exists():
                problems.append(f"{where}: {target}: no such file")
                continue
            if fragment and dest.suffix == ".md":
                if dest not in cache:
                    cache[dest] = anchors(dest)
                if fragment not in cache[dest]:
                    problems.append(f"{where}: {target}: no anchor #{fragment} in {dest.name}")
    return problems


def test_readme_and_docs_links_resolve() -> None:
    files = markdown_files()
    assert len(files) > 1, "docs/*.md not found"
    problems = broken_links(files)
    assert not problems, "broken links:\n" + "\n".join(problems)


def test_every_docs_file_is_in_the_readme_index() -> None:
    targets = {t.partition("#")[0] for _, t in links(REPO / "README.md")}
    missing = [p.name for p in markdown_files()[1:] if f"docs/{p.name}" not in targets]
    assert not missing, f"docs files the README's Documentation index does not link: {missing}"


@pytest.mark.parametrize(
    ("heading", "anchor"),
    [
        ("Quiet channels: digests, quiet hours, caps and surges",
         "quiet-channels-digests-quiet-hours-caps-and-surges"),
        ("PostgreSQL and several processes", "postgresql-and-several-processes"),
        ("`newswatch run` and the_store (v2)", "newswatch-run-and-the_store-v2"),
        ("Lookups over 1,000,000 articles", "lookups-over-1000000-articles"),
    ],
)
def test_slug_follows_github(heading: str, anchor: str) -> None:
    assert slug(heading) == anchor


def test_a_broken_link_is_found(tmp_path: Path) -> None:
    (tmp_path / "docs").mkdir()
    (tmp_path / "README.md").write_text(
        "# Top\n\n## Two words\n\n[ok](#two-words) [ok](docs/a.md#x-y) [ok](docs/a.md)\n"
        "[bad](#nowhere) [bad](docs/missing.md) [bad](docs/a.md#two-words)\n"
        "`[not a link](#in-code)`\n\n```\n[not a link](#in-a-fence)\n```\n"
        "[ok](https://example.com/#anything)\n"
    )
    (tmp_path / "docs" / "a.md").write_text(
        "# A\n\n<a id=\"x-y\"></a>\n[back](../README.md#top)\n"
        "[bad, over two\nlines](../README.md#gone)\n"
    )
    problems = broken_links(markdown_files(tmp_path))
    assert [p.split(": ", 1)[1] for p in problems] == [
        "#nowhere: no anchor #nowhere in README.md",
        "docs/missing.md: no such file",
        "docs/a.md#two-words: no anchor #two-words in a.md",
        "../README.md#gone: no anchor #gone in README.md",
    ]
