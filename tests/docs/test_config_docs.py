"""docs/configuration.md's key table and config.example.toml say what the config models take:
every key the table names exists with the default it gives, every key a file may set is in the
table, and the example loads, also with each of its commented-out settings switched on (a user
uncomments a line to use it). Plain file reading and the config models: no network."""

from __future__ import annotations

import re
import tomllib
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
from pydantic import BaseModel

from tests.docs.test_links import CODE_SPAN, REPO
from watchers.config import (
    INTERNAL_KEYS,
    Config,
    DiscordConfig,
    FetchConfig,
    RouteConfig,
    RuleConfig,
    StorageConfig,
    StoriesConfig,
    SurgeConfig,
    load_config,
    parse_duration,
)
from watchers.sources.feed import FeedSourceConfig
from watchers.sources.folder import FolderSourceConfig
from watchers.sources.page import PageSourceConfig

CONFIG_DOC = REPO / "docs" / "configuration.md"
EXAMPLE = REPO / "config.example.toml"

# The table's sections and the models that take their keys ("" is the file's top level).
SECTIONS: dict[str, tuple[type[BaseModel], ...]] = {
    "": (Config,),
    "[storage]": (StorageConfig,),
    "[discord]": (DiscordConfig,),
    "[fetch]": (FetchConfig,),
    "[stories]": (StoriesConfig,),
    "[surge]": (SurgeConfig,),
    "[channels.NAME]": (RouteConfig,),
    "[[rules]]": (RuleConfig,),
    "[[sources]]": (FolderSourceConfig, FeedSourceConfig, PageSourceConfig),
}
# Tables of names the user chooses, and keys that are not the user's to set.
NOT_KEYS = {("", "base_dir"), ("", "storage"), ("", "discord"), ("", "fetch"), ("", "stories"),
            ("", "surge"), ("", "sources"), ("", "rules")}
SECTION_AT_START = re.compile(r"^(\[\[?[a-z.A-Z]+\]\]?)\s*(.*)$")


def rows() -> list[list[str]]:
    """The cells of each row of the table headed | key | default | meaning |."""
    found, inside = [], False
    for line in CONFIG_DOC.read_text(encoding="utf-8").split("\n"):
        if line.startswith("| key | default |"):
            inside = True
        elif inside and line.startswith("|"):
            if not line.startswith("|---"):
                cells = re.split(r"(?<!\\)\|", line.strip().strip("|"))
                found.append([c.strip() for c in cells])
        elif inside:
            break
    return found


def spans(text: str) -> list[str]:
    return [m.group(2).strip() for m in CODE_SPAN.finditer(text)]


def declared(cell: str) -> list[tuple[str, list[str]]]:
    """(section, keys) the key cell names: `[discord] ack_from`, `escalate_after` is one
    section's two keys; a later span of a section alone ("also on `[channels.NAME]`") gives
    the same keys to it; a capitalised word (NAME, WORD) stands for a name the user picks."""
    out: list[tuple[str, list[str]]] = []
    section = ""
    keys: list[str] = []
    for span in spans(cell):
        m = SECTION_AT_START.match(span)
        rest = span
        if m:
            if not m.group(2) and keys:  # "(also on `[channels.NAME]`)"
                out.append((m.group(1), list(keys)))
                continue
            if keys:
                out.append((section, keys))
            section, keys, rest = m.group(1), [], m.group(2)
        keys += [k.strip() for k in rest.split(",") if k.strip() and not k.strip().isupper()]
    if keys:
        out.append((section, keys))
    return out


def fields(section: str) -> dict[str, Any]:
    """Each key a file may set in ``section``, with its default (None where there is none)."""
    taken: dict[str, Any] = {}
    for model in SECTIONS[section]:
        for name, info in model.model_fields.items():
            if name in INTERNAL_KEYS or (section, name) in NOT_KEYS:
                continue
            taken[name] = (None if info.is_required()
                           else info.get_default(call_default_factory=True))
    return taken


def documented_value(text: str) -> Any:
    """A default as the table writes it, as the model holds it; ``...`` when it is prose."""
    text = text.strip().strip("`").strip()
    if text == "none":
        return None
    if text == "—":  # no value of its own (a digest route's schedule is one of two keys)
        return ...
    if text in ("true", "false"):
        return text == "true"
    if re.fullmatch(r"\d+", text):
        return int(text)
    if re.fullmatch(r"\[\]", text):
        return []
    if re.fullmatch(r'"[^"]*"', text):
        return text[1:-1]
    if m := re.fullmatch(r"(\d+) MiB", text):
        return int(m.group(1)) * 1024 * 1024
    if re.fullmatch(r"(\d+[a-z]+)+", text):
        try:
            return parse_duration(text)
        except ValueError:
            return text
    if re.fullmatch(r"[\w.]+", text):
        return text
    return ...


def documented_defaults(keys: list[str], cell: str) -> dict[str, Any]:
    """The defaults a row's default cell gives its keys: one value per key in order, or
    ``key = value`` pairs; nothing for a cell in prose."""
    pairs = dict(re.findall(r'`(\w+) = ("[^"]*"|[^`]*)`', cell))
    if pairs:
        return {k: documented_value(v) for k, v in pairs.items()}
    values = [v.strip() for v in cell.split(",")]
    if len(values) != len(keys):
        return {}
    return {k: v for k, v in zip(keys, map(documented_value, values), strict=True)
            if v is not ...}


def same_default(documented: Any, actual: Any) -> bool:
    if isinstance(actual, timedelta) and isinstance(documented, timedelta):
        return actual == documented
    if isinstance(actual, float) and isinstance(documented, int):
        return actual == documented
    return bool(documented == actual)


def test_every_key_the_table_names_exists_with_its_default() -> None:
    problems = []
    table = rows()
    assert len(table) > 20, "the key table of docs/configuration.md was not found"
    for cells in table:
        for section, keys in declared(cells[0]):
            if section not in SECTIONS:
                if section not in ("[channels]", "[aliases]"):
                    problems.append(f"{cells[0]}: no section {section} in the config models")
                continue
            taken = fields(section)
            for key in keys:
                if key not in taken:
                    problems.append(f"{section} {key}: no such key in the config models")
            for key, value in documented_defaults(keys, cells[1]).items():
                if key in taken and not same_default(value, taken[key]):
                    problems.append(f"{section} {key}: documented default {value!r}, "
                                    f"the models' {taken[key]!r}")
    assert not problems, "docs/configuration.md disagrees with the config:\n" + "\n".join(problems)


def test_every_key_a_file_may_set_is_in_the_table() -> None:
    named: set[tuple[str, str]] = set()
    for cells in rows():
        decl = declared(cells[0])
        for section, keys in decl:
            named.update((section, k) for k in keys)
        # The meaning may name more keys of its row's section (`path` of a folder source) or
        # of another one (`[[rules]] surge = true/false` beside [surge]).
        sections = {s for s, _ in decl}
        for span in spans(cells[2]):
            m = SECTION_AT_START.match(span)
            if m:
                named.add((m.group(1), re.split(r"[\s=]", m.group(2), maxsplit=1)[0]))
            else:
                word = re.split(r"[\s=]", span, maxsplit=1)[0]
                named.update((s, word) for s in sections)
    missing = [f"{section} {key}".strip() for section in SECTIONS for key in fields(section)
               if (section, key) not in named
               and not (section == "" and key in ("channels", "aliases"))]
    assert not missing, f"config keys docs/configuration.md does not document: {missing}"


def uncommented(text: str) -> str:
    """The example with every commented-out setting switched on: a line `# key = value` or
    `# [table]` loses its leading `# ` (prose comments stay as they are)."""
    return re.sub(r"(?m)^# (?=[a-z_]+ = |\[)", "", text)


def test_the_example_config_loads() -> None:
    cfg = load_config(EXAMPLE)
    assert cfg.sources and cfg.rules


def test_the_example_configs_commented_settings_load_when_switched_on(tmp_path: Path) -> None:
    text = EXAMPLE.read_text(encoding="utf-8")
    switched = uncommented(text)
    assert switched != text, "no commented-out setting found in config.example.toml"
    (tmp_path / "seeds").mkdir()
    path = tmp_path / "config.toml"
    path.write_text(switched, encoding="utf-8")
    load_config(path)  # raises ConfigError naming the line a user could not uncomment


def test_every_key_the_example_sets_is_in_the_table() -> None:
    data = tomllib.loads(uncommented(EXAMPLE.read_text(encoding="utf-8")))
    used: set[tuple[str, str]] = set()
    for name, value in data.items():
        if name in ("channels", "aliases"):
            for route in value.values() if name == "channels" else ():
                if isinstance(route, dict):
                    used.update(("[channels.NAME]", k) for k in route)
        elif isinstance(value, list):
            used.update((f"[[{name}]]", k) for item in value for k in item)
        elif isinstance(value, dict):
            used.update((f"[{name}]", k) for k in value)
        else:
            used.add(("", name))
    documented = {(s, k) for cells in rows() for s, keys in declared(cells[0]) for k in keys}
    documented |= {(s, k) for s in SECTIONS for k in fields(s)}  # the table covers these
    unknown = sorted(f"{s} {k}" for s, k in used - documented)
    assert not unknown, f"config.example.toml sets keys the docs do not name: {unknown}"


@pytest.mark.parametrize(("cell", "expected"), [
    ("`[discord] ack_from`, `escalate_after`, `escalation_role`",
     [("[discord]", ["ack_from", "escalate_after", "escalation_role"])]),
    ("`[channels.NAME] quiet_hours, break_through`",
     [("[channels.NAME]", ["quiet_hours", "break_through"])]),
    ("`[[rules]] template`, `template_style` (also on `[channels.NAME]`)",
     [("[channels.NAME]", ["template", "template_style"]),
      ("[[rules]]", ["template", "template_style"])]),
    ("`[aliases] WORD`", []),
    ("`threshold`", [("", ["threshold"])]),
])
def test_a_key_cell_is_read_as_written(cell: str, expected: list[tuple[str, list[str]]]) -> None:
    assert sorted(declared(cell)) == sorted(expected)


def test_a_wrong_key_or_default_in_the_table_is_found(tmp_path: Path, monkeypatch: Any) -> None:
    doc = tmp_path / "configuration.md"
    doc.write_text("| key | default | meaning |\n|---|---|---|\n"
                   "| `[fetch] timeout`, `conect_timeout` | `20s`, `10s` | x |\n"
                   "| `[surge] sigma` | `2` | x |\n" * 11)
    monkeypatch.setattr(f"{__name__}.CONFIG_DOC", doc)
    with pytest.raises(AssertionError) as info:
        test_every_key_the_table_names_exists_with_its_default()
    assert "[fetch] conect_timeout: no such key" in str(info.value)
    assert "[surge] sigma: documented default 2, the models' 3.0" in str(info.value)
