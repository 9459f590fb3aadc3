"""Monitors of a training run: each a plain function over the epoch history (and the per-step
loss/gradient-norm record) that returns named findings with evidence and a fix.

`StepRecorder` is the training callback that keeps the per-step record; `diagnose_training`
runs every monitor once training has finished (or failed). Thresholds are chosen so that a
healthy run says nothing: see benchmarks/bench_doctor.py.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

import numpy as np

from textclf.doctor.findings import Finding, sort_findings
from textclf.records import Step


class StepRecorder:
    """A training callback keeping the loss and gradient norm (before clipping) of every step."""

    def __init__(self) -> None:
        self.losses: list[float] = []
        self.grad_norms: list[float] = []
        self.epochs: list[int] = []

    def __call__(self, step: Step) -> None:
        if step.metrics is None:
            self.losses.append(float(step.loss))
            self.grad_norms.append(float(step.grad_norm))
            self.epochs.append(step.epoch)

    def summary(self) -> dict:
        """Gradient-norm statistics for training.json (the per-step lists stay in memory)."""
        norms = np.asarray(self.grad_norms, dtype=np.float64)
        finite = norms[np.isfinite(norms)]
        if not len(norms):
            return {"steps": 0}
        return {"steps": len(norms), "non_finite": int(len(norms) - len(finite)),
                "median": float(np.median(finite)) if len(finite) else None,
                "p99": float(np.percentile(finite, 99)) if len(finite) else None,
                "max": float(finite.max()) if len(finite) else None}


@dataclass
class RunFacts:
    """What the monitors need to know about a run besides its history."""

    labels: list[str]
    train_counts: list[int]  # (C,) training examples per class
    val_counts: list[int]  # (C,) validation examples per class
    clip_norm: float = 5.0
    lr: float = 0.0
    linear_baseline: dict | None = None  # {"val_accuracy", "val_macro_f1", ...} on the same split
    test_in_train: int = 0  # test rows whose text is also in the training split
    n_test: int = 0
    val_in_train: int = 0
    grad_norms: Sequence[float] = field(default_factory=list)
    step_losses: Sequence[float] = field(default_factory=list)
    architecture: str = ""  # the model's name, for advice that fits the run
    vectors: str | None = None  # the run's pretrained vectors, if any
    multi_label: bool = False  # then the counts are texts carrying each label
    val_texts: int | None = None  # validation texts (multi-label: not the sum of the counts)

    @property
    def num_labels(self) -> int:
        return len(self.labels)

    @property
    def n_val(self) -> int:
        return int(self.val_texts) if self.val_texts is not None else int(sum(self.val_counts))

    def prior_entropy(self) -> float:
        """The loss of a model that predicts the training class frequencies: where a stuck loss sits."""
        p = np.asarray(self.train_counts, dtype=np.float64)
        p = p[p > 0] / p.sum()
        return float(-(p * np.log(p)).sum())


def _best(history: list[dict]) -> dict:
    finite = [h for h in history if h.get("val_macro_f1") is not None and not math.isnan(h["val_macro_f1"])]
    return max(finite, key=lambda h: h["val_macro_f1"]) if finite else {}


def _se(p: float, n: int) -> float:
    """Standard error of an accuracy p measured on n examples; p is shrunk towards 1/2 by one success
    and one failure ((k + 1) / (n + 2)) so that a perfect score on a small split is not noise-free."""
    n = max(n, 1)
    p = (p * n + 1) / (n + 2)
    return math.sqrt(p * (1 - p) / n)


def check_validation_split(history: list[dict], facts: RunFacts) -> list[Finding]:
    """A validation split with one class (or classes missing) cannot select a model."""
    present = [label for label, n in zip(facts.labels, facts.val_counts, strict=True) if n > 0]
    missing = [label for label, n in zip(facts.labels, facts.val_counts, strict=True) if n == 0]
    if len(present) == 1:
        return [Finding(
            "single_class_validation", "error", "The validation split holds one class",
            f"all {facts.n_val:,} validation examples are {present[0]!r}; macro-F1 and accuracy on it reward "
            "predicting that class, so early stopping and the kept epoch mean nothing.",
            "Use a stratified validation split with every class (textclf's --val-size does this; raise it or add "
            "examples of the rare classes). With Keras, shuffle before validation_split.", where="validation")]
    if missing:
        return [Finding(
            "classes_missing_from_validation", "warning", "Some classes never appear in validation",
            f"{len(missing)} of {facts.num_labels} classes have no validation example: {missing[:10]}.",
            "Raise --val-size or add examples of those classes, so model selection sees them.", where="validation")]
    return []


def check_collapse(history: list[dict], facts: RunFacts) -> list[Finding]:
    """One class takes most validation predictions while it is a minority in the data."""
    best = _best(history)
    predicted = np.asarray(best.get("val_predicted_counts") or [], dtype=np.float64)
    if not len(predicted) or predicted.sum() == 0 or sum(n > 0 for n in facts.val_counts) < 2:
        return []
    k = int(predicted.argmax())
    share = predicted[k] / predicted.sum()
    true_share = facts.val_counts[k] / max(1, facts.n_val)
    if share >= 0.5 and share >= 1.75 * true_share or share == 1.0:
        return [Finding(
            "collapse", "error", "The model predicts (almost) one class",
            f"at the kept epoch {best['epoch']}, {share:.0%} of validation predictions are {facts.labels[k]!r}, "
            f"which is {true_share:.0%} of the validation data; predicted counts {predicted.astype(int).tolist()}.",
            "Lower the learning rate, check the data (doctor data: shuffled or conflicting labels, non-answers), "
            "try --class-weights balanced for imbalanced data, and make sure padding is masked.",
            where=f"epoch {best['epoch']}")]
    return []


def check_stuck_loss(history: list[dict], facts: RunFacts) -> list[Finding]:
    """Training loss never leaves the level of guessing the class frequencies (about ln C)."""
    losses = [h["train_loss"] for h in history if h.get("train_loss") is not None]
    if not losses or not all(math.isfinite(v) for v in losses):
        return []
    reference = facts.prior_entropy()
    if reference <= 0 or min(losses) < 0.95 * reference or max(losses) > 1.5 * max(reference, math.log(2)):
        return []
    return [Finding(
        "loss_stuck", "error", "The training loss is stuck at the level of guessing",
        f"training loss stayed between {min(losses):.3f} and {max(losses):.3f} over {len(losses)} epochs; "
        f"predicting the class frequencies gives {reference:.3f} (ln C = {math.log(facts.num_labels):.3f}).",
        "The model learns nothing: lower (or raise a tiny) --lr, check that labels match texts (doctor data), "
        "unfreeze the embeddings if they are random, and check that texts are not all truncated to padding.",
        where="training")]


def check_gradients(history: list[dict], facts: RunFacts, *, min_spikes: int = 3) -> list[Finding]:
    """NaN/inf gradient norms, or norms that jump far above where training started on at least
    `min_spikes` steps and 1 % of them (1 when explaining a run that failed)."""
    norms = np.asarray(facts.grad_norms, dtype=np.float64)
    if not len(norms):
        return []
    bad = np.flatnonzero(~np.isfinite(norms))
    if len(bad):
        return [Finding(
            "nan_gradients", "error", "Gradients became NaN or infinite",
            f"{len(bad)} of {len(norms):,} steps had a non-finite gradient norm, first at step {bad[0] + 1}; "
            f"the last finite norms were {np.round(norms[np.isfinite(norms)][-3:], 3).tolist()}.",
            f"Lower --lr (now {facts.lr:g}), keep gradient clipping on (train.clip_norm), and use fp32 if bf16 "
            "overflows.", where=f"step {bad[0] + 1}")]
    # The reference is the gradient at initialisation, before any update could have blown it up.
    nonzero = norms[norms > 0]
    early = float(nonzero[0]) if len(nonzero) else 1e-8
    threshold = max(20 * early, facts.clip_norm)
    spikes = np.flatnonzero(norms > threshold)
    # An isolated spike is what clipping is for (recurrent nets trained from scratch have a few);
    # exploding means it keeps happening: at least `min_spikes` steps and 1 % of them.
    if len(spikes) >= max(min_spikes, 0.01 * len(norms)):
        peak = int(norms.argmax())
        return [Finding(
            "exploding_gradients", "error", "Gradients exploded",
            f"the gradient norm (before clipping) exceeded {threshold:.3g} on {len(spikes):,} of {len(norms):,} "
            f"steps, first at step {spikes[0] + 1}, and reached {norms[peak]:.3g} at step {peak + 1}, "
            f"{norms[peak] / early:.0f}x its value at initialisation ({early:.3g}); clipping at "
            f"{facts.clip_norm:g} hides it but each update is still as large as the learning rate allows.",
            f"Lower --lr (now {facts.lr:g}); 1e-3 to 1e-2 suits most textclf models.", where=f"step {spikes[0] + 1}")]
    return []


def check_loss_exploded(history: list[dict], facts: RunFacts) -> list[Finding]:
    """Training or validation loss far above the loss of a uniform guess (ln C)."""
    chance = math.log(max(facts.num_labels, 2))
    train = [(h["epoch"], h["train_loss"]) for h in history if h.get("train_loss") is not None]
    val = [(h["epoch"], h["val_loss"]) for h in history if h.get("val_loss") is not None]
    worst_train = max(train, key=lambda e: e[1] if math.isfinite(e[1]) else math.inf, default=None)
    worst_val = max(val, key=lambda e: e[1] if math.isfinite(e[1]) else math.inf, default=None)
    if (worst_train and worst_train[1] > 3 * chance) or (worst_val and worst_val[1] > 10 * chance):
        epoch, value = worst_train if worst_train and worst_train[1] > 3 * chance else worst_val
        return [Finding(
            "loss_exploded", "error", "The loss blew up",
            f"the {'training' if (epoch, value) == worst_train else 'validation'} loss reached {value:.4g} at epoch "
            f"{epoch}, while guessing uniformly gives ln {facts.num_labels} = {chance:.3f}: the updates overshoot.",
            f"Lower --lr (now {facts.lr:g}) by 10x; keep warmup and gradient clipping on.", where=f"epoch {epoch}")]
    return []


def check_overfitting(history: list[dict], facts: RunFacts) -> list[Finding]:
    """Validation loss rising while training loss falls, and the kept epoch sits in that stretch."""
    rows = [h for h in history if h.get("val_loss") is not None and math.isfinite(h["val_loss"])]
    if len(rows) < 4:
        return []
    low = min(range(len(rows)), key=lambda i: rows[i]["val_loss"])
    best = _best(history)
    after = rows[low:]
    rising = sum(b["val_loss"] > a["val_loss"] and b["train_loss"] < a["train_loss"]
                 for a, b in zip(after, after[1:], strict=False))
    kept = best.get("val_loss", math.nan)
    if rising >= 3 and best.get("epoch", 0) - rows[low]["epoch"] >= 2 and kept >= 1.1 * rows[low]["val_loss"]:
        return [Finding(
            "val_loss_rising", "warning", "Validation loss rises while training loss falls (overfitting)",
            f"validation loss was lowest at epoch {rows[low]['epoch']} ({rows[low]['val_loss']:.3f}) and rose in "
            f"{rising} later epochs while training loss kept falling; the kept epoch {best['epoch']} (best macro-F1) "
            f"has validation loss {kept:.3f}, so its probabilities are overconfident.",
            "Regularise: raise dropout or weight decay, use fewer epochs or a lower --lr, a smaller model, or "
            "more data.",
            where=f"epochs {rows[low]['epoch']}-{rows[-1]['epoch']}")]
    return []


def check_gap(history: list[dict], facts: RunFacts) -> list[Finding]:
    """Training accuracy far above validation accuracy at the kept epoch."""
    best = _best(history)
    train, val = best.get("train_accuracy"), best.get("val_accuracy")
    if train is None or val is None or not math.isfinite(train) or train - val < 0.35:
        return []
    return [Finding(
        "train_val_gap", "warning", "Large gap between training and validation accuracy",
        f"at the kept epoch {best['epoch']}, training accuracy (dropout on) is {train:.3f} and validation accuracy "
        f"{val:.3f}: the model memorises the training texts more than it learns what generalises.",
        "Raise dropout or weight decay, use pretrained vectors, a smaller model or more data; check for "
        "duplicates and label noise with textclf doctor data.", where=f"epoch {best['epoch']}")]


def _beats(score: float, reference: float, n: int) -> bool:
    """`score` is above `reference` by more than noise on n examples (2 standard errors, at least 0.01)."""
    return score > reference + max(0.01, 2 * _se(reference, n))


def check_majority(history: list[dict], facts: RunFacts) -> list[Finding]:
    """Validation accuracy no better than always answering the most frequent validation class."""
    best = _best(history)
    present = sum(n > 0 for n in facts.val_counts)
    if not best or present < 2:
        return []
    majority = max(facts.val_counts) / facts.n_val
    if _beats(best["val_accuracy"], majority, facts.n_val):
        return []
    base = facts.linear_baseline or {}
    evidence = (f"best validation accuracy {best['val_accuracy']:.3f} (epoch {best['epoch']}) against {majority:.3f} "
                f"for always answering the most frequent class, on {facts.n_val:,} examples")
    if base and not _beats(base["val_accuracy"], majority, facts.n_val):
        return [Finding(
            "no_signal", "error", "Neither the network nor a linear model beats the majority class",
            f"{evidence}; TF-IDF + logistic regression on the same split gets {base['val_accuracy']:.3f}.",
            "The labels look unrelated to the texts: check that the label column is the right one and that labels "
            "are aligned with their texts (not shuffled or shifted). Run textclf doctor data on the file.",
            where="validation")]
    linear = f"; TF-IDF + logistic regression on the same split gets {base['val_accuracy']:.3f}" if base else ""
    return [Finding(
        "no_better_than_majority", "error", "The model does not beat always answering the majority class",
        evidence + linear + ".",
        "The network learnt nothing useful: lower --lr, train longer, unfreeze random embeddings, and check the "
        "other findings (collapse, stuck loss).", where="validation")]


def check_linear_baseline(history: list[dict], facts: RunFacts) -> list[Finding]:
    """The network scores clearly below TF-IDF + logistic regression on the same split."""
    base, best = facts.linear_baseline, _best(history)
    if not base or not best or check_majority(history, facts):
        return []
    gap = base["val_macro_f1"] - best["val_macro_f1"]
    noise = _se(base["val_accuracy"], facts.n_val)
    if gap < 2 * noise:
        return []
    # A few points below a tuned linear model is common for small neural models on small data (info);
    # far below it, the network is failing.
    severity = "warning" if gap >= max(0.05, 3 * noise) else "info"
    return [Finding(
        "below_linear_baseline", severity, "The network is below a linear baseline on the same split",
        f"validation macro-F1 {best['val_macro_f1']:.3f} (epoch {best['epoch']}) against {base['val_macro_f1']:.3f} "
        f"for {base.get('model', 'TF-IDF + logistic regression')} trained on the same {base['rows']:,} training "
        f"texts (gap {gap:.3f}, noise about {noise:.3f}).",
        _linear_baseline_fix(facts), where="validation")]


def _linear_baseline_fix(facts: RunFacts) -> str:
    """What to try, given what the run already did."""
    steps = [] if facts.vectors else ["use pretrained vectors (--vectors glove-6b-50d)"]
    if facts.vectors and facts.architecture in ("cnn", "bilstm", "lstm", "gru", "bigru", "cnn-lstm", "cnn-gru"):
        steps.append("widen narrow vectors with trained dimensions (--set model.embedding_dim=250)")
    steps += [f"search this {facts.architecture or 'model'}'s settings (textclf tune DATA --model "
              f"{facts.architecture or 'NAME'})", "fine-tune a pretrained transformer (--model hf) or compare "
              "with the linear models (textclf compare), and use the linear model if it is good enough"]
    return "; ".join(steps)[:1].upper() + "; ".join(steps)[1:] + "."


def check_leakage(history: list[dict], facts: RunFacts) -> list[Finding]:
    """Test (or validation) texts that also occur in the training split."""
    findings = []
    if facts.test_in_train and facts.n_test:
        share = facts.test_in_train / facts.n_test
        findings.append(Finding(
            "test_in_train", "error" if share >= 0.05 else "info", "Test texts also occur in the training split",
            f"{facts.test_in_train:,} of {facts.n_test:,} test rows ({share:.1%}) have a text that is also, exactly, "
            "in the training split; the test score can be "
            "inflated by up to that share." + ("" if share >= 0.05 else " Short common texts repeat naturally."),
            "Deduplicate before splitting; textclf doctor data DATA --test TEST lists the overlap.", where="test"))
    if facts.val_in_train and facts.n_val and facts.val_in_train / facts.n_val >= 0.05:
        findings.append(Finding(
            "val_in_train", "warning", "Validation texts also occur in the training split",
            f"{facts.val_in_train:,} of {facts.n_val:,} validation rows have a text that is also in the training "
            "split, so early stopping rewards memorising.",
            "Deduplicate the data before training (textclf doctor data shows the duplicates).", where="validation"))
    return findings


def check_no_label(history: list[dict], facts: RunFacts) -> list[Finding]:
    """Multi-label: labels the model never predicts on validation (at probability 0.5), though present."""
    best = _best(history)
    predicted = best.get("val_predicted_counts") or []
    if not facts.multi_label or not predicted:
        return []
    never = [label for label, p, n in zip(facts.labels, predicted, facts.val_counts, strict=True) if p == 0 and n > 0]
    if not never:
        return []
    severity = "error" if sum(predicted) == 0 else "warning" if len(never) >= max(2, facts.num_labels // 4) else "info"
    title = "The model predicts no label" if sum(predicted) == 0 else "The model never predicts some labels"
    return [Finding(
        "predicts_no_label", severity, title,
        f"at the kept epoch {best['epoch']}, {len(never)} of {facts.num_labels} labels are given to no validation "
        f"text at probability 0.5, though present: {never[:10]}.",
        "Rare labels need weight: train with --class-weights balanced (positive weights per label), train longer, "
        "and rely on the tuned thresholds (--set train.thresholds=per-label).", where=f"epoch {best['epoch']}")]


def check_every_label(history: list[dict], facts: RunFacts) -> list[Finding]:
    """Multi-label: labels the model gives to (nearly) every validation text while few carry them."""
    best = _best(history)
    predicted = best.get("val_predicted_counts") or []
    if not facts.multi_label or not predicted or not facts.n_val:
        return []
    always = [label for label, p, n in zip(facts.labels, predicted, facts.val_counts, strict=True)
              if p >= 0.95 * facts.n_val and n < 0.5 * facts.n_val]
    if not always:
        return []
    every = len(always) == facts.num_labels
    return [Finding(
        "predicts_every_label", "error" if every or len(always) > 1 else "warning",
        "The model predicts every label" if every else "The model gives some labels to every text",
        f"at the kept epoch {best['epoch']}, labels {always[:10]} are each predicted for at least 95% of the "
        f"{facts.n_val:,} validation texts, though fewer than half of them carry it.",
        "Positive weights that are too high push every label on: drop --class-weights balanced or lower --lr; "
        "check that the label columns are 0/1 per text.", where=f"epoch {best['epoch']}")]


# Monitors that read single-label quantities (class shares, ln C, the majority class), skipped for multi-label runs.
SINGLE_LABEL_ONLY = ("check_validation_split", "check_collapse", "check_stuck_loss", "check_loss_exploded",
                     "check_majority")


MONITORS: tuple[Callable[[list[dict], RunFacts], list[Finding]], ...] = (
    check_validation_split, check_collapse, check_stuck_loss, check_gradients, check_loss_exploded,
    check_overfitting, check_gap, check_majority, check_linear_baseline, check_leakage, check_no_label,
    check_every_label,
)


def diagnose_training(history: list[dict], facts: RunFacts) -> list[Finding]:
    """Every monitor over a finished run's history (training.json "history"), errors first."""
    findings: list[Finding] = []
    for monitor in MONITORS:
        if facts.multi_label and monitor.__name__ in SINGLE_LABEL_ONLY:
            continue
        findings += monitor(history, facts)
    codes = {f.code for f in findings}
    if "single_class_validation" in codes:
        # Scores on a one-class validation split say nothing about the model; only that finding stands.
        findings = [f for f in findings if f.code not in ("no_better_than_majority", "no_signal", "collapse",
                                                          "below_linear_baseline")]
    elif "no_signal" in codes:
        # The data carries no signal a linear model finds: the model's symptoms follow from it.
        findings = [f for f in findings if f.code not in ("collapse", "loss_stuck")]
    return sort_findings(findings)
