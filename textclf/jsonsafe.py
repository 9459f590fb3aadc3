"""Parsing JSON that comes from outside (a model file, a user's upload) without a traceback and
without unbounded memory: a size limit checked before parsing, a depth limit, and one-line errors.

`json.loads` raises RecursionError on arrays or objects nested about a thousand deep (a 200 kB
file of "[" does it), and code that walks what it returned recursively can still hit the limit on
shallower input; `max_depth` keeps both away. A string escape like "\\ud800" decodes into a lone
surrogate that no UTF-8 writer accepts; those come back as U+FFFD.
"""

from __future__ import annotations

import codecs
import json
import re
from typing import Any

from textclf.data.text import replace_lone_surrogates
from textclf.errors import DataError, TextClfError

DEFAULT_MAX_DEPTH = 128
_SURROGATE = re.compile(r"\\u[dD][89a-fA-F][0-9a-fA-F]{2}|[\ud800-\udfff]")  # escaped, or already in a str


def load_json_bounded(
    raw: bytes | str,
    where: str,
    *,
    max_bytes: int,
    max_depth: int = DEFAULT_MAX_DEPTH,
    error: type[TextClfError] = DataError,
    expected: str = "a JSON document",
    hint: str = "",
) -> Any:
    """Parse `raw` (UTF-8 bytes, a leading BOM allowed, or str) and return the value, its strings
    free of lone surrogates (replaced by U+FFFD).

    Raises `error` (DataError by default) with a one-line message that starts with `where` when
    `raw` is longer than `max_bytes` (bytes, or characters for a str), is not UTF-8, is not JSON,
    or nests arrays/objects more than `max_depth` deep. `expected` says what the caller wanted
    ("a Keras model config"); `hint`, a sentence, ends the message.
    """
    tail = f" {hint}" if hint else ""
    if len(raw) > max_bytes:
        unit = "bytes" if isinstance(raw, bytes) else "characters"
        raise error(f"{where} is {len(raw):,} {unit}: expected {expected} of at most {max_bytes:,} {unit}.{tail}")
    if isinstance(raw, bytes):
        skip = len(codecs.BOM_UTF8) if raw.startswith(codecs.BOM_UTF8) else 0
        try:
            raw = raw[skip:].decode("utf-8")
        except UnicodeDecodeError as e:
            offset = skip + e.start
            raise error(
                f"{where} is not UTF-8: expected {expected}, got byte 0x{raw[offset]:02x} at offset {offset}.{tail}"
            ) from None
    too_deep = error(
        f"{where} is JSON nested too deeply: expected {expected} at most {max_depth} levels deep, got arrays or "
        f"objects nested deeper.{tail}"
    )
    try:
        value = json.loads(raw)
    except json.JSONDecodeError as e:
        raise error(
            f"{where} is not valid JSON: expected {expected}, got {e.msg.lower()} at line {e.lineno} column "
            f"{e.colno}.{tail}"
        ) from None
    except RecursionError:
        raise too_deep from None
    if json_depth(value) > max_depth:
        raise too_deep
    return _without_surrogates(value) if _SURROGATE.search(raw) else value


def _without_surrogates(value: Any) -> Any:
    """A copy of `value` with lone surrogates replaced in every string (keys too); its depth is
    already bounded, so the recursion is."""
    if isinstance(value, str):
        return replace_lone_surrogates(value)
    if isinstance(value, list):
        return [_without_surrogates(item) for item in value]
    if isinstance(value, dict):
        return {replace_lone_surrogates(key): _without_surrogates(item) for key, item in value.items()}
    return value


def json_depth(value: Any) -> int:
    """How deeply arrays and objects nest in `value` (a scalar is 0, [] and [1] are 1), without recursion."""
    depth = 0
    stack = [(value, 1)]
    while stack:
        item, level = stack.pop()
        if isinstance(item, dict):
            children = item.values()
        elif isinstance(item, list):
            children = item
        else:
            continue
        depth = max(depth, level)
        stack.extend((child, level + 1) for child in children)
    return depth
