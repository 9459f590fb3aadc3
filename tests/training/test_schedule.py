import math

import pytest

from textclf.training.schedule import lr_at


def test_warmup_then_linear_decay():
    values = [lr_at(s, 100, base_lr=1.0, warmup_steps=10, schedule="linear") for s in range(100)]
    assert values[0] == pytest.approx(0.1)
    assert values[9] == pytest.approx(1.0)
    assert values[10] == pytest.approx(1.0)
    assert values[55] == pytest.approx(0.5)
    assert all(a >= b for a, b in zip(values[10:], values[11:], strict=False))
    assert lr_at(100, 100, base_lr=1.0, warmup_steps=10, schedule="linear") == 0.0


def test_cosine_and_constant():
    assert lr_at(55, 100, base_lr=2.0, warmup_steps=10, schedule="cosine") == pytest.approx(1.0)
    assert lr_at(10, 100, base_lr=2.0, warmup_steps=10, schedule="cosine") == pytest.approx(2.0)
    assert lr_at(99, 100, base_lr=2.0, warmup_steps=0, schedule="cosine") == pytest.approx(
        1.0 + math.cos(math.pi * 0.99))
    assert lr_at(77, 100, base_lr=3.0, warmup_steps=5, schedule="constant") == 3.0


def test_no_warmup_starts_at_base():
    assert lr_at(0, 50, base_lr=0.5, warmup_steps=0, schedule="linear") == 0.5


def test_unknown_schedule():
    with pytest.raises(ValueError, match="unknown schedule 'step'"):
        lr_at(20, 50, base_lr=0.5, warmup_steps=0, schedule="step")
