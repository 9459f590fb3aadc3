"""Word n-gram features over textclf's tokenizer: n-gram tables, count matrices, TF-IDF.

Texts go through the same HF tokenizer pipeline as the neural models (NFKC, HTML tags removed,
lowercase, words and punctuation split). An n-gram is a tuple of token ids (t1, ..., tn); its key
is the base-V number t1 t2 ... tn (V = vocabulary size), so a sorted key array and `searchsorted`
map every n-gram of a corpus to its feature column without a Python loop over tokens. N-grams that
contain an unknown word are no feature, as in scikit-learn's vectorizers.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import scipy.sparse as sp
from sklearn.preprocessing import normalize
from tokenizers import Tokenizer, models

from textclf.data.tokenize import PAD, UNK, UNK_ID, build_tokenizer, encode, vocabulary

MAX_ORDER = 3
_FULL_VOCAB = 50_000_000  # learn every word first; min_df / max_features decide what stays


@dataclass(frozen=True)
class Stream:
    """A corpus as one array of token ids (T,) and the index of the text each token belongs to (T,)."""

    ids: np.ndarray
    doc: np.ndarray
    num_texts: int


@dataclass(frozen=True)
class NgramTable:
    """The feature columns: per order n (from `min_order`), a (K_n, n) int64 array of token ids
    whose rows are sorted by key. Column j of a feature matrix is row j of the stacked tables."""

    tokenizer: Tokenizer
    min_order: int
    tables: tuple[np.ndarray, ...]

    @property
    def vocab_size(self) -> int:
        return self.tokenizer.get_vocab_size()

    @property
    def num_features(self) -> int:
        return sum(len(t) for t in self.tables)

    def counts(self, texts: Sequence[str]) -> sp.csr_matrix:
        """Term counts (N, F) of `texts`, float64."""
        return count_matrix(token_stream(self.tokenizer, texts), self)


def token_stream(tokenizer: Tokenizer, texts: Sequence[str]) -> Stream:
    ids = encode(tokenizer, texts)
    lengths = np.fromiter((len(r) for r in ids), dtype=np.int64, count=len(ids))
    flat = np.concatenate(ids) if ids else np.zeros(0, dtype=np.int64)
    return Stream(flat, np.repeat(np.arange(len(ids), dtype=np.int64), lengths), len(ids))


def check_key_range(vocab_size: int, order: int) -> None:
    """Keys are int64: V ** n must stay below 2 ** 63."""
    if vocab_size**order >= 2**63:
        raise ValueError(f"a vocabulary of {vocab_size:,} words is too large for {order}-grams")


def ngram_keys(stream: Stream, order: int, vocab_size: int) -> tuple[np.ndarray, np.ndarray]:
    """Keys (M,) and text index (M,) of every n-gram of `order` inside one text and free of <unk>."""
    check_key_range(vocab_size, order)
    count = len(stream.ids) - order + 1
    if count <= 0:
        return np.zeros(0, dtype=np.int64), np.zeros(0, dtype=np.int64)
    keep = stream.doc[:count] == stream.doc[order - 1:]
    keys = np.zeros(count, dtype=np.int64)
    for j in range(order):
        part = stream.ids[j:j + count]
        keep &= part != UNK_ID
        keys = keys * vocab_size + part
    return keys[keep], stream.doc[:count][keep]


def keys_of(table: np.ndarray, vocab_size: int) -> np.ndarray:
    """Keys (K,) of an n-gram table (K, n)."""
    keys = np.zeros(len(table), dtype=np.int64)
    for j in range(table.shape[1]):
        keys = keys * vocab_size + table[:, j]
    return keys


def count_matrix(stream: Stream, table: NgramTable) -> sp.csr_matrix:
    """Term counts (N, F): column j counts the j-th n-gram of `table`."""
    rows, cols = [], []
    offset = 0
    for order, ngrams in enumerate(table.tables, start=table.min_order):
        keys, docs = ngram_keys(stream, order, table.vocab_size)
        known = keys_of(ngrams, table.vocab_size)
        if len(known):
            where = np.minimum(np.searchsorted(known, keys), len(known) - 1)
            hit = known[where] == keys
            rows.append(docs[hit])
            cols.append(where[hit] + offset)
        offset += len(ngrams)
    row = np.concatenate(rows) if rows else np.zeros(0, dtype=np.int64)
    col = np.concatenate(cols) if cols else np.zeros(0, dtype=np.int64)
    matrix = sp.csr_matrix((np.ones(len(row)), (row, col)), shape=(stream.num_texts, table.num_features))
    matrix.sum_duplicates()
    return matrix


def _frequent(stream: Stream, order: int, vocab_size: int, min_df: int) -> tuple[np.ndarray, sp.csr_matrix]:
    """Keys (K,) of the n-grams in at least `min_df` texts, and their counts (N, K)."""
    keys, docs = ngram_keys(stream, order, vocab_size)
    unique, inverse = np.unique(keys, return_inverse=True)
    counts = sp.csr_matrix((np.ones(len(keys)), (docs, inverse)), shape=(stream.num_texts, len(unique)))
    counts.sum_duplicates()
    keep = np.flatnonzero(document_frequency(counts) >= min_df)
    return unique[keep], counts[:, keep]


def _most_frequent(found: list[tuple[np.ndarray, sp.csr_matrix]], max_features: int) -> list[np.ndarray]:
    """Per order, the indices of the n-grams among the `max_features` most frequent of all orders
    (ties go to the lower order, then the lower key, so the choice is deterministic)."""
    totals = np.concatenate([np.asarray(counts.sum(axis=0)).ravel() for _, counts in found])
    chosen = np.zeros(len(totals), dtype=bool)
    chosen[np.argsort(-totals, kind="stable")[:max_features]] = True
    bounds = np.cumsum([0, *(len(keys) for keys, _ in found)])
    return [np.flatnonzero(chosen[a:b]) for a, b in zip(bounds[:-1], bounds[1:], strict=True)]


def _ids_of(keys: np.ndarray, order: int, vocab_size: int) -> np.ndarray:
    table = np.empty((len(keys), order), dtype=np.int64)
    rest = keys.copy()
    for j in range(order - 1, -1, -1):
        table[:, j] = rest % vocab_size
        rest //= vocab_size
    return table


def _pruned_tokenizer(tokenizer: Tokenizer, keep: np.ndarray) -> tuple[Tokenizer, np.ndarray]:
    """The same pipeline knowing only the words `keep` (sorted old ids); and old id -> new id."""
    words = vocabulary(tokenizer)
    mapping = np.full(len(words), UNK_ID, dtype=np.int64)
    mapping[keep] = np.arange(2, len(keep) + 2)
    pruned = Tokenizer.from_str(tokenizer.to_str())
    pruned.model = models.WordLevel({PAD: 0, UNK: 1, **{words[i]: 2 + n for n, i in enumerate(keep)}}, unk_token=UNK)
    return pruned, mapping


@dataclass(frozen=True)
class Learned:
    table: NgramTable  # its tokenizer knows only the words its n-grams use
    counts: sp.csr_matrix  # (N, F) term counts of the training texts, equal to table.counts(texts)
    lengths: np.ndarray  # (N,) tokens per training text


def learn_ngrams(
    texts: Sequence[str], *, ngram_range: tuple[int, int], min_df: int, max_features: int | None
) -> Learned:
    """Learn the n-grams of `texts` seen in at least `min_df` texts, keeping the `max_features`
    most frequent overall (all of them when None), as scikit-learn's CountVectorizer does."""
    low, high = ngram_range
    full = build_tokenizer(texts, min_freq=1, max_vocab=_FULL_VOCAB)
    stream = token_stream(full, texts)
    size = full.get_vocab_size()
    found = [_frequent(stream, order, size, min_df) for order in range(low, high + 1)]
    if max_features is not None:
        found = [(keys[i], counts[:, i]) for (keys, counts), i in zip(found, _most_frequent(found, max_features),
                                                                      strict=True)]
    old_tables = [_ids_of(keys, order, size) for (keys, _), order in zip(found, range(low, high + 1), strict=True)]
    used = np.unique(np.concatenate([t.ravel() for t in old_tables]))
    tokenizer, mapping = _pruned_tokenizer(full, used)
    tables, columns = [], []
    for table, (_, counts) in zip(old_tables, found, strict=True):
        remapped = mapping[table]
        order = np.argsort(keys_of(remapped, tokenizer.get_vocab_size()), kind="stable")
        tables.append(remapped[order])
        columns.append(counts[:, order])
    matrix = sp.csr_matrix(sp.hstack(columns, format="csr"), dtype=np.float64)
    matrix.sort_indices()
    lengths = np.bincount(stream.doc, minlength=stream.num_texts)
    return Learned(NgramTable(tokenizer, low, tuple(tables)), matrix, lengths)


def document_frequency(counts: sp.csr_matrix) -> np.ndarray:
    """In how many texts (rows) each feature occurs: (F,) int64."""
    return np.bincount(counts.indices, minlength=counts.shape[1]).astype(np.int64)


def smooth_idf(df: np.ndarray, num_texts: int) -> np.ndarray:
    """ln((1 + n) / (1 + df)) + 1, scikit-learn's smoothed idf: (F,)."""
    return np.log((1.0 + num_texts) / (1.0 + df)) + 1.0


def tfidf(counts: sp.csr_matrix, idf: np.ndarray, *, sublinear_tf: bool) -> sp.csr_matrix:
    """Rows of (1 + ln tf) * idf (or tf * idf), scaled to unit L2 norm: (N, F)."""
    weights = counts.astype(np.float64, copy=True)
    if sublinear_tf:
        np.log(weights.data, out=weights.data)
        weights.data += 1.0
    weights = sp.csr_matrix(weights @ sp.diags(idf.astype(np.float64)))
    return normalize(weights, norm="l2", copy=False)


def binarize(counts: sp.csr_matrix) -> sp.csr_matrix:
    """1 where a feature occurs in a text: (N, F)."""
    binary = counts.copy()
    binary.data = np.ones_like(binary.data)
    return binary
