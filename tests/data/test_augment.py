"""Augmentation of the training split: each method, determinism, files, and never validation or test."""

from __future__ import annotations

import json

import numpy as np
import pytest
from typer.testing import CliRunner

from tests.conftest import write_corpus
from textclf.cli import app
from textclf.config import DataConfig, augment_flag
from textclf.data.augment import Augmenter, augment, read_synonyms, read_templates, vector_synonyms
from textclf.data.readers import Dataset, read_dataset
from textclf.errors import ConfigError, DataError
from textclf.training.data import split_inputs

TEXT = "i was so happy when my friend came home today"


def test_eda_swaps_deletes_and_inserts_words_of_the_text_reproducibly():
    eda = Augmenter(eda=0.3)
    variants = {eda.variant(TEXT, "joy", np.random.default_rng([0, i])) for i in range(20)}
    assert len(variants) > 10 and TEXT not in variants
    assert all(set(v.split()) <= set(TEXT.split()) for v in variants)  # without synonyms only its own words
    again = eda.variant(TEXT, "joy", np.random.default_rng([0, 3]))
    assert again == eda.variant(TEXT, "joy", np.random.default_rng([0, 3]))


def test_synonyms_from_a_file_and_templates_by_label(tmp_path):
    synonyms = tmp_path / "syn.tsv"
    synonyms.write_text("happy\tglad,joyful\nfriend: pal\n")
    templates = tmp_path / "templates.tsv"
    templates.write_text("joy\tWhat a day: {text}\n*\tLooking back, {text}\n")
    words = read_synonyms(synonyms)
    assert words == {"happy": ["glad", "joyful"], "friend": ["pal"]}
    augmenter = Augmenter(synonym_share=0.5, synonyms=words, templates=read_templates(templates, ["joy", "fear"]))
    variants = [augmenter.variant(TEXT, "joy", np.random.default_rng(i)) for i in range(30)]
    assert any("glad" in v or "joyful" in v for v in variants) and any("pal" in v for v in variants)
    assert all(v.startswith(("What a day: ", "Looking back, ")) for v in variants)
    assert all(v.startswith("Looking back, ") for v in
               (augmenter.variant(TEXT, "fear", np.random.default_rng(i)) for i in range(10)))


def test_bad_augmentation_files_and_flags_are_one_line(tmp_path):
    bad = tmp_path / "t.tsv"
    bad.write_text("joy\tno slot here\n")
    with pytest.raises(DataError, match=r"t.tsv line 1: .*expected LABEL<TAB>template with \{text\}"):
        read_templates(bad, ["joy"])
    bad.write_text("surprise\t{text}!\n")
    with pytest.raises(DataError, match=r"LABEL one of \['joy'\] or \*"):
        read_templates(bad, ["joy"])
    with pytest.raises(ConfigError, match=r"--augment 'eda,magic': 'magic' is not a method"):
        augment_flag("eda,magic")
    data = Dataset([TEXT] * 20 + ["so scared"] * 20, ["joy"] * 20 + ["fear"] * 20, "t")
    with pytest.raises(ConfigError, match=r"data.augment.synonyms=0.1 needs synonyms: expected --vectors"):
        split_inputs(data, None, DataConfig(augment={"synonyms": 0.1}), 0)


def test_augmentation_never_touches_validation_or_test(tmp_path):
    data = read_dataset(write_corpus(tmp_path / "train.csv"))
    plain, labels = split_inputs(data, None, DataConfig(test_size=0.2), 3)
    augmented, same_labels = split_inputs(data, None, DataConfig(test_size=0.2, augment={"eda": 0.2, "copies": 2}), 3)
    assert labels == same_labels
    np.testing.assert_array_equal(plain.train_index, augmented.train_index)  # the same rows of the file ...
    np.testing.assert_array_equal(plain.val_index, augmented.val_index)
    np.testing.assert_array_equal(plain.test_index, augmented.test_index)
    assert augmented.val == plain.val and augmented.test == plain.test  # ... and untouched texts
    n = len(plain.train)
    assert augmented.train.texts[:n] == plain.train.texts and len(augmented.train) == 3 * n
    assert augmented.train.labels[n:] == [y for y in plain.train.labels for _ in range(2)]  # labels kept
    assert not set(augmented.train.texts[n:]) & set(plain.val.texts + plain.test.texts) - set(plain.train.texts)


def test_augmentation_is_recorded_and_applies_to_every_kind(tmp_path):
    corpus = write_corpus(tmp_path / "train.csv")
    for name in ("fasttext", "tfidf-lr"):
        epochs = ["--epochs", "2"] if name == "fasttext" else []
        result = CliRunner().invoke(app, ["train", str(corpus), "--model", name, "--augment", "eda", *epochs,
                                          "--out", str(tmp_path / name)])
        assert result.exit_code == 0, result.output
        assert "augmented)" in result.output
        training = json.loads((tmp_path / name / "training.json").read_text())
        assert training["config"]["data"]["augment"]["eda"] == 0.1
        assert training["data"]["augmented_texts"] == training["data"]["n_train"] // 2


def test_vector_neighbours_are_synonyms(tmp_path):
    vectors = tmp_path / "vec.txt"
    rows = {"happy": [1, 0.1, 0], "glad": [0.95, 0.15, 0], "joyful": [0.9, 0.2, 0.05], "sad": [-1, 0, 0.1],
            "car": [0, 0, 1]}
    vectors.write_text("".join(f"{w} {' '.join(map(str, v))}\n" for w, v in rows.items()))
    synonyms = vector_synonyms(str(vectors), ["Happy", "car", "unknown"])
    assert synonyms["happy"][:2] == ["glad", "joyful"] and "sad" not in synonyms["happy"]
    assert "car" not in synonyms and "unknown" not in synonyms  # nothing close enough, or no vector


def test_augment_keeps_the_source_and_appends_after_the_originals():
    data = Dataset(["a b c", "d e f"], ["x", "y"], "src")
    out = augment(data, Augmenter(eda=0.3), copies=1, seed=0)
    assert out.source == "src" and out.texts[:2] == ["a b c", "d e f"] and out.labels == ["x", "y", "x", "y"]
