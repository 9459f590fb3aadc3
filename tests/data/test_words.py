"""The words of a chunk (textclf.data.words) are the library's normalizer + pre-tokenizer words, text by
text, on its pyarrow path (printable ASCII) and its library path (the rest) alike; a vocabulary counted
from them is the one the tokenizers trainer learns; a word's id is the one encoding gives it."""

from __future__ import annotations

import numpy as np
import pyarrow as pa
from hypothesis import given, settings
from hypothesis import strategies as st

from textclf.data.text import clean_text
from textclf.data.tokenize import build_tokenizer, encode, extend_vocabulary, tokenizer_from_counts, word_ids
from textclf.data.words import PIPELINE, WordTable, chunk_words, special_rows, strings

PIECES = ["<br />", "<pad>", "<unk>", "<", ">", "< a >", "<<b>>", "<" + "a" * 100 + ">", "<" + "a" * 101 + ">", "_",
          "don't", "HAPPY", "Film_2", "...", "!?", "~`|\\^", " ", "  ", "\t", "\n", "\r", "\x0b", "\x0c", "\x1c",
          "\x07", "\x7f", "\x85", "é", "İ", "ß", "ﬁ", "\u00a0", "\u2028", "１２", "x" * 3]
ASCII = [piece for piece in PIECES if all(c in "\t\n\r" or " " <= c <= "~" for c in piece)]
TEXTS = st.lists(st.lists(st.sampled_from(PIECES) | st.text(max_size=6), max_size=12).map("".join), max_size=8)
ASCII_TEXTS = st.lists(st.lists(st.sampled_from(ASCII) | st.text(st.characters(min_codepoint=32, max_codepoint=126),
                                                                  max_size=6), max_size=12).map("".join), max_size=8)


def library_words(text: str) -> list[str]:
    normalized = PIPELINE.normalizer.normalize_str(clean_text(text))
    return [word for word, _ in PIPELINE.pre_tokenizer.pre_tokenize_str(normalized)]


def rows(chunk) -> list[list[str]]:
    ends = np.cumsum(chunk.lengths)
    return [[chunk.words[i] for i in chunk.ids[end - n:end]] for n, end in zip(chunk.lengths, ends, strict=True)]


def words_of(texts: list[str]) -> list[list[str]]:
    chunk = chunk_words(pa.array(texts, pa.string()))
    assert len(set(chunk.words)) == len(chunk.words) and chunk.ids.dtype == np.int32
    return rows(chunk)


@settings(max_examples=300, deadline=None)
@given(TEXTS)
def test_the_words_of_any_texts_are_the_librarys(texts):
    assert words_of(texts) == [library_words(text) for text in texts]


@settings(max_examples=300, deadline=None)
@given(ASCII_TEXTS)
def test_the_words_of_printable_ascii_are_the_librarys(texts):  # the pyarrow path alone
    assert words_of(texts) == [library_words(text) for text in texts]


def test_tricky_texts_and_other_column_types():
    texts = ["", "   ", "I was <br /><br />so HAPPY!!", "<b>bold</b> < spaced > <>", "naïve café", "tab\tnew\nline",
             "don't...!? film_2", "<" + "a" * 101 + "> long tag", "bell\x07here"]
    assert words_of(texts) == [library_words(text) for text in texts]
    assert rows(chunk_words(strings(pa.array([12, 3])))) == [["12"], ["3"]]  # read as the readers read them


def test_rows_holding_an_added_token_are_found():
    texts = pa.array(["an <unk> here", "plain", "<pad>", "<PAD> is not one", "<un k>"], pa.string())
    assert special_rows(texts).tolist() == [0, 2]


def test_the_table_numbers_words_across_chunks():
    table = WordTable()
    first = table.ids(chunk_words(pa.array(["b a", "a"], pa.string())))
    second = table.ids(chunk_words(pa.array(["c a", "é b"], pa.string())))
    assert table.words == ["b", "a", "c", "é"]
    assert first.tolist() == [0, 1, 1] and second.tolist() == [2, 1, 3, 0]


@settings(max_examples=200, deadline=None)
@given(st.lists(st.lists(st.sampled_from("a b c d e f g h Ab é ß . , !".split()), max_size=10).map(" ".join),
                min_size=1, max_size=30),
       st.integers(1, 3), st.integers(2, 12))
def test_a_vocabulary_from_counts_is_the_trainers(texts, min_freq, max_vocab):
    table = WordTable()
    chunk = chunk_words(pa.array(texts, pa.string()))
    counts = np.bincount(table.ids(chunk), minlength=len(table.words))
    expected = build_tokenizer(texts, min_freq=min_freq, max_vocab=max_vocab)
    assert tokenizer_from_counts(table.words, counts, min_freq=min_freq, max_vocab=max_vocab).to_str() == \
        expected.to_str()


def test_a_words_id_is_the_one_encoding_gives_it():
    tokenizer = build_tokenizer(["the cat sat", "the dog"])
    words = ["the", "cat", "zebra", "dog"]
    assert word_ids(tokenizer, words).tolist() == [np.concatenate(encode(tokenizer, [w])).item() for w in words]
    extended = extend_vocabulary(tokenizer, ["zebra"])
    assert word_ids(extended, ["zebra", "cow"]).tolist() == [extended.token_to_id("zebra"), 1]
