"""Length-bucketed batches so padding stays small, and the collate step.

Training batches: shuffle all indices, cut them into chunks of `batch_size * chunk_batches`, sort
each chunk by length, cut the chunk into batches and shuffle the batch order. Batches of similar
length keep padding (wasted compute) small while the order stays random from epoch to epoch.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import torch

from textclf.data.tokenize import PAD_ID


class TokenRows(Sequence[np.ndarray]):
    """Rows `rows` of flat token ids (row i of the file is flat[offsets[i]:offsets[i + 1]]), each cut to
    `max_length`: a split read from a memory-mapped token cache without copying it (data.stream)."""

    def __init__(self, flat: np.ndarray, offsets: np.ndarray, rows: np.ndarray, max_length: int) -> None:
        self.flat, self.offsets, self.rows, self.max_length = flat, offsets, np.asarray(rows), max_length

    def __len__(self) -> int:
        return len(self.rows)

    def __getitem__(self, i: int) -> np.ndarray:  # type: ignore[override]
        start = int(self.offsets[self.rows[i]])
        end = min(int(self.offsets[self.rows[i] + 1]), start + self.max_length)
        return np.asarray(self.flat[start:end], dtype=np.int64)

    @property
    def lengths(self) -> np.ndarray:
        return np.minimum(self.offsets[self.rows + 1] - self.offsets[self.rows], self.max_length)


@dataclass
class Encoded:
    """A split as the network sees it: token ids per text, label ids."""

    ids: list[np.ndarray] | TokenRows
    labels: np.ndarray | None  # (N,) int64, or (N, C) 0/1 float32 for multi-label

    @property
    def lengths(self) -> np.ndarray:
        if isinstance(self.ids, TokenRows):
            return self.ids.lengths
        return np.fromiter((len(r) for r in self.ids), dtype=np.int64, count=len(self.ids))

    def __len__(self) -> int:
        return len(self.ids)


@dataclass
class Batch:
    ids: torch.Tensor  # (B, T) int64, right-padded with PAD_ID
    lengths: torch.Tensor  # (B,) int64, real lengths (0 for an empty text)
    mask: torch.Tensor  # (B, T) bool, True on real tokens
    labels: torch.Tensor | None  # (B,) int64, or (B, C) float32 for multi-label
    index: np.ndarray  # (B,) positions of these rows in the dataset

    def to(self, device: torch.device) -> Batch:
        return Batch(
            ids=self.ids.to(device, non_blocking=True),
            lengths=self.lengths.to(device, non_blocking=True),
            mask=self.mask.to(device, non_blocking=True),
            labels=None if self.labels is None else self.labels.to(device, non_blocking=True),
            index=self.index,
        )


def bucket_batches(
    lengths: Sequence[int] | np.ndarray,
    batch_size: int,
    *,
    rng: np.random.Generator | None = None,
    chunk_batches: int = 50,
) -> list[np.ndarray]:
    """Index arrays, one per batch. With `rng`: bucketed and shuffled (training). Without: sorted
    by length for evaluation; callers put predictions back with `Batch.index`."""
    lengths = np.asarray(lengths)
    if rng is None:
        order = np.argsort(lengths, kind="stable")
        return [order[i : i + batch_size] for i in range(0, len(order), batch_size)]
    order = rng.permutation(len(lengths))
    chunk = batch_size * chunk_batches
    batches = []
    for start in range(0, len(order), chunk):
        part = order[start : start + chunk]
        part = part[np.argsort(lengths[part], kind="stable")]
        batches.extend(part[i : i + batch_size] for i in range(0, len(part), batch_size))
    return [batches[i] for i in rng.permutation(len(batches))]


def collate(
    ids: Sequence[np.ndarray],
    index: np.ndarray,
    labels: np.ndarray | None = None,
    *,
    min_length: int = 1,
) -> Batch:
    """Right-pad the rows `index` of `ids` into a Batch. `min_length` pads short batches for
    encoders that need a minimum width (a convolution with kernel 5 needs 5 positions)."""
    rows = [ids[i] for i in index]
    lengths = np.fromiter((len(r) for r in rows), dtype=np.int64, count=len(rows))
    width = max(int(lengths.max(initial=0)), min_length, 1)
    padded = np.full((len(rows), width), PAD_ID, dtype=np.int64)
    for i, row in enumerate(rows):
        padded[i, : len(row)] = row
    ids_t = torch.from_numpy(padded)
    lengths_t = torch.from_numpy(lengths)
    mask = torch.arange(width)[None, :] < lengths_t[:, None]
    # (B,) class ids, or (B, C) 0/1 targets of a multi-label model
    labels_t = None if labels is None else torch.as_tensor(labels[index], dtype=torch.long if labels.ndim == 1
                                                           else torch.float32)
    return Batch(ids=ids_t, lengths=lengths_t, mask=mask, labels=labels_t, index=np.asarray(index))
