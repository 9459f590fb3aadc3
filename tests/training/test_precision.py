"""bf16 autocast: allowed on every CPU, refused in one line on a GPU without bfloat16."""

from __future__ import annotations

import pytest
import torch

from textclf.errors import ConfigError
from textclf.runtime import check_precision


def test_bf16_and_fp32_on_cpu_pass():
    check_precision(torch.device("cpu"), "bf16")
    check_precision(torch.device("cpu"), "fp32")


def test_bf16_on_a_gpu_without_bfloat16_is_refused(monkeypatch):
    monkeypatch.setattr(torch.cuda, "is_bf16_supported", lambda *a, **k: False)
    monkeypatch.setattr(torch.cuda, "get_device_name", lambda *a, **k: "Tesla T4")
    with pytest.raises(ConfigError, match=r"^--precision bf16 on cuda:0: this GPU \(Tesla T4\) does not support "
                                          r"bfloat16; .* Use --precision fp32"):
        check_precision(torch.device("cuda:0"), "bf16")
    check_precision(torch.device("cuda:0"), "fp32")
