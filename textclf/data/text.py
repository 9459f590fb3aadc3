"""The one cleaning step every text goes through where it enters textclf, and counts of texts that
carry nothing to learn from.

Policy (what `clean_text` changes, and why):

* Lone surrogates (U+D800-U+DFFF on their own) become U+FFFD, the replacement character. A JSON
  string may hold them (``"\\ud800"``), and so may a file name read with Python's surrogateescape;
  they cannot be written as UTF-8, so the tokenizer, the data fingerprint and every file or HTTP
  reply that holds them would fail. A high surrogate followed by a low one is joined into the
  character the pair stands for (``"\\ud83d\\ude00"`` is U+1F600) instead.
* Control characters (Unicode category Cc: U+0000-U+001F, U+007F-U+009F) other than tab, line feed
  and carriage return become a space. They are invisible, carry no meaning for a classifier, would
  each become a token of their own, and NUL in particular ends strings in C tools and terminals.
  A space (not nothing) keeps the words on either side apart.
* Everything else is kept as it is: tab, line breaks, BOMs inside a text (U+FEFF), zero-width and
  other format characters, private-use characters and unassigned code points. Case, Unicode
  normalisation (NFKC) and HTML tags are the tokenizer's business (textclf.data.tokenize), not this
  step's, so that a saved model's tokenizer.json keeps doing the same thing.

The same function serves training data, prediction and serving, so a text is cleaned the same way
wherever it comes from.
"""

from __future__ import annotations

import re
from collections.abc import Iterable

_DIRTY = re.compile("[\x00-\x08\x0b\x0c\x0e-\x1f\x7f-\x9f\ud800-\udfff]")
_CONTROL = re.compile("[\x00-\x08\x0b\x0c\x0e-\x1f\x7f-\x9f]")
_SURROGATE = re.compile("[\ud800-\udfff]")


def clean_text(text: str) -> str:
    """`text` with lone surrogates replaced by U+FFFD and control characters other than tab, line
    feed and carriage return replaced by a space (the module docstring says why). Returns `text`
    itself when there is nothing to change, so clean texts cost one regex scan."""
    if _DIRTY.search(text) is None:
        return text
    return _CONTROL.sub(" ", replace_lone_surrogates(text))


def replace_lone_surrogates(text: str) -> str:
    """`text` with each lone surrogate replaced by U+FFFD and each high+low pair joined into the
    character it encodes: the result can always be written as UTF-8. Nothing else changes."""
    if _SURROGATE.search(text) is None:
        return text
    # UTF-16 with surrogatepass joins valid pairs; decoding with "replace" turns the rest into U+FFFD.
    return text.encode("utf-16-le", "surrogatepass").decode("utf-16-le", "replace")


def is_empty(text: str) -> bool:
    """True when `text` is empty or only whitespace (after `str.strip`): it gives the model no token."""
    return not text.strip()


def count_empty(texts: Iterable[str]) -> int:
    """How many of `texts` are empty or only whitespace (see `is_empty`)."""
    return sum(1 for text in texts if not text.strip())


# How a missing value is written in files that spreadsheets, pandas (its default na_values) and
# databases export; compared case-folded. The empty string is not here: readers refuse empty labels.
MISSING_VALUE_STRINGS = frozenset(s.casefold() for s in (
    "NaN", "-NaN", "nan", "-nan", "NA", "N/A", "n/a", "#N/A", "#N/A N/A", "#NA", "<NA>", "NULL", "null", "None",
    "-1.#IND", "1.#IND", "-1.#QNAN", "1.#QNAN",
))


def suspicious_labels(labels: Iterable[str]) -> dict[str, int]:
    """Labels that spell a missing value ("NaN", "nan", "NA", "N/A", "null", "None", ... in any case)
    and how many rows carry each, most frequent first. Such a label is most likely a row whose label
    was lost on the way (a spreadsheet or pandas export), not a class."""
    counts: dict[str, int] = {}
    for label in labels:
        if label.casefold() in MISSING_VALUE_STRINGS:
            counts[label] = counts.get(label, 0) + 1
    return dict(sorted(counts.items(), key=lambda item: -item[1]))
