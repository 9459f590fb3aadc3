"""Shared fixtures: a small synthetic corpus that trains in seconds, and the shared data folder."""

from __future__ import annotations

import csv
from pathlib import Path

import numpy as np
import pytest

SHARED_DATA = Path(__file__).resolve().parents[1].parent / "shared" / "data"

CUES = {
    "joy": ["delighted", "wonderful", "smiled", "celebrated", "happy"],
    "fear": ["terrified", "scared", "trembled", "afraid", "panic"],
    "anger": ["furious", "shouted", "annoyed", "rage", "unfair"],
}
FILLER = "i the a was when my at home with friend today after it and to".split()


def write_corpus(path: Path, n_per_class: int = 80, seed: int = 0, labels: dict | None = None) -> Path:
    """A CSV whose label is given by cue words among filler words; learnable in one or two epochs."""
    rng = np.random.default_rng(seed)
    rows = []
    for label, cues in (labels or CUES).items():
        for _ in range(n_per_class):
            words = list(rng.choice(FILLER, size=rng.integers(3, 12))) + list(rng.choice(cues, size=2))
            rng.shuffle(words)
            rows.append((" ".join(words), label))
    order = rng.permutation(len(rows))
    with path.open("w", newline="", encoding="utf-8") as handle:
        writer = csv.writer(handle, lineterminator="\n")
        writer.writerow(["text", "label"])
        writer.writerows(rows[i] for i in order)
    return path


@pytest.fixture(autouse=True)
def _embedding_cache(tmp_path_factory: pytest.TempPathFactory, monkeypatch: pytest.MonkeyPatch) -> None:
    """embed-lr caches embeddings under $TEXTCLF_CACHE_DIR: a new folder per test, never the user's cache."""
    monkeypatch.setenv("TEXTCLF_CACHE_DIR", str(tmp_path_factory.mktemp("cache")))


@pytest.fixture
def corpus(tmp_path: Path) -> Path:
    return write_corpus(tmp_path / "train.csv")


@pytest.fixture
def test_corpus(tmp_path: Path) -> Path:
    return write_corpus(tmp_path / "test.csv", n_per_class=15, seed=1)


def shared_file(name: str) -> Path:
    path = SHARED_DATA / name
    if not path.is_file():
        pytest.skip(f"shared data file {name} not present")
    return path
