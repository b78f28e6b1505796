"""newswatch's engine: watch sources, match rules, store articles, hand alerts to sinks.

It knows nothing of Discord; front ends (``bot``) plug in through :class:`Sink`.
"""

from watchers.config import Config, load_config
from watchers.delivery import Alert, DeliveryService, RuleInfo, Sink
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
from watchers.service import PollReport, RuleSpec, SourceSpec, WatchService
from watchers.sources.base import Poll, Source
from watchers.store import SqliteStore, Store

__all__ = [
    "Alert",
    "Article",
    "Config",
    "ConfigError",
    "DeliveryError",
    "DeliveryService",
    "FetchBlockedError",
    "Highlight",
    "Hit",
    "Match",
    "NewswatchError",
    "PermanentDeliveryError",
    "Poll",
    "PollReport",
    "QuerySyntaxError",
    "Rule",
    "RuleInfo",
    "RuleSet",
    "RuleSpec",
    "Sink",
    "Source",
    "SourceError",
    "SourceSpec",
    "SqliteStore",
    "Store",
    "StoreError",
    "TransientDeliveryError",
    "UncertainDeliveryError",
    "WatchService",
    "load_config",
    "match_query",
    "parse",
]
