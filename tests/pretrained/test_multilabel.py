"""The pretrained kinds multi-label, on the tiny offline encoder."""

from __future__ import annotations

import numpy as np
import pytest

import textclf
from tests.test_multilabel import write_multilabel


@pytest.mark.parametrize("kind, settings", [("embed-lr", {"C": 10.0}),
                                            ("hf", {"epochs": 2, "lr": 5e-3, "batch_size": 16,
                                                    "linear_baseline": False})])
def test_pretrained_kinds_train_multi_label(kind, settings, tiny_encoder, tmp_path):
    pytest.importorskip("transformers")
    corpus = write_multilabel(tmp_path / "train.csv", n=120)
    model = textclf.train(corpus, architecture=kind, path=str(tiny_encoder), label_column="labels", multi_label=True,
                          test_size=0.2, out=tmp_path / "m", **settings)
    assert model.config["multi_label"] and (tmp_path / "m" / "thresholds.json").is_file()
    assert "micro_f1" in model.training["metrics"]
    loaded = textclf.load_model(tmp_path / "m")
    texts = ["happy and angry today", "scared now"]
    np.testing.assert_allclose(loaded.predict_proba(texts), model.predict_proba(texts), atol=1e-5)
    assert loaded.predict(texts) == model.predict(texts)
