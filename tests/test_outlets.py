"""Which outlet a source's articles come from, as corroboration (``min_sources``) counts them:
the site of a URL (its host's registrable domain), a source's ``outlet`` setting, a folder's
name — and the config's word on an ``outlet`` it cannot take. Pure functions and the config
models; no network (hosts are never resolved)."""

from __future__ import annotations

from typing import Any

import pytest

from watchers.config import parse_config
from watchers.errors import ConfigError
from watchers.outlets import TWO_LEVEL, outlet_name, outlet_of, site, source_outlet
from watchers.sources.feed import FeedSourceConfig
from watchers.sources.folder import FolderSourceConfig
from watchers.sources.page import PageSourceConfig
from watchers.store._shared import OutletCount


@pytest.mark.parametrize(("url", "outlet"), [
    # one outlet's feeds and pages, on its subdomains
    ("https://feeds.bbci.co.uk/news/world/rss.xml", "bbci.co.uk"),
    ("https://feeds.bbci.co.uk/news/world/europe/rss.xml", "bbci.co.uk"),
    ("https://www.bbci.co.uk/news", "bbci.co.uk"),
    ("http://rss.cnn.com/rss/edition_world.rss", "cnn.com"),
    ("https://www.theguardian.com/world/rss", "theguardian.com"),
    ("https://theguardian.com/", "theguardian.com"),
    ("https://a.b.c.reuters.com/x", "reuters.com"),
    # two-level public suffixes
    ("https://www.abc.net.au/news/feed/51120/rss.xml", "abc.net.au"),
    ("https://www.smh.com.au/rss/feed.xml", "smh.com.au"),
    ("https://www3.nhk.or.jp/rss/news/cat0.xml", "nhk.or.jp"),
    ("https://www.asahi.co.jp/rss", "asahi.co.jp"),
    ("https://www.amnesty.org.uk/feed", "amnesty.org.uk"),
    ("https://www.ox.ac.uk/news/rss", "ox.ac.uk"),
    # (gov.uk is a suffix: each department's host under it is a publisher of its own)
    ("https://www.gov.uk/search/news-and-communications.atom", "www.gov.uk"),
    ("https://assets.publishing.service.gov.uk/feed", "service.gov.uk"),
    ("https://g1.globo.com.br/rss/g1/", "globo.com.br"),
    ("https://www.stuff.co.nz/rss", "stuff.co.nz"),
    ("https://co.uk/", "co.uk"),  # a suffix alone is what it is
    # a blog host's users are sites of their own
    ("https://alice.substack.com/feed", "alice.substack.com"),
    ("https://bob.substack.com/feed", "bob.substack.com"),
    ("https://x.y.blogspot.com/feeds/posts/default", "y.blogspot.com"),
    # case, trailing dots, ports, credentials, IDN
    ("HTTPS://FEEDS.BBCI.CO.UK/news/rss.xml", "bbci.co.uk"),
    ("https://feeds.bbci.co.uk./news/rss.xml", "bbci.co.uk"),
    ("https://www.bbci.co.uk:8443/news", "bbci.co.uk"),
    ("https://user:secret@feeds.bbci.co.uk/news", "bbci.co.uk"),
    ("  https://www.dw.com/rss  ", "dw.com"),
    ("https://nachrichten.bücher.de/feed", "xn--bcher-kva.de"),
    ("https://NACHRICHTEN.BÜCHER.DE/feed", "xn--bcher-kva.de"),
    ("https://www.xn--bcher-kva.de/feed", "xn--bcher-kva.de"),
    ("https://новости.пример.рф/rss", "xn--e1afmkfd.xn--p1ai"),
    ("https://www.bbc。co。uk/news", "bbc.co.uk"),  # ideographic full stops
    # a machine, not a site: each feed there is its own outlet, port and path included
    ("http://127.0.0.1:8001/feed", "127.0.0.1:8001/feed"),
    ("http://127.0.0.1:8002/feed", "127.0.0.1:8002/feed"),
    ("http://127.0.0.1:8001/other", "127.0.0.1:8001/other"),
    ("http://127.0.0.1:8001/feed/", "127.0.0.1:8001/feed"),
    ("http://127.0.0.1:80/feed", "127.0.0.1/feed"),
    ("https://127.0.0.1:443/feed", "127.0.0.1/feed"),
    ("http://127.0.0.1/feed?b=2&a=1&utm_source=x", "127.0.0.1/feed?a=1&b=2"),
    ("http://10.1.2.3:9000/rss", "10.1.2.3:9000/rss"),
    ("http://[::1]:9000/rss", "[::1]:9000/rss"),
    ("http://[0:0:0:0:0:0:0:1]:9000/rss", "[::1]:9000/rss"),
    ("http://[::ffff:127.0.0.1]:9000/rss", "127.0.0.1:9000/rss"),
    ("http://localhost:1200/bbc/news", "localhost:1200/bbc/news"),
    ("http://LOCALHOST.:1200/bbc/news", "localhost:1200/bbc/news"),
    ("http://feeds.localhost:1200/x", "feeds.localhost:1200/x"),
    ("http://intranet:8080/news.xml", "intranet:8080/news.xml"),
    ("http://2130706433/feed", "2130706433/feed"),
    # names of the special-use domains (mDNS, a home network, a private network) name
    # machines, as one-label names do: a bridge there serves many publishers' feeds
    ("http://rsshub.local:1200/reuters/world", "rsshub.local:1200/reuters/world"),
    ("http://RSSHub.Local./ap/topics", "rsshub.local/ap/topics"),
    ("http://bridge.home.arpa/?bridge=Bbc", "bridge.home.arpa/?bridge=Bbc"),
    ("http://feeds.corp.internal/dw", "feeds.corp.internal/dw"),
    ("http://nas.lan:8080/feed", "nas.lan:8080/feed"),
])
def test_a_urls_outlet_is_its_site(url: str, outlet: str) -> None:
    assert site(url) == outlet


def test_two_feeds_of_one_site_are_one_outlet_and_two_ports_two() -> None:
    assert site("https://feeds.bbci.co.uk/news/world/rss.xml") == site(
        "https://www.bbci.co.uk/news/world/europe/rss.xml")
    assert site("https://feeds.bbci.co.uk/a") != site("https://feeds.bbc.com/a")
    assert site("http://127.0.0.1:8001/feed") != site("http://127.0.0.1:8002/feed")
    assert site("http://127.0.0.1:8001/feed") != site("http://127.0.0.2:8001/feed")


def test_the_table_holds_the_usual_two_level_suffixes() -> None:
    assert {"co.uk", "com.au", "co.jp", "org.uk", "ac.uk", "gov.uk", "com.br"} <= TWO_LEVEL
    # a country's own second-level names are not suffixes unless listed
    assert "bbc.uk" not in TWO_LEVEL and "com.com" not in TWO_LEVEL


@pytest.mark.parametrize("url", ["http://[::1/feed", "https://host:99999/x", "https://:80/x",
                                 "https://exa mple.com/x"])
def test_a_url_it_cannot_read_is_an_outlet_of_its_own(url: str) -> None:
    assert site(url)  # never an error: a stored model may hold anything
    assert site(url) == site(url)


def test_a_sources_outlet_setting_wins_over_its_url_and_compares_without_case() -> None:
    world = FeedSourceConfig(type="feed", name="bbc-world", outlet="BBC",
                             url="https://feeds.bbci.co.uk/news/world/rss.xml")
    europe = FeedSourceConfig(type="feed", name="bbc-europe", outlet=" bbc ",
                              url="http://127.0.0.1:8001/europe")
    plain = FeedSourceConfig(type="feed", name="cnn", url="http://rss.cnn.com/rss/x.rss")
    page = PageSourceConfig(type="page", name="dw", url="https://www.dw.com/en/top-stories")
    folder = FolderSourceConfig(type="folder", name="Wire Desk", path="wire")
    named = FolderSourceConfig(type="folder", name="desk", path="desk", outlet="Reuters")
    assert source_outlet(world) == source_outlet(europe) == "bbc"
    assert source_outlet(plain) == "cnn.com"
    assert source_outlet(page) == "dw.com"
    assert source_outlet(folder) == "wire desk"
    assert source_outlet(named) == "reuters"
    assert outlet_name("  Deutsche   Welle ") == outlet_name("deutsche welle")
    # a stored model's values as JSON gives them, whatever another version wrote
    assert outlet_of("x", outlet=3, url="https://www.dw.com/rss") == "dw.com"
    assert outlet_of("x", outlet=None, url=None) == "x"


def test_an_outlets_name_compares_across_unicode_forms_and_as_the_site_it_names() -> None:
    # composed and decomposed accents, full-width letters: one name as typed on two systems
    assert outlet_name("Süddeutsche") == outlet_name("Su\u0308ddeutsche")
    assert outlet_name("ＢＢＣ") == outlet_name("BBC") == "bbc"
    assert outlet_name("Ｌｅ　Ｍｏｎｄｅ") == outlet_name("le monde")
    # an outlet written as a site joins that site's feeds, whichever form the host takes
    assert outlet_name("пример.рф") == site("https://пример.рф/rss") == "xn--e1afmkfd.xn--p1ai"
    assert outlet_name("BBCI.co.uk.") == site("https://feeds.bbci.co.uk/x") == "bbci.co.uk"
    assert outlet_name("bücher．de") == outlet_name("xn--bcher-kva.de")


def test_a_story_counts_its_sources_by_outlet() -> None:
    names = {"bbc-world": "bbci.co.uk", "bbc-europe": "bbci.co.uk", "dw": "dw.com"}
    assert OutletCount(["bbc-world", "bbc-europe"], names=names).on("alerts") == 1
    assert OutletCount(["bbc-world", "bbc-europe", "dw"], names=names).on("alerts") == 2
    # a source it was never told of is an outlet of its own (as every source was before)
    assert OutletCount(["bbc-world", "imported"], names=names).on("alerts") == 2
    assert OutletCount(["a", "b"]).on("alerts") == 2
    # a server's feeds count on its routes only, by their outlets
    feeds = {"1:news": {"@a": "bbci.co.uk", "@b": "npr.org"}}
    count = OutletCount(["bbc-world", "@a", "@b", "@c"], feeds, names)
    assert count.on("1:news") == 2  # bbc-world and @a are one outlet; @c is not followed
    assert count.on("alerts") == 1


def test_a_source_counts_as_the_outlet_it_reported_as() -> None:
    """The story keeps each source's outlet from when it reported: that counts, whatever the
    running config now names (a source renamed or removed since is known by none)."""
    stored = {"bbc-world": "bbci.co.uk", "bbc-europe": "bbci.co.uk"}
    now = {"bbc-world": "bbci.co.uk", "bbc-europe": "bbc-europe.example"}
    assert OutletCount(["bbc-world", "bbc-europe"]).on("alerts") == 2
    assert OutletCount(["bbc-world", "bbc-europe"], stored=stored).on("alerts") == 1
    assert OutletCount(["bbc-world", "bbc-europe"], names=now, stored=stored).on("alerts") == 1
    # a source the story holds none for (stored before outlets were kept) is counted by name
    assert OutletCount(["bbc-world", "dw", "dw-de"], names={"dw": "dw.com", "dw-de": "dw.com"},
                       stored=stored).on("alerts") == 2


def test_readers_without_a_route_count_the_feeds_they_see() -> None:
    names = {"bbc-world": "bbci.co.uk"}
    count = OutletCount(["bbc-world", "@a", "@b", "@c"], names=names)
    assert count.seen({"@a": "bbci.co.uk", "@b": "npr.org"}) == 2  # a server's readers
    assert count.seen({"@a": "bbci.co.uk", "@b": "npr.org"}, every=True) == 3  # + @c
    assert count.seen(None) == 1  # the config file's sources alone


def config_issues(source: dict[str, Any]) -> list[tuple[str, str]]:
    with pytest.raises(ConfigError) as err:
        parse_config({"channels": {"alerts": 1},
                      "sources": [{"name": "bbc", "type": "feed",
                                   "url": "https://feeds.bbci.co.uk/news/rss.xml", **source}],
                      "rules": [{"name": "troops", "query": "troops"}]})
    return [(i.path, i.message) for i in err.value.issues]


@pytest.mark.parametrize(("value", "says"), [
    ("", "an outlet may not be blank (leave the key out for the site of the source's URL)"),
    ("   ", "an outlet may not be blank (leave the key out for the site of the source's URL)"),
    ("BBC\nNews", "an outlet may not hold control, line-break or direction characters"),
    ("BBC\u202e", "an outlet may not hold control, line-break or direction characters"),
    ("x" * 65, "String should have at most 64 characters"),
    ("x" * 65_000, "String should have at most 64 characters"),
    (3, "expected a string, got the number 3"),
    (["BBC"], "expected a string"),
])
def test_an_outlet_it_cannot_take_is_named_with_its_key(value: object, says: str) -> None:
    ((path, message),) = config_issues({"outlet": value})
    assert path == "sources[0].outlet"
    assert message.startswith(says)
    assert len(message) < 500, len(message)  # the value is named, never echoed whole


def test_every_kind_of_source_takes_an_outlet() -> None:
    cfg = parse_config({
        "channels": {"alerts": 1},
        "sources": [
            {"name": "bbc", "type": "feed", "url": "https://feeds.bbci.co.uk/news/rss.xml",
             "outlet": "BBC"},
            {"name": "bbc-page", "type": "page", "url": "https://www.bbc.co.uk/news",
             "outlet": "BBC"},
            {"name": "wire", "type": "folder", "path": ".", "outlet": "Reuters"},
        ],
        "rules": [{"name": "troops", "query": "troops"}]})
    assert [s.outlet for s in cfg.sources] == ["BBC", "BBC", "Reuters"]
    assert [source_outlet(s) for s in cfg.sources] == ["bbc", "bbc", "reuters"]
