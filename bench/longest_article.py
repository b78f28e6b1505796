"""Write tests/data/templates/longest.json: the longest title, text, URL and source found in the
shared article corpora (each from whichever article has the longest), so template tests render
the worst real case without reading the corpora.

    .venv/bin/python bench/longest_article.py [CORPORA_DIR]

CORPORA_DIR defaults to ../shared/corpora/articles relative to the repository root. The output
names, for each field, the article it came from.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
OUT = ROOT / "tests" / "data" / "templates" / "longest.json"
FIELDS = ("title", "text", "url", "source")


def longest(folder: Path) -> dict[str, Any]:
    best: dict[str, tuple[int, str, str]] = {f: (-1, "", "") for f in FIELDS}
    articles = 0
    for path in sorted(folder.glob("*.jsonl")):
        with path.open(encoding="utf-8") as fh:
            for line in fh:
                if not line.strip():
                    continue
                row = json.loads(line)
                articles += 1
                row.setdefault("source", row.get("domain"))
                for f in FIELDS:
                    value = row.get(f)
                    if isinstance(value, str) and len(value) > best[f][0]:
                        best[f] = (len(value), value, f"{path.name}:{row.get('id')}")
    if articles == 0:
        raise SystemExit(f"no articles in {folder}")
    out: dict[str, Any] = {f: best[f][1] for f in FIELDS}
    out["from"] = {f: best[f][2] for f in FIELDS}
    out["lengths"] = {f: best[f][0] for f in FIELDS}
    out["articles_scanned"] = articles
    return out


def main(argv: list[str]) -> int:
    folder = Path(argv[1]) if len(argv) > 1 else ROOT.parent / "shared" / "corpora" / "articles"
    if not folder.is_dir():
        print(f"no corpora at {folder}", file=sys.stderr)
        return 1
    data = longest(folder)
    OUT.parent.mkdir(parents=True, exist_ok=True)
    OUT.write_text(json.dumps(data, ensure_ascii=False, indent=1) + "\n", encoding="utf-8")
    print(f"{OUT.relative_to(ROOT)}: {data['lengths']} from {data['articles_scanned']} articles")
    return 0


if __name__ == "__main__":
    import argparse

    p = argparse.ArgumentParser(description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("folder", nargs="?", help="the corpora's articles (default: "
                   "../shared/corpora/articles)")
    folder = p.parse_args().folder
    sys.exit(main([sys.argv[0], *([folder] if folder else [])]))
