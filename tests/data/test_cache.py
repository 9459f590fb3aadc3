"""The token cache: a hit skips encoding, a change of the data or the tokenizer is a miss, and a damaged
entry is rebuilt with a warning, never trusted."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from textclf.data import cache
from textclf.data.cache import cache_root, cached_token_ids, count_values
from textclf.data.tokenize import build_tokenizer, encode
from textclf.errors import TextClfWarning

TEXTS = [["the cat sat", "on the mat", ""], ["a dog", "the dog barked at the cat"]]


class CountingEncoder:
    """cached_token_ids's blocks: each chunk of TEXTS encoded, counting the texts encoded."""

    def __init__(self, tokenizer) -> None:
        self.tokenizer, self.texts = tokenizer, 0

    def __call__(self):
        for texts in TEXTS:
            self.texts += len(texts)
            ids = encode(self.tokenizer, texts)
            yield np.concatenate(ids), [len(row) for row in ids]


def token_ids(tokenizer, data_key: str = "data-1") -> tuple:
    encoder = CountingEncoder(tokenizer)
    ids = cached_token_ids(data_key, tokenizer, encoder)
    return ids, encoder.texts


def rows(ids) -> list[list[int]]:
    return [ids.flat[a:b].tolist() for a, b in zip(ids.offsets[:-1], ids.offsets[1:], strict=True)]


@pytest.fixture
def tokenizer():
    return build_tokenizer([t for chunk in TEXTS for t in chunk])


def test_a_miss_encodes_and_a_hit_reads_the_same_ids_without_encoding(tokenizer):
    built, encoded = token_ids(tokenizer)
    assert encoded == 5 and not built.hit
    expected = [r.tolist() for r in encode(tokenizer, [t for chunk in TEXTS for t in chunk])]
    assert rows(built) == expected
    assert isinstance(built.flat, np.memmap) and built.flat.dtype == np.int32
    again, encoded = token_ids(tokenizer)
    assert encoded == 0 and again.hit
    assert rows(again) == expected and again.lengths.tolist() == [3, 3, 0, 2, 6]


def test_other_data_or_another_tokenizer_is_a_miss(tokenizer):
    token_ids(tokenizer)
    assert token_ids(tokenizer, data_key="data-2")[1] == 5
    smaller = build_tokenizer(["the cat"])
    other, encoded = token_ids(smaller)
    assert encoded == 5 and not other.hit
    assert rows(other)[0] == [smaller.token_to_id("the"), smaller.token_to_id("cat"), 1]  # "sat" is unknown


@pytest.mark.parametrize("damage", ["flip", "truncate", "header"])
def test_a_damaged_entry_is_rebuilt_with_a_warning(tokenizer, damage: str):
    token_ids(tokenizer)
    (folder,) = [p for p in (cache_root() / "tokens").iterdir() if p.name.startswith("ids-")]
    flat = folder / "flat.bin"
    if damage == "flip":
        raw = bytearray(flat.read_bytes())
        raw[0] ^= 0xFF
        flat.write_bytes(bytes(raw))
    elif damage == "truncate":
        flat.write_bytes(flat.read_bytes()[:-4])
    else:
        (folder / "header.json").write_text("{not json", encoding="utf-8")
    with pytest.warns(TextClfWarning, match=r"token cache .*ids-.* is damaged \(.*\); rebuilding it"):
        rebuilt, encoded = token_ids(tokenizer)
    assert encoded == 5 and not rebuilt.hit
    assert rows(rebuilt)[4] == [r.tolist() for r in encode(tokenizer, TEXTS[1])][1]
    assert token_ids(tokenizer)[1] == 0  # whole again


def test_the_cache_lives_under_textclf_cache_dir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, tokenizer):
    monkeypatch.setenv("TEXTCLF_CACHE_DIR", str(tmp_path / "mine"))
    token_ids(tokenizer)
    assert any((tmp_path / "mine" / "tokens").iterdir())


def test_values_are_counted_in_the_rows_asked_for(monkeypatch: pytest.MonkeyPatch):
    blocks = cache.row_blocks
    monkeypatch.setattr("textclf.data.cache.row_blocks", lambda offsets: blocks(offsets, tokens=3))  # many blocks
    rng = np.random.default_rng(0)
    for n in [0, 1, 7, 40]:
        offsets = np.concatenate([[0], np.cumsum(rng.integers(0, 6, n))]).astype(np.int64)
        flat = rng.integers(0, 7, offsets[-1]).astype(np.int32)
        for rows in (np.arange(n), np.arange(0, n, 3), np.sort(rng.choice(n, n * 2 // 3, replace=False))):
            expected = np.zeros(7, dtype=np.int64)
            for row in rows:
                expected += np.bincount(flat[offsets[row]:offsets[row + 1]], minlength=7)
            assert count_values(flat, offsets, rows, 7).tolist() == expected.tolist()
