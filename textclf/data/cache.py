"""An on-disk cache of what a streamed run derives from its data file, so that a second run on the same
file skips the work: the label of every row, the words of every row, the learnt vocabulary, the token
ids of every row, and the texts of the rows the run shows (textclf.training.stream).

Each result is an entry: a folder under $TEXTCLF_CACHE_DIR/tokens (else $XDG_CACHE_HOME/textclf or
~/.cache/textclf) named by a sha256 of what it depends on (the file's bytes and columns; for token ids,
also the tokenizer), holding flat binary arrays and header.json with each file's size and sha256. An
entry is written whole or not at all (textclf.folder.atomic_dir) and verified before use: a damaged one
is rebuilt with a warning, never trusted. Rows of numbers (token ids, word numbers) are a flat int32
array plus (N + 1) int64 offsets (save_rows), read memory-mapped.
"""

from __future__ import annotations

import hashlib
import json
import os
import warnings
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
from tokenizers import Tokenizer

from textclf.errors import TextClfWarning
from textclf.folder import atomic_dir

FORMAT = 1
HEADER = "header.json"


def cache_root() -> Path:
    """$TEXTCLF_CACHE_DIR, else $XDG_CACHE_HOME/textclf, else ~/.cache/textclf."""
    root = os.environ.get("TEXTCLF_CACHE_DIR") or Path(os.environ.get("XDG_CACHE_HOME") or
                                                       Path.home() / ".cache") / "textclf"
    return Path(root)


def entry_key(*parts: str) -> str:
    return hashlib.sha256("\x1f".join(parts).encode()).hexdigest()


def entry_folder(kind: str, key: str) -> Path:
    return cache_root() / "tokens" / f"{kind}-{key[:32]}"


def file_sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as handle:
        while block := handle.read(1 << 22):
            digest.update(block)
    return digest.hexdigest()


@dataclass
class Entry:
    """A verified entry: its folder and the metadata it was written with."""

    folder: Path
    meta: dict[str, Any]

    def array(self, name: str) -> np.ndarray:
        """A stored array, memory-mapped read-only."""
        spec = self.meta["arrays"][name]
        if spec["length"] == 0:
            return np.zeros(0, dtype=spec["dtype"])
        return np.memmap(self.folder / f"{name}.bin", dtype=spec["dtype"], mode="r", shape=(spec["length"],))


def read_entry(kind: str, key: str) -> Entry | None:
    """The entry `kind`/`key` when it exists and every file has the size and sha256 its header says;
    None when missing; a damaged entry warns (TextClfWarning) and reads as missing, to be rebuilt."""
    folder = entry_folder(kind, key)
    if not folder.exists():
        return None
    try:
        header = json.loads((folder / HEADER).read_text(encoding="utf-8"))
        problem = None if header.get("format") == FORMAT and header.get("key") == key else "a header of another entry"
        for name, expected in (header.get("files") or {}).items() if problem is None else ():
            path = folder / name
            if not path.is_file() or path.stat().st_size != expected["bytes"]:
                problem = f"{name} has {path.stat().st_size if path.is_file() else 'no'} bytes, expected " \
                          f"{expected['bytes']}"
            elif file_sha256(path) != expected["sha256"]:
                problem = f"{name} does not match its checksum"
            if problem:
                break
    except (OSError, ValueError, KeyError, TypeError, AttributeError) as error:
        problem = f"its header cannot be read ({type(error).__name__})"
    if problem is not None:
        warnings.warn(f"token cache {folder} is damaged ({problem}); rebuilding it.", TextClfWarning, stacklevel=3)
        return None
    return Entry(folder, header["meta"])


def write_entry(kind: str, key: str, meta: dict[str, Any],
                fill: Callable[[Path], dict[str, dict[str, Any]]]) -> Entry:
    """Write the entry atomically: `fill(folder)` writes NAME.bin files and returns {NAME: {"dtype",
    "length"}}; their sizes and checksums go into the header."""
    folder = entry_folder(kind, key)

    def write(tmp: Path) -> None:
        arrays = fill(tmp)
        files = {path.name: {"bytes": path.stat().st_size, "sha256": file_sha256(path)}
                 for path in sorted(tmp.iterdir())}
        header = {"format": FORMAT, "key": key, "files": files, "meta": {**meta, "arrays": arrays}}
        (tmp / HEADER).write_text(json.dumps(header), encoding="utf-8")

    atomic_dir(folder, write)
    return Entry(folder, {**json.loads((folder / HEADER).read_text(encoding="utf-8"))["meta"]})


def save_array(folder: Path, name: str, values: np.ndarray) -> dict[str, Any]:
    values = np.ascontiguousarray(values)
    values.tofile(folder / f"{name}.bin")
    return {"dtype": values.dtype.str, "length": int(values.size)}


def tokenizer_key(tokenizer: Tokenizer) -> str:
    """sha256 of the tokenizer's JSON: token ids depend on all of it (vocabulary, normalizer, ...)."""
    return hashlib.sha256(tokenizer.to_str().encode()).hexdigest()


def save_rows(folder: Path, blocks: Iterable[tuple[np.ndarray, np.ndarray]]) -> dict[str, dict[str, Any]]:
    """Write rows of int32 values a block at a time: `blocks` yields (values (T,), lengths (n,)) of
    consecutive rows; flat.bin gets the values one row after another, offsets.bin the (N + 1,) int64
    offsets (row i is flat[offsets[i]:offsets[i + 1]])."""
    lengths: list[np.ndarray] = []
    total = 0
    with (folder / "flat.bin").open("wb") as handle:
        for values, counts in blocks:
            np.ascontiguousarray(values, dtype=np.int32).tofile(handle)
            total += len(values)
            lengths.append(np.asarray(counts, dtype=np.int64))
    offsets = np.concatenate([[0], np.cumsum(np.concatenate(lengths) if lengths else [])]).astype(np.int64)
    return {"flat": {"dtype": np.dtype(np.int32).str, "length": total},
            "offsets": save_array(folder, "offsets", offsets)}


def row_blocks(offsets: np.ndarray, tokens: int = 1 << 24) -> Iterator[tuple[int, int]]:
    """(start, stop) row ranges of about `tokens` values each (at least one row), for reading rows of a
    memory-mapped flat array a block at a time."""
    start, n = 0, len(offsets) - 1
    while start < n:
        stop = max(start + 1, int(np.searchsorted(offsets, offsets[start] + tokens, side="right")) - 1)
        yield start, min(stop, n)
        start = stop


def count_values(flat: np.ndarray, offsets: np.ndarray, rows: np.ndarray, size: int) -> np.ndarray:
    """(size,) int64: how often each value (0 <= value < size) occurs in `rows` (sorted row numbers) of rows
    stored as flat values and offsets, read a block at a time. Most of the rows: every row's count less the
    others', which skips gathering most of the file."""
    n = len(offsets) - 1
    if len(rows) > n // 2:
        others = np.ones(n, dtype=bool)
        others[rows] = False
        every = np.zeros(size, dtype=np.int64)
        for start, stop in row_blocks(offsets):
            every += np.bincount(np.asarray(flat[offsets[start]:offsets[stop]]), minlength=size)
        return every - count_values(flat, offsets, np.flatnonzero(others), size)
    counts = np.zeros(size, dtype=np.int64)
    lengths = np.diff(offsets)[rows]
    for start, stop in row_blocks(np.concatenate([[0], np.cumsum(lengths)])):  # blocks of the rows asked for
        part, sizes = rows[start:stop], lengths[start:stop]
        ends = np.cumsum(sizes)
        positions = np.repeat(offsets[part] - (ends - sizes), sizes) + np.arange(int(ends[-1]))
        counts += np.bincount(np.asarray(flat[positions]), minlength=size)
    return counts


@dataclass
class TokenIds:
    """The token ids of every row of a file: row i is flat[offsets[i]:offsets[i + 1]]."""

    flat: np.ndarray  # (T,) int32, memory-mapped
    offsets: np.ndarray  # (N + 1,) int64
    hit: bool  # read from the cache (True) or encoded by this run

    @property
    def lengths(self) -> np.ndarray:
        return np.diff(self.offsets)


def cached_token_ids(data_key: str, tokenizer: Tokenizer,
                     blocks: Callable[[], Iterable[tuple[np.ndarray, np.ndarray]]]) -> TokenIds:
    """The token ids of the rows of the data `data_key` names, from the cache entry for (`data_key`, the
    tokenizer), or written into a new entry from `blocks()`: (ids (T,), lengths (n,)) of consecutive
    rows, from the first row to the last (save_rows)."""
    key = entry_key("token-ids", data_key, tokenizer_key(tokenizer))
    entry = read_entry("ids", key)
    hit = entry is not None
    if entry is None:
        entry = write_entry("ids", key, {"rows_of": data_key}, lambda folder: save_rows(folder, blocks()))
    return TokenIds(entry.array("flat"), np.asarray(entry.array("offsets")), hit)
