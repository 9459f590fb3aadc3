"""Optimizers: AdamW for dense parameters, SparseAdam for embeddings with sparse gradients.

A fastText-style model has large embedding tables (words + hashed bigrams) of which one batch
touches a few thousand rows. A dense gradient and update cost the whole table every step; sparse
gradients, coalesced once in `clip_gradients`, cost only the touched rows (about 6x less on IMDb).
"""

from __future__ import annotations

import math
from collections.abc import Iterable

import torch
from torch import nn

FUSED_DEVICES = ("cpu", "cuda")


class OptimizerSet:
    """Several optimizers stepped together. `param_groups` lists every group, so the schedule sets
    one learning rate for all."""

    def __init__(self, optimizers: list[torch.optim.Optimizer]) -> None:
        self.optimizers = optimizers

    @property
    def param_groups(self) -> list[dict]:
        return [group for optimizer in self.optimizers for group in optimizer.param_groups]

    def zero_grad(self, set_to_none: bool = True) -> None:
        for optimizer in self.optimizers:
            optimizer.zero_grad(set_to_none=set_to_none)

    def step(self) -> None:
        for optimizer in self.optimizers:
            optimizer.step()

    def state_dict(self) -> dict:
        return {"optimizers": [optimizer.state_dict() for optimizer in self.optimizers]}

    def load_state_dict(self, state: dict) -> None:
        for optimizer, values in zip(self.optimizers, state["optimizers"], strict=True):
            optimizer.load_state_dict(values)


def make_optimizer(model: nn.Module, *, lr: float, weight_decay: float, layer_decay: float = 1.0) -> OptimizerSet:
    """AdamW (no weight decay on embeddings, biases and norms) + SparseAdam for sparse embeddings.

    Each parameter group carries an "lr_scale" that the schedule multiplies (textclf.training.loop):
    1 unless the model has layers to decay (`lr_scales(layer_decay)`, e.g. a pretrained encoder).
    """
    scales = model.lr_scales(layer_decay) if hasattr(model, "lr_scales") else {}
    sparse = {id(m.weight) for m in model.modules() if isinstance(m, nn.Embedding) and m.sparse}
    embeddings = {id(m.weight) for m in model.modules() if isinstance(m, nn.Embedding)}
    buckets: dict[tuple[bool, float], list[nn.Parameter]] = {(True, 1.0): [], (False, 1.0): []}
    sparse_params = []
    for name, param in model.named_parameters():
        if id(param) in sparse:
            sparse_params.append(param)
        else:
            decays = param.ndim >= 2 and id(param) not in embeddings
            buckets.setdefault((decays, scales.get(name, 1.0)), []).append(param)
    groups = [{"params": params, "weight_decay": weight_decay if decays else 0.0, "lr_scale": scale}
              for (decays, scale), params in buckets.items()]
    # The fused kernel updates every tensor in one pass: on the imdb-lstm parameters an AdamW step
    # takes 0.4-0.5 ms fused against 1.4-4 ms with foreach on a 2-core CPU.
    fused = all(p.device.type in FUSED_DEVICES for group in groups for p in group["params"])
    optimizers: list[torch.optim.Optimizer] = [
        torch.optim.AdamW(groups, lr=lr, fused=True) if fused else torch.optim.AdamW(groups, lr=lr, foreach=True)
    ]
    if sparse_params:
        optimizers.append(torch.optim.SparseAdam(sparse_params, lr=lr))
    return OptimizerSet(optimizers)


@torch.no_grad()
def clip_gradients(parameters: Iterable[nn.Parameter], max_norm: float) -> float:
    """Scale gradients so their global L2 norm is at most `max_norm`; return the norm before.
    Sparse gradients (which torch's clip_grad_norm_ rejects) are coalesced in place first."""
    grads = []
    for param in parameters:
        if param.grad is None:
            continue
        if param.grad.is_sparse:
            param.grad = param.grad.coalesce()
        grads.append(param.grad)
    if not grads:
        return 0.0
    squares = [(g.values() if g.is_sparse else g).float().pow(2).sum() for g in grads]
    total = float(torch.stack(squares).sum().sqrt())
    if total > max_norm and math.isfinite(total):
        scale = max_norm / (total + 1e-6)
        for g in grads:
            (g.values() if g.is_sparse else g).mul_(scale)
    return total
