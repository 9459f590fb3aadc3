"""Batch prediction of a Parquet dataset over the workers of a Dask cluster (the textclf[dask] extra).

The dataset (a Parquet file, or a folder of them) is cut into parts: row groups, and slices of them so
that every worker gets several. Each part is a task: the worker reads its rows with pyarrow, scores them
with the model, which it loads once and keeps (any Predictor: the PyTorch model or ONNX runtime), and
returns the prediction table. The client writes the parts in input order into one Parquet file,
atomically, as they arrive: memory holds the parts finished ahead of the next one to write, never the
whole dataset. Columns: the id column when asked for, then textclf's table format (label, score,
p_<label>...; textclf.inference.schema).

Why Dask: it is pip-installable and pure Python, and `LocalCluster` runs the workers in-process or as
local processes with no daemon to set up; the same code runs on a multi-machine cluster by passing its
Client. Ray would bring a native runtime and a head node for what is here a map over file parts.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.parquet as pq

from textclf.data.readers import TEXT_COLUMNS
from textclf.data.text import clean_text
from textclf.errors import ConfigError, DataError
from textclf.folder import atomic_open
from textclf.inference.loading import load_predictor
from textclf.inference.predictor import Predictor
from textclf.inference.schema import table_header, table_rows

ENGINES = ("local", "dask")
_MODELS: dict[tuple[str, str, int | None], Predictor] = {}
_LOCK = threading.Lock()


@dataclass(frozen=True)
class Part:
    """Rows [offset, offset + length) of row group `group` of file `path`."""

    path: str
    group: int
    offset: int
    length: int


@dataclass
class DatasetReport:
    output: str
    predicted: int = 0
    parts: int = 0
    workers: int = 0
    seconds: float = 0.0


def require_dask() -> Any:
    """dask.distributed, or a one-line error naming the extra that installs it."""
    try:
        import distributed  # the optional textclf[dask] extra: only for --engine dask
    except ImportError:
        raise ConfigError("--engine dask needs Dask, which is not installed; expected the textclf[dask] extra. "
                          "Install it: pip install 'textclf[dask]'.") from None
    return distributed


def parquet_files(source: Path) -> list[Path]:
    """The Parquet files of `source`: itself, or the *.parquet files of a folder, in name order."""
    files = sorted(source.glob("*.parquet")) if source.is_dir() else [source]
    if not files or not all(f.is_file() and f.suffix.lower() == ".parquet" for f in files):
        raise DataError(f"{source}: --engine dask reads a Parquet file or a folder of .parquet files; got "
                        f"{'a folder without one' if source.is_dir() else repr(source.name)}. Convert the data to "
                        "Parquet, or drop --engine dask.")
    return files


def plan_parts(files: list[Path], workers: int, *, per_worker: int = 4) -> list[Part]:
    """Row-group slices, about `per_worker` per worker (none empty), in input order."""
    groups = []
    for path in files:
        metadata = pq.ParquetFile(path).metadata
        groups += [(str(path), g, metadata.row_group(g).num_rows) for g in range(metadata.num_row_groups)]
    rows = sum(n for *_, n in groups)
    size = max(1, -(-rows // max(1, workers * per_worker)))
    return [Part(path, group, start, min(size, n - start)) for path, group, n in groups for start in range(0, n, size)]


def cached_model(model_dir: str, runtime: str, threads: int | None) -> Predictor:
    """The model, loaded once per worker process and kept for every part it scores."""
    key = (model_dir, runtime, threads)
    with _LOCK:
        if key not in _MODELS:
            _MODELS[key] = load_predictor(model_dir, runtime=runtime, threads=threads)
        return _MODELS[key]


def score_part(part: Part, model_dir: str, *, runtime: str, threads: int | None, text_column: str,
               id_column: str | None, batch_size: int, decimals: int | None) -> pa.Table:
    """The prediction table of one part (runs on a worker)."""
    model = cached_model(model_dir, runtime, threads)
    columns = [text_column] + ([id_column] if id_column else [])
    table = pq.ParquetFile(part.path).read_row_group(part.group, columns=columns).slice(part.offset, part.length)
    values = table.column(text_column).to_pylist()
    for i, text in enumerate(values):
        if not isinstance(text, str):
            raise DataError(f"{part.path} row group {part.group} row {part.offset + i + 1}: {text_column!r} is "
                            f"{text!r}; expected a text in every row. Remove or fill the row.")
    probabilities = model.predict_proba([clean_text(t) for t in values], batch_size=batch_size)
    header = table_header(model.labels)
    rows = table_rows(model.labels, probabilities, decimals=decimals)
    data: dict[str, Any] = {id_column: table.column(id_column)} if id_column else {}
    data.update({name: [row[j] for row in rows] for j, name in enumerate(header)})
    schema = pa.schema([*([table.schema.field(id_column)] if id_column else []), pa.field("label", pa.string()),
                        *(pa.field(name, pa.float64()) for name in header[1:])])
    return pa.table(data, schema=schema)


def find_text_column(files: list[Path], given: str | None, id_column: str | None) -> str:
    names = list(pq.ParquetFile(files[0]).schema_arrow.names)
    lowered = {n.lower(): n for n in names}
    column = (given if given in names else lowered.get(given.lower())) if given else \
        next((lowered[c] for c in TEXT_COLUMNS if c in lowered), None)
    if column is None:
        raise DataError(f"{files[0]} has columns {names}; expected a text column "
                        f"({given!r} or one of {', '.join(TEXT_COLUMNS)}). Pass --text-column.")
    if id_column is not None and id_column not in names:
        raise DataError(f"--id-column {id_column!r} is not a column of {files[0]}: expected one of {names}.")
    return column


@contextmanager
def local_client(workers: int, processes: bool) -> Iterator[Any]:
    """A LocalCluster of `workers` single-threaded workers (processes, or threads of this process)."""
    distributed = require_dask()
    logging.getLogger("distributed").setLevel(logging.ERROR)  # its start and stop chatter is not the user's
    with distributed.LocalCluster(n_workers=workers, threads_per_worker=1, processes=processes,
                                  dashboard_address=None) as cluster, distributed.Client(cluster) as client:
        yield client


def predict_dataset(model_dir: str | Path, source: str | Path, output: str | Path, *, workers: int = 2,
                    client: Any = None, processes: bool = True, runtime: str = "torch", threads: int | None = 1,
                    text_column: str | None = None, id_column: str | None = None, batch_size: int = 256,
                    decimals: int | None = None) -> DatasetReport:
    """Score the Parquet dataset `source` with the model folder `model_dir` on Dask workers into the
    Parquet file `output` (rows in input order). `client`: an existing dask.distributed Client (e.g. of a
    multi-machine cluster); without it, a LocalCluster of `workers` workers (`processes=False`: threads
    of this process). Each worker loads the model once; `threads` caps its runtime's threads."""
    require_dask()
    if workers < 1:
        raise ConfigError(f"--workers {workers}: expected at least 1 worker.")
    if Path(output).suffix.lower() != ".parquet":
        raise ConfigError(f"--output {output}: --engine dask writes Parquet; expected a .parquet file name.")
    files = parquet_files(Path(source))
    column = find_text_column(files, text_column, id_column)
    start = time.perf_counter()
    if client is None:
        with local_client(workers, processes) as local:
            return predict_dataset(model_dir, source, output, workers=workers, client=local, runtime=runtime,
                                   threads=threads, text_column=column, id_column=id_column, batch_size=batch_size,
                                   decimals=decimals)
    workers_seen = len(client.scheduler_info()["workers"]) or workers
    parts = plan_parts(files, workers_seen)
    futures = [client.submit(score_part, part, str(model_dir), runtime=runtime, threads=threads, text_column=column,
                             id_column=id_column, batch_size=batch_size, decimals=decimals, pure=False)
               for part in parts]
    report = DatasetReport(str(output), parts=len(parts), workers=workers_seen)
    writer = None
    with atomic_open(output) as handle:
        try:
            for future in futures:  # in input order; later parts compute meanwhile
                table = future.result()
                future.release()
                writer = writer or pq.ParquetWriter(handle, table.schema)
                writer.write_table(table)
                report.predicted += table.num_rows
        finally:
            for future in futures:
                future.cancel()
            if writer is not None:
                writer.close()
        if writer is None:
            raise DataError(f"{source} has no rows: expected at least one text to predict.")
    report.seconds = time.perf_counter() - start
    return report
