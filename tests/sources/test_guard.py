"""SSRF guard: check_url, the resolver, the connector's peer check, redirects, the allowlist."""

from __future__ import annotations

import ipaddress
import re

import pytest

from tests.fakes.feed_server import Canary, FeedServer, Route
from tests.sources._support import FAST, LOOPBACK, FakeResolver, Seed, rss_doc
from watchers.errors import FetchBlockedError, SourceError
from watchers.sources._guard import blocked_reason, check_url, parse_networks
from watchers.sources._http import Fetcher
from watchers.sources.feed import FeedSource

# Every spelling of a loopback, private or metadata address a URL parser or resolver accepts.
BLOCKED_HOSTS = [
    "127.0.0.1",
    "127.0.0.53",
    "127.1",
    "2130706433",
    "0x7f000001",
    "0x7f.0.0.1",
    "0177.0.0.1",
    "017700000001",
    "[::1]",
    "[::ffff:127.0.0.1]",
    "[::ffff:7f00:1]",
    "[0:0:0:0:0:ffff:127.0.0.1]",
    "0.0.0.0",
    "0",
    "[::]",
    "10.0.0.1",
    "172.16.5.4",
    "192.168.1.1",
    "100.64.0.1",
    "169.254.169.254",
    "169.254.1.1",
    "[fe80::1]",
    "[fec0::1]",  # site-local (deprecated, internal where still used): Python passed it
    "[feff::1]",
    "[fc00::1]",
    "[fd00:ec2::254]",
    "[::ffff:169.254.169.254]",
    "[::ffff:10.0.0.1]",
    "[64:ff9b::7f00:1]",
    "[2002:7f00:1::]",
    "224.0.0.1",
    "239.255.255.250",
    "[ff02::1]",
    "240.0.0.1",
    "255.255.255.255",
    "192.0.2.1",
    "198.18.0.1",
    "localhost",
    "LOCALHOST.",
    "foo.localhost",
]


def test_localhost_is_the_loopback_once_the_loopback_is_allowed() -> None:
    """`allow_private = ["127.0.0.0/8"]` opened 127.0.0.1 and still refused "localhost", with
    a message that did not say how to allow it. Allowed as its addresses are (each address a
    fetch connects to is checked as every peer is); refused, the message says how."""
    for allowed in (["127.0.0.0/8"], ["127.0.0.1/32"], ["::1/128"]):
        check_url("http://localhost:8080/feed", allowed)
        check_url("http://news.localhost/feed", allowed)
    with pytest.raises(FetchBlockedError, match=re.escape(
            "host 'localhost' is the local machine (allow it with [fetch] allow_private = "
            '["127.0.0.0/8", "::1/128"])')):
        check_url("http://localhost/feed", ["10.0.0.0/8"])


async def test_a_feed_at_localhost_is_fetched_once_the_loopback_is_allowed(
        server: FeedServer, fetcher: Fetcher) -> None:
    """The name was refused, then never resolved (a reserved name): it is the loopback's,
    answered without a query, and only its allowed addresses."""
    server.set("/feed", Route(body=rss_doc([Seed("g1", "Troops move near the border",
                                                   "Troops moved.", None)])))
    feed = FeedSource("l", f"http://localhost:{server.port}/feed", fetcher=fetcher,
                      allow_private=LOOPBACK)
    poll = await feed.poll({})
    assert [a.title for a in poll.articles] == ["Troops move near the border"]


@pytest.mark.parametrize("host", BLOCKED_HOSTS)
def test_check_url_refuses_every_notation(host: str) -> None:
    with pytest.raises(FetchBlockedError, match="refused URL"):
        check_url(f"http://{host}/feed")
    with pytest.raises(FetchBlockedError):
        check_url(f"https://{host}:8443/feed")


@pytest.mark.parametrize(
    ("url", "reason"),
    [
        ("file:///etc/passwd", "scheme"),
        ("gopher://example.com/", "scheme"),
        ("ftp://example.com/feed", "scheme"),
        ("feed://example.com/rss", "scheme"),
        ("//example.com/rss", "scheme"),
        ("http://user@example.com/feed", "credentials"),
        ("http://user:pw@example.com/feed", "credentials"),
        ("http://example.com@127.0.0.1/feed", "credentials"),
        ("http://example.com\\@127.0.0.1/", "backslash"),
        ("http:\\\\127.0.0.1\\feed", "backslash"),
        ("http://exa mple.com/", "whitespace"),
        ("http://example.com/\r\nHost: x", "control"),
        ("http:///feed", "no host"),
        ("http://example.com:0/", "port 0"),
        ("http://example.com:99999/", "refused URL"),
        ("", "empty"),
        ("https://ex\u202eample.org/feed", "direction-changing"),  # shows as another address
        ("https://example.org/\u2066feed", "direction-changing"),
        ("https://exa\u200bmple.org/feed", "invisible"),  # zero-width space
        ("https://example.org/\u00a0feed", "spacing"),  # no-break space
        ("https://example.org/\u2028", "refused URL"),  # line separator
        # Names the resolver's IDNA encoding refuses: each poll failed as an unexpected error.
        ("https://" + "a" * 300 + ".com/feed", "no DNS name"),  # a label over 63
        ("https://a..b.example/feed", "no DNS name"),  # an empty label
        ("https://.example.com/", "no DNS name"),
        ("https://" + "abcdefghi." * 26 + "com/", "longer than a DNS name"),  # 263 in all
    ],
)
def test_check_url_refuses_bad_shapes(url: str, reason: str) -> None:
    with pytest.raises(FetchBlockedError, match=reason):
        check_url(url)


@pytest.mark.parametrize(
    "url",
    [
        "https://example.com/feed.xml",
        "http://93.184.216.34/rss",
        "https://[2606:2800:220:1:248:1893:25c8:1946]/atom",
        "HTTPS://Example.COM:8443/x?y=1#z",
        "http://1e100.example/",
        "http://cafe.example/",
        "https://café.example/actualités?q=kyiv",  # letters of any script are fine
        "https://пример.испытание/лента",
        "https://example.com./feed",  # the root's dot
        "https://" + "a" * 63 + ".example/",  # the longest label
    ],
)
def test_check_url_lets_public_urls_through(url: str) -> None:
    check_url(url)


def test_the_allowlist_lets_named_networks_through() -> None:
    check_url("http://127.0.0.1:8080/feed", LOOPBACK)
    check_url("http://10.1.2.3/feed", ["10.0.0.0/8"])
    check_url("http://[::ffff:10.1.2.3]/feed", ["10.0.0.0/8"])
    with pytest.raises(FetchBlockedError):
        check_url("http://10.1.2.3/feed", ["192.168.0.0/16"])
    with pytest.raises(ValueError):
        parse_networks(["not a network"])


def test_blocked_reason_names_the_range() -> None:
    assert blocked_reason(ipaddress.ip_address("169.254.169.254")) == "a cloud metadata address"
    assert blocked_reason(ipaddress.ip_address("100.64.1.1")) == "a shared (CGNAT) address"
    reason = blocked_reason(ipaddress.ip_address("::ffff:127.0.0.1"))
    assert reason is not None and "loopback" in reason
    assert blocked_reason(ipaddress.ip_address("93.184.216.34")) is None


@pytest.mark.usefixtures("client_path")
async def test_a_name_that_resolves_to_loopback_is_never_dialled(canary: Canary) -> None:
    # DNS rebinding: the name looks public, the answer is the canary on 127.0.0.1.
    resolver = FakeResolver({"feeds.example": ["127.0.0.1"], "mixed.example": ["::1", "10.0.0.8"]})
    async with Fetcher(resolver=resolver, timeouts=FAST) as fetcher:
        with pytest.raises(
            FetchBlockedError, match=re.escape("resolves only to 127.0.0.1 is a loopback")
        ):
            await fetcher.get(f"http://feeds.example:{canary.port}/feed")
        with pytest.raises(FetchBlockedError, match="resolves only to"):
            await fetcher.get(f"http://mixed.example:{canary.port}/feed")
    assert resolver.asked == ["feeds.example", "mixed.example"]
    assert canary.connections == 0


@pytest.mark.parametrize("host", ["feeds.example", "news.invalid", "a.test", "wire.EXAMPLE."])
@pytest.mark.usefixtures("client_path")
async def test_reserved_names_never_reach_dns(host: str) -> None:
    # RFC 2606/6761 names resolve nowhere public: the real resolver is never asked, and the
    # failure says why.
    async with Fetcher(timeouts=FAST) as fetcher:
        with pytest.raises(SourceError, match=re.escape(f"{host.lower()} is a reserved name")):
            await fetcher.get(f"http://{host}/feed")


async def test_legacy_notations_are_refused_by_the_connector_too(canary: Canary) -> None:
    # Skip check_url (as a caller with its own session might) and go straight to the connector.
    async with Fetcher(timeouts=FAST) as fetcher:
        session = fetcher._get_session()
        for host in ("127.1", "0x7f000001", "2130706433", "0177.0.0.1", "127.0.0.1", "[::1]"):
            url = f"http://{host}:{canary.port}/feed"
            with pytest.raises(Exception) as info:
                async with session.get(url):
                    pass
            assert isinstance(info.value, FetchBlockedError | ValueError | OSError), info.value
    assert canary.connections == 0


async def test_the_allowlist_applies_per_source(
    server: FeedServer, fetcher: Fetcher, seeds: list[Seed]
) -> None:
    server.set("/feed", Route(body=rss_doc(seeds[:1])))
    allowed = FeedSource("intranet", server.url("/feed"), fetcher=fetcher, allow_private=LOOPBACK)
    assert len((await allowed.poll({})).articles) == 1
    # Same fetcher, same host, no allowlist: refused, even with a pooled connection at hand.
    with pytest.raises(FetchBlockedError):
        await fetcher.get(server.url("/feed"))
    # The connector refuses it as well when check_url is bypassed.
    session = fetcher._get_session()
    with pytest.raises(
        FetchBlockedError, match=re.escape("refused connection: 127.0.0.1 is a loopback")
    ):
        async with session.get(server.url("/feed")):
            pass
    assert len(server.hits("/feed")) == 1


async def test_a_redirect_to_a_blocked_address_is_refused(
    server: FeedServer, fetcher: Fetcher, canary: Canary
) -> None:
    # The server is allowed by address; the canary is reached through other spellings that the
    # allowlist (127.0.0.1/32 only) does not cover.
    targets = [
        f"http://127.0.0.2:{canary.port}/x",
        f"http://2130706433:{canary.port}/x",
        f"http://[::ffff:127.0.0.2]:{canary.port}/x",
        f"http://169.254.169.254:{canary.port}/latest/meta-data/",
        f"http://user@127.0.0.1:{canary.port}/x",
        "file:///etc/passwd",
        f"gopher://127.0.0.1:{canary.port}/x",
    ]
    for i, target in enumerate(targets):
        server.set(f"/r{i}", Route(status=302, location=target))
        feed = FeedSource("r", server.url(f"/r{i}"), fetcher=fetcher, allow_private=LOOPBACK)
        # named as the feed's redirect: it said only "refused URL: 169.254.169.254 is a cloud
        # metadata address", not which feed nor that a redirect led there
        with pytest.raises(FetchBlockedError, match=re.escape(
                f"{server.url(f'/r{i}')}: redirect (302) to {target} refused: ")):
            await feed.poll({})
    assert canary.connections == 0


@pytest.mark.parametrize(("target", "reason"), [
    ("http://169.254.169.254/latest/meta-data/iam",
     "169.254.169.254 is a cloud metadata address"),
    ("http://10.1.2.3/feed", "10.1.2.3 is a private address"),
    ("http://192.168.0.7/feed", "192.168.0.7 is a private address"),
])
async def test_a_refused_redirect_names_the_feed_the_redirect_and_why(
        server: FeedServer, fetcher: Fetcher, target: str, reason: str) -> None:
    server.set("/moved", Route(status=301, location="/moved2"))
    server.set("/moved2", Route(status=307, location=target))
    with pytest.raises(FetchBlockedError) as caught:
        await fetcher.get(server.url("/moved"), allow_private=LOOPBACK)
    assert str(caught.value) == f"{server.url('/moved')}: redirect (307) to {target} refused: " \
        f"{reason}"


@pytest.mark.usefixtures("client_path")
async def test_redirect_hops_through_a_name_are_resolved_and_checked(
    server: FeedServer, canary: Canary
) -> None:
    resolver = FakeResolver({"evil.example": ["127.0.0.2"]})
    server.set("/r", Route(status=307, location=f"http://evil.example:{canary.port}/x"))
    async with Fetcher(resolver=resolver, timeouts=FAST) as fetcher:
        with pytest.raises(FetchBlockedError, match=re.escape(
                f"{server.url('/r')}: redirect (307) to http://evil.example:{canary.port}/x "
                "refused: ")) as caught:
            await fetcher.get(server.url("/r"), allow_private=LOOPBACK)
        assert "127.0.0.2 is a loopback" in str(caught.value)
    assert canary.connections == 0
