"""Augmenting the training split (never validation or test): new texts made from each training text,
with its label.

- EDA-style edits (Wei & Zou 2019): `eda` is the share of a text's words touched by each of random
  swap, random deletion and random insertion (a word of the same text, or a synonym when there are
  synonyms);
- synonym replacement: `synonyms` is the share of words replaced by a synonym: the nearest
  neighbours of the word in the run's word vectors (cosine, among the vectors file's most frequent
  words), or a synonym file (`word<TAB>syn1,syn2` per line); no WordNet download;
- templates: label-preserving patterns from a user file, `LABEL<TAB>template` per line (`*` for any
  label), each with a `{text}` slot, e.g. `*<TAB>Looking back, {text}`.

Every copy applies the enabled methods in that order, seeded by (seed, text index, copy), so a run
is reproducible. The augmented texts are appended after the original training texts.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from textclf.data.readers import Dataset
from textclf.errors import ConfigError, DataError

_WORD = re.compile(r"\w+|[^\w\s]+")
_NEIGHBOURS = 5
_MIN_SIMILARITY = 0.55
_CANDIDATES = 30_000  # the vectors file's most frequent words that may serve as synonyms


@dataclass(frozen=True)
class Augmenter:
    eda: float = 0.0
    synonym_share: float = 0.0
    synonyms: Mapping[str, Sequence[str]] | None = None  # word (lower case) -> synonyms
    templates: Mapping[str, Sequence[str]] | None = None  # label (or "*") -> templates with {text}

    def variant(self, text: str, label: str, rng: np.random.Generator) -> str:
        words = _WORD.findall(text)
        if self.synonym_share and self.synonyms:
            words = self._replace(words, rng)
        if self.eda and words:
            words = self._eda(words, rng)
        result = " ".join(words)
        templates = [*(self.templates or {}).get(label, ()), *(self.templates or {}).get("*", ())]
        if templates:
            result = templates[int(rng.integers(len(templates)))].replace("{text}", result)
        return result

    def _count(self, share: float, n: int) -> int:
        return max(1, round(share * n)) if share > 0 and n else 0

    def _synonym(self, word: str, rng: np.random.Generator) -> str | None:
        options = (self.synonyms or {}).get(word.lower())
        return options[int(rng.integers(len(options)))] if options else None

    def _replace(self, words: list[str], rng: np.random.Generator) -> list[str]:
        words = list(words)
        candidates = [i for i, w in enumerate(words) if (self.synonyms or {}).get(w.lower())]
        for i in rng.permutation(candidates)[: self._count(self.synonym_share, len(words))]:
            words[i] = self._synonym(words[i], rng) or words[i]
        return words

    def _eda(self, words: list[str], rng: np.random.Generator) -> list[str]:
        words = list(words)
        n = self._count(self.eda, len(words))
        for _ in range(n if len(words) > 1 else 0):  # random swap
            i, j = rng.choice(len(words), size=2, replace=False)
            words[i], words[j] = words[j], words[i]
        if len(words) > 1:  # random deletion: each word with probability eda, never all of them
            keep = rng.random(len(words)) >= self.eda
            words = [w for w, k in zip(words, keep, strict=True) if k] or [words[int(rng.integers(len(words)))]]
        for _ in range(n):  # random insertion: a synonym of a word of the text, else the word itself
            source = words[int(rng.integers(len(words)))]
            words.insert(int(rng.integers(len(words) + 1)), self._synonym(source, rng) or source)
        return words


def augment(data: Dataset, augmenter: Augmenter, *, copies: int, seed: int) -> Dataset:
    """`data` followed by `copies` augmented variants of each of its texts (same labels)."""
    texts, labels = list(data.texts), list(data.labels or [])
    for i, (text, label) in enumerate(zip(data.texts, data.labels or [], strict=True)):
        for copy in range(copies):
            rng = np.random.default_rng([seed, i, copy])
            texts.append(augmenter.variant(text, label, rng))
            labels.append(label)
    return Dataset(texts, labels, data.source)


def read_templates(path: str | Path, labels: Sequence[str]) -> dict[str, list[str]]:
    """LABEL<TAB>template lines (`*` for any label); each template must hold {text}."""
    path = Path(path)
    if not path.is_file():
        raise ConfigError(f"data.augment.templates: no such file {path}; expected LABEL<TAB>template lines.")
    templates: dict[str, list[str]] = {}
    for number, line in enumerate(path.read_text(encoding="utf-8").splitlines(), start=1):
        if not line.strip() or line.startswith("#"):
            continue
        label, tab, template = line.partition("\t")
        if not tab or "{text}" not in template or (label != "*" and label not in labels):
            raise DataError(
                f"{path} line {number}: {line[:60]!r}; expected LABEL<TAB>template with {{text}} in it, LABEL one of "
                f"{list(labels)[:8]} or *."
            )
        templates.setdefault(label, []).append(template)
    return templates


def read_synonyms(path: str | Path) -> dict[str, list[str]]:
    """word<TAB>syn1,syn2 (or `word: syn1, syn2`) lines."""
    path = Path(path)
    if not path.is_file():
        raise ConfigError(f"data.augment.synonym_file: no such file {path}; expected word<TAB>syn1,syn2 lines.")
    synonyms: dict[str, list[str]] = {}
    for number, line in enumerate(path.read_text(encoding="utf-8").splitlines(), start=1):
        if not line.strip() or line.startswith("#"):
            continue
        word, sep, rest = line.partition("\t") if "\t" in line else line.partition(":")
        options = [s.strip() for s in rest.split(",") if s.strip()]
        if not sep or not word.strip() or not options:
            raise DataError(f"{path} line {number}: {line[:60]!r}; expected word<TAB>syn1,syn2.")
        synonyms[word.strip().lower()] = options
    return synonyms


def vector_synonyms(source: str, words: Sequence[str]) -> dict[str, list[str]]:
    """Each of `words` -> its nearest neighbours (cosine >= 0.55) among the vectors file's most
    frequent words; words without a vector get none."""
    from textclf.vectors import load_vectors, vector_words  # reads the vectors file: only for synonyms

    candidates = [w for w in vector_words(source, _CANDIDATES) if w.isalpha()]
    wanted = sorted({w.lower() for w in words if w.isalpha()})
    vocabulary = ["<pad>", "<unk>", *dict.fromkeys([*candidates, *wanted])]
    vectors = load_vectors(source, vocabulary)
    matrix, found = vectors.matrix.astype(np.float32), vectors.found
    unit = matrix / np.maximum(np.linalg.norm(matrix, axis=1, keepdims=True), 1e-12)
    index = {w: i for i, w in enumerate(vocabulary)}
    pool = np.array([index[w] for w in candidates if found[index[w]]])
    out: dict[str, list[str]] = {}
    rows = [index[w] for w in wanted if found[index[w]]]
    for start in range(0, len(rows), 2048):
        chunk = rows[start:start + 2048]
        similarity = unit[chunk] @ unit[pool].T  # (n, P)
        for row, sims in zip(chunk, similarity, strict=True):
            best = np.argsort(-sims)[: _NEIGHBOURS + 1]
            out[vocabulary[row]] = [vocabulary[pool[j]] for j in best
                                    if pool[j] != row and sims[j] >= _MIN_SIMILARITY][:_NEIGHBOURS]
    return {w: s for w, s in out.items() if s}
