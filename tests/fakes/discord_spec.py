"""Validate request bodies sent to Discord against Discord's OpenAPI spec.

The spec lives outside the repository, at ``<repo>/../shared/discord-api-spec/openapi.json``
(``specs/openapi.json`` of discord/discord-api-spec, OpenAPI 3.1 / API v10). When it is absent,
every validation function calls :func:`pytest.skip` with a clear message, so tests depending on
it are skipped rather than failing.

Public API
----------
- :data:`SPEC_PATH` - where the spec is looked for.
- :func:`spec_available` - ``True`` if the spec file exists.
- :func:`find_operation(method, path)` - ``(path_template, operation_dict)`` or ``None``.
- :func:`validate_request(method, path, body, ...)` - list of problems (empty = valid).
- :func:`validate_recorded(request)` - same, for a recorded request (an object or a dict with
  ``method``, ``path``, ``json`` and optionally ``query`` / ``content_type``), e.g. the
  :class:`~tests.fakes.discord_emulator.RecordedRequest` objects of the emulator.
- :func:`assert_valid(request)` - raises ``AssertionError`` listing the problems.
- :func:`message_limit_problems(message_dict)` - the two documented limits the spec lacks:
  ``content`` at most 2000 characters, all embed text of one message at most 6000.

Details
-------
- ``path`` may carry the ``/api/v10`` (or ``/api``) prefix and a query string; both are stripped.
- ``$ref``\\ s (``#/components/...``) are resolved by validating with a JSON Schema 2020-12
  validator whose root document carries the spec's ``components``.
- ``SnowflakeType`` accepts integers too (discord.py sends e.g. ``allowed_mentions.users`` as
  ints, which Discord accepts).
- Multipart bodies: validate the parsed ``payload_json`` (pass it as ``body``); with the
  request's ``parts`` (name, filename, content_type, size each, as the emulator records them)
  the upload itself is checked by :func:`multipart_problems` against Discord's "Uploading
  Files" rules: the operation takes ``multipart/form-data``, one ``payload_json`` part, files as
  ``files[n]`` parts with a filename, each named by an ``attachments`` entry ``{"id": n}``, at
  most 10 files of at most 10 MiB.
- Query parameters are checked by name against the operation's declared parameters, plus
  the few :data:`SPEC_QUERY_GAPS` Discord accepts and discord.py sends that the spec omits
  (each named, per operation; anything else undeclared is still a problem).
"""

from __future__ import annotations

import copy
import functools
import json
import re
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any
from urllib.parse import parse_qsl, urlsplit

SPEC_PATH: Path = (
    Path(__file__).resolve().parents[2].parent / "shared" / "discord-api-spec" / "openapi.json"
)

#: Documented limits missing from the spec.
MAX_CONTENT_LENGTH = 2000
MAX_EMBED_TOTAL_TEXT = 6000
MAX_FILES = 10
MAX_FILE_BYTES = 10 * 1024 * 1024  # a server without boosts

_FILE_PART = re.compile(r"files\[(\d+)\]")

#: Query parameters Discord accepts that the spec does not declare, per operation id. Each is a
#: known gap, not a loosening: only that name, only on that operation.
SPEC_QUERY_GAPS: dict[str, frozenset[str]] = {
    # discord.py's ForumChannel.create_thread sends use_nested_fields=1 with every forum post
    # (it says the message's fields are nested under "message", the body shape the spec
    # documents anyway); Discord accepts it, but the spec's create_thread declares no query
    # parameter at all.
    "create_thread": frozenset({"use_nested_fields"}),
}

_API_PREFIX = re.compile(r"^/api(?:/v\d+)?(?=/)")

# Operations whose JSON body is (or, for interaction callbacks, contains under "data") a message.
_MESSAGE_OPERATIONS = {
    "create_message",
    "update_message",
    "execute_webhook",
    "update_webhook_message",
    "update_original_webhook_message",
    "create_interaction_response",
}


def spec_available() -> bool:
    """``True`` if the OpenAPI document exists at :data:`SPEC_PATH`."""
    return SPEC_PATH.is_file()


def _require_spec() -> None:
    if not spec_available():
        import pytest

        pytest.skip(
            f"Discord OpenAPI spec not found at {SPEC_PATH} "
            "(expected specs/openapi.json of discord/discord-api-spec there); "
            "skipping request-body validation"
        )


@functools.lru_cache(maxsize=1)
def load_spec() -> dict[str, Any]:
    """The spec, with ``SnowflakeType`` widened to accept integers. Cached."""
    _require_spec()
    with SPEC_PATH.open(encoding="utf-8") as fh:
        spec: dict[str, Any] = json.load(fh)
    schemas = spec["components"]["schemas"]
    original = copy.deepcopy(schemas["SnowflakeType"])
    schemas["SnowflakeType"] = {"anyOf": [original, {"type": "integer", "minimum": 0}]}
    return spec


def _split_path(path: str) -> tuple[str, dict[str, str]]:
    parts = urlsplit(path)
    bare = _API_PREFIX.sub("", parts.path) or "/"
    return bare, dict(parse_qsl(parts.query, keep_blank_values=True))


@functools.lru_cache(maxsize=1)
def _templates() -> list[tuple[str, list[str]]]:
    return [(t, t.strip("/").split("/")) for t in load_spec()["paths"]]


def match_template(path: str) -> str | None:
    """The spec path template matching a concrete path (literal segments win), or ``None``."""
    bare, _ = _split_path(path)
    segments = bare.strip("/").split("/")
    best: tuple[int, str] | None = None
    for template, tsegs in _templates():
        if len(tsegs) != len(segments):
            continue
        literal = 0
        for t, s in zip(tsegs, segments, strict=True):
            if t.startswith("{") and t.endswith("}"):
                continue
            if t != s:
                break
            literal += 1
        else:
            if best is None or literal > best[0]:
                best = (literal, template)
    return None if best is None else best[1]


def find_operation(method: str, path: str) -> tuple[str, dict[str, Any]] | None:
    """``(template, operation)`` for an HTTP method and concrete (or template) path."""
    template = match_template(path)
    if template is None:
        return None
    op = load_spec()["paths"][template].get(method.lower())
    if op is None:
        return None
    return template, op


@functools.lru_cache(maxsize=256)
def _validator(template: str, method: str, media_type: str) -> Any:
    from jsonschema import Draft202012Validator

    spec = load_spec()
    op = spec["paths"][template][method]
    schema = op["requestBody"]["content"][media_type]["schema"]
    root = {
        "$schema": "https://json-schema.org/draft/2020-12/schema",
        # "#/components/..." references resolve against this root document.
        "components": spec["components"],
        "allOf": [schema],
    }
    return Draft202012Validator(root)


def _fmt_error(err: Any) -> str:
    where = "/".join(str(p) for p in err.absolute_path) or "<body>"
    msg = err.message
    if len(msg) > 300:
        inst = err.instance
        size = f" (length {len(inst)})" if isinstance(inst, (str, list, dict)) else ""
        msg = f"fails {err.validator}={err.validator_value!r}{size}: {repr(inst)[:60]}..."
    if err.context:
        # For oneOf/anyOf failures, show the most relevant sub-errors.
        best = sorted(err.context, key=lambda e: -len(e.absolute_path))[:3]
        details = "; ".join(
            f"{'/'.join(str(p) for p in e.absolute_path) or '<body>'}: {e.message[:160]}"
            for e in best
        )
        msg = f"{msg} [{details}]"
    return f"{where}: {msg}"


def _text_len(value: Any) -> int:
    return len(value) if isinstance(value, str) else 0


def _embed_text_total(embeds: Iterable[Any]) -> int:
    total = 0
    for embed in embeds:
        if not isinstance(embed, Mapping):
            continue
        total += _text_len(embed.get("title"))
        total += _text_len(embed.get("description"))
        for field in embed.get("fields") or []:
            if isinstance(field, Mapping):
                total += _text_len(field.get("name")) + _text_len(field.get("value"))
        footer = embed.get("footer")
        if isinstance(footer, Mapping):
            total += _text_len(footer.get("text"))
        author = embed.get("author")
        if isinstance(author, Mapping):
            total += _text_len(author.get("name"))
    return total


def message_limit_problems(message: Any, *, where: str = "") -> list[str]:
    """Check the two documented message limits the spec does not encode."""
    problems: list[str] = []
    if not isinstance(message, Mapping):
        return problems
    prefix = f"{where}/" if where else ""
    content = message.get("content")
    if isinstance(content, str) and len(content) > MAX_CONTENT_LENGTH:
        problems.append(
            f"{prefix}content: {len(content)} characters, Discord allows at most "
            f"{MAX_CONTENT_LENGTH}"
        )
    embeds = message.get("embeds")
    if isinstance(embeds, list):
        total = _embed_text_total(embeds)
        if total > MAX_EMBED_TOTAL_TEXT:
            problems.append(
                f"{prefix}embeds: {total} characters of embed text in total, Discord allows "
                f"at most {MAX_EMBED_TOTAL_TEXT}"
            )
    return problems


def validate_request(
    method: str,
    path: str,
    body: Any = None,
    *,
    query: Mapping[str, Any] | None = None,
    content_type: str | None = None,
    parts: Iterable[Mapping[str, Any]] | None = None,
) -> list[str]:
    """Problems with one request (empty list = valid).

    ``body`` is the parsed JSON body (for multipart requests: the parsed ``payload_json``),
    or ``None`` when the request had no body. ``parts``: a multipart request's parts, checked
    by :func:`multipart_problems` when ``content_type`` is multipart.
    """
    _require_spec()
    method = method.upper()
    bare, path_query = _split_path(path)
    query = {**path_query, **(query or {})}
    found = find_operation(method, bare)
    if found is None:
        return [f"{method} {bare}: no such operation in Discord's OpenAPI spec"]
    template, op = found
    label = f"{method} {template} ({op.get('operationId')})"
    problems: list[str] = []
    if content_type and content_type.startswith("multipart/form-data"):
        problems.extend(f"{label}: {p}" for p in multipart_problems(op, body, list(parts or [])))

    declared = {
        p.get("name")
        for p in op.get("parameters", [])
        if isinstance(p, Mapping) and p.get("in") == "query"
    }
    declared |= SPEC_QUERY_GAPS.get(str(op.get("operationId")), frozenset())
    for name in query:
        if name not in declared:
            problems.append(f"{label}: undeclared query parameter {name!r}")

    request_body = op.get("requestBody")
    if body is None:
        if request_body and request_body.get("required") and method not in ("GET", "DELETE"):
            problems.append(f"{label}: request body is required but none was sent")
        return problems
    if not request_body:
        problems.append(f"{label}: operation takes no request body, got {type(body).__name__}")
        return problems

    content = request_body.get("content", {})
    media_type = "application/json"
    if media_type not in content:
        media_type = next(iter(content))
    validator = _validator(template, method.lower(), media_type)
    errors = sorted(validator.iter_errors(body), key=lambda e: list(e.absolute_path))
    problems.extend(f"{label}: {_fmt_error(e)}" for e in errors)

    if op.get("operationId") in _MESSAGE_OPERATIONS and isinstance(body, Mapping):
        if op.get("operationId") == "create_interaction_response":
            data_problems = message_limit_problems(body.get("data"), where="data")
            problems.extend(f"{label}: {p}" for p in data_problems)
        else:
            problems.extend(f"{label}: {p}" for p in message_limit_problems(body))
    return problems


def multipart_problems(op: Mapping[str, Any], body: Any,
                       parts: list[Mapping[str, Any]]) -> list[str]:
    """What Discord would refuse in a multipart upload (see the module docstring): ``op`` the
    spec operation, ``body`` the parsed ``payload_json``, ``parts`` the request's parts."""
    problems: list[str] = []
    content = (op.get("requestBody") or {}).get("content", {})
    if "multipart/form-data" not in content:
        problems.append("operation does not take multipart/form-data")
    names = [p.get("name") for p in parts]
    if names.count("payload_json") != 1:
        problems.append(f"multipart: expected one payload_json part, got "
                        f"{names.count('payload_json')}")
    files: dict[str, Mapping[str, Any]] = {}
    for part in parts:
        name = part.get("name")
        if name == "payload_json":
            continue
        m = _FILE_PART.fullmatch(str(name))
        if m is None:
            problems.append(f"multipart: unexpected part {name!r} (files go in files[n])")
            continue
        if m.group(1) in files:
            problems.append(f"multipart: part {name} appears twice")
        files[m.group(1)] = part
        if not part.get("filename"):
            problems.append(f"multipart: part {name} has no filename")
        if int(part.get("size") or 0) > MAX_FILE_BYTES:
            problems.append(f"multipart: part {name} is {part.get('size')} bytes, more than "
                            f"{MAX_FILE_BYTES}")
    if len(files) > MAX_FILES:
        problems.append(f"multipart: {len(files)} files, Discord allows at most {MAX_FILES}")
    message = body
    if op.get("operationId") == "create_interaction_response" and isinstance(body, Mapping):
        message = body.get("data")  # an interaction callback carries its message in "data"
    listed = message.get("attachments") if isinstance(message, Mapping) else None
    if body is None and files:
        problems.append("multipart: files without a payload_json naming them in attachments")
    ids = {str(a.get("id")) for a in listed or [] if isinstance(a, Mapping)}
    for n in sorted(files, key=int):
        if n not in ids:
            problems.append(f"multipart: part files[{n}] is not named by an attachments entry "
                            f"with id {n}")
    return problems


def _get(obj: Any, name: str, default: Any = None) -> Any:
    if isinstance(obj, Mapping):
        return obj.get(name, default)
    return getattr(obj, name, default)


def validate_recorded(request: Any) -> list[str]:
    """Validate a recorded request (object or dict with method, path, json[, query])."""
    return validate_request(
        _get(request, "method"),
        _get(request, "path"),
        _get(request, "json"),
        query=_get(request, "query"),
        content_type=_get(request, "content_type"),
        parts=_get(request, "parts"),
    )


def validate_many(requests: Iterable[Any]) -> list[str]:
    """Problems across many recorded requests."""
    problems: list[str] = []
    for req in requests:
        problems.extend(validate_recorded(req))
    return problems


def assert_valid(request: Any) -> None:
    """Assert that a recorded request (or an iterable of them) is spec-valid."""
    if isinstance(request, (list, tuple)):
        problems = validate_many(request)
    else:
        problems = validate_recorded(request)
    assert not problems, "Discord would reject this request:\n  " + "\n  ".join(problems)
