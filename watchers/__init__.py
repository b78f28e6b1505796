"""newswatch's engine: watch sources, match rules, store articles, hand alerts to sinks.

It knows nothing of Discord; front ends (``bot``) plug in through :class:`Sink`. The front door
is :func:`open_engine`; the pure rule engine (:class:`RuleSet`) works on its own.
"""

from watchers.config import (
    Config,
    FeedSourceConfig,
    FolderSourceConfig,
    RuleConfig,
    SourceConfig,
    load_config,
    parse_config,
)
from watchers.delivery import Alert, DeliveryService, DeliveryStatus, Sink
from watchers.engine import Engine, Lookup, RuleTest, RuleView, SourceView, Stats, open_engine
from watchers.errors import (
    ConfigError,
    DeliveryError,
    FetchBlockedError,
    NewswatchError,
    PermanentDeliveryError,
    QuerySyntaxError,
    SourceError,
    StoreError,
    TransientDeliveryError,
    UncertainDeliveryError,
)
from watchers.models import Article, Highlight, Hit, Match
from watchers.rules import Rule, RuleSet, match_query, parse
from watchers.search import SearchHit
from watchers.service import PollReport, WatchService
from watchers.sources.base import Poll, Source
from watchers.store import SqliteStore, Store

__all__ = [
    "Alert",
    "Article",
    "Config",
    "ConfigError",
    "DeliveryError",
    "DeliveryService",
    "DeliveryStatus",
    "Engine",
    "FeedSourceConfig",
    "FetchBlockedError",
    "FolderSourceConfig",
    "Highlight",
    "Hit",
    "Lookup",
    "Match",
    "NewswatchError",
    "PermanentDeliveryError",
    "Poll",
    "PollReport",
    "QuerySyntaxError",
    "Rule",
    "RuleConfig",
    "RuleSet",
    "RuleTest",
    "RuleView",
    "SearchHit",
    "Sink",
    "Source",
    "SourceConfig",
    "SourceError",
    "SourceView",
    "SqliteStore",
    "Stats",
    "Store",
    "StoreError",
    "TransientDeliveryError",
    "UncertainDeliveryError",
    "WatchService",
    "load_config",
    "match_query",
    "open_engine",
    "parse",
    "parse_config",
]
