"""Charts as PNG bytes: a trend of matches over time (``/trend``, ``newswatch trend --png``).

Invariants:
- matplotlib is imported inside :func:`render_trend` only, so commands that never draw do not
  pay for it; it draws on a private ``Figure`` with the Agg canvas (no display, no pyplot and no
  change to global rcParams), so rendering in a worker thread beside the event loop is safe.
- The output depends only on the trend and the size: no timestamp or software name is written
  into the PNG, so the same trend gives the same bytes.
- Sized for Discord's preview (about 550 px wide): drawn at ``width_px`` × ``height_px`` with
  fonts large enough to stay legible when scaled to half that, and at most about six date ticks,
  all in UTC.
"""

from __future__ import annotations

import io
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from watchers.surge import Trend

__all__ = ["BAR_COLOUR", "SURGE_COLOUR", "render_trend", "summary"]

BAR_COLOUR = "#4c78a8"  # counts
SURGE_COLOUR = "#e4572e"  # surge buckets: the one warm colour on the chart
BAND_COLOUR = "#9d9d9d"  # the usual range, mean ± std
_DPI = 100
# Surges labelled with their count; more than this and only the largest are, to keep it legible.
_MAX_LABELS = 5


def _per(bucket: timedelta) -> str:
    return "hour" if bucket < timedelta(days=1) else "day"


def summary(trend: Trend) -> str:
    """One line: total, bucket, surges and the peak (UTC); says when the counts are partial."""
    surges = [p for p in trend.points if p.surge]
    parts = [f"{trend.total:,} match{'es' if trend.total != 1 else ''}",
             f"per {_per(trend.bucket)}"]
    if surges:
        peak = max(surges, key=lambda p: p.count)
        fmt = "%Y-%m-%d %H:%M" if trend.bucket < timedelta(days=1) else "%Y-%m-%d"
        parts.append(f"{len(surges)} surge{'s' if len(surges) != 1 else ''} (peak {peak.count} "
                     f"at {peak.start.astimezone(UTC).strftime(fmt)} UTC)")
    else:
        parts.append("no surges")
    if trend.truncated:
        parts.append("partial: the search ran out of time, counts are a lower bound")
    return " · ".join(parts)


def render_trend(trend: Trend, *, width_px: int = 1100, height_px: int = 620) -> bytes:
    """The trend as a PNG: bars of matches per bucket, the baseline band (mean ± std) shaded,
    surge buckets in :data:`SURGE_COLOUR` with their counts, dates in UTC, the label as
    title. Raises ValueError for a size below 200 × 150 px."""
    if width_px < 200 or height_px < 150:
        raise ValueError(f"chart size {width_px}×{height_px} px is too small (min 200×150)")
    import matplotlib

    matplotlib.use("Agg", force=False)
    import matplotlib.dates as mdates
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure
    from matplotlib.patches import Patch
    from matplotlib.ticker import MaxNLocator

    def num(when: datetime) -> float:  # matplotlib's date axis unit; its stub is untyped
        return float(mdates.date2num(when.astimezone(UTC)))  # type: ignore[no-untyped-call]

    # Font sizes in points scale with the picture, so a smaller chart keeps the proportions.
    scale = width_px / 1100
    big, mid, small = 24 * scale, 19 * scale, 17 * scale

    fig = Figure(figsize=(width_px / _DPI, height_px / _DPI), dpi=_DPI, facecolor="white")
    canvas = FigureCanvasAgg(fig)
    ax = fig.add_subplot()

    points = trend.points
    step = trend.bucket / timedelta(days=1)  # matplotlib's date unit is the day
    # A day's bar is centred on its date's tick; an hour's bar starts at its hour's tick.
    shift = step / 2 if trend.bucket >= timedelta(days=1) else 0.0
    starts = [num(p.start) - shift for p in points]
    counts = [p.count for p in points]
    colours = [SURGE_COLOUR if p.surge else BAR_COLOUR for p in points]

    if points:
        # The band is a step over each bucket, like the bars, closed at the last bucket's end.
        edges = [*starts, starts[-1] + step]
        lows = [max(p.mean - p.std, 0.0) for p in points]
        highs = [p.mean + p.std for p in points]
        ax.fill_between(edges, [*lows, lows[-1]], [*highs, highs[-1]], step="post",
                        color=BAND_COLOUR, alpha=0.45, linewidth=0, zorder=2)
        ax.step(edges, [*[p.mean for p in points], points[-1].mean], where="post",
                color="#404040", linewidth=1.6 * scale, linestyle="--", zorder=5)
        ax.bar([s + step * 0.09 for s in starts], counts, width=step * 0.82, align="edge",
               color=colours, zorder=3, linewidth=0)
        ax.set_xlim(edges[0], edges[-1])

    top = max([*counts, *(p.mean + p.std for p in points), 1])
    ax.set_ylim(0, top * 1.18)  # room above the tallest bar for its label
    surges = sorted((p for p in points if p.surge), key=lambda p: (-p.count, p.start))
    for p in surges[:_MAX_LABELS]:
        centre = num(p.start) - shift + step / 2
        ax.annotate(f"{p.count:,}", (centre, p.count),
                    xytext=(0, 4 * scale), textcoords="offset points", ha="center",
                    va="bottom", fontsize=small, fontweight="bold", color=SURGE_COLOUR,
                    zorder=6)
    if not trend.total:
        ax.text(0.5, 0.5, "no matches in this period", transform=ax.transAxes, ha="center",
                va="center", fontsize=mid, color="#6b6b6b")

    locator = mdates.AutoDateLocator(  # type: ignore[no-untyped-call]
        minticks=3, maxticks=6, tz=UTC)
    ax.xaxis.set_major_locator(locator)
    formatter = mdates.ConciseDateFormatter(  # type: ignore[no-untyped-call]
        locator, tz=UTC, show_offset=True)
    formatter.formats = ["%Y", "%b", "%b %d", "%H:%M", "%H:%M", "%S.%f"]
    formatter.zero_formats = ["", "%Y", "%b", "%b %d", "%H:%M", "%H:%M"]
    formatter.offset_formats = ["", "%Y", "%Y", "%Y-%m-%d", "%Y-%m-%d", "%Y-%m-%d %H:%M"]
    ax.xaxis.set_major_formatter(formatter)
    ax.yaxis.set_major_locator(MaxNLocator(nbins=5, integer=True))
    ax.tick_params(labelsize=small, length=5 * scale, width=1.2 * scale)
    ax.xaxis.get_offset_text().set_fontsize(small)
    ax.set_ylabel(f"matches per {_per(trend.bucket)}", fontsize=mid)
    ax.set_xlabel("UTC", fontsize=mid, labelpad=4 * scale)
    ax.grid(axis="y", color="#e3e3e3", linewidth=1.0 * scale, zorder=0)
    ax.set_axisbelow(True)
    for side in ("top", "right"):
        ax.spines[side].set_visible(False)

    # A control character (a NUL in a typed query) has no glyph: matplotlib warned of each.
    label = "".join(c if c.isprintable() else " " for c in trend.label)
    # The query as typed: matplotlib reads text between two "$" as a formula ("$5 billion"
    # OR "$10 billion" failed to draw, "$80 OR $90" lost its signs and spaces).
    heading = ax.set_title(label, fontsize=big, fontweight="bold", loc="left",
                           pad=36 * scale, parse_math=False)
    note = f"{trend.total:,} matches · {len(surges)} surge{'s' if len(surges) != 1 else ''}"
    if trend.truncated:
        note += " · partial"
    ax.text(0, 1.02, note, transform=ax.transAxes, fontsize=small, color="#555555",
            ha="left", va="bottom")

    handles = [Patch(color=BAR_COLOUR, label="matches"),
               Patch(color=BAND_COLOUR, alpha=0.45, label="usual (mean ± std)")]
    if surges:  # the surge colour appears only where there is a surge
        handles.append(Patch(color=SURGE_COLOUR, label="surge"))
    ax.legend(handles=handles, loc="lower right", bbox_to_anchor=(1.0, 1.0), ncols=3,
              fontsize=small, frameon=False, handlelength=1.0, columnspacing=1.0,
              borderaxespad=0)

    # A long query is cut to the picture's width (with "…") rather than drawn off its edge:
    # once before the layout, which warned and gave up on a title wider than the picture, and
    # again after it, which moves the axes (and the title) left.
    renderer = canvas.get_renderer()  # type: ignore[no-untyped-call]
    right = width_px - 6 * scale
    text = _fit(heading, renderer, label, right)
    fig.tight_layout(pad=0.6 * scale)
    _fit(heading, renderer, text, right)
    out = io.BytesIO()
    # No "Software" (or any time) chunk: the bytes depend on the chart alone.
    fig.savefig(out, format="png", dpi=_DPI, metadata={"Software": None})
    return out.getvalue()


def _fit(heading: Any, renderer: Any, text: str, right: float) -> str:
    """Cut ``heading`` (showing ``text``) two letters at a time, with "…", until it ends left
    of ``right`` (pixels) or 8 letters are left; the text it shows, without the "…"."""
    while len(text) > 8 and heading.get_window_extent(renderer).x1 > right:
        text = text[:-2]
        heading.set_text(text.rstrip() + "…")
    return text
