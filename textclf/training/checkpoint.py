"""Resumable checkpoints in the run folder (never in the model folder), without pickle.

A checkpoint is a folder: weights.safetensors (current), best.safetensors (best so far),
optimizer.safetensors (optimizer tensors) and state.json (loop state, optimizer settings and the
fingerprint of the run it belongs to). It is replaced atomically at the end of every epoch.
"""

from __future__ import annotations

import json
import shutil
from dataclasses import asdict
from pathlib import Path
from typing import Any

import safetensors.torch
import torch
from torch import nn

from textclf.errors import ConfigError, ModelFormatError
from textclf.folder import atomic_dir
from textclf.training.loop import LoopState
from textclf.training.optim import OptimizerSet


def _flatten_optimizer(optimizer: OptimizerSet) -> tuple[dict[str, torch.Tensor], list[dict]]:
    """Tensors named '<optimizer>.<param>.<key>' and, per optimizer, its groups and scalars."""
    tensors: dict[str, torch.Tensor] = {}
    metas = []
    for index, state in enumerate(optimizer.state_dict()["optimizers"]):
        scalars: dict[str, dict[str, Any]] = {}
        for pid, values in state["state"].items():
            for key, value in values.items():
                if torch.is_tensor(value):
                    tensors[f"{index}.{pid}.{key}"] = value.detach().cpu().contiguous()
                else:
                    scalars.setdefault(str(pid), {})[key] = value
        metas.append({"param_groups": state["param_groups"], "scalars": scalars})
    return tensors, metas


def _unflatten_optimizer(tensors: dict[str, torch.Tensor], metas: list[dict]) -> dict:
    states: list[dict[int, dict[str, Any]]] = [{} for _ in metas]
    for name, value in tensors.items():
        index, pid, key = name.split(".", 2)
        states[int(index)].setdefault(int(pid), {})[key] = value
    for state, meta in zip(states, metas, strict=True):
        for pid, values in meta["scalars"].items():
            state.setdefault(int(pid), {}).update(values)
    return {"optimizers": [{"state": state, "param_groups": meta["param_groups"]}
                           for state, meta in zip(states, metas, strict=True)]}


STAMP = "textclf-checkpoint"  # the file that marks a folder as a textclf checkpoint


class Checkpointer:
    """Saves after every epoch into `folder`; `load` restores a run with the same fingerprint.

    A folder of that name that textclf did not write (no stamp file) is never replaced or removed:
    the run is refused before training starts."""

    def __init__(self, folder: str | Path, fingerprint: str) -> None:
        self.folder = Path(folder)
        self.fingerprint = fingerprint
        self.best: dict[str, torch.Tensor] | None = None
        if self.folder.exists() and not (self.folder / STAMP).is_file():
            raise ConfigError(
                f"{self.folder} exists and is not a textclf checkpoint (no {STAMP} file); textclf keeps its "
                "checkpoints there and would replace it. Move it away, or choose another --out."
            )

    def exists(self) -> bool:
        return (self.folder / "state.json").is_file()

    def __call__(self, model: nn.Module, optimizer: OptimizerSet, state: LoopState) -> None:
        weights = {k: v.detach().cpu().contiguous() for k, v in model.state_dict().items()}
        if state.best_epoch == state.epoch - 1 or self.best is None:
            self.best = weights
        tensors, meta = _flatten_optimizer(optimizer)
        payload = {"fingerprint": self.fingerprint, "loop": asdict(state), "optimizer": meta}

        def write(tmp: Path) -> None:
            safetensors.torch.save_file(weights, str(tmp / "weights.safetensors"))
            safetensors.torch.save_file(self.best, str(tmp / "best.safetensors"))
            safetensors.torch.save_file(tensors, str(tmp / "optimizer.safetensors"))
            (tmp / "state.json").write_text(json.dumps(payload), encoding="utf-8")
            (tmp / STAMP).write_text("written by textclf; removed when the run finishes\n", encoding="utf-8")

        atomic_dir(self.folder, write)

    def load(self, model: nn.Module, optimizer: OptimizerSet) -> tuple[LoopState, dict]:
        """Restore weights and optimizer in place; return the loop state and the best weights."""
        try:
            payload = json.loads((self.folder / "state.json").read_text(encoding="utf-8"))
            weights = safetensors.torch.load_file(str(self.folder / "weights.safetensors"))
            best = safetensors.torch.load_file(str(self.folder / "best.safetensors"))
            tensors = safetensors.torch.load_file(str(self.folder / "optimizer.safetensors"))
        except (OSError, ValueError, safetensors.SafetensorError) as error:
            raise ModelFormatError(
                f"checkpoint {self.folder} cannot be read ({str(error)[:100]}). Delete it to start over."
            ) from None
        if payload.get("fingerprint") != self.fingerprint:
            raise ConfigError(
                f"--resume: the checkpoint in {self.folder} belongs to a run with other data or settings; "
                "expected the same command as the interrupted run. Delete the folder to start over."
            )
        model.load_state_dict(weights)
        optimizer.load_state_dict(_unflatten_optimizer(tensors, payload["optimizer"]))
        self.best = best
        return LoopState(**payload["loop"]), best

    def remove(self) -> None:
        if (self.folder / STAMP).is_file():
            shutil.rmtree(self.folder, ignore_errors=True)
