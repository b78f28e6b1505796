"""Link normalisation for dedupe: two links to the same story should compare equal."""

from __future__ import annotations

import contextlib
import re
from urllib.parse import parse_qsl, quote, unquote, unquote_plus, urlsplit, urlunsplit

__all__ = ["TRACKING_PARAMS", "TRACKING_PREFIXES", "feed_url_key", "normalise_link",
           "url_parts_problem", "without_credentials"]

# Parameters that identify the campaign or the click, never the document.
TRACKING_PARAMS = frozenset(
    {
        "fbclid", "gclid", "dclid", "gbraid", "wbraid", "msclkid", "yclid", "twclid", "igshid",
        "mc_cid", "mc_eid", "ref", "ref_src", "ref_url", "referrer", "cmpid", "ocid",
        "icid", "ncid", "sr_share", "s_cid", "spm", "_hsenc", "_hsmi", "mkt_tok", "vero_id",
        "oly_anon_id", "oly_enc_id", "at_medium", "at_campaign", "xtor", "smid", "cid_source",
        "guccounter", "guce_referrer", "guce_referrer_sig", "ito", "__twitter_impression",
    }
)  # fmt: skip
TRACKING_PREFIXES = ("utm_", "pk_", "mtm_", "hsa_", "itm_", "__hs")
_DEFAULT_PORTS = {"http": 80, "https": 443}
# Characters left unescaped in paths and queries, so equivalent escapings compare equal.
_PATH_SAFE = "/:@!$&'()*+,;=-._~"
_QUERY_SAFE = ":@!$'()*,;/?-._~"


def _is_tracking(name: str) -> bool:
    lowered = name.lower()
    return lowered in TRACKING_PARAMS or lowered.startswith(TRACKING_PREFIXES)


# A link already in normal form: lower-case http(s) scheme and host, no port, userinfo, query,
# fragment or percent-escape, and a path of non-empty segments of characters that quoting leaves
# alone. Most article links are; for them the general path below returns them unchanged (with
# "/" for an empty path), so they skip it.
_NORMAL = re.compile(
    r"(https?://[a-z0-9](?:[a-z0-9.-]*[a-z0-9])?)"
    r"((?:/[A-Za-z0-9_.~:@!$&'()*+,;=-]+)*)"
)


def normalise_link(url: str) -> str:
    """A canonical form of ``url`` for comparing links, not for fetching.

    Lowercases scheme and host, drops default ports, userinfo and the fragment, removes tracking
    parameters (``utm_*``, ``fbclid``, ``gclid``, ``mc_cid`` …), sorts the remaining parameters,
    normalises percent-escapes and strips a trailing slash from the path (``/a/`` and ``/a``
    are one story; the bare host keeps ``/``). A string that is not an absolute URL comes back
    stripped and otherwise unchanged.
    """
    raw = url.strip()
    if (m := _NORMAL.fullmatch(raw)) is not None:
        return raw if m.group(2) else raw + "/"
    return _normalise(raw)


def feed_url_key(url: str) -> str:
    """How two feed URLs are compared for "one feed": as links compare (:func:`normalise_link`:
    host case, default port, tracking parameters, a trailing slash), over http or https
    alike."""
    link = normalise_link(url)
    return link.split("://", 1)[1] if link.startswith(("http://", "https://")) else link


def _normalise(raw: str) -> str:
    try:
        parts = urlsplit(raw)
        port = parts.port
    except ValueError:
        return raw
    scheme = parts.scheme.lower()
    host = (parts.hostname or "").lower().rstrip(".")
    if not scheme or not host:
        return raw
    if not host.isascii():
        with contextlib.suppress(UnicodeError):
            host = host.encode("idna").decode("ascii")
    if ":" in host:
        host = f"[{host}]"
    netloc = host if port is None or _DEFAULT_PORTS.get(scheme) == port else f"{host}:{port}"
    path = quote(unquote(parts.path), safe=_PATH_SAFE)
    while "//" in path:
        path = path.replace("//", "/")
    path = path.rstrip("/") or "/"
    params = [
        (quote(k, safe=_QUERY_SAFE), quote(v, safe=_QUERY_SAFE))
        for k, v in parse_qsl(parts.query, keep_blank_values=True)
        if not _is_tracking(k)
    ]
    params.sort()
    query = "&".join(f"{k}={v}" if v else k for k, v in params)
    return urlunsplit((scheme, netloc, path, query, ""))


def url_parts_problem(url: str) -> str | None:
    """Why ``url``'s parts do not read (a port out of range or not a number, a broken IPv6
    host), in words that do not repeat the URL (it may hold a password); None when they do."""
    if not url.isprintable():  # (a lone surrogate is not printable either)
        # A byte that is not UTF-8 (an environment variable or an argument passes it as a
        # lone surrogate) or a control character: the driver failed on it with a traceback,
        # then named a database with a space where the byte was.
        return "it holds a byte that is not UTF-8 text, or a control character; percent-encode it"
    rest = url.split("://", 1)[-1]
    try:
        netloc = urlsplit(url).netloc
        urlsplit(url).port  # noqa: B018 - reading the port is the check
    except ValueError as exc:
        said = str(exc)
        credentials = rest.rsplit("@", 1)[0] if "@" in rest else ""
        if credentials and any(q and q in credentials for q in re.findall(r"'([^']*)'", said)):
            # urllib quotes what it took for the port, which with credentials holding a '/'
            # (an unencoded password) is a piece of the password.
            return _UNENCODED_CREDENTIALS
        return said
    if "@" in rest and "@" not in netloc and (cut := re.search(r"[/?#]", rest)) is not None \
            and "=" not in rest[cut.start():rest.rindex("@")]:
        # A password starting with '/', '?' or '#', or digits before one ("4711?Summer"):
        # the address was cut there, the port read as a number, and every message named the
        # database by the pieces, the password in them. (An '@' inside a query parameter's
        # value, "?user=me@server", is no such cut.)
        return _UNENCODED_CREDENTIALS
    return None


_UNENCODED_CREDENTIALS = (
    "its host and port cannot be read; a user name or password holding '/', '?', '#', '@' or "
    "':' must be percent-encoded (%2F, %3F, %23, %40, %3A)")


# A URL's password: from the ':' after its user name to the last '@' before the path (an
# unencoded password may hold an '@').
_PASSWORD = re.compile(r"(?i)\b([a-z][a-z0-9+.-]*://[^/?#\s:@]*):[^/?#\s]*@")
# A query parameter of a URL in a text: its name and its value, up to the next parameter, the
# fragment, a space or a quote.
_PARAM = re.compile(r"([?&;])([^=&#\s'\"<>]*)=([^&#\s'\"<>]*)")
# The words of a parameter's name that say it holds a credential (an API key, a private feed's
# token, a signed URL's signature), and the endings of one-word names that do (apikey,
# accesstoken).
_SECRET_WORDS = frozenset({"auth", "authorization", "credential", "credentials", "key", "pass",
                           "passwd", "password", "pwd", "secret", "session", "sid", "sig",
                           "signature", "token"})
_SECRET_ENDINGS = ("key", "token", "secret", "password", "passwd", "signature")


def _secret_param(name: str) -> bool:
    # As the server reads it: "to%6Ben" is "token" (its value was shown)
    name = unquote_plus(name) if "%" in name or "+" in name else name
    words = re.sub(r"([a-z0-9])([A-Z])", r"\1 \2", name).lower()
    return any(w in _SECRET_WORDS or w.endswith(_SECRET_ENDINGS)
               for w in re.split(r"[^a-z0-9]+", words) if w)


def _hide_param(m: re.Match[str]) -> str:
    value = m.group(3)
    if not value or not _secret_param(m.group(2)):
        return m.group(0)
    # Punctuation the text put after the URL ("…?token=abc: HTTP 500") is not the value's.
    tail = value[len(value.rstrip(":,.;)")):]
    return f"{m.group(1)}{m.group(2)}=[redacted]{tail}"


def without_credentials(text: str) -> str:
    """``text`` (a URL, or a message naming URLs) with what would let anyone else use them
    replaced by "[redacted]": a password (``https://bob:pw@host/``), and the value of each query
    parameter whose name says it holds a credential (``token``, ``key``, ``api_key``,
    ``apiKey``, ``secret``, ``password``, ``auth``, ``sig``, ``X-Amz-Signature`` …). A feed a
    publisher keeps private is often read with one; the rest of the URL stays, so the feed can
    still be told from others."""
    if "://" not in text and "=" not in text:
        return text
    return _PARAM.sub(_hide_param, _PASSWORD.sub(r"\1:[redacted]@", text))
