"""`textclf doctor data`: what in a labelled data set keeps a classifier from learning, or makes
its scores look better than they are.

Checks: class balance and the majority baseline; exact and normalised duplicates; texts with
conflicting labels; empty and non-answer texts; a file sorted by label; text lengths and what a
max_length cuts; vocabulary and pretrained-vector coverage; duplicates across train and test; a
cross-validated TF-IDF + logistic regression baseline that says what "good" looks like.
"""

from __future__ import annotations

import math
from collections import Counter, defaultdict
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from textclf.data.readers import Dataset, read_dataset
from textclf.data.text import count_empty
from textclf.data.tokenize import UNK_ID, build_tokenizer, choose_max_length, encode, token_counts, vocabulary
from textclf.doctor.baseline import cross_validated_baseline, multilabel_cross_validated_baseline
from textclf.doctor.findings import Finding, sort_findings
from textclf.doctor.text import non_answer_kind, normalise
from textclf.errors import DataError
from textclf.vectors import load_vectors


@dataclass
class DataReport:
    """What `diagnose_data` measured (`stats`) and concluded (`findings`)."""

    source: str
    stats: dict[str, Any]
    findings: list[Finding] = field(default_factory=list)

    def to_dict(self) -> dict[str, Any]:
        return {"source": self.source, "stats": self.stats, "findings": [f.to_dict() for f in self.findings]}


def _share(n: int, total: int) -> str:
    return f"{n:,} of {total:,} ({n / total:.1%})" if total else f"{n:,}"


def _examples(texts: Sequence[str], k: int = 3) -> str:
    shown = [repr(t if len(t) <= 60 else t[:57] + "...") for t in texts[:k]]
    return ", ".join(shown)


def check_balance(data: Dataset) -> tuple[dict, list[Finding]]:
    """Examples per class, the majority baseline (accuracy of always answering the largest class)."""
    counts = Counter(data.labels)
    n = len(data)
    (top, top_n), (low, low_n) = counts.most_common()[0], counts.most_common()[-1]
    stats = {"num_labels": len(counts), "class_counts": dict(counts.most_common()),
             "majority_class": top, "majority_baseline_accuracy": top_n / n, "imbalance_ratio": top_n / low_n}
    findings = []
    if top_n / low_n >= 5:
        findings.append(Finding(
            "class_imbalance", "warning", "Classes are imbalanced; accuracy hides it",
            f"{top!r} has {_share(top_n, n)} rows, {low!r} only {low_n:,} (ratio {top_n / low_n:.1f}); always "
            f"answering {top!r} scores accuracy {top_n / n:.3f}.",
            "Judge models by macro-F1 (textclf reports it), train with --class-weights balanced, or collect "
            "more examples of the small classes.", where=data.source))
    few = sorted(label for label, c in counts.items() if c < 10)
    if few:
        findings.append(Finding(
            "tiny_classes", "warning", "Some classes have fewer than 10 examples",
            f"{len(few)} classes: " + ", ".join(f"{label!r} ({counts[label]})" for label in few[:10]) + ".",
            "Collect more examples, or merge/remove these classes: a model cannot learn them reliably.",
            where=data.source))
    return stats, findings


def check_label_sets(data: Dataset) -> tuple[dict, list[Finding]]:
    """Multi-label data: texts per label (support), labels per text (cardinality), distinct label sets."""
    support = Counter(label for row in data.labels for label in row)
    sizes = np.array([len(row) for row in data.labels])
    stats = {"multi_label": True, "num_labels": len(support), "class_counts": dict(support.most_common()),
             "label_cardinality": float(sizes.mean()) if len(sizes) else 0.0,
             "texts_with_several_labels": int((sizes > 1).sum()), "texts_without_label": int((sizes == 0).sum()),
             "distinct_label_sets": len(set(data.labels))}
    findings = []
    few = sorted(label for label, c in support.items() if c < 10)
    if few:
        findings.append(Finding(
            "tiny_labels", "warning", "Some labels have fewer than 10 examples",
            f"{len(few)} labels: " + ", ".join(f"{label!r} ({support[label]})" for label in few[:10]) + ".",
            "Collect more examples of them, or drop them: a model cannot learn them reliably, and their thresholds "
            "are tuned on a handful of validation texts.", where=data.source))
    (top, top_n), (low, low_n) = support.most_common()[0], support.most_common()[-1]
    if top_n / low_n >= 20:
        findings.append(Finding(
            "label_imbalance", "info", "Label frequencies differ widely",
            f"{top!r} is on {_share(top_n, len(data))} texts, {low!r} on {low_n:,} (ratio {top_n / low_n:.0f}).",
            "Judge models by macro-F1 and train with --class-weights balanced (a positive weight per label); "
            "per-label thresholds (--thresholds per-label) can help the rare labels.", where=data.source))
    return stats, findings


def check_duplicates(data: Dataset) -> tuple[dict, list[Finding]]:
    """Exact duplicate texts, texts equal after normalisation, and texts that carry several labels."""
    exact = Counter(data.texts)
    groups: dict[str, list[int]] = defaultdict(list)
    for i, text in enumerate(data.texts):
        groups[normalise(text)].append(i)
    extra_exact = len(data) - len(exact)
    extra_norm = len(data) - len(groups)
    labels_of: dict[str, set[str]] = defaultdict(set)
    for text, label in zip(data.texts, data.labels, strict=True):
        labels_of[text].add(label)
    conflicting = sorted((t for t, ls in labels_of.items() if len(ls) > 1), key=lambda t: -exact[t])
    norm_conflicting = [key for key, rows in groups.items() if len({data.labels[i] for i in rows}) > 1]
    stats = {"distinct_texts": len(exact), "duplicate_rows": extra_exact, "normalised_duplicate_rows": extra_norm,
             "conflicting_texts": len(conflicting), "conflicting_rows": sum(exact[t] for t in conflicting),
             "normalised_conflicting_texts": len(norm_conflicting)}
    findings = []
    if extra_norm:
        repeated = [t for t, c in exact.most_common() if c > 1]
        findings.append(Finding(
            "duplicates", "warning" if extra_norm >= 0.01 * len(data) else "info", "Duplicate texts",
            f"{len(exact):,} distinct texts in {len(data):,} rows: {extra_exact:,} extra rows repeat a text exactly "
            f"and {extra_norm - extra_exact:,} more differ only in case, spacing or punctuation. Most repeated: "
            f"{_examples(repeated)}.",
            "Drop repeats before splitting (keep one row per normalised text), or a split can put copies of a "
            "text in train and test and inflate the test score.", where=data.source))
    if conflicting or norm_conflicting:
        findings.append(Finding(
            "conflicting_labels", "warning", "The same text has different labels",
            f"{len(conflicting):,} texts ({stats['conflicting_rows']:,} rows) appear under more than one label "
            f"({len(norm_conflicting):,} after normalising case and punctuation), e.g. {_examples(conflicting)}.",
            "Relabel them or drop them: no model can get them all right, and they teach it noise.",
            where=data.source))
    return stats, findings


# Above this share of rows without words, empty texts are a warning; below it, worth knowing.
EMPTY_WARNING_SHARE = 0.01


def check_non_answers(data: Dataset) -> tuple[dict, list[Finding]]:
    """Empty texts and non-answers ("[ No response.]", "Not applicable.", "Same as in anger.").
    `empty_rows` counts texts without words, `blank_rows` those of them that are empty or only
    whitespace (textclf.data.text.count_empty)."""
    kinds: dict[str, list[int]] = defaultdict(list)
    for i, text in enumerate(data.texts):
        kind = non_answer_kind(text)
        if kind:
            kinds[kind].append(i)
    stats = {f"{kind}_rows": len(kinds.get(kind, [])) for kind in ("empty", "no_response", "non_answer")}
    stats["blank_rows"] = count_empty(data.texts)
    findings = []
    if kinds.get("empty"):
        empty = len(kinds["empty"])
        findings.append(Finding(
            "empty_texts", "warning" if empty > EMPTY_WARNING_SHARE * len(data) else "info", "Empty texts",
            f"{_share(empty, len(data))} rows have no words ({stats['blank_rows']:,} empty or only whitespace, "
            f"{empty - stats['blank_rows']:,} only punctuation or symbols; e.g. rows "
            f"{[i + 1 for i in kinds['empty'][:5]]}).",
            "Remove them: they are all classified the same way whatever their label.", where=data.source))
    rows = kinds.get("no_response", []) + kinds.get("non_answer", [])
    if rows:
        common = Counter(data.texts[i] for i in rows).most_common()
        labels = Counter(data.labels[i] for i in rows)
        findings.append(Finding(
            "non_answers", "warning", "Rows that are non-answers, not texts",
            f"{stats['no_response_rows']:,} 'no response' rows and {stats['non_answer_rows']:,} other non-answers "
            f"(never experienced, not applicable, same as ...), spread over {len(labels)} labels; most common: "
            f"{', '.join(f'{t!r} x{c}' for t, c in common[:4])}.",
            "Filter them out before training and evaluation: their label cannot be told from their text.",
            where=data.source))
    return stats, findings


def check_order(data: Dataset, tail: float = 0.1) -> tuple[dict, list[Finding]]:
    """Is the file sorted (grouped) by label? Then the last rows, which Keras' validation_split
    takes, hold one or few classes."""
    labels = data.labels
    n = len(labels)
    runs = 1 + sum(a != b for a, b in zip(labels, labels[1:], strict=False))
    shares = np.array(list(Counter(labels).values())) / n
    expected = 1 + (n - 1) * (1 - float(np.sum(shares**2)))
    last = labels[n - max(1, math.ceil(tail * n)):]
    tail_counts = Counter(last)
    stats = {"label_runs": runs, "label_runs_if_shuffled": expected, "tail_fraction": tail,
             "tail_class_counts": dict(tail_counts.most_common())}
    findings = []
    if runs <= 0.2 * expected:
        top = ", ".join(f"{k!r} {v}" for k, v in tail_counts.most_common(3))
        what = (f"only {next(iter(tail_counts))!r}" if len(tail_counts) == 1 else
                f"{len(tail_counts)} of {len(shares)} classes ({top})")
        findings.append(Finding(
            "sorted_by_label", "warning", "The file is sorted by label",
            f"{runs:,} runs of equal labels where a shuffled file would have about {expected:,.0f}; the last "
            f"{tail:.0%} of rows (what Keras' validation_split={tail:g} takes) hold {what}.",
            "Shuffle before any split that takes rows in order (Keras validation_split, head/tail). textclf's own "
            "splits are stratified and shuffled, so they are not affected.", where=data.source))
    return stats, findings


def check_lengths(lengths: np.ndarray, max_length: int | None, source: str) -> tuple[dict, list[Finding]]:
    """Token lengths (textclf's tokenizer) and how much a max_length cuts; without one, the
    max_length textclf would choose (95th percentile, capped at 400)."""
    chosen = max_length or choose_max_length(lengths)
    cut = lengths > chosen
    lost = float(np.maximum(lengths - chosen, 0).sum() / max(1, lengths.sum()))
    q = np.percentile(lengths, [5, 50, 90, 95, 99]) if len(lengths) else np.zeros(5)
    stats = {"min": int(lengths.min(initial=0)), "p5": float(q[0]), "median": float(q[1]), "p90": float(q[2]),
             "p95": float(q[3]), "p99": float(q[4]), "max": int(lengths.max(initial=0)), "max_length": int(chosen),
             "max_length_given": max_length is not None, "truncated_texts": float(cut.mean()) if len(cut) else 0.0,
             "truncated_tokens": lost}
    findings = []
    if max_length is not None and stats["truncated_texts"] >= 0.1:
        findings.append(Finding(
            "truncation", "warning", f"max_length {max_length} cuts many texts",
            f"{stats['truncated_texts']:.1%} of texts are longer than {max_length} tokens and lose "
            f"{lost:.1%} of all tokens; the median text has {q[1]:.0f} tokens, the 95th percentile {q[3]:.0f}.",
            f"Raise max_length to about {int(math.ceil(q[3]))} (or leave it unset: textclf picks the 95th "
            "percentile), or keep it if the start of a text carries the label.", where=source))
    short = float(np.mean(lengths <= 2)) if len(lengths) else 0.0
    stats["texts_of_at_most_2_tokens"] = short
    return stats, findings


def check_vocabulary(
    train_ids: list[np.ndarray], vocab: list[str], test_ids: list[np.ndarray] | None, vectors: str | None,
    source: str,
) -> tuple[dict, list[Finding]]:
    """Vocabulary size, words seen once, test OOV rate, and pretrained-vector coverage."""
    counts = token_counts(train_ids, len(vocab))
    seen = counts[2:]
    stats: dict[str, Any] = {"vocab_size": len(vocab) - 2, "tokens": int(seen.sum()),
                             "words_seen_once": float(np.mean(seen == 1)) if len(seen) else 0.0}
    findings = []
    if test_ids is not None:
        tokens = np.concatenate(test_ids) if test_ids else np.zeros(0, dtype=np.int64)
        stats["test_oov_rate"] = float(np.mean(tokens == UNK_ID)) if len(tokens) else 0.0
    if vectors:
        coverage = load_vectors(vectors, vocab, counts=counts).coverage
        stats["vectors"] = {"source": str(vectors), **coverage}
        tokens_cov = coverage["tokens"] or 0.0
        if tokens_cov < 0.9 or coverage["types"] < 0.5:
            findings.append(Finding(
                "low_vector_coverage", "warning" if tokens_cov >= 0.7 else "error",
                "The pretrained vectors miss many words",
                f"{vectors} covers {coverage['types']:.1%} of the {coverage['vocab_types']:,} word types and "
                f"{tokens_cov:.1%} of token occurrences; the rest start random.",
                "Train the embeddings (the default; do not pass --freeze-embeddings), use vectors trained on "
                "similar text, or check the language and casing of the vectors.", where=source))
    return stats, findings


def check_cross_split(train: Dataset, test: Dataset) -> tuple[dict, list[Finding]]:
    """Test rows whose text (exactly, or after normalisation) is also in the training data."""
    train_exact = set(train.texts)
    train_labels: dict[str, set[str]] = defaultdict(set)
    for text, label in zip(train.texts, train.labels, strict=True):
        train_labels[normalise(text)].add(label)
    exact = [i for i, t in enumerate(test.texts) if t in train_exact]
    norm = [i for i, t in enumerate(test.texts) if normalise(t) in train_labels]
    other_label = [i for i in norm if test.labels[i] not in train_labels[normalise(test.texts[i])]]
    share = len(norm) / len(test) if len(test) else 0.0
    stats = {"test_rows_in_train": len(exact), "test_rows_in_train_normalised": len(norm),
             "test_share_in_train": share, "test_rows_in_train_with_other_label": len(other_label)}
    findings = []
    if norm:
        severity = "error" if share >= 0.05 else "warning" if share >= 0.01 else "info"
        findings.append(Finding(
            "test_in_train", severity, "Test texts also occur in the training data",
            f"{_share(len(norm), len(test))} test rows have a text that is in {train.source} ({len(exact):,} exactly, "
            f"the rest after normalising case and punctuation; {len(other_label):,} of them with another label "
            f"there), e.g. {_examples([test.texts[i] for i in norm])}. The test score overstates what the model "
            "does on new texts by up to that share.",
            "Remove those rows from the test set (or from training), deduplicating before the split.",
            where=f"{test.source} vs {train.source}"))
    return stats, findings


def diagnose_data(
    data: str | Path | Dataset,
    *,
    test: str | Path | Dataset | None = None,
    vectors: str | None = None,
    max_length: int | None = None,
    baseline: bool = True,
    folds: int = 5,
    seed: int = 0,
    text_column: str | None = None,
    label_column: str | None = None,
    **label_options: Any,
) -> DataReport:
    """Run every data check on `data` (and `test`, when given). `vectors` adds the coverage check,
    `max_length` the truncation check; `baseline` adds a `folds`-fold TF-IDF + LR baseline.
    `label_options` (multi_label, label_sep, label_columns) read multi-label data: then the classes are
    checked as label sets (support per label, labels per text)."""
    dataset = data if isinstance(data, Dataset) else read_dataset(data, text_column=text_column,
                                                                  label_column=label_column, **label_options)
    test_set = test if isinstance(test, Dataset) or test is None else read_dataset(
        test, text_column=text_column, label_column=label_column, **label_options)
    if len(dataset) == 0 or dataset.labels is None:
        raise DataError(f"{dataset.source} has no labelled rows; expected texts with labels. Pass --label-column.")
    stats: dict[str, Any] = {"rows": len(dataset)}
    findings: list[Finding] = []
    # the other checks read a multi-label row's labels as one string, "a;b"
    flat = Dataset(dataset.texts, [";".join(row) for row in dataset.labels], dataset.source) \
        if dataset.multi_label else dataset
    balance = check_label_sets if dataset.multi_label else check_balance
    for name, check in (("classes", balance), ("duplicates", check_duplicates),
                        ("non_answers", check_non_answers), ("order", check_order)):
        part, found = check(dataset if check is balance else flat)
        stats[name] = part
        findings += found
    tokenizer = build_tokenizer(dataset.texts)
    train_ids = encode(tokenizer, dataset.texts)
    stats["lengths"], found = check_lengths(np.array([len(r) for r in train_ids]), max_length, dataset.source)
    findings += found
    test_ids = encode(tokenizer, test_set.texts) if test_set is not None else None
    stats["vocabulary"], found = check_vocabulary(train_ids, vocabulary(tokenizer), test_ids, vectors,
                                                  dataset.source)
    findings += found
    if test_set is not None:
        stats["test"] = {"rows": len(test_set), "source": test_set.source}
        flat_test = Dataset(test_set.texts, [";".join(row) if isinstance(row, tuple) else row
                                             for row in test_set.labels], test_set.source)
        stats["cross_split"], found = check_cross_split(flat, flat_test)
        findings += found
    if baseline:
        stats["baseline"], found = check_baseline(dataset, folds=folds, seed=seed)
        findings += found
    return DataReport(dataset.source, stats, sort_findings(findings))


def check_baseline(data: Dataset, *, folds: int = 5, seed: int = 0) -> tuple[dict, list[Finding]]:
    if data.multi_label:  # macro-F1 of one-vs-rest at probability 0.5: what a simple model reaches
        return multilabel_cross_validated_baseline(data.texts, data.labels, folds=folds, seed=seed), []
    """Cross-validated TF-IDF + logistic regression; a finding when it does not beat the majority."""
    result = cross_validated_baseline(data.texts, data.labels, folds=folds, seed=seed)
    majority = Counter(data.labels).most_common(1)[0][1] / len(data)
    result["majority_accuracy"] = majority
    findings = []
    if result.get("folds") and result["accuracy"] <= majority + 2 * result["accuracy_sd"] + 0.01:
        findings.append(Finding(
            "no_signal", "error", "A linear model does not beat always answering the majority class",
            f"TF-IDF + logistic regression, {result['folds']}-fold: accuracy {result['accuracy']:.3f} "
            f"± {result['accuracy_sd']:.3f}, macro-F1 {result['macro_f1']:.3f}; the majority class alone scores "
            f"{majority:.3f}.",
            "Check that the label column is the right one and that labels are aligned with their texts (not "
            "shuffled or shifted); if they are, the texts do not carry the label.", where=data.source))
    return result, findings
