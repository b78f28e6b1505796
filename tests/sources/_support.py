"""Helpers for the feed tests: paths, seed articles, and feed documents built from them."""

from __future__ import annotations

import json
import re
import socket
from dataclasses import dataclass
from datetime import UTC, datetime
from email.utils import format_datetime
from pathlib import Path
from xml.sax.saxutils import escape

import pytest
from aiohttp.abc import AbstractResolver, ResolveResult

from tests.conftest import SEEDS
from watchers.sources._http import Timeouts

REPO = Path(__file__).resolve().parents[2]
CORPORA = REPO.parent / "shared" / "corpora"
DATA = REPO / "tests" / "data"
LOOPBACK = ["127.0.0.1/32"]
FAST = Timeouts(total=2.0, connect=1.0, read=0.5)

_DATE = re.compile(r"^\s*date\s+(\d{4}-\d{2}-\d{2})\s+")


@dataclass(frozen=True)
class Seed:
    """One seed article: ``slug`` is the file stem, used for guids and links."""

    slug: str
    title: str
    text: str
    published: datetime | None


def _title(text: str) -> str:
    first = text.strip().split("\n", 1)[0].strip()
    match = re.match(r"(.{20,200}?[.!?])(\s|$)", first)
    return match.group(1) if match else first[:120].strip()


def load_seeds() -> list[Seed]:
    seeds = []
    for path in sorted(SEEDS.glob("*.txt")):
        raw = path.read_text(encoding="utf-8")
        match = _DATE.match(raw)
        published = None
        if match:
            published = datetime.fromisoformat(match.group(1)).replace(hour=12, tzinfo=UTC)
            raw = raw[match.end() :]
        text = raw.strip()
        seeds.append(Seed(path.stem, _title(text), text, published))
    return seeds


def rss_doc(seeds: list[Seed], *, title: str = "Seeds") -> bytes:
    items = []
    for s in seeds:
        date = f"<pubDate>{format_datetime(s.published)}</pubDate>" if s.published else ""
        paragraphs = "".join(f"<p>{escape(p)}</p>" for p in s.text.split("\n") if p.strip())
        items.append(
            f"<item><title>{escape(s.title)}</title><link>/articles/{s.slug}</link>"
            f'<guid isPermaLink="false">{s.slug}</guid>{date}'
            f"<description>{escape(paragraphs)}</description></item>"
        )
    return (
        '<?xml version="1.0" encoding="utf-8"?>\n<rss version="2.0"><channel>'
        f"<title>{escape(title)}</title><link>http://127.0.0.1/</link>"
        f"<description>seed articles</description>{''.join(items)}</channel></rss>"
    ).encode()


def atom_doc(seeds: list[Seed], *, title: str = "Seeds") -> bytes:
    entries = []
    for s in seeds:
        date = f"<updated>{s.published.isoformat()}</updated>" if s.published else ""
        entries.append(
            f"<entry><title>{escape(s.title)}</title>"
            f'<link rel="alternate" href="articles/{s.slug}"/>'
            f"<id>urn:seed:{s.slug}</id>{date}"
            f'<content type="text">{escape(s.text)}</content></entry>'
        )
    return (
        '<?xml version="1.0" encoding="utf-8"?>\n'
        '<feed xmlns="http://www.w3.org/2005/Atom" xml:base="/atom/">'
        f"<title>{escape(title)}</title><id>urn:seeds</id>"
        f"<updated>2022-01-25T00:00:00Z</updated>{''.join(entries)}</feed>"
    ).encode()


def json_doc(seeds: list[Seed], *, title: str = "Seeds") -> bytes:
    items = []
    for s in seeds:
        item: dict[str, str] = {
            "id": s.slug,
            "url": f"/json/{s.slug}",
            "title": s.title,
            "content_text": s.text,
        }
        if s.published:
            item["date_published"] = s.published.isoformat()
        items.append(item)
    doc = {"version": "https://jsonfeed.org/version/1.1", "title": title, "items": items}
    return json.dumps(doc).encode()


def corpora_or_skip() -> Path:
    if not (CORPORA / "feeds" / "index.json").is_file():
        pytest.skip(f"shared corpora not found at {CORPORA}; these tests need ../shared/corpora")
    return CORPORA


class FakeResolver(AbstractResolver):
    """Answers from a table, so tests exercise DNS without touching real DNS."""

    def __init__(self, table: dict[str, list[str]]) -> None:
        self.table = table
        self.asked: list[str] = []

    async def resolve(
        self, host: str, port: int = 0, family: socket.AddressFamily = socket.AF_INET
    ) -> list[ResolveResult]:
        self.asked.append(host)
        if host not in self.table:
            raise OSError(f"unknown test host {host}")
        return [
            {
                "hostname": host,
                "host": ip,
                "port": port,
                "family": socket.AF_INET6 if ":" in ip else socket.AF_INET,
                "proto": 0,
                "flags": socket.AI_NUMERICHOST,
            }
            for ip in self.table[host]
        ]

    async def close(self) -> None:
        pass
