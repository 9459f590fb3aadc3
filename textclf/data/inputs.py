"""Training data in any of the forms the Python API takes: a file path, a Dataset, `(texts, labels)`,
a list of `{"text": ..., "label": ...}` records or of `(text, label)` pairs, or a pandas DataFrame
(any object with `.columns` whose columns have `.tolist()`; pandas is not imported)."""

from __future__ import annotations

import os
from collections.abc import Mapping, Sequence
from typing import Any

from textclf.data.readers import Dataset, dataset_from_columns, read_dataset
from textclf.errors import DataError

FORMS = ("a file path, a Dataset, (texts, labels), a list of {'text', 'label'} records or (text, label) pairs, "
         "or a pandas DataFrame")


def _is_texts(value: Any) -> bool:
    return isinstance(value, Sequence) and not isinstance(value, str | bytes)


def to_dataset(data: Any, *, where: str, text_column: str | None = None, label_column: str | None = None,
               require_labels: bool = True, **label_options: Any) -> Dataset:
    """`data` as a Dataset (see the module notes); DataError naming `where` for anything else.
    `label_options` (multi_label, label_sep, label_columns) say how labels are read (textclf.data.readers)."""
    if isinstance(data, Dataset):
        return data
    if isinstance(data, str | os.PathLike):
        return read_dataset(data, text_column=text_column, label_column=label_column, require_labels=require_labels,
                            **label_options)
    columns: Mapping[str, Sequence[Any]] | None = None
    if hasattr(data, "columns") and hasattr(data, "__getitem__") and not isinstance(data, Mapping):  # a DataFrame
        columns = {str(name): data[name].tolist() for name in data.columns}
    elif isinstance(data, tuple) and len(data) == 2 and all(_is_texts(part) for part in data):
        columns = {"text": list(data[0]), "label": list(data[1])}
    elif isinstance(data, list) and data and all(isinstance(row, Mapping) for row in data):
        names = list(dict.fromkeys(key for row in data for key in row))
        columns = {str(name): [row.get(name) for row in data] for name in names}
    elif isinstance(data, list) and data and all(isinstance(row, tuple | list) and len(row) == 2 for row in data):
        columns = {"text": [row[0] for row in data], "label": [row[1] for row in data]}
    if columns is None:
        raise DataError(f"{where} got {type(data).__name__}" + (" (empty)" if isinstance(data, list) and not data
                                                                else "") + f"; expected {FORMS}.")
    return dataset_from_columns(columns, f"{where} data", text_column=text_column, label_column=label_column,
                                require_labels=require_labels, **label_options)
