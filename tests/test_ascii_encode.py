"""`encode` gives exactly the tokenizers library's ids: its Python path for printable ASCII under
textclf's own pipeline, and the library for everything else."""

from __future__ import annotations

import numpy as np
from hypothesis import given, settings
from hypothesis import strategies as st
from tokenizers import normalizers

from textclf.data.tokenize import ascii_ids, build_tokenizer, encode, extend_vocabulary

TOKENIZER = build_tokenizer(["i was so happy", "don't panic!", "<br />great film_2 ...", "naïve café", "x y z"])
PIECES = ["<br />", "<pad>", "<unk>", "<", ">", "< a >", "<<b>>", "_", "don't", "HAPPY", "Film_2", "...", "!?",
          " ", "\t", "\n", "\r", "\x0b", "\x0c", "\x1c", "\x7f", "é", "İ", "ß", "ﬁ", "\u00a0", "１２", "x" * 3]
TRICKY = ["", " ", "<unk>", "an <unk> here", "<pad>", "I was <br /><br />so HAPPY", "<b>bold</b> < spaced > <>",
          "naïve café", "ＦＵＬＬ width", "İstanbul straße ﬁne", "x\u00a0y", "emoji 🎉 here", "１２３",
          "don't...!? film_2", "tab\tnew\nline\rcr \x0b\x0c\x1c\x7f", "<" + "a" * 101 + "> long tag"]


def library_ids(tokenizer, texts):
    return [e.ids for e in tokenizer.encode_batch(texts)]


def test_encode_matches_the_library_on_tricky_text():
    out = encode(TOKENIZER, TRICKY)
    assert all(ids.dtype == np.int64 for ids in out)
    assert [ids.tolist() for ids in out] == library_ids(TOKENIZER, TRICKY)
    assert encode(TOKENIZER, []) == []


@settings(max_examples=300, deadline=None)
@given(st.lists(st.lists(st.sampled_from(PIECES) | st.text(max_size=6), max_size=12).map("".join), max_size=6))
def test_encode_matches_the_library(texts):
    assert [x.tolist() for x in encode(TOKENIZER, texts)] == library_ids(TOKENIZER, texts)


def test_ascii_texts_skip_the_library_and_added_tokens_or_unicode_do_not():
    shortcut = ascii_ids(TOKENIZER, ["I was <br />so HAPPY", "an <unk> here", "café", ""])
    assert shortcut[0].tolist() == library_ids(TOKENIZER, ["I was <br />so HAPPY"])[0]
    assert shortcut[3].tolist() == [] and shortcut[3].dtype == np.int64
    assert shortcut[1] is None and shortcut[2] is None
    extended = extend_vocabulary(TOKENIZER, ["zebra"])  # a rebuilt pipeline is still textclf's
    assert ascii_ids(extended, ["a zebra"])[0].tolist() == [1, extended.token_to_id("zebra")]


def test_other_pipelines_take_the_library_path():
    other = build_tokenizer(["Some Words"])
    other.normalizer = normalizers.NFKC()  # no lowercasing: not textclf's pipeline
    assert ascii_ids(other, ["Some words"]) == [None]
    assert encode(other, ["Some words"])[0].tolist() == other.encode("Some words").ids


def test_a_tokenizer_changed_after_encoding_is_encoded_as_it_is_now():
    tokenizer = build_tokenizer(["some words"])
    some, words = tokenizer.token_to_id("some"), tokenizer.token_to_id("words")
    assert encode(tokenizer, ["Some words"])[0].tolist() == [some, words]
    tokenizer.normalizer = normalizers.NFKC()  # "Some" no longer lowercased: unknown
    assert encode(tokenizer, ["Some words"])[0].tolist() == [1, words]
