"""Word n-gram features for the linear models, computed by scikit-learn's vectorizers over the tokens of
textclf's tokenizer pipeline (NFKC, HTML tags removed, lowercase, words and punctuation split).

The vocabulary of n-grams is learnt by `CountVectorizer` (min_df, max_features) over the training
texts; TF-IDF weighting is `TfidfTransformer` (smoothed idf, optional sublinear tf, unit L2 rows).
N-grams that contain an unknown word are no feature, as in scikit-learn.

Saved state (JSON and safetensors, never pickle): tokenizer.json knows only the words the n-grams use,
and per order n a (K_n, n) int64 table of their token ids, rows sorted by the base-V number
t1 t2 ... tn; column j of the feature matrix is row j of the stacked tables. Columns are kept in
that order (not scikit-learn's alphabetical one) so that folders written by earlier versions, which
used this layout, load and score identically.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from functools import cached_property, partial

import numpy as np
import scipy.sparse as sp
from sklearn.feature_extraction.text import CountVectorizer, TfidfTransformer
from sklearn.preprocessing import binarize
from tokenizers import Tokenizer, models

from textclf.data.tokenize import PAD, UNK, build_tokenizer, vocabulary

MAX_ORDER = 3
_FULL_VOCAB = 50_000_000  # learn every word first; min_df / max_features decide what stays
_SPECIAL = frozenset((PAD, UNK))


def tokens_of(tokenizer: Tokenizer, texts: Sequence[str]) -> list[list[str]]:
    """The tokens of each text after the pipeline; words the tokenizer lacks come out as <unk>."""
    return [encoding.tokens for encoding in tokenizer.encode_batch(list(texts), add_special_tokens=False)]


def word_ngrams(tokens: list[str], low: int, high: int) -> list[str]:
    """The n-grams (low <= n <= high) of a token list, words joined by a space (tokens never hold
    whitespace), leaving out every n-gram with an unknown word."""
    grams: list[str] = []
    for n in range(low, high + 1):
        for start in range(len(tokens) - n + 1):
            window = tokens[start:start + n]
            if not _SPECIAL.intersection(window):
                grams.append(" ".join(window))
    return grams


def keys_of(table: np.ndarray, vocab_size: int) -> np.ndarray:
    """Keys (K,) of an n-gram table (K, n): the base-V numbers of the rows."""
    if vocab_size ** max(table.shape[1], 1) >= 2**63:
        raise ValueError(f"a vocabulary of {vocab_size:,} words is too large for {table.shape[1]}-grams")
    keys = np.zeros(len(table), dtype=np.int64)
    for j in range(table.shape[1]):
        keys = keys * vocab_size + table[:, j]
    return keys


@dataclass(frozen=True)
class NgramFeatures:
    """The n-gram columns of a fitted linear model: the tokenizer of the words they use, the first
    order, and per order the (K_n, n) table of token ids (see the module notes)."""

    tokenizer: Tokenizer
    min_order: int
    tables: tuple[np.ndarray, ...]

    @property
    def vocab_size(self) -> int:
        return self.tokenizer.get_vocab_size()

    @property
    def num_features(self) -> int:
        return sum(len(t) for t in self.tables)

    @property
    def max_order(self) -> int:
        return self.min_order + len(self.tables) - 1

    @cached_property
    def vectorizer(self) -> CountVectorizer:
        """scikit-learn's CountVectorizer with this fixed vocabulary (n-gram string -> column), built once:
        the vocabulary of an IMDb model (420,000 n-grams) takes a second to build, longer than counting
        a thousand reviews with it."""
        words = vocabulary(self.tokenizer)
        columns = (" ".join(words[i] for i in row) for table in self.tables for row in table)
        analyzer = partial(word_ngrams, low=self.min_order, high=max(self.max_order, self.min_order))
        return CountVectorizer(analyzer=analyzer, vocabulary={gram: j for j, gram in enumerate(columns)},
                               dtype=np.float64)

    def counts(self, texts: Sequence[str]) -> sp.csr_matrix:
        """Term counts (N, F) of `texts`, float64."""
        return self.vectorizer.transform(tokens_of(self.tokenizer, texts))


@dataclass(frozen=True)
class Learned:
    features: NgramFeatures  # its tokenizer knows only the words its n-grams use
    counts: sp.csr_matrix  # (N, F) term counts of the training texts, equal to features.counts(texts)
    lengths: np.ndarray  # (N,) tokens per training text


def learn_ngrams(texts: Sequence[str], *, ngram_range: tuple[int, int], min_df: int,
                 max_features: int | None) -> Learned:
    """Learn the n-grams of `texts` seen in at least `min_df` texts, keeping the `max_features` most
    frequent overall (all of them when None), with scikit-learn's CountVectorizer."""
    low, high = ngram_range
    full = build_tokenizer(texts, min_freq=1, max_vocab=_FULL_VOCAB)
    tokens = tokens_of(full, texts)
    vectorizer = CountVectorizer(analyzer=partial(word_ngrams, low=low, high=high), min_df=min_df,
                                 max_features=max_features, dtype=np.float64)
    try:
        counts = vectorizer.fit_transform(tokens)
        grams = vectorizer.get_feature_names_out()
    except ValueError:  # scikit-learn: "After pruning, no terms remain" / "empty vocabulary"
        counts, grams = sp.csr_matrix((len(tokens), 0)), np.array([], dtype=object)
    features, order = _tables(full, [str(g) for g in grams], low, high)
    counts = sp.csr_matrix(counts[:, order], dtype=np.float64)
    counts.sort_indices()
    lengths = np.fromiter((len(t) for t in tokens), dtype=np.int64, count=len(tokens))
    return Learned(features, counts, lengths)


def _tables(full: Tokenizer, grams: list[str], low: int, high: int) -> tuple[NgramFeatures, np.ndarray]:
    """The saved layout of `grams`: a tokenizer of the words they use (ids in the full tokenizer's
    order), tables sorted by key, and the permutation taking scikit-learn's columns to that order."""
    full_ids = full.get_vocab(with_added_tokens=True)
    split = [g.split(" ") for g in grams]
    used = sorted({full_ids[w] for words in split for w in words})
    words = vocabulary(full)
    pruned = Tokenizer.from_str(full.to_str())
    pruned.model = models.WordLevel({PAD: 0, UNK: 1, **{words[i]: 2 + n for n, i in enumerate(used)}}, unk_token=UNK)
    new_id = {words[i]: 2 + n for n, i in enumerate(used)}
    vocab_size = pruned.get_vocab_size()
    tables, order = [], []
    for n in range(low, high + 1):
        columns = np.array([j for j, words_ in enumerate(split) if len(words_) == n], dtype=np.int64)
        table = np.array([[new_id[w] for w in split[j]] for j in columns], dtype=np.int64).reshape(len(columns), n)
        rank = np.argsort(keys_of(table, vocab_size), kind="stable")
        tables.append(table[rank])
        order.append(columns[rank])
    return NgramFeatures(pruned, low, tuple(tables)), np.concatenate(order) if order else np.zeros(0, np.int64)


def tfidf_transformer(idf: np.ndarray, *, sublinear_tf: bool) -> TfidfTransformer:
    """scikit-learn's TfidfTransformer with a learnt idf (smoothed, rows scaled to unit L2 norm)."""
    transformer = TfidfTransformer(sublinear_tf=sublinear_tf, smooth_idf=True, norm="l2")
    transformer.idf_ = np.asarray(idf, dtype=np.float64)
    return transformer


def fit_idf(counts: sp.csr_matrix, *, sublinear_tf: bool) -> np.ndarray:
    """ln((1 + n) / (1 + df)) + 1 per feature, as TfidfTransformer learns it: (F,)."""
    return TfidfTransformer(sublinear_tf=sublinear_tf, smooth_idf=True, norm="l2").fit(counts).idf_


def binary(counts: sp.csr_matrix) -> sp.csr_matrix:
    """1 where a feature occurs in a text: (N, F)."""
    return sp.csr_matrix(binarize(counts, threshold=0.0))
