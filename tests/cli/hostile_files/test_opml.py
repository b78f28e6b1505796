"""`newswatch sources import` with an OPML file that declares a multi-byte encoding (refused
in one line), and with URL variants of a config feed (skipped, as the engine compares
feeds)."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.cli.hostile_files._run import no_traceback, nw

pytestmark = pytest.mark.timeout(120)


def _opml(body: bytes, encoding: str) -> bytes:
    return (f'<?xml version="1.0" encoding="{encoding}"?>'.encode("ascii")
            + b'<opml version="2.0"><head><title>t</title></head><body>' + body
            + b"</body></opml>")


@pytest.mark.parametrize("encoding", ["Shift_JIS", "EUC-KR", "GB2312", "Big5", "EUC-JP"])
def test_opml_declaring_a_multibyte_encoding_is_refused_cleanly(tmp_path: Path,
                                                                 encoding: str) -> None:
    """A feed reader's export in a legacy Asian encoding (even one whose bytes are plain ASCII)
    crashes the import with `ValueError: multi-byte encodings are not supported` from expat,
    exit 1 and a traceback, instead of importing it or exiting 2 with one line."""
    cfg = tmp_path / "c.toml"
    cfg.write_text('[storage]\npath = "o.db"\n')
    f = tmp_path / "feeds.opml"
    f.write_bytes(_opml(b'<outline title="news" xmlUrl="https://jp.example/rss"/>', encoding))
    r = nw(["sources", "import", str(f), "-c", str(cfg)], cwd=tmp_path)
    no_traceback(r)
    assert r.rc in (0, 2), r.text
    assert r.err.strip().splitlines()[-1].startswith("newswatch:"), r.err


def test_opml_import_skips_url_variants_of_a_config_feed(tmp_path: Path) -> None:
    """The engine treats http/https, a trailing slash and tracking parameters as the same
    feed (engine._same_feed; docs/discord.md: "A server cannot follow the operator's feed ...
    under a variant of its URL"), but `sources import` from the CLI adds each variant as a new
    source, so one feed is fetched several times."""
    cfg = tmp_path / "c.toml"
    cfg.write_text('[storage]\npath = "o.db"\n\n[[sources]]\nname = "bbc-world"\ntype = "feed"\n'
                   'url = "https://feeds.bbci.co.uk/news/world/rss.xml"\n')
    f = tmp_path / "dup.opml"
    f.write_text(
        '<?xml version="1.0"?><opml version="2.0"><body>'
        '<outline title="BBC http" xmlUrl="http://feeds.bbci.co.uk/news/world/rss.xml"/>'
        '<outline title="BBC slash" xmlUrl="https://feeds.bbci.co.uk/news/world/rss.xml/"/>'
        '<outline title="BBC utm" '
        'xmlUrl="https://feeds.bbci.co.uk/news/world/rss.xml?utm_source=reader"/>'
        '</body></opml>')
    r = nw(["sources", "import", str(f), "-c", str(cfg)], cwd=tmp_path)
    no_traceback(r)
    added = [line for line in r.out.splitlines() if line.startswith("added")]
    assert not added, f"variants of the config's feed were added as new sources:\n{r.out}"
