"""The pretrained family's train function, which hands each kind to its spec's run; and the hf kind's
run: a Hugging Face encoder fine-tuned under a linear head, in the neural run's own stages
(textclf.training.run): the same splits, the loop with its schedule, early stopping on validation
macro-F1, checkpoints, the doctor's monitors and records.

What differs from a network trained from scratch: texts are read by the encoder's own tokenizer
(cut by its truncation, so [CLS]/[SEP] stay), the automatic length is capped at 256 tokens and at
the encoder's positions, and the training defaults are fine-tuning ones (settings.HF).
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import torch
from tokenizers import Tokenizer

from textclf.config import RunConfig
from textclf.data.readers import Dataset
from textclf.doctor.training import monitor_run
from textclf.errors import ConfigError
from textclf.inference.model import Model
from textclf.inference.predictor import Predictor
from textclf.multilabel import multi_label_record
from textclf.pretrained.encoders import (
    EncoderSource,
    encoder_config,
    load_encoder,
    parameter_count,
    read_source_tokenizer,
)
from textclf.pretrained.model import HFClassifier
from textclf.pretrained.settings import ENCODER_CONFIG, PretrainedSpec, Resolved, network_options, resolve_run
from textclf.registry import ModelKind, resolve, spec_of
from textclf.runtime import check_precision, resolve_device, thread_limit
from textclf.training.data import prepare_data, read_inputs
from textclf.training.distributed import Ranks, process_group, rank_threads
from textclf.training.kernels import resolve_precision
from textclf.training.run import (
    Callbacks,
    memory_available,
    open_checkpoint,
    record_run,
    run_fit,
    tune_decision,
)


def train_pretrained(data: str | Path | Dataset, *, kind: ModelKind, config: RunConfig,
                     test: str | Path | Dataset | None, out: str | Path | None,
                     callbacks: Callbacks, on_data: Callable[[dict], None] | None, resume: bool) -> Predictor:
    """The pretrained family's run (see textclf.train): the kind's spec names it."""
    run = resolve(spec_of(kind).run)
    return run(data, kind=kind, config=config, test=test, out=out, callbacks=callbacks, on_data=on_data,
               resume=resume)


def pad_id_of(source: EncoderSource, tokenizer: Tokenizer) -> int:
    """The id the encoder reads as padding: its config's pad_token_id, else the tokenizer's pad token."""
    pad = source.config.get("pad_token_id")
    if isinstance(pad, int) and not isinstance(pad, bool) and 0 <= pad < tokenizer.get_vocab_size():
        return pad
    found = (tokenizer.token_to_id(token) for token in ("[PAD]", "<pad>"))
    return next((i for i in found if i is not None), 0)


def check_fits_memory(source: EncoderSource) -> None:
    """Refuse an encoder whose fine-tuning state (float32 weights, gradients and two AdamW moments:
    16 bytes a parameter) would not fit in this machine's memory, before loading it."""
    parameters = parameter_count(source)
    needed, available = 16 * parameters, memory_available()
    if available and needed > available:
        raise ConfigError(
            f"model.path={source.name!r} has {parameters:,} parameters; fine-tuning them needs about "
            f"{needed / 2**30:,.1f} GiB, expected at most this machine's {available / 2**30:,.1f} GiB. Choose a "
            "smaller encoder, or --model embed-lr, which keeps the encoder frozen."
        )


def build_finetuned(resolved: Resolved, spec: PretrainedSpec, *, num_labels: int, pad_id: int, seed: int,
                    device: torch.device) -> HFClassifier:
    """The pretrained encoder under a seeded linear head, on `device`."""
    check_fits_memory(resolved.source)
    encoder = load_encoder(resolved.source)
    torch.manual_seed(seed)
    network = HFClassifier(encoder, num_labels=num_labels, pad_id=pad_id, **network_options(spec, resolved.settings))
    return network.to(device)


def saved_config(kind: ModelKind, resolved: Resolved, tokenizer: Tokenizer, *, num_labels: int, max_length: int,
                 pad_id: int) -> dict[str, Any]:
    """config.json of a pretrained model."""
    return {"architecture": kind.id, "model": resolved.settings.model_dump(), "encoder": resolved.source.record(),
            "pad_id": pad_id, "vocab_size": tokenizer.get_vocab_size(), "num_labels": num_labels,
            "max_length": max_length}


def run_config_record(kind: ModelKind, resolved: Resolved) -> dict[str, Any]:
    """training.json's "config": the run's settings with the kind's own model settings."""
    values = resolved.config.model_dump()
    values["model"] = {"architecture": kind.name, **resolved.settings.model_dump()}
    return values


def finetune(data: str | Path | Dataset, *, kind: ModelKind, config: RunConfig,
             test: str | Path | Dataset | None, out: str | Path | None, callbacks: Callbacks,
             on_data: Callable[[dict], None] | None, resume: bool) -> Model:
    """The hf kind's run (see textclf.train); under torchrun, this rank's part of it."""
    resolved = resolve_run(kind, config)
    with process_group(resolve_device(resolved.config.train.device)) as (ranks, device):
        return finetune_on(data, kind=kind, resolved=resolved, test=test, out=out, callbacks=callbacks,
                           on_data=on_data if ranks.is_main else None, resume=resume, ranks=ranks, device=device)


def finetune_on(data: str | Path | Dataset, *, kind: ModelKind, resolved: Resolved,
                test: str | Path | Dataset | None, out: str | Path | None, callbacks: Callbacks,
                on_data: Callable[[dict], None] | None, resume: bool, ranks: Ranks, device: torch.device) -> Model:
    """The hf run on `device`, as rank `ranks.rank` of `ranks.size`."""
    spec: PretrainedSpec = spec_of(kind)
    config = resolved.config
    precision = resolve_precision(device, config.train.precision)  # 'auto' becomes fp32 or bf16 here
    check_precision(device, precision)
    dataset, test_data = read_inputs(data, test, config.data)
    prepared = prepare_data(dataset, config.data, test=test_data, seed=config.train.seed,
                            tokenizer=read_source_tokenizer(resolved.source))
    if on_data is not None:
        on_data(prepared.summary.to_json())
    pad_id = pad_id_of(resolved.source, prepared.tokenizer)
    with thread_limit(rank_threads(config.train.threads, ranks)):
        network = build_finetuned(resolved, spec, num_labels=len(prepared.labels), pad_id=pad_id,
                                  seed=config.train.seed, device=device)
        checkpointer, resume_state = open_checkpoint(out, resume, network, prepared, config)
        result, _, recorder = run_fit(network, prepared, config, device=device, precision=precision, frozen=False,
                                      callbacks=callbacks, checkpointer=checkpointer, resume_state=resume_state,
                                      ranks=ranks)
        saved = saved_config(kind, resolved, prepared.tokenizer, num_labels=len(prepared.labels),
                             max_length=prepared.max_length, pad_id=pad_id)
        model = Model(network, prepared.tokenizer, prepared.labels, saved, device=device,
                      files={ENCODER_CONFIG: encoder_config(network.encoder)})
        if not ranks.is_main:  # rank 0 records, tests and saves the model
            return model
        tune_decision(model, prepared, config, device)
        history = [entry.to_json() for entry in result.history]
        findings = monitor_run(prepared, config.train, history, recorder, architecture=kind.name)
        extra = {"encoder": resolved.source.record(), "precision": precision, **findings,
                 **multi_label_record(model)}
        record_run(model, kind, prepared, config, result, extra, None, dataset, test_data)
        model.training["config"] = run_config_record(kind, resolved)
    if out is not None:
        model.save(out)
        checkpointer.remove()
    return model

