"""Refuse URLs and addresses that would let a feed URL reach inside our network (SSRF).

Three layers, because each one alone has a gap:

* :func:`check_url` rejects a URL before any connection: wrong scheme, credentials, backslashes,
  ``localhost`` names and IP literals in any notation a resolver would accept (``2130706433``,
  ``0x7f000001``, ``0177.0.0.1``, ``127.1``, ``[::ffff:127.0.0.1]``).
* ``_http.GuardedResolver`` filters what DNS returns (with :func:`blocked_reason`), so a public
  name that resolves (or rebinds) to a private address is refused before the connector dials it.
* :func:`check_peer` checks the address a connection actually reached, which also covers
  sessions built without our resolver and pooled connections.

``allow_private`` is an explicit list of networks (CIDRs) that are let through anyway, for intranet
feeds and for tests that serve feeds on 127.0.0.1.
"""

from __future__ import annotations

import contextvars
import functools
import ipaddress
import socket
import unicodedata
from collections.abc import Iterable, Sequence
from urllib.parse import urlsplit

from watchers.errors import FetchBlockedError

__all__ = [
    "IPAddress",
    "IPNetwork",
    "allowing",
    "blocked_reason",
    "check_host",
    "check_peer",
    "check_url",
    "current_allowlist",
    "parse_networks",
]

IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address
IPNetwork = ipaddress.IPv4Network | ipaddress.IPv6Network

_METADATA = {
    ipaddress.ip_address("169.254.169.254"),
    ipaddress.ip_address("fd00:ec2::254"),
}
_CGNAT = ipaddress.ip_network("100.64.0.0/10")
_NAT64 = ipaddress.ip_network("64:ff9b::/96")
_SCHEMES = frozenset({"http", "https"})
_LOCAL_NAMES = ("localhost", "localhost.localdomain", "ip6-localhost", "ip6-loopback")

# The allowlist in force for the request being made; the resolver runs inside that request's
# task, so a context variable carries the per-source policy to it without a connector per source.
_ALLOWED: contextvars.ContextVar[tuple[IPNetwork, ...]] = contextvars.ContextVar(
    "newswatch_allowed_networks", default=()
)


def parse_networks(cidrs: Iterable[str | IPNetwork]) -> tuple[IPNetwork, ...]:
    """Parse an allowlist; a bare address means that one host. Raises ValueError on bad input."""
    out: list[IPNetwork] = []
    for item in cidrs:
        if isinstance(item, ipaddress.IPv4Network | ipaddress.IPv6Network):
            out.append(item)
        else:
            out.append(ipaddress.ip_network(str(item).strip(), strict=False))
    return tuple(out)


def _embedded_ipv4(ip: IPAddress) -> ipaddress.IPv4Address | None:
    """The IPv4 address hidden inside an IPv6 one (mapped, 6to4, Teredo, NAT64), if any."""
    if not isinstance(ip, ipaddress.IPv6Address):
        return None
    if ip.ipv4_mapped is not None:
        return ip.ipv4_mapped
    if ip.sixtofour is not None:
        return ip.sixtofour
    if ip.teredo is not None:
        return ip.teredo[1]
    if ip in _NAT64:
        return ipaddress.IPv4Address(int(ip) & 0xFFFFFFFF)
    return None


def blocked_reason(ip: IPAddress, allowed: Sequence[IPNetwork] = ()) -> str | None:
    """Why ``ip`` must not be contacted, or None when it may be."""
    inner = _embedded_ipv4(ip)
    for candidate in (ip, inner):
        if candidate is not None and any(
            candidate.version == net.version and candidate in net for net in allowed
        ):
            return None
    if inner is not None:
        reason = blocked_reason(inner)
        if reason is not None:
            return f"{reason} (embedded in {ip})"
    if ip in _METADATA:
        return "a cloud metadata address"
    if ip.is_loopback:
        return "a loopback address"
    if ip.is_unspecified:
        return "an unspecified address"
    if ip.is_link_local:
        return "a link-local address"
    if isinstance(ip, ipaddress.IPv6Address) and ip.is_site_local:
        # fec0::/10, deprecated (RFC 3879) but internal where it is still used; Python counts
        # it neither private nor non-global.
        return "a site-local address"
    if ip.is_multicast:
        return "a multicast address"
    if isinstance(ip, ipaddress.IPv4Address) and ip in _CGNAT:
        return "a shared (CGNAT) address"
    if ip.is_private:
        return "a private address"
    if ip.is_reserved:
        return "a reserved address"
    if not ip.is_global:
        return "a non-global address"
    return None


def _legacy_ipv4(host: str) -> ipaddress.IPv4Address | None:
    """Read the IPv4 forms inet_aton (so getaddrinfo) accepts: 127.1, 0x7f.1, 017700000001."""
    if not host or not all(c in "0123456789abcdefxABCDEFX." for c in host):
        return None
    if not host[0].isdigit():
        return None  # a name such as "cafe.example" is not an address
    try:
        return ipaddress.IPv4Address(socket.inet_aton(host))
    except OSError:
        return None


def _host_address(host: str) -> IPAddress | None:
    """The address a URL host denotes literally, in any accepted notation, or None for a name."""
    bare = host[1:-1] if host.startswith("[") and host.endswith("]") else host
    bare = bare.split("%", 1)[0]  # zone ids ("fe80::1%eth0") do not change the address
    try:
        return ipaddress.ip_address(bare)
    except ValueError:
        pass
    return _legacy_ipv4(bare.rstrip("."))


def check_url(url: str, allow_private: Iterable[str | IPNetwork] = ()) -> None:
    """Raise FetchBlockedError if ``url`` must not be fetched; no connection is made.

    Names that are not literal addresses pass here; the resolver checks where they lead.
    """
    reason = _url_refusal(url, parse_networks(allow_private))
    if reason is not None:
        raise FetchBlockedError(reason)


# Unicode categories no URL shows: format (bidi overrides, zero-width), control, separators.
_INVISIBLE = frozenset({"Cf", "Cc", "Co", "Cs", "Zs", "Zl", "Zp"})


@functools.lru_cache(maxsize=65536)
def _url_refusal(url: str, allowed: tuple[IPNetwork, ...]) -> str | None:
    """Why ``url`` is refused, or None. Cached: a feed's URL is checked on every poll (and every
    redirect hop), and thousands of feeds poll every minute; the answer depends only on these two
    arguments (names are checked again on every resolution)."""
    if not isinstance(url, str) or not url:
        return "refused URL: empty"
    if "\\" in url:
        return "refused URL: contains a backslash"
    if any(ord(c) < 0x21 or ord(c) == 0x7F for c in url):
        return "refused URL: contains whitespace or control characters"
    if not url.isascii() and any(unicodedata.category(c) in _INVISIBLE for c in url):
        # A right-to-left override shows https://ex\u202eample.org as another address, and
        # no fetch of such a host can succeed.
        return "refused URL: contains invisible, spacing or direction-changing characters"
    try:
        parts = urlsplit(url)
        port = parts.port
    except ValueError as exc:
        return f"refused URL: {exc}"
    scheme = parts.scheme.lower()
    if scheme not in _SCHEMES:
        return f"refused URL: scheme {scheme or '(none)'!r} is not http or https"
    if "@" in parts.netloc:
        return "refused URL: credentials in URLs are not allowed"
    host = (parts.hostname or "").lower()
    if not host:
        return "refused URL: no host"
    if port == 0:
        return "refused URL: port 0"
    address = _host_address(host)
    if address is None:
        name = host.rstrip(".")
        if name in _LOCAL_NAMES or name.endswith(".localhost"):
            if any(blocked_reason(ipaddress.ip_address(a), allowed) is None
                   for a in ("127.0.0.1", "::1")):
                # The loopback allowed (allow_private names it): its name is as good as its
                # address, and the address it connects to is checked as every peer is.
                return None
            return (f"refused URL: host {host!r} is the local machine (allow it with "
                    '[fetch] allow_private = ["127.0.0.0/8", "::1/128"])')
        return _name_refusal(name)
    reason = blocked_reason(address, allowed)
    if reason is not None:
        return f"refused URL: {host} is {reason}"
    return None


def _name_refusal(name: str) -> str | None:
    """Why a host name (no trailing dot) is none DNS can hold, or None. The resolver encodes a
    name by IDNA, which refuses an empty label or one over 63 characters: such a feed was taken
    and then failed every poll as an unexpected UnicodeError."""
    shown = name if len(name) <= 60 else name[:57] + "..."
    try:
        encoded = name.encode("idna")
    except UnicodeError:
        return (f"refused URL: host {shown!r} is no DNS name (an empty label, one over 63 "
                "characters, or letters IDNA cannot spell)")
    if len(encoded) > 253:
        return f"refused URL: host {shown!r} is longer than a DNS name may be (253 characters)"
    return None


def check_host(host: str, allowed: Sequence[IPNetwork] = ()) -> None:
    """Raise FetchBlockedError if ``host`` is a literal address (any notation) that is blocked.

    Names pass: they are checked when resolved.
    """
    reason = _host_refusal(host, tuple(allowed))
    if reason is not None:
        raise FetchBlockedError(reason)


def check_peer(address: str, allowed: Sequence[IPNetwork] = ()) -> None:
    """Raise FetchBlockedError if a connection reached an address it must not."""
    reason = _peer_refusal(address, tuple(allowed))
    if reason is not None:
        raise FetchBlockedError(reason)


# Both are asked on every connection a poll makes (thousands a minute), with a handful of
# distinct hosts and peers; the verdict depends only on the two arguments.
@functools.lru_cache(maxsize=65536)
def _host_refusal(host: str, allowed: tuple[IPNetwork, ...]) -> str | None:
    literal = _host_address(host)
    if literal is None:
        return None
    reason = blocked_reason(literal, allowed)
    return None if reason is None else f"refused connection: {host} is {reason}"


@functools.lru_cache(maxsize=65536)
def _peer_refusal(address: str, allowed: tuple[IPNetwork, ...]) -> str | None:
    try:
        ip = ipaddress.ip_address(address.split("%", 1)[0])
    except ValueError:
        return f"refused connection: unreadable peer address {address!r}"
    reason = blocked_reason(ip, allowed)
    return None if reason is None else f"refused connection: {ip} is {reason}"


def current_allowlist() -> tuple[IPNetwork, ...]:
    """The allowlist set by the innermost :func:`allowing` block (empty outside one)."""
    return _ALLOWED.get()


class allowing:
    """Make ``allowed`` the allowlist that the fetcher's resolver applies in this context.

    A class rather than a generator context manager: it is entered on every request."""

    __slots__ = ("_allowed", "_token")

    def __init__(self, allowed: Sequence[IPNetwork]) -> None:
        self._allowed = tuple(allowed)

    def __enter__(self) -> None:
        self._token = _ALLOWED.set(self._allowed)

    def __exit__(self, *exc: object) -> None:
        _ALLOWED.reset(self._token)
