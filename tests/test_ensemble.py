"""Ensembles of saved models: weights fitted on validation log-loss, a self-contained model folder that
predict, evaluate, serve and explain treat as any model, compare --ensemble K, and every refusal in one line.
A tiny Hugging Face encoder (random weights) joins an ensemble with linear and neural members."""

from __future__ import annotations

import json
import re
import shutil
from pathlib import Path

import numpy as np
import pytest
from fastapi.testclient import TestClient
from typer.testing import CliRunner

import textclf
from tests.conftest import CUES, write_corpus
from textclf.cli import app
from textclf.ensemble import Ensemble, fit_weights
from textclf.errors import ConfigError, ModelFormatError
from textclf.inference.loading import load_model
from textclf.serving import create_app

runner = CliRunner()
NEURAL = {"epochs": 2, "embedding_dim": 16, "linear_baseline": False}


def invoke(*args: object):
    return runner.invoke(app, [str(a) for a in args])


def fails(*args: object, match: str, code: int = 2) -> str:
    result = invoke(*args)
    message = result.stderr if hasattr(result, "stderr") else result.output
    lines = [line for line in message.strip().splitlines() if line.strip()]
    assert result.exit_code == code, result.output
    assert "Traceback" not in message and len(lines) == 1, message
    assert re.search(match, lines[0]), lines[0]
    return lines[0]


HALF_A = {label: cues[:3] for label, cues in CUES.items()}
HALF_B = {label: cues[3:] for label, cues in CUES.items()}


def _has_transformers() -> bool:
    try:
        import transformers  # noqa: F401
    except ImportError:
        return False
    return True


@pytest.fixture(scope="module")
def members(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """Models trained on one file with one split (seed 0): tfidf-lr, nbsvm, fasttext. And models that
    each know half of the cue words (a: the first three of each label, b: the other two), so that they
    err on different texts: hf over a tiny random BERT (fastText without transformers) on half a,
    tfidf-lr on half b; "val" mixes both halves."""
    folder = tmp_path_factory.mktemp("members")
    corpus = write_corpus(folder / "train.csv", n_per_class=60)
    found = {"corpus": corpus}
    for name in ("tfidf-lr", "nbsvm"):
        textclf.train(corpus, architecture=name, test_size=0.2, out=folder / name)
        found[name] = folder / name
    textclf.train(corpus, architecture="fasttext", test_size=0.2, out=folder / "fasttext", **NEURAL)
    found["fasttext"] = folder / "fasttext"
    half_a = write_corpus(folder / "a.csv", n_per_class=40, seed=1, labels=HALF_A)
    half_b = write_corpus(folder / "b.csv", n_per_class=60, seed=2, labels=HALF_B)
    if _has_transformers():
        from tests.pretrained.conftest import make_encoder

        encoder = make_encoder(tmp_path_factory.mktemp("tiny-bert"))
        textclf.train(half_a, architecture="hf", path=str(encoder), out=folder / "a-hf", epochs=3, lr=1e-2,
                      batch_size=16, linear_baseline=False)
        found["a"] = folder / "a-hf"
    else:
        textclf.train(half_a, architecture="fasttext", out=folder / "a-fasttext", **{**NEURAL, "epochs": 6})
        found["a"] = folder / "a-fasttext"
    textclf.train(half_b, architecture="tfidf-lr", out=folder / "b-tfidf-lr")
    found["b"] = folder / "b-tfidf-lr"
    val_a = write_corpus(folder / "val-a.csv", n_per_class=10, seed=5, labels=HALF_A).read_text()
    val_b = write_corpus(folder / "val-b.csv", n_per_class=10, seed=6, labels=HALF_B).read_text()
    found["val"] = folder / "val.csv"
    found["val"].write_text(val_a + val_b.split("\n", 1)[1])
    return found


@pytest.fixture(scope="module")
def ensemble(members: dict[str, Path], tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The ensemble built by the CLI from copies of the half-a and half-b members and fitted on the
    mixed validation file; the copies are then deleted."""
    copies = tmp_path_factory.mktemp("copies")
    for name in ("a", "b"):
        shutil.copytree(members[name], copies / name)
    out = tmp_path_factory.mktemp("ensemble") / "ens"
    result = invoke("ensemble", copies / "a", copies / "b", "--val", members["val"], "--out", out)
    assert result.exit_code == 0, result.output
    assert "ensemble of 2 saved to" in result.output
    shutil.rmtree(copies)  # the folder is self-contained
    return out


def test_the_folder_is_self_contained_and_records_the_fit(ensemble: Path, members: dict[str, Path]):
    config = json.loads((ensemble / "config.json").read_text())
    training = json.loads((ensemble / "training.json").read_text())
    assert config["architecture"] == "textclf.ensemble.v1" and config["num_labels"] == 3
    names = [m["name"] for m in config["members"]]
    weights = [m["weight"] for m in config["members"]]
    assert names[1] == "tfidf-lr" and sum(weights) == pytest.approx(1) and min(weights) > 0.05
    assert sorted(p.name for p in (ensemble / "members").iterdir()) == sorted(names)
    assert not (ensemble / "model.safetensors").exists()
    fit = training["ensemble"]
    assert fit["validation"]["how"] == "file" and fit["validation"]["n"] == 60 and fit["left_out"] == []
    for record in fit["members"]:
        assert {"val_accuracy", "val_macro_f1", "val_loss", "weight", "from"} <= set(record)
    # members that know different cue words: the mixture beats each of them and equal weights on validation
    assert fit["ensemble"]["val_loss"] < min(m["val_loss"] for m in fit["members"])
    assert fit["ensemble"]["val_loss"] <= fit["equal_weights"]["val_loss"] + 1e-9
    assert fit["ensemble"]["val_accuracy"] > max(m["val_accuracy"] for m in fit["members"])
    assert training["metrics"]["validation"] == fit["ensemble"] and training["data"] == {}
    fails("evaluate", ensemble, match=r"was trained without test data; expected a labelled DATA file")


def test_the_hf_member_joins(ensemble: Path):
    model = load_model(ensemble)
    if not _has_transformers():
        pytest.skip("transformers is not installed")
    assert model.names[0] == "hf" and model.members[0].architecture == "textclf.hf.v1" and model.weights[0] > 0.05
    hf = model.members[0].predict_proba(["i was terrified and scared"])[0]
    assert model.members[0].labels[int(hf.argmax())] == "fear"


def test_logits_are_the_log_of_the_weighted_mean(ensemble: Path, members: dict[str, Path]):
    model = load_model(ensemble)
    assert isinstance(model, Ensemble)
    texts = ["i was terrified and scared", "we celebrated, so happy", "", "the " * 300]
    expected = np.zeros((len(texts), 3))
    for folder, weight in zip((members["a"], members["b"]), model.weights, strict=True):
        member = load_model(folder)
        expected += weight * member.predict_proba(texts)[:, [member.labels.index(label) for label in model.labels]]
    np.testing.assert_allclose(np.exp(model.logits(texts)), expected, rtol=1e-5, atol=1e-7)
    np.testing.assert_allclose(model.predict_proba(texts).sum(axis=1), 1, atol=1e-6)


def test_predict_evaluate_serve_and_explain_like_any_model(ensemble: Path, members: dict[str, Path]):
    result = invoke("predict", ensemble, "i was terrified and afraid", "we celebrated, delighted", "--format", "json")
    assert result.exit_code == 0, result.output
    assert [r["label"] for r in json.loads(result.output)] == ["fear", "joy"]
    result = invoke("evaluate", ensemble, members["val"], "--json")
    assert result.exit_code == 0, result.output
    fit = load_model(ensemble).training["ensemble"]["ensemble"]
    assert json.loads(result.output)["accuracy"] == pytest.approx(fit["val_accuracy"])
    client = TestClient(create_app(ensemble))
    response = client.post("/predict", json={"texts": ["he was furious, it was unfair"]})
    assert response.status_code == 200 and response.json()["predictions"][0]["label"] == "anger"
    assert client.get("/metadata").json()["architecture"] == "textclf.ensemble.v1"
    model = load_model(ensemble)
    text = "my friend was furious at home today"
    explanation = model.explain([text])[0]
    assert explanation.method == "occlusion" and [w.text for w in explanation.words] == text.split()
    k = model.labels.index(explanation.label)
    full, without = model.predict_proba([text, text.replace("furious ", "")])[:, k]
    assert explanation.probability == pytest.approx(full)
    assert next(w.score for w in explanation.words if w.text == "furious") == pytest.approx(full - without)


def test_the_validation_split_is_rebuilt_from_the_training_data(members: dict[str, Path], tmp_path: Path):
    out = tmp_path / "ens"
    result = invoke("ensemble", members["tfidf-lr"], members["nbsvm"], members["fasttext"], "--data",
                    members["corpus"], "--out", out)
    assert result.exit_code == 0, result.output
    assert "test (36 texts, the members' own) accuracy" in result.output
    model = load_model(out)
    validation = model.training["ensemble"]["validation"]
    assert validation["how"] == "rebuilt" and validation["n"] == 18 and validation["seed"] == 0  # 0.1 of 180 rows
    assert {m["name"] for m in model.training["ensemble"]["members"] if m["weight"] == 0} == \
        set(model.training["ensemble"]["left_out"])
    left_out = set(model.training["ensemble"]["left_out"])
    assert sorted(model.names) == sorted({"tfidf-lr", "nbsvm", "fasttext"} - left_out)
    result = invoke("evaluate", out, "--json")  # its own test data: the members' held-out rows
    assert result.exit_code == 0 and json.loads(result.output)["accuracy"] > 0.8


def test_fit_weights_finds_the_minimum_of_the_validation_log_loss():
    rng = np.random.default_rng(0)
    y = rng.integers(0, 3, size=200)
    good = np.full((200, 3), 0.1)
    good[np.arange(200), y] = 0.8
    noise = rng.dirichlet(np.ones(3), size=200)
    weights = fit_weights([noise, good], y)
    assert weights.min() >= 0 and weights.sum() == pytest.approx(1)

    def loss(w: float) -> float:
        mixture = w * noise + (1 - w) * good
        return float(-np.mean(np.log(mixture[np.arange(200), y])))

    grid = np.linspace(0, 1, 2001)
    best = grid[np.argmin([loss(w) for w in grid])]
    assert weights[0] == pytest.approx(best, abs=1e-3)
    assert loss(weights[0]) <= min(loss(w) for w in grid) + 1e-9
    # a member that is always right takes all the weight; the other leaves the ensemble
    perfect = np.eye(3)[y] * 0.98 + 0.01
    np.testing.assert_allclose(fit_weights([good, perfect], y), [0, 1])


def test_refusals_are_one_line(members: dict[str, Path], tmp_path: Path):
    a, b, corpus = members["tfidf-lr"], members["nbsvm"], members["corpus"]
    fails("ensemble", a, "--data", corpus, "--out", tmp_path / "e",
          match=r"got 1 model folder\(s\); expected at least 2")
    fails("ensemble", a, tmp_path, "--data", corpus, "--out", tmp_path / "e",
          match=r"is not a textclf model folder .*expected folders written by 'textclf train --out'")
    fails("ensemble", a, b, "--data", corpus, "--out", a, match=r"--out .* is member .* or inside it")
    fails("ensemble", a, b, "--data", corpus, "--out", b / "inside", match=r"--out .* is member .* or inside it")
    fails("ensemble", a, b, "--out", tmp_path / "e", match=r"expected --data FILE .* or --val FILE .*not neither")
    fails("ensemble", a, b, "--data", corpus, "--val", corpus, "--out", tmp_path / "e", match=r"not both")
    fails("ensemble", a, a, "--data", corpus, "--out", tmp_path / "e", match=r"the same model folder twice")
    # different label sets: both folders named
    other = write_corpus(tmp_path / "other.csv", labels={"joy": ["happy", "smiled"], "fear": ["scared", "afraid"]})
    textclf.train(other, architecture="tfidf-lr", test_size=0.2, out=tmp_path / "two-labels")
    line = fails("ensemble", a, tmp_path / "two-labels", "--data", corpus, "--out", tmp_path / "e",
                 match=r"has labels \['anger', 'fear', 'joy'\] but .*two-labels has \['fear', 'joy'\]; expected the "
                       r"same labels in every member")
    assert str(a) in line
    # members of different splits (another seed), and data that is not the members' training file
    textclf.train(corpus, architecture="tfidf-lr", test_size=0.2, seed=1, out=tmp_path / "seed-1")
    fails("ensemble", b, tmp_path / "seed-1", "--data", corpus, "--out", tmp_path / "e",
          match=r"were trained on different data or splits \(seed 0 vs 1\).* pass --val FILE")
    changed = write_corpus(tmp_path / "changed.csv", n_per_class=60, seed=3)
    fails("ensemble", a, b, "--data", changed, "--out", tmp_path / "e",
          match=r"does not give back the split .* was trained on")
    assert not (tmp_path / "e").exists()
    fails("train", corpus, "--model", "ensemble", "--out", tmp_path / "t",
          match=r"model 'ensemble' is built from saved models, not trained")
    # members/ is textclf's own only in an ensemble's folder: in any other model folder it is the user's
    (tmp_path / "seed-1" / "members").mkdir()
    fails("train", corpus, "--model", "tfidf-lr", "--out", tmp_path / "seed-1",
          match=r"is a textclf model that also holds \['members'\], which textclf did not write")


def test_an_ensemble_is_rebuilt_in_place(ensemble: Path, members: dict[str, Path], tmp_path: Path):
    folder = shutil.copytree(ensemble, tmp_path / "ens")
    before = json.loads((folder / "config.json").read_text())
    result = invoke("ensemble", folder / "members" / before["members"][0]["name"],
                    folder / "members" / before["members"][1]["name"], "--val", members["val"], "--out", folder)
    assert result.exit_code == 0, result.output
    assert json.loads((folder / "config.json").read_text())["members"] == before["members"]
    assert sorted(p.name for p in folder.parent.iterdir()) == ["ens"]  # no temporary sibling left


def test_export_refuses_and_tampering_is_caught(ensemble: Path, tmp_path: Path):
    fails("export", ensemble, match=r"is an ensemble, which is not exported as one ONNX graph.*Export its neural "
                                    r"members one by one \(textclf export .*/members/NAME\)")
    fails("predict", ensemble, "a text", "--runtime", "onnx",
          match=r"has no model.onnx; .*an ensemble is not exported as one ONNX graph .*use --runtime torch")
    folder = shutil.copytree(ensemble, tmp_path / "ens")
    config = json.loads((folder / "config.json").read_text())
    for members, match in (([{"name": "../x", "weight": 1.0}], r"simple names"),
                           ([{**m, "weight": 0.9} for m in config["members"]], r"not non-negative summing to 1"),
                           ([{"name": "gone", "weight": 1.0}], r"Model folder not found: .*members/gone")):
        (folder / "config.json").write_text(json.dumps({**config, "members": members}))
        with pytest.raises(ModelFormatError, match=match):
            load_model(folder)
    (folder / "config.json").write_text(json.dumps(config))
    (folder / "labels.json").write_text(json.dumps(["anger", "fear", "happiness"]))
    with pytest.raises(ModelFormatError, match=r"has labels .*; expected those of its ensemble .*'happiness'"):
        load_model(folder)
    shutil.copy(ensemble / "labels.json", folder / "labels.json")
    nested = folder / "members" / config["members"][0]["name"]
    shutil.rmtree(nested)
    shutil.copytree(ensemble, nested)
    with pytest.raises(ModelFormatError, match=r"is itself an ensemble; expected single models as members"):
        load_model(folder)


def test_compare_adds_the_top_k_ensemble_row(tmp_path: Path):
    corpus = write_corpus(tmp_path / "train.csv", n_per_class=40)
    fails("compare", corpus, "--models", "tfidf-lr,nbsvm", "--test-size", "0.2", "--ensemble", "3", "--out",
          tmp_path / "none", match=r"--ensemble 3: expected a number of models from 2 to 2")
    assert not (tmp_path / "none").exists()
    out = tmp_path / "cmp"
    result = invoke("compare", corpus, "--models", "tfidf-lr,nbsvm,majority", "--test-size", "0.2", "--seeds", "2",
                    "--ensemble", "2", "--out", out)
    assert result.exit_code == 0, result.output
    results = json.loads((out / "results.json").read_text())
    rows = {row["model"]: row for row in results["leaderboard"]["rows"]}
    row = rows["ensemble-top2"]
    assert row["runs"] == 2 and row["accuracy_ci"][0] <= row["accuracy_mean"] <= row["accuracy_ci"][1]
    runs = [r for r in results["runs"] if r["model"] == "ensemble-top2"]
    assert [r["folder"] for r in runs] == ["ensemble-top2/seed-0", "ensemble-top2/seed-1"]
    for run in runs:  # chosen on validation: never the majority baseline; members of that seed only
        assert sorted(m.split("/")[0] for m in run["members"]) == ["nbsvm", "tfidf-lr"]
        assert all(m.endswith(run["folder"].split("/")[1]) for m in run["members"])
        model = load_model(out / run["folder"])
        assert model.training["ensemble"]["validation"]["split"] == run["folder"].split("/")[1]
        assert run["parameters"] > 0 and run["train_seconds"] > 0
    assert "ensemble-top2" in (out / "leaderboard.md").read_text()
    # the same command again: every run is kept, the ensembles are rebuilt over the finished folders, alike
    again = invoke("compare", corpus, "--models", "tfidf-lr,nbsvm,majority", "--test-size", "0.2", "--seeds", "2",
                   "--ensemble", "2", "--out", out)
    assert again.exit_code == 0, again.output
    rerun = [r for r in json.loads((out / "results.json").read_text())["runs"] if r["model"] == "ensemble-top2"]
    assert [(r["members"], r["accuracy"]) for r in rerun] == [(r["members"], r["accuracy"]) for r in runs]
    folds = invoke("compare", corpus, "--models", "tfidf-lr,nbsvm", "--folds", "2", "--ensemble", "2", "--out",
                   tmp_path / "folds")
    assert folds.exit_code == 0, folds.output
    assert [r["folder"] for r in json.loads((tmp_path / "folds" / "results.json").read_text())["runs"]][-2:] == \
        ["ensemble-top2/fold-1", "ensemble-top2/fold-2"]
    with pytest.raises(ConfigError, match=r"expected a number of models from 2 to 3"):
        from textclf.compare import CompareSettings, compare

        compare(CompareSettings(data=str(corpus), models=("tfidf-lr", "nbsvm", "majority"), test_size=0.2), out,
                ensemble=1)


def test_a_failed_fit_is_an_error_not_a_silent_result(monkeypatch: pytest.MonkeyPatch):
    import scipy.optimize

    from textclf.errors import TrainingError

    class Failed:
        x = np.array([1.0, 0.0])
        message = "forced"

    monkeypatch.setattr(scipy.optimize, "minimize", lambda *args, **kwargs: Failed())
    y = np.array([0, 1, 0, 1])
    bad, good = np.array([[0.1, 0.9], [0.9, 0.1]] * 2), np.array([[0.9, 0.1], [0.1, 0.9]] * 2)
    with pytest.raises(TrainingError, match=r"fitting the ensemble weights failed \(SLSQP: forced; log-loss 2\.303 "
                                            r"against 0\.6931 for equal weights\)"):
        fit_weights([bad, good], y)
