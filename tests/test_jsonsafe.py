"""load_json_bounded: JSON from outside in, one-line errors out (never RecursionError or a
UnicodeDecodeError), size and depth limits, no lone surrogates in what comes back."""

from __future__ import annotations

import json

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from textclf.errors import DataError, ModelFormatError, TextClfError
from textclf.jsonsafe import json_depth, load_json_bounded

LIMIT = 1 << 20


def test_parses_bytes_str_and_a_bom() -> None:
    assert load_json_bounded(b'{"a": [1, 2.5, null, "x"]}', "f.json", max_bytes=LIMIT) == {"a": [1, 2.5, None, "x"]}
    assert load_json_bounded('["caf\u00e9"]', "f.json", max_bytes=LIMIT) == ["café"]
    assert load_json_bounded(b"\xef\xbb\xbf[1]", "f.json", max_bytes=LIMIT) == [1]


@pytest.mark.parametrize("raw", [b"[" * 100_000, b'{"a":' * 100_000, "[" * 100_000],
                         ids=["arrays", "objects", "str"])
def test_nested_100k_deep_is_one_line(raw) -> None:
    with pytest.raises(DataError, match=r"^config\.json is JSON nested too deeply: expected a JSON document at "
                                        r"most 128 levels deep, got arrays or objects nested deeper\.$"):
        load_json_bounded(raw, "config.json", max_bytes=LIMIT)


def test_depth_limit_below_the_recursion_limit() -> None:
    ok = "[" * 128 + "]" * 128
    assert json_depth(load_json_bounded(ok, "x", max_bytes=LIMIT)) == 128
    with pytest.raises(DataError, match="nested too deeply: expected a JSON document at most 128 levels"):
        load_json_bounded("[" + ok + "]", "x", max_bytes=LIMIT)
    with pytest.raises(DataError, match="at most 3 levels deep"):
        load_json_bounded('{"a": {"b": {"c": [1]}}}', "x", max_bytes=LIMIT, max_depth=3)


def test_too_big_is_refused_before_parsing() -> None:
    with pytest.raises(ModelFormatError, match=r"^m\.json is 2,000,001 bytes: expected a Keras model config of at "
                                               r"most 1,000,000 bytes\. Save it again\.$"):
        load_json_bounded(b" " * 2_000_001, "m.json", max_bytes=1_000_000, error=ModelFormatError,
                          expected="a Keras model config", hint="Save it again.")


def test_not_utf8_names_the_byte_and_offset() -> None:
    with pytest.raises(DataError, match=r"^x\.json is not UTF-8: expected a JSON document, got byte 0xff at "
                                        r"offset 9\.$"):
        load_json_bounded(b'\xef\xbb\xbf{"a": \xff}', "x.json", max_bytes=LIMIT)


@pytest.mark.parametrize("raw, got", [
    (b"{not json", r"expecting property name enclosed in double quotes at line 1 column 2"),
    (b"", r"expecting value at line 1 column 1"),
    (b"[1] [2]", r"extra data at line 1 column 5"),
    (b"nope", r"expecting value at line 1 column 1"),
])
def test_invalid_json(raw: bytes, got: str) -> None:
    with pytest.raises(DataError, match=rf"^x\.json is not valid JSON: expected a JSON document, got {got}\.$"):
        load_json_bounded(raw, "x.json", max_bytes=LIMIT)


def test_lone_surrogates_come_back_as_replacement_characters() -> None:
    value = load_json_bounded(rb'{"k\udc00": ["a\ud800b", "\ud83d\ude00"], "n": 1}', "x", max_bytes=LIMIT)
    assert value == {"k\ufffd": ["a\ufffdb", "\U0001f600"], "n": 1}
    json.dumps(value, ensure_ascii=False).encode("utf-8")


@settings(max_examples=300, deadline=None)
@given(st.binary(max_size=200) | st.text(max_size=200).map(lambda t: t.encode("utf-8", "surrogatepass")))
def test_any_bytes_give_a_value_or_a_textclf_error(raw: bytes) -> None:
    try:
        load_json_bounded(raw, "x", max_bytes=100, max_depth=4)
    except TextClfError as error:
        assert "\n" not in str(error)
