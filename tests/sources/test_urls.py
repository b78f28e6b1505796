"""normalise_link: equal stories compare equal, different ones do not."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from watchers.urls import _normalise, normalise_link


@pytest.mark.parametrize(
    ("a", "b"),
    [
        ("HTTPS://Example.COM/a", "https://example.com/a"),
        ("https://example.com:443/a", "https://example.com/a"),
        ("http://example.com:80/a", "http://example.com/a"),
        ("https://example.com/a#comments", "https://example.com/a"),
        ("https://example.com/a/", "https://example.com/a"),
        ("https://example.com", "https://example.com/"),
        ("https://example.com/a?b=2&a=1", "https://example.com/a?a=1&b=2"),
        ("https://example.com/a?utm_source=rss&utm_medium=feed", "https://example.com/a"),
        ("https://example.com/a?id=7&fbclid=xyz&gclid=1", "https://example.com/a?id=7"),
        ("https://example.com/a?mc_cid=1&mc_eid=2&ref=rss&cmpid=x", "https://example.com/a"),
        ("https://example.com/a?UTM_Campaign=x", "https://example.com/a"),
        ("https://example.com/caf%c3%a9", "https://example.com/café"),
        ("https://example.com/a%7Eb", "https://example.com/a~b"),
        ("https://example.com/a?q=a+b", "https://example.com/a?q=a%20b"),
        ("https://user:pw@example.com/a", "https://example.com/a"),
        ("https://example.com./a", "https://example.com/a"),
        ("https://bücher.example/a", "https://xn--bcher-kva.example/a"),
        ("  https://example.com/a  ", "https://example.com/a"),
    ],
)
def test_equivalent_links_normalise_equal(a: str, b: str) -> None:
    assert normalise_link(a) == normalise_link(b)


@pytest.mark.parametrize(
    ("a", "b"),
    [
        ("https://example.com/a", "http://example.com/a"),
        ("https://example.com:8443/a", "https://example.com/a"),
        ("https://example.com/a?id=1", "https://example.com/a?id=2"),
        ("https://example.com/A", "https://example.com/a"),
        ("https://example.com/a?q=a%2Bb", "https://example.com/a?q=a%20b"),
        ("https://example.com/a?x=1&x=2", "https://example.com/a?x=1"),
    ],
)
def test_different_links_stay_different(a: str, b: str) -> None:
    assert normalise_link(a) != normalise_link(b)


def test_the_canonical_form() -> None:
    got = normalise_link("HTTPS://News.Example.com:443/World/Story/?utm_source=x&b=2&a=1#top")
    assert got == "https://news.example.com/World/Story?a=1&b=2"
    assert normalise_link(got) == got  # idempotent


@pytest.mark.parametrize("raw", ["not a url", "/relative/path", "mailto:someone@example.com", ""])
def test_non_urls_come_back_stripped(raw: str) -> None:
    assert normalise_link(f" {raw} ") == raw


def test_ipv6_hosts_keep_their_brackets() -> None:
    assert normalise_link("http://[2001:DB8::1]:80/x/") == "http://[2001:db8::1]/x"


# The short way for links already in normal form must return what the general path returns.
_URL_PARTS = st.sampled_from([*"abcXYZ019-._~:@!$&'()*+,;=%/?#", "//", "%41", "%2F", "..", "é",
                              " ", "A"])


@settings(max_examples=600, deadline=None)
@given(scheme=st.sampled_from(["http", "https", "HTTP", "ftp"]),
       host=st.sampled_from(["example.org", "Example.org", "ex-ample.org.", "a", "1.2.3.4",
                             "ex.org:443", "ex.org:8080", "u@ex.org", "[::1]", "xn--e-ufa.de"]),
       path=st.lists(_URL_PARTS, max_size=12).map("".join))
def test_a_link_in_normal_form_takes_the_short_way_to_the_same_answer(
        scheme: str, host: str, path: str) -> None:
    url = f"{scheme}://{host}{'/' if path and not path.startswith('/') else ''}{path}"
    assert normalise_link(url) == _normalise(url.strip())


@pytest.mark.parametrize("url", [
    "https://" + "a" * 1_000_000 + ".org/x",             # a host a million letters long
    "https://" + "a-" * 500_000 + "!",                   # fails the short way at its last byte
    "https://ex.org" + "/seg" * 250_000,                 # a quarter of a million segments
    "https://ex.org" + "/seg" * 250_000 + "/",           # ... with a trailing slash
    "https://ex.org/a?" + "&".join(f"utm_{i}=x" for i in range(50_000)),
], ids=["long-host", "late-failure", "segments", "trailing-slash", "tracking-params"])
def test_links_a_thousand_times_larger_normalise_alike(url: str) -> None:
    """Far past any real link: both ways end (the per-test timeout catches one that would not)
    with the same answer."""
    assert normalise_link(url) == _normalise(url.strip())
