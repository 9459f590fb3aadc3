"""Model folders written by an earlier textclf (tests/resources/legacy, made by make_legacy.py) load
and predict exactly as they did when they were written: same logits, same labels."""

import json
import shutil
from pathlib import Path

import numpy as np
import pytest

import textclf

LEGACY = Path(__file__).parents[1] / "resources" / "legacy"
EXPECTED = json.loads((LEGACY / "expected.json").read_text())


@pytest.mark.parametrize("name", sorted(EXPECTED["models"]))
def test_a_folder_saved_before_loads_and_predicts_identically(name, tmp_path):
    folder = tmp_path / name
    shutil.copytree(LEGACY / name, folder)  # loading never writes, but keep the checked-in copy pristine
    model = textclf.load_model(folder)
    want = EXPECTED["models"][name]
    np.testing.assert_allclose(model.logits(EXPECTED["texts"]), np.asarray(want["logits"]), rtol=0, atol=1e-5)
    assert model.predict(EXPECTED["texts"]) == want["predict"]
