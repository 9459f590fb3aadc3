"""The training loop: a generator of steps with no printing or I/O, and fit() that consumes it.

`train_steps` yields one `Step` per optimizer step and one more at the end of each epoch carrying
validation metrics. `fit` does the rest: keeping the best weights, early stopping, checkpoints and
the callbacks (progress bars, monitors), which are plain callables taking a Step.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable, Iterator, Sequence
from contextlib import nullcontext
from dataclasses import dataclass, field

import numpy as np
import torch
from torch import nn

from textclf.config import TrainConfig
from textclf.data.batching import Encoded, bucket_batches, collate
from textclf.errors import TrainingError
from textclf.evaluation.metrics import classification_metrics
from textclf.inference.model import predict_logits
from textclf.multilabel import macro_f1
from textclf.records import EpochRecord, Step
from textclf.runtime import autocast
from textclf.training.denormals import flush_denormals
from textclf.training.distributed import Ranks
from textclf.training.optim import OptimizerSet, clip_gradients, make_optimizer
from textclf.training.schedule import lr_at


@dataclass
class LoopState:
    """What a resumed run needs besides weights and optimizer state."""

    epoch: int = 0  # epochs completed
    step: int = 0
    best_score: float = -math.inf
    best_epoch: int = -1
    bad_epochs: int = 0
    history: list[dict] = field(default_factory=list)


def count_batches(n: int, batch_size: int, chunk_batches: int = 50) -> int:
    chunk = batch_size * chunk_batches
    full, rest = divmod(n, chunk)
    return full * chunk_batches + math.ceil(rest / batch_size)


def train_steps(
    model: nn.Module,
    optimizer: OptimizerSet,
    train: Encoded,
    val: Encoded,
    config: TrainConfig,
    *,
    device: torch.device,
    loss_fn: nn.Module,
    state: LoopState,
    frozen_epochs: int = 0,
    ranks: Ranks | None = None,
) -> Iterator[Step]:
    """Yield a Step per optimizer step and an end-of-epoch Step with validation metrics.

    Batch order and dropout are seeded from (seed, epoch), so a resumed run repeats exactly.
    Embeddings stay frozen for the first `frozen_epochs` epochs. With `accumulation_steps` k, each
    optimizer step sums the gradients of k consecutive batches, each weighted by its share of their
    texts, so the step is the one a batch of all of them would give (exactly, without class weights).
    The learning rate of each parameter group is the schedule's times its "lr_scale".

    With `ranks` of a distributed run, each rank trains on its contiguous part of every batch, its loss
    weighted so that the gradients DistributedDataParallel averages are the whole batch's; rank 0
    validates and broadcasts the metrics (textclf.training.distributed).
    """
    ranks = ranks or Ranks()
    accumulate = config.accumulation_steps
    per_epoch = math.ceil(count_batches(len(train), config.batch_size) / accumulate)
    total = per_epoch * config.epochs
    warmup = int(config.warmup_ratio * total)
    lengths = train.lengths
    start = time.perf_counter()
    for epoch in range(state.epoch, config.epochs):
        model.embedding.weight.requires_grad_(
            not config.freeze_embeddings and epoch >= frozen_epochs
        )
        rng = np.random.default_rng([config.seed, epoch])
        torch.manual_seed(config.seed * 100_003 + epoch)
        model.train()
        losses = []
        correct = seen = 0
        epoch_start = time.perf_counter()
        batches = bucket_batches(lengths, config.batch_size, rng=rng)
        network = ranks.wrap(model, device)
        for first in range(0, len(batches), accumulate):
            group = batches[first : first + accumulate]
            texts = sum(len(index) for index in group)
            lr = lr_at(state.step, total, base_lr=config.lr, warmup_steps=warmup, schedule=config.schedule)
            for param_group in optimizer.param_groups:
                param_group["lr"] = lr * param_group.get("lr_scale", 1.0)
            optimizer.zero_grad(set_to_none=True)
            ranks.check_fault(state.step)
            step_loss = 0.0
            for position, whole in enumerate(group):
                index = ranks.part(whole)
                # A rank with no rows in this batch still joins the gradient reduction, with a zero weight
                share = len(index) * ranks.size / texts
                batch = collate(train.ids, index if len(index) else whole[:1], train.labels).to(device)
                with synchronised(network, position == len(group) - 1):
                    with autocast(device, config.precision):
                        logits = network(batch.ids, batch.lengths, batch.mask)
                    loss = loss_fn(logits.float(), batch.labels)
                    if not torch.isfinite(loss):
                        raise TrainingError(
                            f"training loss became {loss.item()} at epoch {epoch + 1}, step {state.step + 1} "
                            f"(lr {lr:.3g}); expected a finite loss. Lower --lr or keep gradient clipping on."
                        )
                    (loss * share).backward()
                if len(index):
                    step_loss += loss.item() * share / ranks.size
                    correct += correct_in(logits.detach(), batch.labels)
                    seen += len(batch.labels)
            if ranks.size > 1:
                step_loss, = ranks.sum([step_loss], device)
            grad_norm = clip_gradients(list(model.parameters()), config.clip_norm)
            optimizer.step()
            state.step += 1
            losses.append(step_loss)
            yield Step(epoch, state.step, total, losses[-1], lr, grad_norm, time.perf_counter() - start)
        epoch_train_seconds = time.perf_counter() - epoch_start
        correct, seen = (int(n) for n in ranks.sum([correct, seen], device))
        metrics = ranks.broadcast(
            evaluate_split(model, val, device=device, loss_fn=loss_fn, precision=config.precision)
            if ranks.is_main else None)
        is_best = metrics["macro_f1"] > state.best_score
        state.epoch = epoch + 1
        yield Step(
            epoch, state.step, total, losses[-1] if losses else float("nan"), lr, grad_norm,
            time.perf_counter() - start, metrics=metrics, is_best=is_best,
            train_loss=float(np.mean(losses)) if losses else float("nan"),
            train_accuracy=correct / seen if seen else float("nan"), epoch_train_seconds=epoch_train_seconds,
        )


def synchronised(network: nn.Module, last: bool):
    """DistributedDataParallel reduces gradients at the last batch of an accumulated step only."""
    if last or not isinstance(network, nn.parallel.DistributedDataParallel):
        return nullcontext()
    return network.no_sync()


def correct_in(logits: torch.Tensor, labels: torch.Tensor) -> int:
    """Texts of a batch predicted right: the argmax class, or (multi-label targets (B, C)) every label
    at logit 0, i.e. probability 0.5."""
    if labels.ndim == 2:
        return int(((logits > 0) == (labels > 0.5)).all(dim=1).sum())
    return int((logits.argmax(dim=1) == labels).sum())


def evaluate_split(
    model: nn.Module, data: Encoded, *, device: torch.device, loss_fn: nn.Module, precision: str = "fp32"
) -> dict:
    """Loss, accuracy, macro-F1 and predictions of `model` on a labelled split. Multi-label (targets
    (N, C)): exact match as accuracy, macro-F1 at probability 0.5, and how many texts get each label."""
    logits = predict_logits(model, data.ids, device=device, precision=precision)
    labels = torch.as_tensor(data.labels)
    loss = float(loss_fn(torch.from_numpy(logits), labels)) if len(labels) else float("nan")
    if data.labels.ndim == 2:
        chosen = logits > 0
        exact = float((chosen == (data.labels > 0.5)).all(axis=1).mean()) if len(chosen) else float("nan")
        return {"loss": loss, "accuracy": exact, "macro_f1": macro_f1(data.labels, chosen),
                "predicted_counts": chosen.sum(axis=0).tolist()}
    predicted = logits.argmax(axis=1)
    num_labels = logits.shape[1]
    metrics = classification_metrics(data.labels, predicted, num_labels=num_labels)
    return {"loss": loss, "accuracy": metrics["accuracy"], "macro_f1": metrics["macro_f1"],
            "predicted_counts": np.bincount(predicted, minlength=num_labels).tolist()}


@dataclass
class FitResult:
    history: list[EpochRecord]
    best_epoch: int
    best: EpochRecord | None
    epochs_run: int
    seconds: float
    stopped_early: bool


def fit(
    model: nn.Module,
    train: Encoded,
    val: Encoded,
    config: TrainConfig,
    *,
    device: torch.device,
    loss_fn: nn.Module,
    frozen_epochs: int = 0,
    callbacks: Sequence[Callable[[Step], None]] = (),
    checkpoint: Callable[[nn.Module, OptimizerSet, LoopState], None] | None = None,
    resume: tuple[OptimizerSet, LoopState, dict] | None = None,
    ranks: Ranks | None = None,
) -> FitResult:
    """Train `model` in place; at the end it holds the weights of the best validation macro-F1.

    `resume` = (optimizer, loop state, best weights) restored from a checkpoint; `ranks`, this process's
    place in a distributed run (every rank calls fit; give the checkpoint to rank 0 alone).
    """
    model.to(device)
    if resume:
        optimizer, state, best_weights = resume
    else:
        optimizer = make_optimizer(model, lr=config.lr, weight_decay=config.weight_decay,
                                   layer_decay=config.layer_decay)
        state = LoopState()
        best_weights = {k: v.detach().clone() for k, v in model.state_dict().items()}
    stopped_early = False
    start = time.perf_counter()
    with flush_denormals(device):
        for step in train_steps(model, optimizer, train, val, config, device=device, loss_fn=loss_fn,
                                state=state, frozen_epochs=frozen_epochs, ranks=ranks):
            if step.metrics is None:
                for callback in callbacks:
                    callback(step)
                continue
            state.history.append(EpochRecord.from_step(step).to_json())
            if step.is_best:
                state.best_score, state.best_epoch, state.bad_epochs = step.metrics["macro_f1"], step.epoch, 0
                best_weights = {k: v.detach().clone() for k, v in model.state_dict().items()}
            else:
                state.bad_epochs += 1
            if checkpoint is not None:
                checkpoint(model, optimizer, state)
            for callback in callbacks:  # after the checkpoint: an interrupt here loses nothing
                callback(step)
            if state.bad_epochs >= config.patience and state.epoch < config.epochs:
                stopped_early = True
                break
    model.load_state_dict(best_weights)
    history = [EpochRecord(**entry) for entry in state.history]
    best = history[state.best_epoch] if state.best_epoch >= 0 else None
    return FitResult(history, state.best_epoch + 1, best, state.epoch, time.perf_counter() - start, stopped_early)
