"""Which LSTM kernel a training run uses (train.lstm_kernel), decided once per run and recorded."""

from __future__ import annotations

import warnings

import torch
from torch import nn

from textclf.errors import TextClfWarning, TrainingError
from textclf.nn import native_lstm
from textclf.nn.rnn import use_native_lstm


def select_lstm_kernel(network: nn.Module, device: torch.device, choice: str) -> str | None:
    """Switch `network`'s LSTM layers to the kernel `choice` asks for on `device` and say which
    runs: None (no LSTM layers), 'cudnn' (CUDA: packed sequences), 'onednn' (nn.LSTM on CPU),
    'native' (textclf's CPU kernel) or 'native+onednn' (layers it does not support keep nn.LSTM's).

    'native' that cannot build here is an error; 'auto' then warns and uses oneDNN's."""
    if use_native_lstm(network, False)[1] == 0:  # starts from nn.LSTM's kernel everywhere; counts the layers
        return None
    if device.type != "cpu":
        return "cudnn" if device.type == "cuda" else "default"
    if choice == "onednn":
        return "onednn"
    ok, why = native_lstm.available()
    if not ok:
        message = (f"train.lstm_kernel={choice}: textclf's CPU LSTM kernel could not be built here ({why}); "
                   "expected a C++ compiler (g++) and ninja.")
        if choice == "native":
            raise TrainingError(f"{message} Install them, or use --set train.lstm_kernel=onednn.")
        warnings.warn(f"{message} Training with nn.LSTM's oneDNN kernel instead (about 2x slower); "
                      "--set train.lstm_kernel=onednn says so and silences this.", TextClfWarning, stacklevel=3)
        return "onednn"
    switched, total = use_native_lstm(network, True)
    return "native" if switched == total else "native+onednn" if switched else "onednn"
