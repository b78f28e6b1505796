"""Who owns what when one newswatch serves many Discord servers.

The config file is the operator's: its rules, sources and routes (and those added without a
server, from the command line) belong to every server. A server adds its own from Discord:

- **Routes.** A server picks one of its channels (``/rules add channel:``); that becomes a
  :class:`~watchers.config.ServerRoute` keyed ``"<guild id>:<name>"``. Only that server's rules
  may name it, so a server's alerts can only land in its own channels.
- **Feeds it follows.** A server's source is a *follow*: the server's name for a feed URL
  (stored as a ``SourceConfig`` with ``guild_id``, keyed ``"<guild id>:<name>"``). However many
  servers follow a URL, it is polled once, under :func:`feed_key` (the prefix
  :data:`~watchers.store.base.SERVER_FEED_PREFIX` and a hash of the URL), at the shortest
  interval any follower asked for; its articles are stored once with that key as their source.
  Each follower's rules (and only theirs) are matched against each new article, under the name
  that follower gave the feed, and every lookup or alert of that server shows that name.

Invariants: a server sees the articles of the sources every server sees and of the feeds it
follows, nothing else; the name another server gave a feed never reaches it. Only the config
file's rules see nothing of the servers' feeds: an operator's channel never carries what a
server chose to follow.
"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import timedelta

from watchers.config import Config, FeedSourceConfig, RouteConfig, ServerRoute, SourceConfig
from watchers.store.base import SERVER_FEED_PREFIX, feed_key

__all__ = ["Tenancy", "feed_key", "url_of"]


class Tenancy:
    """The server routes and the follows of a running engine, and what follows from them (the
    feeds to poll, who sees what, under which name). Plain data: the engine stores changes
    and keeps the running services in step."""

    def __init__(self, config: Config, routes: Iterable[ServerRoute] = (),
                 follows: Iterable[SourceConfig] = ()) -> None:
        self.config = config
        self.routes: dict[str, ServerRoute] = {r.key: r for r in routes}
        # The routes of servers not served now (the bot was removed, or not in guild_ids):
        # nothing is sent there and nobody there is told, but they are still a server's, never
        # the operator's (see server_route and away).
        self.away_routes: dict[str, ServerRoute] = {}
        self.follows: dict[str, SourceConfig] = {f.key: f for f in follows
                                                 if f.guild_id is not None}

    # ------------------------------------------------------------------ routes

    def route(self, name: str) -> RouteConfig | None:
        """A route's settings: the config file's, else a server route's (defaults)."""
        found = self.config.route(name)
        if found is None and (server := self.routes.get(name)) is not None:
            return server.route
        return found

    def stories_mode(self, name: str) -> str:
        route = self.route(name)
        return route.stories if route is not None else "edit"

    def digest_route(self, name: str) -> bool:
        """Whether the route keeps every alert for a digest (``mode = "digest"``)."""
        route = self.route(name)
        return route is not None and route.mode == "digest"

    def server_routes(self, guild: int | None = None) -> dict[str, ServerRoute]:
        return {k: r for k, r in self.routes.items() if guild is None or r.guild_id == guild}

    def notice_route(self, guild: int, *, besides: str | None = None) -> str | None:
        """Where a server is told about its own feeds and channels (a feed it follows paused,
        a channel of its own unusable): its first route by key other than ``besides``, None
        when it has none. Never the operator's notices channel, which carries nothing a server
        follows."""
        keys = sorted(k for k, r in self.routes.items() if r.guild_id == guild and k != besides)
        return keys[0] if keys else None

    def server_route(self, route: str) -> tuple[str | None, str] | None:
        """For a route a server picked: where that server is told about it (another of its
        routes, see :meth:`notice_route`; nowhere while the server is not served) and its
        label there (``#name``); None for the config file's routes."""
        away = self.away_routes.get(route)
        if away is not None:
            return None, f"#{away.name}"
        server = self.routes.get(route)
        if server is None:
            return None
        return self.notice_route(server.guild_id, besides=route), f"#{server.name}"

    def away(self, route: str) -> bool:
        """Whether ``route`` is a channel of a server not served now: nothing is written for
        it (an escalation, a notice) until the server is back."""
        return route in self.away_routes

    def route_for_channel(self, guild: int, channel_id: int) -> ServerRoute | None:
        return next((r for r in self.routes.values()
                     if r.guild_id == guild and r.channel_id == channel_id), None)

    def free_route_name(self, guild: int, name: str) -> str:
        """``name`` (cut to fit), or with a number after it when the server already has a
        route of that name for another channel."""
        base = name.strip()[:90] or "channel"
        taken = {r.name for r in self.routes.values() if r.guild_id == guild}
        candidate, n = base, 1
        while candidate in taken:
            n += 1
            candidate = f"{base}-{n}"
        return candidate

    def label(self, route: str, source: str) -> str | None:
        """``source`` as the readers of ``route`` know it: for a server route, the name that
        server gave a feed it follows (None: a feed it does not follow); for the config file's
        routes, the config file's sources as stored and no server's feed (None: what a server
        chose to follow is not shown in the operator's channels, not even by its key)."""
        if not source.startswith(SERVER_FEED_PREFIX):
            return source
        server = self.routes.get(route)
        if server is None:
            return None
        return self.labels(server.guild_id).get(source)

    # ------------------------------------------------------------------ follows

    def follows_of(self, guild: int) -> dict[str, SourceConfig]:
        """A server's follows by their name in that server."""
        return {f.name: f for f in self.follows.values() if f.guild_id == guild}

    def labels(self, guild: int) -> dict[str, str]:
        """Feed key → the name ``guild`` gave it, for each feed the server follows."""
        return {feed_key(url_of(f)): f.name for f in self.follows.values() if f.guild_id == guild}

    def feed_keys(self, guild: int) -> tuple[str, ...]:
        """The keys of the feeds ``guild`` follows (what store lookups take as ``follows``)."""
        return tuple(sorted(self.labels(guild)))

    def followers(self, url: str) -> list[SourceConfig]:
        key = feed_key(url)
        return sorted((f for f in self.follows.values() if feed_key(url_of(f)) == key),
                      key=lambda f: f.key)

    def feed(self, url: str) -> FeedSourceConfig | None:
        """The source that polls ``url`` for its followers (None: nobody follows it): polled
        as often as the most eager follower asked, its first poll's ``backfill`` the largest
        any asked for."""
        followers = self.followers(url)
        if not followers:
            return None
        every = min((f.every for f in followers), default=timedelta(minutes=10))
        # The first poll's newest items that may alert: as many as the most asked for (only
        # the first poll reads it, so a later follower's changes nothing).
        backfill = max((getattr(f, "backfill", 0) for f in followers), default=0)
        return FeedSourceConfig(type="feed", name=feed_key(url), url=url.strip(), every=every,
                                backfill=backfill, origin="store")

    def feeds(self) -> list[FeedSourceConfig]:
        """Every followed feed, once."""
        urls = {feed_key(url_of(f)): url_of(f) for f in self.follows.values()}
        return [cfg for url in urls.values() if (cfg := self.feed(url)) is not None]

    def audience(self, url: str) -> tuple[tuple[int, str], ...]:
        """(server, its name for the feed) for each follower of ``url``."""
        return tuple((f.guild_id, f.name) for f in self.followers(url)
                     if f.guild_id is not None)

    def audiences(self) -> dict[str, tuple[tuple[int, str], ...]]:
        urls = {feed_key(url_of(f)): url_of(f) for f in self.follows.values()}
        return {key: self.audience(url) for key, url in urls.items()}


def url_of(source: SourceConfig) -> str:
    """The URL a source polls (a feed's; "" for a folder), as compared for shared fetch."""
    return str(getattr(source, "url", "")).strip()
