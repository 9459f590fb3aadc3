"""A trained network with its tokenizer and labels (`Model`), ready to predict, evaluate and save;
and the neural family's loader."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import safetensors
import safetensors.torch
import torch
from tokenizers import Tokenizer

from textclf.data.batching import bucket_batches, collate
from textclf.data.tokenize import encode, truncate
from textclf.errors import ModelFormatError
from textclf.explain import Explanation, label_index, word_spans, words_of
from textclf.folder import FORMAT_VERSION, FolderContents, atomic_dir, library_versions, write_json
from textclf.inference.predictor import Predictor, check_texts
from textclf.models import classifier_from_saved
from textclf.models.base import Classifier
from textclf.multilabel import THRESHOLDS_FILE
from textclf.runtime import autocast, resolve_device, thread_limit


@torch.no_grad()
def predict_logits(
    network: torch.nn.Module, ids: Sequence[np.ndarray], *, device: torch.device, batch_size: int = 256,
    precision: str = "fp32",
) -> np.ndarray:
    """Logits (N, C) in the input order; batches are sorted by length for speed."""
    was_training = network.training
    network.eval()
    lengths = np.fromiter((len(r) for r in ids), dtype=np.int64, count=len(ids))
    out = np.zeros((len(ids), network.head.out_features), dtype=np.float32)
    for index in bucket_batches(lengths, batch_size):
        batch = collate(ids, index).to(device)
        with autocast(device, precision):
            out[batch.index] = network(batch.ids, batch.lengths, batch.mask).float().cpu().numpy()
    network.train(was_training)
    return out


class Model(Predictor):
    """What `textclf.train` returns for a neural architecture and `textclf.load_model` loads.

    `config` is the content of config.json (architecture, model settings, sizes, max_length);
    `training` the content of training.json (settings, metrics, data fingerprint, vectors).
    `files` are JSON files the model's family needs besides those (name -> content, e.g. a pretrained
    encoder's encoder_config.json): saved with it, so that a loaded model saves the same folder.
    `threads` caps torch's intra-op threads while predicting (None: torch's own count).
    """

    def __init__(
        self,
        network: torch.nn.Module,
        tokenizer: Tokenizer,
        labels: Sequence[str],
        config: dict[str, Any],
        training: dict[str, Any] | None = None,
        *,
        device: str | torch.device = "cpu",
        threads: int | None = None,
        files: dict[str, Any] | None = None,
    ) -> None:
        self.network = network
        self.tokenizer = tokenizer
        self.labels = list(labels)
        self.config = config
        self.training = training or {}
        self.device = resolve_device(device)
        self.threads = threads
        self.files = dict(files or {})
        self.extra_files: dict = {}  # name -> writer(path), saved beside the model files
        self.network.to(self.device).eval()

    @property
    def max_length(self) -> int:
        return int(self.config["max_length"])

    def logits(self, texts: Sequence[str], *, batch_size: int | None = None) -> np.ndarray:
        """Raw scores (N, C), in the input order."""
        ids = truncate(encode(self.tokenizer, check_texts(texts)), self.max_length)
        with thread_limit(self.threads):
            return predict_logits(self.network, ids, device=self.device, batch_size=batch_size or 256)

    explanation_method = "integrated-gradients"

    def attribute(self, texts: list[str], label: str | None, steps: int = 64) -> list[Explanation]:
        """Integrated gradients on the embeddings (Captum), from an all-padding baseline, summed over the
        embedding dimensions and over each word's tokens; the words' scores plus `bias` (the label's
        logit at the baseline) approximate the label's logit (completeness, to the integral's error)."""
        from captum.attr import LayerIntegratedGradients  # optional extra: pip install 'textclf[explain]'

        network, out = self.network, []
        integrated = LayerIntegratedGradients(lambda ids, lengths, mask: network(ids, lengths, mask),
                                              network.embedding)
        for text in texts:
            spans, token_word = word_spans(self.tokenizer, text, self.max_length)
            ids = torch.as_tensor(truncate(encode(self.tokenizer, [text]), self.max_length)[0])[None].to(self.device)
            lengths = torch.tensor([ids.size(1)], device=self.device)
            mask = torch.ones_like(ids, dtype=torch.bool)
            with torch.no_grad(), thread_limit(self.threads):
                logits = network(ids, lengths, mask)[0].float()
                baseline = network(torch.zeros_like(ids), lengths, mask)[0].float()
            k = label_index(self.labels, label, logits.cpu().numpy())
            with thread_limit(self.threads):
                attributions = integrated.attribute(ids, baselines=torch.zeros_like(ids), target=k, n_steps=steps,
                                                    additional_forward_args=(lengths, mask))
            per_token = attributions.sum(dim=-1).reshape(-1).detach().cpu().numpy()  # (T,)
            scores = np.zeros(len(spans))
            for position, word in enumerate(token_word[: len(per_token)]):
                if word >= 0:
                    scores[word] += per_token[position]
            probability = float(torch.sigmoid(logits[k]) if self.multi_label else torch.softmax(logits, dim=0)[k])
            out.append(Explanation(text, self.labels[k], probability, "integrated-gradients", "logit",
                                   words_of(text, spans, scores), float(baseline[k])))
        return out

    def save(self, path: str | Path) -> Path:
        """Write the model folder atomically (see textclf.folder)."""

        def write(tmp: Path) -> None:
            config = {**self.config, "format_version": FORMAT_VERSION, "versions": library_versions()}
            write_json(tmp / "config.json", config)
            write_json(tmp / "labels.json", self.labels)
            self.tokenizer.save(str(tmp / "tokenizer.json"))
            state = {k: v.detach().cpu().contiguous() for k, v in self.network.state_dict().items()}
            safetensors.torch.save_file(state, str(tmp / "model.safetensors"), metadata={"format": "pt"})
            write_json(tmp / "training.json", self.training)
            for name, content in self.files.items():
                write_json(tmp / name, content)
            if self.thresholds is not None:
                write_json(tmp / THRESHOLDS_FILE, self.thresholds.to_json(self.labels))
            for name, writer in self.extra_files.items():
                writer(tmp / name)

        return atomic_dir(Path(path), write)


def read_state(path: Path) -> dict[str, torch.Tensor]:
    """Tensors of model.safetensors; anything else (a pickle, a truncated file) is refused."""
    try:
        return safetensors.torch.load_file(str(path))
    except (safetensors.SafetensorError, OSError, ValueError) as error:
        raise ModelFormatError(
            f"{path} is not a valid safetensors file ({str(error)[:120]}). textclf never unpickles; "
            "retrain or restore the model."
        ) from None


def check_state(expected: dict[str, torch.Tensor], state: dict[str, torch.Tensor], where: Path) -> None:
    """Refuse `state` unless it has exactly the keys and shapes of `expected` (which may live on the
    meta device) and finite values, listing every missing/unexpected key and shape mismatch in one message."""
    missing = sorted(set(expected) - set(state))
    unexpected = sorted(set(state) - set(expected))
    shapes = [f"{k} {tuple(state[k].shape)} vs {tuple(v.shape)}" for k, v in expected.items()
              if k in state and state[k].shape != v.shape]
    if missing or unexpected or shapes:
        parts = [f"missing {missing}" if missing else "", f"unexpected {unexpected}" if unexpected else "",
                 f"wrong shapes (file vs model) {shapes}" if shapes else ""]
        raise ModelFormatError(
            f"{where} does not match its config.json: {'; '.join(p for p in parts if p)}. "
            "The folder was modified or mixes two models; retrain or restore it."
        )
    bad = next((k for k, v in state.items() if v.is_floating_point() and not bool(torch.isfinite(v).all())), None)
    if bad is not None:
        raise ModelFormatError(
            f"{where}: tensor {bad} holds NaN or infinite values; expected finite weights. "
            "The training diverged or the file was damaged; retrain or restore the model."
        )


def build_saved_network(config: dict[str, Any], state: dict[str, torch.Tensor], path: Path) -> Classifier:
    """The network config.json describes, loaded with `state`. Its sizes are first checked against the
    tensors on the meta device (no memory), so absurd declared sizes never allocate anything."""
    where = path / "config.json"
    if not isinstance(config.get("model"), dict):
        raise ModelFormatError(
            f"{where}: model settings are {type(config.get('model')).__name__}; expected a mapping of model "
            "settings. The folder was modified; retrain or restore it."
        )
    with torch.device("meta"):
        skeleton = classifier_from_saved(config, where)
    check_state(skeleton.state_dict(), state, path / "model.safetensors")
    network = classifier_from_saved(config, where)
    network.load_state_dict(state, strict=True)
    return network


def load_network(contents: FolderContents, *, device: str | torch.device = "cpu") -> Model:
    """The neural family's loader: the Model of a checked model folder (see textclf.folder)."""
    state = read_state(contents.path / "model.safetensors")
    network = build_saved_network(contents.config, state, contents.path)
    return Model(network, contents.tokenizer, contents.labels, contents.config, contents.training, device=device)
