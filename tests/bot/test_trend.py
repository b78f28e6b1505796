"""/trend for real: newswatch runs in-process (the real discord.py) against the emulator, with a
history imported through the engine — one match an hour for three days and a burst of matches
in one hour. The answer carries the chart as a multipart upload; every request is checked
against Discord's OpenAPI spec and its upload rules, and the PNG is decoded and looked at:
its size, that it is not blank, and that the surge colour shows exactly when there is a surge.
"""

from __future__ import annotations

import io
import json
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from bot.charts import BAR_COLOUR, SURGE_COLOUR, render_trend
from tests.bot.conftest import Running
from tests.fakes import discord_spec
from tests.fakes.discord_emulator import EmuMessage
from watchers.surge import trend

Image = pytest.importorskip("PIL.Image")

BURST = 15  # matches in one hour, against one an hour usually (the default min_count is 10)


def _rgb(colour: str) -> tuple[int, int, int]:
    return (int(colour[1:3], 16), int(colour[3:5], 16), int(colour[5:7], 16))


def _history(path: Path, now: datetime) -> Path:
    """One "soldiers … zanzibar" headline an hour for 72 hours and BURST "troops" headlines in
    the hour five hours ago; each a different event, so none are one story."""
    lines = []
    for h in range(1, 73):
        when = now - timedelta(hours=h, minutes=-20)
        lines.append({"id": f"bg{h}", "title": f"Zanzibar soldiers drill number {h}",
                      "text": "", "url": f"https://example.org/bg/{h}", "source": "wire",
                      "date": when.isoformat()})
    burst_hour = (now - timedelta(hours=5)).replace(minute=0, second=0, microsecond=0)
    for i in range(BURST):
        lines.append({"id": f"burst{i}", "title": f"Troops move on bridge {i} in sector {i * 7}",
                      "text": "", "url": f"https://example.org/burst/{i}", "source": f"o{i}",
                      "date": (burst_hour + timedelta(minutes=2 * i + 1)).isoformat()})
    path.write_text("\n".join(json.dumps(x) for x in lines) + "\n", encoding="utf-8")
    return path


def _png_of(msg: EmuMessage) -> bytes:
    assert len(msg.attachments) == 1, msg.attachments
    att = msg.attachments[0]
    assert att["filename"] == "trend.png" and att["content_type"] == "image/png"
    data = msg.files[att["id"]]
    assert att["size"] == len(data) > 0
    return data


def _colours(png: bytes) -> set[tuple[int, int, int]]:
    with Image.open(io.BytesIO(png)) as im:
        assert im.format == "PNG" and im.size == (1100, 620)
        return {c[:3] for _, c in im.convert("RGB").getcolors(maxcolors=1 << 20)}


async def test_trend_answers_with_a_chart(running: Running, tmp_path: Path) -> None:
    emu = running.emu
    now = datetime.now(UTC)
    summary = await running.engine.import_articles(_history(tmp_path / "h.jsonl", now))
    assert summary.imported == 72 + BURST

    shown = await (await emu.send_interaction(
        "trend", {"query_or_rule": "troops", "period": "3d"})).final_message(timeout=30)
    assert not shown.ephemeral
    assert "rule troops" in shown.content and "1 surge" in shown.content, shown.content
    colours = _colours(_png_of(shown))
    assert len(colours) > 20  # bars, band, text: not blank
    assert _rgb(SURGE_COLOUR) in colours and _rgb(BAR_COLOUR) in colours

    # a query (not a rule) over the steady series: a chart with no surge in it
    flat = await (await emu.send_interaction(
        "trend", {"query_or_rule": "zanzibar", "period": "3d"})).final_message(timeout=30)
    assert "no surges" in flat.content, flat.content
    colours = _colours(_png_of(flat))
    assert _rgb(BAR_COLOUR) in colours and _rgb(SURGE_COLOUR) not in colours

    uploads = [r for r in emu.requests
               if (r.content_type or "").startswith("multipart/form-data")]
    assert len(uploads) == 2
    assert all([p["name"] for p in r.parts] == ["payload_json", "files[0]"] for r in uploads)
    assert emu.validate_all() == []


@pytest.mark.parametrize(("options", "expected"), [
    ({"query_or_rule": "troops", "period": "100d"}, "period: 100d is out of range"),
    ({"query_or_rule": "troops", "period": "30m"}, "period: 30m is out of range"),
    ({"query_or_rule": "troops", "period": "soon"}, "period:"),
    ({"query_or_rule": "troops AND (border"}, "at column"),
])
async def test_trend_refuses_bad_options_privately(running: Running, options: dict[str, str],
                                                   expected: str) -> None:
    msg = await (await running.emu.send_interaction("trend", options)).final_message()
    assert msg.ephemeral and expected in msg.content.replace("\\", ""), msg.content  # unescaped
    assert not msg.attachments
    assert running.emu.validate_all() == []


def test_upload_rules_are_checked() -> None:
    """The multipart check finds what Discord refuses, so a clean validate_all means something."""
    payload = {"type": 4, "data": {"content": "x", "attachments": [{"id": 0,
                                                                    "filename": "a.png"}]}}
    base = {"method": "POST", "path": "/interactions/1/tok/callback",
            "content_type": "multipart/form-data; boundary=b", "json": payload}
    good = [{"name": "payload_json", "filename": None, "size": 10},
            {"name": "files[0]", "filename": "a.png", "size": 10}]
    assert discord_spec.validate_recorded({**base, "parts": good}) == []
    unnamed = [good[0], {"name": "files[1]", "filename": "a.png", "size": 10}]
    assert any("files[1] is not named" in p
               for p in discord_spec.validate_recorded({**base, "parts": unnamed}))
    nameless = [good[0], {"name": "files[0]", "filename": None, "size": 10}]
    assert any("has no filename" in p
               for p in discord_spec.validate_recorded({**base, "parts": nameless}))
    stray = [*good, {"name": "file", "filename": "b.png", "size": 1}]
    assert any("unexpected part 'file'" in p
               for p in discord_spec.validate_recorded({**base, "parts": stray}))


def test_chart_is_deterministic_and_sized() -> None:
    end = datetime(2022, 2, 1, tzinfo=UTC)
    times = sorted(end - timedelta(hours=h, minutes=5) for h in range(1, 200))
    series = trend("rule troops", times, end - timedelta(days=3), end)
    png = render_trend(series)
    assert png == render_trend(series)  # no time or version written into it
    assert b"Software" not in png and b"tIME" not in png
    with Image.open(io.BytesIO(render_trend(series, width_px=550, height_px=310))) as small:
        assert small.size == (550, 310)
    with pytest.raises(ValueError, match="too small"):
        render_trend(series, width_px=100, height_px=100)


@pytest.mark.parametrize("label", ["troops\x00russia", "kyiv OR " * 60, "a\x07\u200e" * 40,
                                   # two "$": read as a formula, which failed to draw
                                   '"$5 billion" OR "$10 billion"', '"$\\foo$"',
                                   "oil $80 OR $90 barrel " * 8])
def test_a_chart_of_any_label_draws_without_warnings(label: str) -> None:
    """A NUL in a typed query (no glyph) and a query wider than the picture (the layout gave
    up) made matplotlib warn; with warnings as errors, /trend failed in public."""
    end = datetime(2022, 2, 1, tzinfo=UTC)
    times = sorted(end - timedelta(hours=h, minutes=5) for h in range(1, 200))
    series = trend(label, times, end - timedelta(days=3), end)
    png = render_trend(series)  # the suite runs with warnings as errors
    with Image.open(io.BytesIO(png)) as image:
        assert image.size == (1100, 620)


def test_a_chart_title_shows_dollar_signs_as_typed() -> None:
    # "$80 OR $90" was drawn as a formula: "80OR90" in italics, its signs and spaces gone.
    import matplotlib.text

    end = datetime(2022, 2, 1, tzinfo=UTC)
    times = sorted(end - timedelta(hours=h, minutes=5) for h in range(1, 50))
    shown: list[tuple[str, bool]] = []
    real = matplotlib.text.Text.draw

    def draw(self: matplotlib.text.Text, renderer: object) -> None:
        shown.append((self.get_text(), self.get_parse_math()))
        real(self, renderer)  # type: ignore[arg-type]

    with pytest.MonkeyPatch.context() as mp:
        mp.setattr(matplotlib.text.Text, "draw", draw)
        render_trend(trend("oil $80 OR $90 barrel", times, end - timedelta(days=1), end))
    assert ("oil $80 OR $90 barrel", False) in shown
