"""Templates in the config file: on rules and on route tables, checked on load with errors that
name the key, and a rule's template winning over its route's."""

from __future__ import annotations

from typing import Any

import pytest

from watchers.config import RouteConfig, RuleConfig, parse_config
from watchers.errors import ConfigError


def config(**extra: Any) -> dict[str, Any]:
    data: dict[str, Any] = {
        "channels": {"alerts": 1, "desk": {"target": 2, "template": "{headline} · {source}",
                                           "template_style": "text"}},
        "rules": [{"name": "a", "query": "a"}, {"name": "b", "query": "b"}],
    }
    data.update(extra)
    return data


def test_templates_load_on_rules_and_routes() -> None:
    cfg = parse_config(config(rules=[
        {"name": "a", "query": "a", "template": "**{title}**\n{snippet}"},
        {"name": "b", "query": "b", "channel": "desk"}]))
    assert cfg.rules[0].template == "**{title}**\n{snippet}"
    assert cfg.rules[0].template_style == "embed"
    assert cfg.rules[1].template is None
    route = cfg.route("desk")
    assert route is not None and route.template == "{headline} · {source}"
    assert route.template_style == "text"
    plain = cfg.route("alerts")
    assert plain is not None and plain.template is None and plain.template_style == "embed"


def test_an_unknown_placeholder_names_the_rule_key_and_the_known_ones() -> None:
    rules = [{"name": "a", "query": "a"}, {"name": "b", "query": "b"},
             {"name": "c", "query": "c", "template": "{titel} {link}"}]
    with pytest.raises(ConfigError) as err:
        parse_config(config(rules=rules))
    (issue,) = err.value.issues
    assert str(issue).startswith("rules[2].template: unknown placeholder {titel}; known: {title}")
    assert "{snippet}" in str(issue)


def test_a_bad_route_template_names_the_route() -> None:
    with pytest.raises(ConfigError) as err:
        parse_config(config(channels={"desk": {"target": 2, "template": "{title"}}))
    (issue,) = err.value.issues
    assert str(issue).startswith("channels.desk.template: unclosed '{'")


def test_every_template_problem_of_a_file_at_once() -> None:
    with pytest.raises(ConfigError) as err:
        parse_config(config(
            channels={"desk": {"target": 2, "template": "@everyone {title}"}},
            rules=[{"name": "a", "query": "a", "channel": "desk", "template": "}"},
                   {"name": "b", "query": "b", "channel": "desk", "template_style": "html"}]))
    where = sorted(i.path for i in err.value.issues)
    assert where == ["channels.desk.template", "rules[0].template", "rules[1].template_style"]


def test_templates_reach_a_stored_rule_unchanged() -> None:
    # rules added at run time are dumped to the store and validated back
    rule = RuleConfig(name="r", query="q", template="{title} {{x}}", template_style="text")
    again = RuleConfig.model_validate(rule.model_dump())
    assert again == rule
    with pytest.raises(ValueError, match="unknown placeholder"):
        RouteConfig(target=1, template="{nope}")
