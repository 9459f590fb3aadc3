"""Which way of turning texts into token ids is fastest: the tokenizers library's two batch calls,
or the hand-written ASCII path `encode` used to take (Python regexes and a dict lookup, kept here
as the reference it was: printable-ASCII texts without added tokens, the rest through encode_batch).

    python benchmarks/bench_tokenize.py [--data ../shared/data] [--rounds 5]

On the IMDb training texts (25,000 reviews) and the ISEAR training split, with the tokenizer
`build_tokenizer` learns from them, each round times every method once, in a rotating order;
the table gives medians and each method's speed relative to the fastest library call (median of
the per-round ratios). Every method must give the library's ids, which is checked first.
Writes benchmarks/results/tokenize.json. Skips a data set whose file is absent.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import statistics
import time
from collections.abc import Callable, Sequence
from pathlib import Path

import numpy as np
from machine import machine
from tokenizers import Tokenizer

from textclf.data.readers import read_dataset
from textclf.data.tokenize import build_tokenizer, encode

ROOT = Path(__file__).resolve().parents[1]
DATASETS = {"imdb": "imdb_train.csv.gz", "isear": "isear_train.csv"}

_PRINTABLE_ASCII = re.compile(r"[\t\n\r\x20-\x7e]*")
_TAG = re.compile(r"<[^<>]{0,100}>")
_WORD = re.compile(r"\w+|[^\w\s]+", re.ASCII)


def hand_encode(tokenizer: Tokenizer, texts: Sequence[str]) -> list[np.ndarray]:
    """The hand-written path as it was (textclf/data/ascii_encode.py): exact on printable ASCII for
    textclf's own pipeline, the library for everything else."""
    vocab = tokenizer.get_vocab(with_added_tokens=True)
    unk = tokenizer.token_to_id("<unk>")
    added = tuple(token.content for token in tokenizer.get_added_tokens_decoder().values())
    out: list[np.ndarray | None] = []
    for text in texts:
        if not _PRINTABLE_ASCII.fullmatch(text) or any(token in text for token in added):
            out.append(None)
            continue
        out.append(np.array([vocab.get(w, unk) for w in _WORD.findall(_TAG.sub(" ", text).lower())], dtype=np.int64))
    rest = [i for i, ids in enumerate(out) if ids is None]
    for i, encoding in zip(rest, tokenizer.encode_batch([texts[i] for i in rest]) if rest else [], strict=True):
        out[i] = np.asarray(encoding.ids, dtype=np.int64)
    return out


def batch_encode(tokenizer: Tokenizer, texts: Sequence[str]) -> list[np.ndarray]:
    return [np.asarray(e.ids, dtype=np.int64) for e in tokenizer.encode_batch(list(texts))]


def batch_encode_fast(tokenizer: Tokenizer, texts: Sequence[str]) -> list[np.ndarray]:
    return [np.asarray(e.ids, dtype=np.int64) for e in tokenizer.encode_batch_fast(list(texts))]


METHODS: dict[str, Callable[[Tokenizer, Sequence[str]], list[np.ndarray]]] = {
    "hand-written ASCII path + encode_batch (encode before)": hand_encode,
    "Tokenizer.encode_batch": batch_encode,
    "Tokenizer.encode_batch_fast": batch_encode_fast,
    "textclf encode (now)": encode,
}
LIBRARY = ("Tokenizer.encode_batch", "Tokenizer.encode_batch_fast")


def time_methods(tokenizer: Tokenizer, texts: list[str], rounds: int) -> dict:
    reference = [ids.tolist() for ids in batch_encode(tokenizer, texts)]
    for name, method in METHODS.items():
        if [ids.tolist() for ids in method(tokenizer, texts)] != reference:
            raise SystemExit(f"{name} gives other ids than Tokenizer.encode_batch")
    names = list(METHODS)
    seconds: dict[str, list[float]] = {name: [] for name in names}
    for r in range(rounds):
        for name in names[r % len(names):] + names[:r % len(names)]:  # rotate who goes first
            start = time.perf_counter()
            METHODS[name](tokenizer, texts)
            seconds[name].append(time.perf_counter() - start)
    fastest_library = min(LIBRARY, key=lambda name: statistics.median(seconds[name]))
    rows = {}
    for name in names:
        ratios = [ref / own for ref, own in zip(seconds[fastest_library], seconds[name], strict=True)]
        rows[name] = {"seconds": seconds[name], "median_seconds": statistics.median(seconds[name]),
                      "speed_vs_fastest_library_call": statistics.median(ratios)}
    return {"texts": len(texts), "ascii_share": sum(bool(_PRINTABLE_ASCII.fullmatch(t)) for t in texts) / len(texts),
            "vocab_size": tokenizer.get_vocab_size(), "fastest_library_call": fastest_library, "methods": rows}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", type=Path, default=ROOT.parent / "shared" / "data")
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--out", type=Path, default=ROOT / "benchmarks" / "results" / "tokenize.json")
    args = parser.parse_args()

    result = {"machine": machine(), "rounds": args.rounds, "datasets": {}}
    for name, file in DATASETS.items():
        path = args.data / file
        if not path.is_file():
            print(f"skipping {name}: {path} not found")
            continue
        texts = read_dataset(path).texts
        result["datasets"][name] = time_methods(build_tokenizer(texts), list(texts), args.rounds)
    if not result["datasets"]:
        print("no data found; nothing written")
        return
    result["loadavg_at_end"] = list(os.getloadavg())
    print(f"{result['machine']['cpu']} ({', '.join(result['machine']['cpu_flags'])}), {args.rounds} rounds\n")
    print("| data | method | median seconds | speed vs the fastest library call |")
    print("|---|---|---|---|")
    for name, data in result["datasets"].items():
        for method, row in data["methods"].items():
            print(f"| {name} ({data['texts']:,} texts) | {method} | {row['median_seconds']:.3f} "
                  f"| {row['speed_vs_fastest_library_call']:.2f}x |")
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(result, indent=2) + "\n")
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
