"""``loads_json``: the decoder the import, folder sources and JSON Feeds share, made once, must
read every document as ``json.loads(..., parse_int=json_int)`` does, errors included."""

from __future__ import annotations

import json
import threading

import pytest

from watchers.models import LongInt, json_int, loads_json

DOCUMENTS: list[str | bytes] = [
    '{"id": "a1", "title": "Kyiv", "text": "x", "n": 12, "f": 1.5, "t": true, "z": null}',
    '  [1, 2, {"nested": ["deep", -3e10]}]  ',
    '{"big": ' + "7" * 4500 + "}",  # past int()'s digit limit: kept as its digits
    '{"u": "\\u041a\\u0438\\u0457\\u0432", "s": "\\ud83d\\ude00", "lone": "\\ud800"}',
    "{\"title\": \"Київ\"}".encode(),
    "{\"title\": \"Київ\"}".encode("utf-16"),
    "{\"title\": \"Київ\"}".encode("utf-32-le"),
    b'\xef\xbb\xbf{"bom": 1}',  # a UTF-8 byte order mark in bytes: json.loads reads past it
    '"just a string"',
    "NaN",
]

BAD: list[str | bytes] = [
    "",
    "   ",
    "{",
    '{"a": 1} trailing',
    "\ufeff{\"bom\": 1}",  # a str opening with a byte order mark: refused
    "{'single': 1}",
    '{"a": [1, 2,]}',
    b"\xff\xfe\x00",
    "[" * 100_000,
]


@pytest.mark.parametrize("doc", DOCUMENTS, ids=lambda d: repr(d)[:30])
def test_values_are_json_loads_values(doc: str | bytes) -> None:
    got = loads_json(doc)
    want = json.loads(doc, parse_int=json_int)
    # (compared as repr: NaN is no value equal to itself)
    assert repr(got) == repr(want)
    assert type(got) is type(want)


def test_long_numbers_stay_digits() -> None:
    digits = "9" * 4500
    (got,) = loads_json('{"id": ' + digits + "}").values()
    # kept as its digits, and still a number: as a str it passed for a string field's value
    assert isinstance(got, LongInt) and not isinstance(got, str) and str(got) == digits
    assert loads_json('{"id": 42}') == {"id": 42}


@pytest.mark.parametrize("doc", BAD, ids=lambda d: repr(d)[:30])
def test_errors_are_json_loads_errors(doc: str | bytes) -> None:
    with pytest.raises(Exception) as want:
        json.loads(doc, parse_int=json_int)
    with pytest.raises(Exception) as got:
        loads_json(doc)
    assert type(got.value) is type(want.value)
    assert str(got.value) == str(want.value)


def test_one_decoder_serves_threads_at_once() -> None:
    """The shared decoder keeps no state between documents that another thread could see."""
    docs = [json.dumps({"id": f"t{i}", "n": i, "words": ["w"] * (i % 50)}) for i in range(400)]
    wrong: list[str] = []

    def read(offset: int) -> None:
        for i in range(2000):
            doc = docs[(i + offset) % len(docs)]
            if loads_json(doc) != json.loads(doc):
                wrong.append(doc)

    threads = [threading.Thread(target=read, args=(k * 37,)) for k in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=60)
    assert not wrong


def test_other_kinds_of_input_as_json_loads() -> None:
    assert loads_json(bytearray(b'{"a": 1}')) == json.loads(bytearray(b'{"a": 1}')) == {"a": 1}
    for wrong in (5, memoryview(b"{}"), None):
        with pytest.raises(TypeError) as want:
            json.loads(wrong)  # type: ignore[arg-type]
        with pytest.raises(TypeError) as got:
            loads_json(wrong)  # type: ignore[arg-type]
        assert str(got.value) == str(want.value)
