"""Outlets: who reported a story, as corroboration counts them.

A story keeps the sources that reported it; a rule's ``min_sources`` counts the distinct
*outlets* among them, so that two feeds of one publisher (its world feed and its Europe feed)
do not corroborate each other. A source's outlet is:

- its ``outlet`` setting, when it has one (compared without regard to case, spacing or
  Unicode form; see :func:`outlet_name`);
- else, for a source with a URL (a feed, a JSON feed, a page, a feed a server follows), the
  site of the URL (:func:`site`): its host's registrable domain, so ``feeds.bbci.co.uk`` and
  ``www.bbci.co.uk`` are both ``bbci.co.uk`` — or, on a host that names a machine (an IP
  address, ``localhost``), the feed itself;
- else (a folder) its name, compared as ``outlet`` settings are.

Registrable domains are found with a small table (:data:`TWO_LEVEL`, :data:`HOSTED`) rather
than the whole public suffix list, which would have to be fetched and kept up to date: it
covers the second-level suffixes news sites live under and the blog hosts whose every
subdomain is its own site. A host the table misses is taken at its last two labels; a source
that comes out wrong says its ``outlet``.
"""

from __future__ import annotations

import ipaddress
import unicodedata
from encodings import idna
from typing import Final
from urllib.parse import urlsplit

from watchers.sources.base import SourceConfigBase
from watchers.urls import feed_url_key

__all__ = ["HOSTED", "TWO_LEVEL", "outlet_name", "outlet_of", "site", "source_outlet"]

# Country domains and the second-level labels under them that are public suffixes (one
# registers "bbc.co.uk", never "co.uk"): the ones newsrooms, universities and governments use.
_SECOND_LEVEL: Final[dict[str, str]] = {
    "uk": "co org ac gov ltd plc me net nhs police sch mod",
    "au": "com net org edu gov asn id",
    "nz": "co org net ac govt school geek gen maori",
    "jp": "co ne or ac go ed gr lg ad",
    "kr": "co or ne go ac re pe",
    "br": "com net org gov edu art blog jor leg mil",
    "ar": "com net org gob gov edu int mil",
    "mx": "com net org gob edu",
    "co": "com net org gov edu",
    "pe": "com net org gob edu",
    "za": "co org gov ac net web nom",
    "ng": "com net org gov edu",
    "ke": "co or ac go ne",
    "eg": "com net org gov edu",
    "in": "co net org gov ac edu res nic firm gen ind",
    "pk": "com net org gov edu",
    "cn": "com net org gov edu ac",
    "hk": "com net org gov edu idv",
    "tw": "com net org gov edu idv",
    "sg": "com net org gov edu per",
    "my": "com net org gov edu",
    "id": "co or ac go web net sch",
    "th": "co or ac go in net",
    "ph": "com net org gov edu",
    "vn": "com net org gov edu",
    "il": "co org ac gov net muni",
    "tr": "com net org gov edu gen web info biz tv av bel k12 pol",
    "ua": "com net org gov edu in",
    "ru": "com net org",
    "cy": "com net org gov ac",
    "gr": "com net org gov edu",
}
#: Two-level public suffixes (``co.uk``, ``com.au``, ``co.jp``, ``org.uk``, ``ac.uk``,
#: ``gov.uk``, ``com.br`` …): a host under one is registered at the label before it.
TWO_LEVEL: Final[frozenset[str]] = frozenset(
    f"{label}.{tld}" for tld, labels in _SECOND_LEVEL.items() for label in labels.split())
#: Hosts that give each of their users a subdomain of their own: each is a site (one
#: newsletter on ``substack.com`` does not corroborate another).
HOSTED: Final[frozenset[str]] = frozenset({
    "blogspot.com", "wordpress.com", "substack.com", "medium.com", "tumblr.com", "github.io",
    "ghost.io", "livejournal.com", "typepad.com", "wixsite.com", "beehiiv.com",
    "netlify.app", "pages.dev", "appspot.com", "herokuapp.com", "vercel.app",
})
_SUFFIXES: Final = TWO_LEVEL | HOSTED
_DEFAULT_PORTS: Final = {"http": 80, "https": 443}
_PRIVATE_TLDS: Final = frozenset({"local", "lan", "internal", "localdomain"})
# Full stops other than "." that IDNA reads as label separators (ideographic, full-width,
# half-width).
_DOTS: Final = str.maketrans({"\u3002": ".", "\uff0e": ".", "\uff61": "."})


def outlet_name(name: str) -> str:
    """An outlet's name as outlets are compared: spacing collapsed, case folded, and in one
    Unicode form ("BBC", "bbc", " BBC " and full-width "ＢＢＣ" are one outlet, as are an
    accent typed composed and decomposed). A name that is a host name (one word with a dot) is
    compared as :func:`site` writes hosts, so ``outlet = "bbci.co.uk"`` joins that site's
    feeds whether written in Unicode or in punycode."""
    # NFKC folds width and composes accents, as IDNA does with host names; case folding can
    # undo a composition, so the form is taken again after it.
    folded = unicodedata.normalize(
        "NFKC", unicodedata.normalize("NFKC", " ".join(name.split())).casefold())
    if " " in folded or "." not in folded.strip("."):
        return folded
    return ".".join(_ascii_label(label) for label in folded.translate(_DOTS).rstrip(".")
                    .split("."))


def _ascii_label(label: str) -> str:
    """A host's label in its ASCII (punycode) form, so that a host written in Unicode and in
    punycode is one site; a label IDNA refuses is kept as written."""
    if label.isascii():
        return label
    try:
        return idna.ToASCII(label).decode("ascii").lower()
    except UnicodeError:
        return label


def site(url: str) -> str:
    """The outlet a URL's source stands for: its host's registrable domain, lower-case, in
    ASCII, without port or trailing dot (``https://feeds.bbci.co.uk/news/rss.xml`` →
    ``bbci.co.uk``, ``http://rss.cnn.com/`` → ``cnn.com``).

    A host that names a machine rather than a site — an IP address, ``localhost`` (or a name
    under it), a name of one label, a private network's name (``.local``, ``.lan``,
    ``.internal``, ``home.arpa``) — says nothing of the outlet: each feed there is its own,
    named by the address with its port (a default port left out), path and query, as feed
    URLs compare (``127.0.0.1:8001/dw``): two servers on 127.0.0.1, or two paths of one, are
    two outlets. A URL with no host is its own."""
    raw = url.strip()
    try:
        parts = urlsplit(raw)
        host = parts.hostname or ""
    except ValueError:  # an IPv6 address with a bracket missing
        return raw.lower()
    try:
        port = parts.port
    except ValueError:  # not a number, or out of range
        port = None
    if port == _DEFAULT_PORTS.get(parts.scheme.lower()):
        port = None
    host = host.translate(_DOTS).rstrip(".")
    if not host:
        return raw.lower()
    machine = _machine(host)
    if machine is not None:
        # A machine says nothing of whose news it serves: a local bridge or proxy (RSSHub,
        # RSS-Bridge) serves many outlets' feeds from one address, under paths and queries.
        # Each feed there is an outlet of its own (as it was before outlets were counted),
        # compared as feed URLs are; sources of one outlet there say so with ``outlet``.
        where = feed_url_key(raw)
        rest = where.split("/", 1)[1] if "/" in where else ""
        return f"{machine}{'' if port is None else f':{port}'}/{rest}"
    labels = [_ascii_label(label) for label in host.split(".")]
    keep = 3 if len(labels) > 2 and ".".join(labels[-2:]) in _SUFFIXES else 2
    return ".".join(labels[-keep:])


def _machine(host: str) -> str | None:
    """``host`` as a machine's name when it names one rather than a site (an address, in its
    canonical form and bracketed for IPv6; ``localhost`` or a name under it; one label alone;
    a private network's name); None for a site's name."""
    try:
        address = ipaddress.ip_address(host)
    except ValueError:
        pass
    else:
        if isinstance(address, ipaddress.IPv6Address):
            if address.ipv4_mapped is not None:
                return str(address.ipv4_mapped)
            return f"[{address}]"
        return str(address)
    last = host.rsplit(".", 1)[-1]
    # "127.1" and "2130706433" are addresses too, as resolvers read them.
    if "." not in host or last.isdigit() or last == "localhost":
        return host
    # Names no one registers: a private network's machines (mDNS's .local, a home network's
    # .home.arpa and .lan, ICANN's .internal), where one bridge serves many publishers.
    if last in _PRIVATE_TLDS or host.endswith(".home.arpa"):
        return host
    return None


def outlet_of(name: str, *, outlet: object = None, url: object = None) -> str:
    """The outlet of a source's articles: its ``outlet`` setting, else the site of its
    ``url``, else its ``name`` (see the module's docstring). Values that are not text (a
    stored model written by another version) are passed over."""
    if isinstance(outlet, str) and outlet.strip():
        return outlet_name(outlet)
    if isinstance(url, str) and url.strip():
        return site(url)
    return outlet_name(name)


def source_outlet(source: SourceConfigBase) -> str:
    """The outlet of a source config's articles (see :func:`outlet_of`)."""
    return outlet_of(source.name, outlet=source.outlet, url=getattr(source, "url", None))
