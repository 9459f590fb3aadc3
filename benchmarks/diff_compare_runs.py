"""Are two `bench_compare.py` runs the same? Run by run (model, seed): accuracy and macro-F1, equal or not.

    python benchmarks/bench_compare.py --fresh --check none --json /tmp/before.json   # one checkout
    python benchmarks/bench_compare.py --fresh --check none --json /tmp/after.json    # the other
    python benchmarks/diff_compare_runs.py /tmp/before.json /tmp/after.json [--out FILE]

Used to show that a change of code (not of settings) leaves every metric as it was, on the same machine.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("before", type=Path)
    parser.add_argument("after", type=Path)
    parser.add_argument("--out", type=Path)
    args = parser.parse_args()
    before = {(r["model"], r["seed"]): r for r in json.loads(args.before.read_text())["runs"]}
    after = {(r["model"], r["seed"]): r for r in json.loads(args.after.read_text())["runs"]}
    rows = []
    print("| model | seed | accuracy before | accuracy after | macro-F1 before | macro-F1 after | identical |")
    print("|---|---|---|---|---|---|---|")
    for key in sorted(set(before) | set(after)):
        a, b = before.get(key, {}), after.get(key, {})
        same = bool(a and b and (a["accuracy"], a["macro_f1"]) == (b["accuracy"], b["macro_f1"]))
        rows.append({"model": key[0], "seed": key[1], "accuracy_before": a.get("accuracy"),
                     "accuracy_after": b.get("accuracy"), "macro_f1_before": a.get("macro_f1"),
                     "macro_f1_after": b.get("macro_f1"), "identical": same})
        print(f"| {key[0]} | {key[1]} | {a.get('accuracy', float('nan')):.4f} | {b.get('accuracy', float('nan')):.4f} "
              f"| {a.get('macro_f1', float('nan')):.4f} | {b.get('macro_f1', float('nan')):.4f} | "
              f"{'yes' if same else 'NO'} |")
    identical = sum(r["identical"] for r in rows)
    print(f"{identical} of {len(rows)} runs identical")
    if args.out:
        args.out.write_text(json.dumps({"before": str(args.before), "after": str(args.after), "runs": rows,
                                        "identical": identical, "total": len(rows)}, indent=2) + "\n")


if __name__ == "__main__":
    sys.exit(main())
