"""newswatch's engine: watch sources, match rules, store articles, hand alerts to sinks.

It knows nothing of Discord; front ends (``bot``) plug in through :class:`Sink`. The front door
is :func:`open_engine`; the pure rule engine (:class:`RuleSet`) works on its own.
"""

import importlib
from typing import TYPE_CHECKING, Any

_EXPORTS = {
    "Alert": "watchers.delivery",
    "Article": "watchers.models",
    "Config": "watchers.config",
    "ConfigError": "watchers.errors",
    "Decision": "watchers.models",
    "DeliveryError": "watchers.errors",
    "DeliveryService": "watchers.delivery",
    "DeliveryStatus": "watchers.delivery",
    "Engine": "watchers.engine",
    "FeedSourceConfig": "watchers.config",
    "FetchBlockedError": "watchers.errors",
    "FetchQueuedError": "watchers.errors",
    "FolderSourceConfig": "watchers.config",
    "Highlight": "watchers.models",
    "Hit": "watchers.models",
    "Lookup": "watchers.engine",
    "LookupBusyError": "watchers.errors",
    "Match": "watchers.models",
    "NewswatchError": "watchers.errors",
    "PermanentDeliveryError": "watchers.errors",
    "Poll": "watchers.sources.base",
    "PollReport": "watchers.service",
    "QuerySyntaxError": "watchers.errors",
    "RouteConfig": "watchers.config",
    "Rule": "watchers.rules",
    "RuleConfig": "watchers.config",
    "RuleSet": "watchers.rules",
    "RuleTest": "watchers.engine",
    "RuleView": "watchers.engine",
    "SearchHit": "watchers.search",
    "Sink": "watchers.delivery",
    "Source": "watchers.sources.base",
    "SourceConfig": "watchers.config",
    "SourceError": "watchers.errors",
    "SourceView": "watchers.engine",
    "SqliteStore": "watchers.store",
    "Stats": "watchers.engine",
    "Store": "watchers.store",
    "StoreError": "watchers.errors",
    "StoreGoneError": "watchers.errors",
    "StoreUnavailableError": "watchers.errors",
    "StoryDetail": "watchers.engine",
    "StoryIndex": "watchers.stories",
    "StoryInput": "watchers.stories",
    "StoryRecord": "watchers.store.base",
    "StoryUpdate": "watchers.delivery",
    "StoryView": "watchers.delivery",
    "TransientDeliveryError": "watchers.errors",
    "UncertainDeliveryError": "watchers.errors",
    "UpdateResult": "watchers.delivery",
    "UpdateSink": "watchers.delivery",
    "WatchService": "watchers.service",
    "cluster": "watchers.stories",
    "load_config": "watchers.config",
    "match_query": "watchers.rules",
    "open_engine": "watchers.engine",
    "parse": "watchers.rules",
    "parse_config": "watchers.config",
}

__all__ = [
    "Alert",
    "Article",
    "Config",
    "ConfigError",
    "Decision",
    "DeliveryError",
    "DeliveryService",
    "DeliveryStatus",
    "Engine",
    "FeedSourceConfig",
    "FetchBlockedError",
    "FetchQueuedError",
    "FolderSourceConfig",
    "Highlight",
    "Hit",
    "Lookup",
    "LookupBusyError",
    "Match",
    "NewswatchError",
    "PermanentDeliveryError",
    "Poll",
    "PollReport",
    "QuerySyntaxError",
    "RouteConfig",
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
    "StoreGoneError",
    "StoreUnavailableError",
    "StoryDetail",
    "StoryIndex",
    "StoryInput",
    "StoryRecord",
    "StoryUpdate",
    "StoryView",
    "TransientDeliveryError",
    "UncertainDeliveryError",
    "UpdateResult",
    "UpdateSink",
    "WatchService",
    "cluster",
    "load_config",
    "match_query",
    "open_engine",
    "parse",
    "parse_config",
]


def __getattr__(name: str) -> Any:
    # Names load on first use (PEP 562): `newswatch search` needs the store and the rules, not
    # the fetcher, the services or the importer, and starts faster for it.
    module = _EXPORTS.get(name)
    if module is None:
        raise AttributeError(f"module 'watchers' has no attribute {name!r}")
    value = getattr(importlib.import_module(module), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted(__all__)


if TYPE_CHECKING:
    from watchers.config import Config as Config
    from watchers.config import FeedSourceConfig as FeedSourceConfig
    from watchers.config import FolderSourceConfig as FolderSourceConfig
    from watchers.config import RouteConfig as RouteConfig
    from watchers.config import RuleConfig as RuleConfig
    from watchers.config import SourceConfig as SourceConfig
    from watchers.config import load_config as load_config
    from watchers.config import parse_config as parse_config
    from watchers.delivery import Alert as Alert
    from watchers.delivery import DeliveryService as DeliveryService
    from watchers.delivery import DeliveryStatus as DeliveryStatus
    from watchers.delivery import Sink as Sink
    from watchers.delivery import StoryUpdate as StoryUpdate
    from watchers.delivery import StoryView as StoryView
    from watchers.delivery import UpdateResult as UpdateResult
    from watchers.delivery import UpdateSink as UpdateSink
    from watchers.engine import Engine as Engine
    from watchers.engine import Lookup as Lookup
    from watchers.engine import RuleTest as RuleTest
    from watchers.engine import RuleView as RuleView
    from watchers.engine import SourceView as SourceView
    from watchers.engine import Stats as Stats
    from watchers.engine import StoryDetail as StoryDetail
    from watchers.engine import open_engine as open_engine
    from watchers.errors import ConfigError as ConfigError
    from watchers.errors import DeliveryError as DeliveryError
    from watchers.errors import FetchBlockedError as FetchBlockedError
    from watchers.errors import FetchQueuedError as FetchQueuedError
    from watchers.errors import LookupBusyError as LookupBusyError
    from watchers.errors import NewswatchError as NewswatchError
    from watchers.errors import PermanentDeliveryError as PermanentDeliveryError
    from watchers.errors import QuerySyntaxError as QuerySyntaxError
    from watchers.errors import SourceError as SourceError
    from watchers.errors import StoreError as StoreError
    from watchers.errors import StoreGoneError as StoreGoneError
    from watchers.errors import StoreUnavailableError as StoreUnavailableError
    from watchers.errors import TransientDeliveryError as TransientDeliveryError
    from watchers.errors import UncertainDeliveryError as UncertainDeliveryError
    from watchers.models import Article as Article
    from watchers.models import Highlight as Highlight
    from watchers.models import Hit as Hit
    from watchers.models import Match as Match
    from watchers.rules import Rule as Rule
    from watchers.rules import RuleSet as RuleSet
    from watchers.rules import match_query as match_query
    from watchers.rules import parse as parse
    from watchers.search import SearchHit as SearchHit
    from watchers.service import PollReport as PollReport
    from watchers.service import WatchService as WatchService
    from watchers.sources.base import Poll as Poll
    from watchers.sources.base import Source as Source
    from watchers.store import SqliteStore as SqliteStore
    from watchers.store import Store as Store
    from watchers.store.base import StoryRecord as StoryRecord
    from watchers.stories import StoryIndex as StoryIndex
    from watchers.stories import StoryInput as StoryInput
    from watchers.stories import cluster as cluster
