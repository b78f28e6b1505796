"""The rule index: which rules an article could match (stage 1: all of them)."""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING

from .matcher import Analysis, FuzzyCandidates
from .variants import Aliases

if TYPE_CHECKING:
    from .compile import Rule

__all__ = ["RuleIndex"]


class RuleIndex:
    def __init__(self, rules: Sequence[Rule], aliases: Aliases) -> None:
        self.rules = list(rules)
        self.aliases = aliases

    def candidates(self, analysis: Analysis) -> tuple[list[Rule], FuzzyCandidates | None]:
        return self.rules, None
