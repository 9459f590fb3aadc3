"""`textclf export MODEL_DIR --format onnx`: the network as model.onnx, checked against PyTorch.

The graph takes `ids` (B, T) int64 (right-padded with 0) and `lengths` (B,) int64, both with dynamic
batch and length axes, and returns `logits` (B, C); softmax happens at prediction, as in PyTorch.
Export uses the TorchScript-based exporter (opset 17). nn.MultiheadAttention is swapped, in a
copy of the network, for the same attention written with shape-agnostic ops: the stock module
bakes the traced length into its reshapes. Every export is verified on a ragged batch (lengths 1
to 9, one empty text) against PyTorch before it is written.
"""

from __future__ import annotations

import copy
import io
import math
import warnings
from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from textclf.errors import ConfigError, TextClfError
from textclf.folder import atomic_write
from textclf.inference.loading import load_model
from textclf.inference.onnx import ONNX_FILE
from textclf.inference.predictor import softmax
from textclf.multilabel import sigmoid

OPSET = 17
TOLERANCE = 1e-4  # max absolute difference of probabilities allowed between onnxruntime and PyTorch


class _ExportAttention(nn.Module):
    """nn.MultiheadAttention's self-attention (batch_first, no attention weights returned) with the
    same parameters, written so that batch and length stay dynamic in a traced graph."""

    def __init__(self, attention: nn.MultiheadAttention) -> None:
        super().__init__()
        self.attention = attention

    def forward(self, query, key, value, attn_mask=None, key_padding_mask=None, need_weights=False,
                is_causal=False) -> tuple[torch.Tensor, None]:
        if need_weights:
            raise ValueError("the export attention returns no attention weights; expected need_weights=False")
        a = self.attention
        q, k, v = (t.unflatten(-1, (a.num_heads, -1)).transpose(1, 2)  # (B, H, T, D/H)
                   for t in F.linear(query, a.in_proj_weight, a.in_proj_bias).chunk(3, dim=-1))
        scores = q @ k.transpose(-2, -1) / math.sqrt(q.size(-1))  # (B, H, T, T)
        masks = [(key_padding_mask, lambda m: m[:, None, None, :]), (attn_mask, lambda m: m)]
        if is_causal and attn_mask is None:
            length = scores.size(-1)
            causal = torch.ones(length, length, dtype=torch.bool, device=scores.device).triu(1)
            masks.append((causal, lambda m: m))
        for mask, shape in masks:  # boolean masks mark what to ignore; float masks are added
            if mask is None:
                continue
            if mask.dtype == torch.bool:
                scores = scores.masked_fill(shape(mask), float("-inf"))
            else:
                scores = scores + shape(mask)
        out = (torch.softmax(scores, dim=-1) @ v).transpose(1, 2).flatten(2)  # (B, T, D)
        return a.out_proj(out), None


class _Graph(nn.Module):
    """ids (B, T), lengths (B,) -> logits (B, C): the mask is derived in the graph."""

    def __init__(self, network: nn.Module) -> None:
        super().__init__()
        self.network = network

    def forward(self, ids: torch.Tensor, lengths: torch.Tensor) -> torch.Tensor:
        mask = torch.arange(ids.size(1), device=ids.device)[None, :] < lengths[:, None]  # (B, T)
        return self.network(ids, lengths, mask)


def exportable_copy(network: nn.Module) -> nn.Module:
    """A CPU, eval-mode copy of `network` with every self-attention made trace-friendly."""
    graph = _Graph(copy.deepcopy(network).cpu()).eval()
    for module in graph.modules():
        if isinstance(module, nn.TransformerEncoderLayer):
            module.self_attn = _ExportAttention(module.self_attn)
    return graph


def sample_batch(vocab_size: int, seed: int = 0) -> tuple[torch.Tensor, torch.Tensor]:
    """A ragged batch (lengths 9, 1, 4, 0, 6) of random ids, right-padded."""
    rng = np.random.default_rng(seed)
    lengths = np.array([9, 1, 4, 0, 6], dtype=np.int64)
    ids = rng.integers(min(2, vocab_size - 1), vocab_size, size=(len(lengths), lengths.max())).astype(np.int64)
    ids[np.arange(lengths.max())[None, :] >= lengths[:, None]] = 0
    return torch.from_numpy(ids), torch.from_numpy(lengths)


def onnx_bytes(network: nn.Module, vocab_size: int) -> bytes:
    """The ONNX serialisation of `network` with dynamic batch and length axes."""
    graph = exportable_copy(network)
    ids, lengths = sample_batch(vocab_size)
    buffer = io.BytesIO()
    fastpath = torch.backends.mha.get_fastpath_enabled()
    torch.backends.mha.set_fastpath_enabled(False)  # the fused kernel has no ONNX form
    try:
        with warnings.catch_warnings(), torch.no_grad():
            warnings.simplefilter("ignore")  # tracer notes about Python control flow on shapes
            torch.onnx.export(
                graph, (ids, lengths), buffer, input_names=["ids", "lengths"], output_names=["logits"],
                dynamic_axes={"ids": {0: "batch", 1: "length"}, "lengths": {0: "batch"}, "logits": {0: "batch"}},
                opset_version=OPSET, dynamo=False,
            )
    finally:
        torch.backends.mha.set_fastpath_enabled(fastpath)
    return buffer.getvalue()


def parity(network: nn.Module, data: bytes, vocab_size: int, *, seed: int = 1, multi_label: bool = False) -> float:
    """Max absolute difference of probabilities (multi-label: each label's sigmoid) between onnxruntime
    and PyTorch on a ragged batch."""
    import onnxruntime  # an optional extra; export_onnx checked it is there

    session = onnxruntime.InferenceSession(data, providers=["CPUExecutionProvider"])
    ids, lengths = sample_batch(vocab_size, seed=seed)
    graph = _Graph(network).eval()
    device = next(network.parameters()).device
    with torch.inference_mode():
        logits = graph(ids.to(device), lengths.to(device)).float()
        expected = (torch.sigmoid(logits) if multi_label else torch.softmax(logits, dim=1)).cpu().numpy()
    got = session.run(["logits"], {"ids": ids.numpy(), "lengths": lengths.numpy()})[0]
    got = sigmoid(got) if multi_label else softmax(got)
    return float(np.abs(got - expected).max())


def export_onnx(model: Any, out: str | Path | None = None) -> Path:
    """Write `model` (a model folder or a loaded textclf.Model) as ONNX; returns the file's path.

    Default `out`: model.onnx inside the model folder. The file is verified against PyTorch
    (TOLERANCE) and written atomically.
    """
    try:
        import onnxruntime  # noqa: F401 - an optional extra, checked before the slow export
    except ImportError:
        raise ConfigError("ONNX export needs onnx and onnxruntime: pip install 'textclf[onnx]'.") from None
    folder = Path(model) if isinstance(model, str | Path) else None
    loaded = load_model(folder, device="cpu") if folder is not None else model
    if getattr(loaded, "member_dirs", None) is not None:  # a textclf.ensemble.Ensemble
        raise ConfigError(
            f"{folder or 'this model'} is an ensemble, which is not exported as one ONNX graph: each member reads "
            f"texts through its own tokenizer, and linear members have no graph. Export its neural members one by "
            f"one (textclf export {folder or 'DIR'}/members/NAME); serve the ensemble with the default --runtime torch."
        )
    network = getattr(loaded, "network", None)
    if not isinstance(network, nn.Module):
        raise ConfigError(
            f"{folder or 'this model'} is a {loaded.config.get('architecture', type(loaded).__name__)} model, "
            "not a neural network; ONNX export covers the neural architectures only. It predicts fast as it "
            "is: use it with the default --runtime torch."
        )
    if out is None and folder is None:
        raise ConfigError("export_onnx got a Model without a folder; expected out=PATH for the .onnx file.")
    target = Path(out) if out is not None else folder / ONNX_FILE
    vocab_size = int(loaded.config["vocab_size"])
    data = onnx_bytes(network, vocab_size)
    difference = parity(network, data, vocab_size, multi_label=loaded.multi_label)
    if not difference < TOLERANCE:
        raise TextClfError(
            f"ONNX export of {loaded.architecture} differs from PyTorch by {difference:.2e} in probability "
            f"(allowed {TOLERANCE:g}); nothing was written. Report this with the model's config.json."
        )
    return atomic_write(target, data)
