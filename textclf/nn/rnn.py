"""Recurrent layers over right-padded batches that only ever read real tokens.

On CPU the fused LSTM/GRU kernels (oneDNN) take dense input only; packed sequences are several
times slower there. So on CPU a batch runs dense: the forward direction reads padding only after
a text's last real token (the state is read at that token), and the backward direction runs as a
separate unidirectional RNN over each text reversed *within its length*, so it also starts at the
last real token and meets padding only at the end. On CUDA, packed sequences are cuDNN's fast path
and skip padded steps, so they are used there. Both paths give the same outputs and share weights.
LSTM layers can also run textclf's own CPU kernel (textclf.nn.native_lstm; bf16 training does) on
the same dense batches and weights; see use_native_lstm.

The layers take and return batch-first tensors (B, T, D) and run the RNNs time-major: a batch-first
input is transposed, which the kernel copies into time-major memory, and each layer hands the next
a batch-first view of its time-major outputs, read without a copy. Embedding straight into
time-major memory to spare the first copy saved under 3 % of an imdb-lstm or ISEAR bilstm training
step on an AVX2 AMD EPYC (benchmarks/bench_time_major.py), so the Classifier embeds batch-first.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import nn
from torch.nn.utils.rnn import pack_padded_sequence, pad_packed_sequence

from textclf.nn import native_lstm
from textclf.nn.attention import AttentionPooling
from textclf.nn.pooling import gather_last, masked_max, masked_mean

CELLS = {"lstm": nn.LSTM, "gru": nn.GRU}
POOLINGS = ("last", "max", "mean", "attention")


def reverse_within_length(x: torch.Tensor, lengths: torch.Tensor) -> torch.Tensor:
    """Reverse the first `lengths[b]` positions of each row of x (B, T, D); padding stays at the
    end. Applying it twice gives x back. The result is a batch-first view of time-major memory."""
    positions = torch.arange(x.size(1), device=x.device)[:, None]  # (T, 1)
    source = lengths.to(x.device)[None, :] - 1 - positions  # (T, B)
    source = torch.where(source >= 0, source, positions)
    return x.transpose(0, 1).gather(0, source[:, :, None].expand(-1, -1, x.size(2))).transpose(0, 1)


def run_direction(
    rnn: nn.RNNBase, x: torch.Tensor, lengths: torch.Tensor, *, packed: bool, native: bool = False
) -> tuple[torch.Tensor, torch.Tensor]:
    """One unidirectional time-major RNN (batch_first=False) over right-padded x (B, T, D) ->
    outputs (B, T, H), last (B, H), run dense or as a packed sequence (same result; packed skips
    padded steps); `native` runs a dense LSTM with textclf's CPU kernel (textclf.nn.native_lstm).
    The outputs are a batch-first view of time-major memory."""
    if rnn.batch_first:
        raise ValueError("run_direction expects a time-major RNN (batch_first=False)")
    steps = x.transpose(0, 1)  # (T, B, D): no copy when x's memory is time-major
    if not packed:
        outputs = (native_lstm.lstm(rnn, steps) if native else rnn(steps)[0]).transpose(0, 1)
        return outputs, gather_last(outputs, lengths)
    # cuDNN needs lengths >= 1: empty texts read one padding step and are zeroed below.
    sequence = pack_padded_sequence(steps, lengths.clamp(min=1).cpu(), enforce_sorted=False)
    outputs, state = rnn(sequence)
    outputs, _ = pad_packed_sequence(outputs, total_length=x.size(1))
    hidden = state[0] if isinstance(state, tuple) else state  # LSTM returns (h, c)
    return outputs.transpose(0, 1), hidden[-1] * (lengths > 0).to(hidden.device, hidden.dtype)[:, None]


class RecurrentLayer(nn.Module):
    """One LSTM or GRU layer, optionally bidirectional, over right-padded input.

    forward(x (B, T, D), lengths (B,)) -> outputs (B, T, H * directions), last (B, H * directions).
    `last` is the forward state at each text's last real token, concatenated with the backward
    state after reading the whole text; it is zero for empty texts. Outputs at padded positions
    are unspecified: pool them with a mask. `native` (set by use_native_lstm) runs a CPU LSTM
    layer with textclf's own kernel; the weights and results are the same.
    """

    native = False

    def __init__(self, cell: str, input_dim: int, hidden_dim: int, *, bidirectional: bool) -> None:
        super().__init__()
        rnn = CELLS[cell]
        self.forward_rnn = rnn(input_dim, hidden_dim)
        self.backward_rnn = rnn(input_dim, hidden_dim) if bidirectional else None
        self.output_dim = hidden_dim * (2 if bidirectional else 1)

    def forward(self, x: torch.Tensor, lengths: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        packed = x.is_cuda
        outputs, last = run_direction(self.forward_rnn, x, lengths, packed=packed, native=self.native)
        if self.backward_rnn is None:
            return outputs, last
        reversed_outputs, reversed_last = run_direction(
            self.backward_rnn, reverse_within_length(x, lengths), lengths, packed=packed, native=self.native
        )
        backward = reverse_within_length(reversed_outputs, lengths)
        both = torch.cat([outputs.transpose(0, 1), backward.transpose(0, 1)], dim=2)  # (T, B, 2H), kept time-major
        return both.transpose(0, 1), torch.cat([last, reversed_last], dim=1)


class RecurrentStack(nn.Module):
    """Recurrent layers (one cell type and size per layer) with dropout between them, then masked
    pooling: 'last' (final states), 'max', 'mean' or 'attention' over the top layer's outputs.

    forward(x (B, T, D), mask (B, T), lengths (B,)) -> (B, output_dim); empty texts pool to zeros.
    """

    def __init__(
        self, input_dim: int, cells: Sequence[str], dims: Sequence[int], *,
        bidirectional: bool, dropout: float, pooling: str,
    ) -> None:
        super().__init__()
        if len(cells) != len(dims):
            raise ValueError(f"expected one size per recurrent layer, got {len(dims)} sizes for {len(cells)} layers")
        layers = []
        for cell, dim in zip(cells, dims, strict=True):
            layers.append(RecurrentLayer(cell, input_dim, dim, bidirectional=bidirectional))
            input_dim = layers[-1].output_dim
        self.layers = nn.ModuleList(layers)
        self.dropout = nn.Dropout(dropout)
        self.pooling = pooling
        self.attention = AttentionPooling(input_dim) if pooling == "attention" else None
        self.output_dim = input_dim

    def forward(self, x: torch.Tensor, mask: torch.Tensor, lengths: torch.Tensor) -> torch.Tensor:
        for i, layer in enumerate(self.layers):
            x, last = layer(self.dropout(x) if i else x, lengths)  # (B, T, H), (B, H)
        if self.pooling == "last":
            return last
        if self.pooling == "max":
            return masked_max(x, mask)
        if self.pooling == "mean":
            return masked_mean(x, mask)
        return self.attention(x, mask)


def use_native_lstm(module: nn.Module, enabled: bool) -> tuple[int, int]:
    """Switch the LSTM layers under `module` to textclf's CPU kernel (or back to nn.LSTM's) ->
    (layers switched, LSTM layers in all). Layers the kernel does not support (an odd hidden size)
    keep nn.LSTM's."""
    switched = total = 0
    for layer in module.modules():
        if isinstance(layer, RecurrentLayer) and isinstance(layer.forward_rnn, nn.LSTM):
            total += 1
            layer.native = enabled and native_lstm.supports(layer.forward_rnn)
            switched += layer.native
    return switched, total


def layer_plan(cell: str, dim: int, num_layers: int, cells: Sequence[str], dims: Sequence[int]) -> tuple[list, list]:
    """Per-layer cell types and sizes: `cells`/`dims` when given (one entry per layer, as many as
    num_layers), else `cell`/`dim` repeated num_layers times."""
    for name, values in (("cells", cells), ("rnn_dims", dims)):
        if values and len(values) != num_layers:
            raise ValueError(f"{name} has {len(values)} entries, expected one per layer (num_layers={num_layers})")
    return list(cells or [cell] * num_layers), list(dims or [dim] * num_layers)
