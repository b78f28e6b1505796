"""Human-readable evidence for a match, one line per hit."""

from __future__ import annotations

from ..models import Match

__all__ = ["explain"]


def explain(match: Match) -> list[str]:
    """Lines that say why ``match`` fired: term, field, span, kind, variant and score.

    Example: ``kyiv~  title[12:16] "Kiev"  alias (kiev)  score 100``.
    """
    lines = [f"rule {match.rule}: score {match.score:g}, {len(match.hits)} hit(s)"]
    for h in match.hits:
        how = h.kind if h.variant is None else f"{h.kind} ({h.variant})"
        snippet = h.text if len(h.text) <= 60 else h.text[:57] + "…"
        lines.append(
            f"  {h.term}  {h.field}[{h.start}:{h.end}] {snippet!r}  {how}  score {h.score:g}"
        )
    return lines
