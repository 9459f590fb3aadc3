"""The words textclf's tokenizer pipeline (textclf.data.tokenize) makes of a chunk of texts at once, for
the one pass a streamed run makes over its file: its vocabulary is counted from these words and its
token ids are a lookup of them, so that no text is tokenised twice.

A text of printable ASCII (plus tab, line feed and carriage return) is split by pyarrow compute kernels
over the whole chunk, which do what the pipeline does there: NFKC is the identity, tags are replaced by
the same pattern, lowercasing is ASCII's, and the Whitespace pre-tokenizer's words (`\\w+|[^\\w\\s]+`) are
what is left when every run of punctuation is set apart by spaces and the text is split at whitespace.
Every other text goes through the library's own normalizer and pre-tokenizer, one at a time
(tests/data/test_words.py holds both against the library).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from textclf.data.stream import cleaned
from textclf.data.text import clean_text
from textclf.data.tokenize import PAD, TAG, UNK, empty_tokenizer

OTHER = "[^\t\n\r\x20-\x7e]"  # a character the pyarrow kernels do not handle as the pipeline does
PUNCTUATION = "([^0-9A-Za-z_\t\n\r ]+)"  # on the texts left, a run of what is neither \w nor \s
SPECIALS = (PAD, UNK)  # the added tokens of a learnt tokenizer: matched in a text before normalising
PIPELINE = empty_tokenizer()


@dataclass
class ChunkWords:
    """The words of a chunk's texts: row i's words are words[ids[j]] for j in its span of `ids`."""

    words: list[str]  # distinct
    ids: np.ndarray  # (W,) int32, the rows' words one after another
    lengths: np.ndarray  # (N,) int64, words per row


def strings(values: pa.Array) -> pa.Array:
    """A column of a chunk as strings: itself, or its values cleaned (textclf.data.stream.cleaned)."""
    if pa.types.is_string(values.type) or pa.types.is_large_string(values.type):
        return values
    return pa.array(cleaned(values), pa.string())


def chunk_words(texts: pa.Array) -> ChunkWords:
    """The pipeline's words of every text of `texts` (strings), each cleaned first (clean_text)."""
    other = pc.match_substring_regex(texts, OTHER).to_numpy(zero_copy_only=False)
    slow = np.flatnonzero(other)
    if len(slow) == 0:
        return ascii_words(texts)
    if len(slow) == len(texts):
        return library_words([clean_text(text) for text in texts.to_pylist()])
    fast = ascii_words(texts.filter(pa.array(~other)))
    rest = library_words([clean_text(text) for text in texts.take(pa.array(slow)).to_pylist()])
    return merge(fast, np.flatnonzero(~other), rest, slow)


def ascii_words(texts: pa.Array) -> ChunkWords:
    """chunk_words for texts of printable ASCII, tab, line feed and carriage return only."""
    spaced = pc.replace_substring_regex(pc.ascii_lower(pc.replace_substring_regex(texts, TAG, " ")),
                                        PUNCTUATION, r" \1 ")
    spaced = pc.ascii_trim_whitespace(spaced)  # else the split gives "" before and after
    split = pc.ascii_split_whitespace(spaced)
    lengths = split.value_lengths().to_numpy(zero_copy_only=False).astype(np.int64)
    flat = split.flatten()
    empty = pc.equal(pc.binary_length(spaced), 0).to_numpy(zero_copy_only=False)
    if empty.any():  # an empty text splits into [""]
        lengths[empty] = 0
        flat = flat.filter(pc.greater(pc.binary_length(flat), 0))
    encoded = pc.dictionary_encode(flat)
    return ChunkWords(encoded.dictionary.to_pylist(), encoded.indices.to_numpy(zero_copy_only=False).astype(np.int32),
                      lengths)


def library_words(texts: list[str]) -> ChunkWords:
    """chunk_words for any texts (cleaned), by the library's normalizer and pre-tokenizer."""
    normalize, split = PIPELINE.normalizer.normalize_str, PIPELINE.pre_tokenizer.pre_tokenize_str
    rows = [[word for word, _ in split(normalize(text))] for text in texts]
    index: dict[str, int] = {}
    ids = np.fromiter((index.setdefault(word, len(index)) for row in rows for word in row), dtype=np.int32)
    return ChunkWords(list(index), ids, np.array([len(row) for row in rows], dtype=np.int64))


def merge(first: ChunkWords, first_rows: np.ndarray, second: ChunkWords, second_rows: np.ndarray) -> ChunkWords:
    """One ChunkWords of the rows of two: `first_rows` and `second_rows` are where their rows go."""
    known = pc.index_in(pa.array(second.words, pa.string()), value_set=pa.array(first.words, pa.string()))
    remap = pc.fill_null(known, -1).to_numpy(zero_copy_only=False).astype(np.int32)  # -1: a word `first` lacks
    new = remap < 0
    remap[new] = len(first.words) + np.arange(int(new.sum()))
    n = len(first_rows) + len(second_rows)
    lengths = np.zeros(n, dtype=np.int64)
    lengths[first_rows], lengths[second_rows] = first.lengths, second.lengths
    starts = np.zeros(n, dtype=np.int64)  # where each row's words start in `source`
    starts[first_rows] = np.cumsum(first.lengths) - first.lengths
    starts[second_rows] = len(first.ids) + np.cumsum(second.lengths) - second.lengths
    source = np.concatenate([first.ids, remap[second.ids]])
    gather = np.repeat(starts - (np.cumsum(lengths) - lengths), lengths) + np.arange(int(lengths.sum()))
    words = first.words + [word for word, added in zip(second.words, new.tolist(), strict=True) if added]
    return ChunkWords(words, source[gather], lengths)


def special_rows(texts: pa.Array) -> np.ndarray:
    """(S,) int64: the rows of `texts` (strings) holding an added token of a learnt tokenizer (SPECIALS)."""
    found = np.zeros(len(texts), dtype=bool)
    for token in SPECIALS:
        found |= pc.match_substring(texts, token).to_numpy(zero_copy_only=False)
    return np.flatnonzero(found).astype(np.int64)


class WordTable:
    """Numbers the words of many chunks: a word keeps the number it got in the chunk it was first seen in."""

    def __init__(self) -> None:
        self.index: dict[str, int] = {}

    def ids(self, chunk: ChunkWords) -> np.ndarray:
        """(W,) int32: the chunk's word ids as numbers of this table."""
        index = self.index
        remap = np.fromiter((index.setdefault(word, len(index)) for word in chunk.words), dtype=np.int32,
                            count=len(chunk.words))
        return remap[chunk.ids]

    @property
    def words(self) -> list[str]:
        """The words by number."""
        return list(self.index)
