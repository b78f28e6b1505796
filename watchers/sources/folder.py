"""FolderSource: articles from .txt, .md and .json files in a local folder."""

from __future__ import annotations

import asyncio
import json
import logging
import re
from collections.abc import Mapping
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from watchers.errors import SourceError
from watchers.models import Article, content_fingerprint
from watchers.sources.base import Poll

__all__ = ["FolderSource", "read_article_file", "split_text_article"]

log = logging.getLogger(__name__)

SUFFIXES = (".txt", ".md", ".json")
TITLE_LIMIT = 160
_DATE_PREFIX = re.compile(r"^\s*date\s+(\d{4}-\d{2}-\d{2})(?:[T ][0-9:]+Z?)?\s+", re.IGNORECASE)
# A sentence ends at . ! ? (optionally followed by a closing quote) before whitespace.
_SENTENCE_END = re.compile(r"[.!?][\"'”’)]?(?=\s|$)")


def _cut(text: str, limit: int = TITLE_LIMIT) -> str:
    text = " ".join(text.split())
    if len(text) <= limit:
        return text
    cut = text.rfind(" ", 0, limit)
    return text[: cut if cut > limit // 2 else limit].rstrip(" ,;:-") + "…"


def split_text_article(raw: str) -> tuple[str, str, datetime | None]:
    """Apply the seeds convention to plain text: return (title, text, published).

    A leading ``date YYYY-MM-DD`` token is the publication date and not part of the text. A short
    first line without final punctuation is the title (and leaves the text); otherwise the title
    is the first sentence, cut at a word boundary, and the text keeps it.
    """
    published = None
    m = _DATE_PREFIX.match(raw)
    if m:
        try:
            published = datetime.strptime(m.group(1), "%Y-%m-%d").replace(tzinfo=UTC)
            raw = raw[m.end() :]
        except ValueError:
            pass
    raw = raw.strip()
    first, _, rest = raw.partition("\n")
    first = first.strip()
    if first and len(first) <= TITLE_LIMIT and not re.search(r"[.!?:;,]$", first) and rest.strip():
        return first.lstrip("# ").strip(), rest.strip(), published
    end = _SENTENCE_END.search(raw)
    sentence = raw[: end.end()] if end else first
    return _cut(sentence), raw, published


def _parse_date(value: Any) -> datetime | None:
    if not isinstance(value, str) or not value.strip():
        return None
    text = value.strip().replace("Z", "+00:00")
    try:
        dt = datetime.fromisoformat(text)
    except ValueError:
        return None
    return dt if dt.tzinfo else dt.replace(tzinfo=UTC)


def read_article_file(path: Path, *, source: str = "", guid: str | None = None) -> Article:
    """Read one .txt, .md or .json article file. Raises SourceError naming the file if unusable."""
    try:
        raw = path.read_bytes().decode("utf-8-sig")
    except UnicodeDecodeError:
        raw = path.read_bytes().decode("latin-1")
    except OSError as exc:
        raise SourceError(f"{path}: cannot read ({exc.strerror})") from None
    fetched = datetime.now(UTC)
    url = None
    if path.suffix.lower() == ".json":
        try:
            data = json.loads(raw)
        except json.JSONDecodeError as exc:
            raise SourceError(f"{path}: invalid JSON at line {exc.lineno}: {exc.msg}") from None
        if not isinstance(data, dict):
            raise SourceError(f"{path}: expected a JSON object with 'title' and 'text'")
        text = str(data.get("text") or data.get("content") or data.get("body") or "")
        title = str(data.get("title") or "").strip()
        published = _parse_date(data.get("published") or data.get("date"))
        if not title:
            title, text, fallback = split_text_article(text)
            published = published or fallback
        u = data.get("url") or data.get("link")
        url = u if isinstance(u, str) and re.match(r"(?i)^https?://", u) else None
    else:
        title, text, published = split_text_article(raw)
    if not title and not text:
        raise SourceError(f"{path}: empty article")
    return Article(
        source=source,
        guid=guid,
        url=url,
        title=title or path.stem,
        text=text,
        published=published,
        fetched_at=fetched,
    )


class FolderSource:
    """Polls a folder for new and changed article files (not recursive into hidden folders).

    The cursor remembers each file's size and mtime, so a poll reads only what changed. A changed
    file is a new version of the article: its guid includes the content fingerprint.
    """

    def __init__(self, name: str, path: Path) -> None:
        self.name = name
        self.path = path

    def _scan(self, cursor: Mapping[str, str]) -> Poll:
        if not self.path.is_dir():
            raise SourceError(f"folder {self.path} does not exist or is not a folder")
        seen: dict[str, str] = {}
        articles: list[Article] = []
        errors: list[str] = []
        for file in sorted(self.path.rglob("*")):
            rel = file.relative_to(self.path)
            if any(part.startswith(".") for part in rel.parts):
                continue
            if file.suffix.lower() not in SUFFIXES or not file.is_file():
                continue
            st = file.stat()
            key = rel.as_posix()
            stamp = f"{st.st_mtime_ns}:{st.st_size}"
            seen[key] = stamp
            if cursor.get(key) == stamp:
                continue
            try:
                art = read_article_file(file, source=self.name)
            except SourceError as exc:
                errors.append(str(exc))
                seen.pop(key)  # try again next poll
                continue
            guid = f"{key}#{content_fingerprint(art.title, art.text)[:16]}"
            # id derives from the guid, so it is rebuilt rather than copied.
            articles.append(Article(**{**art.model_dump(exclude={"id"}), "guid": guid}))
        if errors and not articles and not seen:
            raise SourceError("; ".join(errors))
        for message in errors:
            log.warning("source %s: skipped %s", self.name, message)
        return Poll(articles=articles, cursor=seen)

    async def poll(self, cursor: Mapping[str, str]) -> Poll:
        return await asyncio.to_thread(self._scan, dict(cursor))

    async def aclose(self) -> None:
        return None
