"""Batch prediction over Dask workers: a real LocalCluster scores a Parquet dataset into the predictions
`textclf predict` gives, row for row and in order; without Dask, one error naming the extra."""

from __future__ import annotations

import csv
import io
import sys
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from typer.testing import CliRunner

import textclf
from tests.conftest import write_corpus
from textclf.cli import app
from textclf.data.readers import read_dataset
from textclf.errors import ConfigError, DataError
from textclf.inference.distributed import Part, plan_parts, predict_dataset

pytest.importorskip("distributed")
runner = CliRunner()


@pytest.fixture(scope="module")
def model_and_data(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    folder = tmp_path_factory.mktemp("dask")
    corpus = write_corpus(folder / "train.csv")
    textclf.train(corpus, architecture="fasttext", epochs=1, linear_baseline=False, out=folder / "model")
    texts = read_dataset(write_corpus(folder / "more.csv", n_per_class=1000, seed=5)).texts  # 3,000 rows
    pq.write_table(pa.table({"key": [f"r{i}" for i in range(len(texts))], "text": texts}), folder / "data.parquet",
                   row_group_size=700)
    return folder / "model", folder / "data.parquet"


def reference(model: Path, data: Path) -> list[list[str]]:
    result = runner.invoke(app, ["predict", str(model), "--file", str(data), "--format", "csv", "--precision", "full"])
    assert result.exit_code == 0, result.output
    return list(csv.reader(io.StringIO(result.stdout)))


def test_parts_cover_every_row_once_in_order(model_and_data):
    _, data = model_and_data
    parts = plan_parts([data], workers=2)
    assert len(parts) >= 8
    assert sum(p.length for p in parts) == 3000
    assert parts[0] == Part(str(data), 0, 0, parts[0].length) and all(p.length > 0 for p in parts)


def test_a_local_cluster_predicts_what_textclf_predict_does(model_and_data, tmp_path: Path):
    model, data = model_and_data
    report = predict_dataset(model, data, tmp_path / "out.parquet", workers=2, processes=False, id_column="key")
    assert report.predicted == 3000 and report.workers == 2 and report.parts >= 8
    table = pq.read_table(tmp_path / "out.parquet")
    assert table.column_names == ["key", "label", "score", "p_anger", "p_fear", "p_joy"]
    expected = reference(model, data)
    assert expected[0][1:] == table.column_names[1:]
    rows = expected[1:]
    assert table.column("key").to_pylist() == [f"r{i}" for i in range(3000)]
    assert table.column("label").to_pylist() == [row[1] for row in rows]
    for j, name in enumerate(table.column_names[2:], start=2):
        np.testing.assert_allclose(table.column(name).to_numpy(), [float(row[j]) for row in rows], rtol=1e-6)


def test_the_cli_scores_on_worker_processes(model_and_data, tmp_path: Path):
    model, data = model_and_data
    out = tmp_path / "out.parquet"
    result = runner.invoke(app, ["predict", str(model), "--input", str(data), "--engine", "dask", "--workers", "2",
                                 "--output", str(out)])
    assert result.exit_code == 0, result.output
    assert "predicted 3,000 texts" in result.output and "on 2 Dask workers" in result.output
    labels = pq.read_table(out).column("label").to_pylist()
    assert labels == [row[1] for row in reference(model, data)[1:]]


def test_without_dask_the_error_names_the_extra(model_and_data, tmp_path: Path, monkeypatch: pytest.MonkeyPatch):
    model, data = model_and_data
    monkeypatch.setitem(sys.modules, "distributed", None)  # import distributed now raises ImportError
    result = runner.invoke(app, ["predict", str(model), "--input", str(data), "--engine", "dask", "--output",
                                 str(tmp_path / "out.parquet")])
    assert result.exit_code == 2
    assert result.output.strip() == ("error: --engine dask needs Dask, which is not installed; expected the "
                                     "textclf[dask] extra. Install it: pip install 'textclf[dask]'.")


def test_bad_inputs_are_one_line_errors(model_and_data, tmp_path: Path):
    model, data = model_and_data
    with pytest.raises(ConfigError, match=r"--engine dask writes Parquet; expected a .parquet file name"):
        predict_dataset(model, data, tmp_path / "out.csv", processes=False)
    with pytest.raises(DataError, match=r"--engine dask reads a Parquet file or a folder of .parquet files"):
        predict_dataset(model, model / "config.json", tmp_path / "out.parquet", processes=False)
    result = runner.invoke(app, ["predict", str(model), "--input", str(data), "--workers", "2"])
    assert result.exit_code == 2 and "expected --engine dask with it" in result.output
    result = runner.invoke(app, ["predict", str(model), "--input", str(data), "--engine", "dask", "--top-k", "2",
                                 "--output", str(tmp_path / "out.parquet")])
    assert result.exit_code == 2 and "expected no --top-k, --format or --explain with it" in result.output
