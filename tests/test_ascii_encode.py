"""The ASCII shortcut of `encode` gives exactly the tokenizers library's ids."""

from __future__ import annotations

import numpy as np
from hypothesis import given, settings
from hypothesis import strategies as st
from tokenizers import normalizers

from textclf.data.ascii_encode import ascii_plan, encode_ascii
from textclf.data.tokenize import build_tokenizer, encode

TOKENIZER = build_tokenizer(["i was so happy", "don't panic!", "<br />great film_2 ...", "naïve café", "x y z"])
PIECES = ["<br />", "<pad>", "<unk>", "<", ">", "< a >", "<<b>>", "_", "don't", "HAPPY", "Film_2", "...", "!?",
          " ", "\t", "\n", "\r", "\x0b", "\x0c", "\x1c", "\x7f", "é", "İ", "ß", "ﬁ", "\u00a0", "１２", "x" * 3]


def library_ids(texts):
    return [np.asarray(e.ids, dtype=np.int64) for e in TOKENIZER.encode_batch(texts)]


@settings(max_examples=300, deadline=None)
@given(st.lists(st.lists(st.sampled_from(PIECES) | st.text(max_size=6), max_size=12).map("".join), max_size=6))
def test_encode_matches_the_library(texts):
    assert [x.tolist() for x in encode(TOKENIZER, texts)] == [x.tolist() for x in library_ids(texts)]


def test_shortcut_is_used_for_ascii_and_not_for_added_tokens_or_unicode():
    shortcut = encode_ascii(TOKENIZER, ["I was <br />so HAPPY", "an <unk> here", "café", ""])
    assert shortcut[0] is not None and shortcut[3] is not None and shortcut[3].dtype == np.int64
    assert shortcut[1] is None and shortcut[2] is None


def test_other_pipelines_take_the_library_path():
    other = build_tokenizer(["Some Words"])
    other.normalizer = normalizers.NFKC()  # no lowercasing: not textclf's pipeline
    assert ascii_plan(other) is None
    assert encode(other, ["Some words"])[0].tolist() == [np.asarray(other.encode("Some words").ids)][0].tolist()
