"""Compare feed parsers on the shared corpus: speed, and how many real feeds each reads correctly.

    .venv/bin/python bench/feed_parsers.py [--corpus ../shared/corpora] [--repeat 3] [--list]

"Correct" for one file means all of:

* the parser returns without raising, and
* its entry count equals the expected count: the ``items=N`` flag in ``feeds/index.json``
  (for JSON Feeds, which have no such flag, the length of the ``items`` array), and
* for each expected item in document order that has a non-empty title in the source, the parsed
  entry's title is non-empty; likewise for links (RSS ``<link>``, Atom ``<link href>``, JSON
  ``url``/``external_url``), where the parsed link must also be absolute http(s).
  What the source has per item is read with lxml in recover mode (no entities, no network);
  where lxml cannot see the items (badly broken XML), only the count is compared.

Files with no expected items (``html-not-a-feed``, ``other``) are scored separately: correct means
the parser yields no entries (or raises). Timing is the best of ``--repeat`` passes over every
file; items/s counts the entries each parser returned.
"""

from __future__ import annotations

import argparse
import importlib.util
import io
import json
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

BASE_URL = "https://feeds.example/feed.xml"
NO_FEED_FORMATS = {"html-not-a-feed", "other"}


@dataclass
class Truth:
    count: int | None
    titles: list[bool] | None = None
    links: list[bool] | None = None


@dataclass
class Entry:
    title: str
    link: str


@dataclass
class Score:
    name: str
    seconds: float = 0.0
    items: int = 0
    raised: int = 0
    real_ok: int = 0
    real_total: int = 0
    synth_ok: int = 0
    synth_total: int = 0
    nofeed_ok: int = 0
    nofeed_total: int = 0
    failures: list[str] = field(default_factory=list)


def _local(tag: Any) -> str:
    return tag.rsplit("}", 1)[-1].lower() if isinstance(tag, str) else ""


def _source_truth(body: bytes, meta: dict[str, Any]) -> Truth:
    flags = meta.get("flags", [])
    count = next((int(f.split("=", 1)[1]) for f in flags if f.startswith("items=")), None)
    if meta["format"].startswith("json"):
        try:
            doc = json.loads(body.decode("utf-8-sig"))
        except ValueError:
            return Truth(count)
        items = doc.get("items") if isinstance(doc, dict) else None
        if not isinstance(items, list):
            return Truth(count if count is not None else 0)
        items = [i for i in items if isinstance(i, dict)]
        return Truth(
            len(items),
            [bool(str(i.get("title") or "").strip()) for i in items],
            [bool(i.get("url") or i.get("external_url")) for i in items],
        )
    if count is None:
        return Truth(None)
    try:
        from lxml import etree  # type: ignore[import-untyped]

        parser = etree.XMLParser(
            recover=True, resolve_entities=False, no_network=True, huge_tree=False
        )
        root = etree.fromstring(body, parser)
    except Exception:
        return Truth(count)
    if root is None:
        return Truth(count)
    items = [el for el in root.iter() if _local(el.tag) in ("item", "entry")]
    if len(items) != count:
        return Truth(count)
    titles, links = [], []
    for item in items:
        children = [c for c in item if isinstance(c.tag, str)]
        title = next((c for c in children if _local(c.tag) == "title"), None)
        titles.append(title is not None and bool("".join(title.itertext()).strip()))
        has_link = False
        for c in children:
            if _local(c.tag) == "link":
                href = c.get("href")
                if (href and c.get("rel", "alternate") == "alternate") or (c.text or "").strip():
                    has_link = True
        links.append(has_link)
    return Truth(count, titles, links)


def _absolute(link: str) -> bool:
    parts = urlsplit(link)
    return parts.scheme in ("http", "https") and bool(parts.netloc)


def _correct(entries: list[Entry], truth: Truth) -> str | None:
    """None when correct, else a short reason."""
    if truth.count is None:
        return "no expected count"
    if len(entries) != truth.count:
        return f"{len(entries)} entries, expected {truth.count}"
    for i, entry in enumerate(entries):
        if truth.titles and truth.titles[i] and not entry.title.strip():
            return f"entry {i}: title missing"
        if truth.links and truth.links[i] and not (entry.link and _absolute(entry.link)):
            return f"entry {i}: link missing or relative ({entry.link!r})"
    return None


# ---------------------------------------------------------------------------------------------


def run_feedparser(body: bytes) -> list[Entry]:
    import feedparser  # type: ignore[import-untyped]

    d = feedparser.parse(io.BytesIO(body), response_headers={"content-location": BASE_URL})
    return [Entry(str(e.get("title") or ""), str(e.get("link") or "")) for e in d.entries]


def run_fastfeedparser(body: bytes) -> list[Entry]:
    import fastfeedparser  # type: ignore[import-untyped, import-not-found, unused-ignore]

    d = fastfeedparser.parse(body)
    return [Entry(str(e.get("title") or ""), str(e.get("link") or "")) for e in d["entries"]]


def run_newswatch(body: bytes) -> list[Entry]:
    from watchers.errors import SourceError
    from watchers.sources._feedparse import parse_feed

    try:
        feed = parse_feed(body, url=BASE_URL, content_type=None)
    except SourceError:
        return []
    return [Entry(e.title, e.url or "") for e in feed.entries]


PARSERS: dict[str, Callable[[bytes], list[Entry]]] = {
    "feedparser 6.0": run_feedparser,
    "fastfeedparser": run_fastfeedparser,
    "newswatch parse_feed (feedparser + JSON Feed)": run_newswatch,
}
# Parsers that are no dependency of newswatch: measured where installed, else left out and
# said so (run without it, every file "raised" and the row read as a parser that fails).
OPTIONAL = {"fastfeedparser": "fastfeedparser"}


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    ap.add_argument("--corpus", type=Path, default=REPO.parent / "shared" / "corpora")
    ap.add_argument("--repeat", type=int, default=3)
    ap.add_argument("--list", action="store_true", help="list each parser's incorrect files")
    args = ap.parse_args(argv)
    index_path = args.corpus / "feeds" / "index.json"
    if not index_path.is_file():
        print(f"corpus not found: {index_path}", file=sys.stderr)
        return 2
    index = json.loads(index_path.read_text())
    docs = [(m, (args.corpus / m["file"]).read_bytes()) for m in index]
    truths = [_source_truth(body, m) for m, body in docs]
    total_mb = sum(len(b) for _, b in docs) / 1e6

    scores = []
    left_out = [name for name, module in OPTIONAL.items()
                if importlib.util.find_spec(module) is None]
    for name, run in PARSERS.items():
        if name in left_out:
            continue
        score = Score(name)
        best = float("inf")
        for rep in range(max(1, args.repeat)):
            started = time.perf_counter()
            outputs: list[list[Entry] | None] = []
            for _, body in docs:
                try:
                    outputs.append(run(body))
                except Exception:
                    outputs.append(None)
            best = min(best, time.perf_counter() - started)
            if rep == 0:
                first = outputs
        score.seconds = best
        for (meta, _), truth, out in zip(docs, truths, first, strict=True):
            score.items += len(out or [])
            score.raised += out is None
            if meta["format"] in NO_FEED_FORMATS:
                score.nofeed_total += 1
                score.nofeed_ok += not out
                continue
            if truth.count is None:
                continue
            reason = "raised" if out is None else _correct(out, truth)
            if meta["kind"] == "real":
                score.real_total += 1
                score.real_ok += reason is None
            else:
                score.synth_total += 1
                score.synth_ok += reason is None
            if reason is not None:
                score.failures.append(f"{meta['file']}: {reason}")
        scores.append(score)

    print(f"corpus: {len(docs)} files, {total_mb:.1f} MB; best of {args.repeat} passes\n")
    for name in left_out:
        print(f"{name}: not installed, left out (pip install {OPTIONAL[name]})\n")
    header = (
        "| parser | real feeds correct | synthetic correct | non-feeds refused | raised |"
        " entries | seconds | entries/s | MB/s |"
    )
    print(header)
    print("|---" * (header.count("|") - 1) + "|")
    for s in scores:
        print(
            f"| {s.name} | {s.real_ok}/{s.real_total} | {s.synth_ok}/{s.synth_total} "
            f"| {s.nofeed_ok}/{s.nofeed_total} | {s.raised} | {s.items} | {s.seconds:.2f} "
            f"| {s.items / s.seconds:,.0f} | {total_mb / s.seconds:.1f} |"
        )
    if args.list:
        for s in scores:
            print(f"\n## {s.name}: {len(s.failures)} incorrect")
            for line in s.failures:
                print(f"  {line}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
