"""Per-prediction explanations: how much each word of a text contributed to the score of a label.

Words are the tokens of the model's own tokenizer pipeline, given as spans of the original text
(subword pieces are summed back into their word). Three methods:

- `exact` (linear models): coefficient x feature value, each n-gram's share split evenly between its
  words; the contributions plus the model's bias sum exactly to the label's logit;
- `integrated-gradients` (neural models, with Captum installed: `pip install 'textclf[explain]'`):
  integrated gradients on the embeddings from an all-padding baseline; the contributions sum to the
  logit difference from that baseline (completeness);
- `occlusion` (any model): the drop of the label's probability when the word is deleted from the text.

`auto` takes the first that applies, in that order, and every explanation says which it used and
in which unit. Faithfulness is measured, not assumed: `comprehensiveness` deletes the top-k
attributed words and compares the drop of the predicted label's probability with deleting k random
words (ERASER, DeYoung et al. 2020).
"""

from __future__ import annotations

import importlib.util
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, field
from typing import Any

import numpy as np

from textclf.errors import ConfigError

METHODS = ("auto", "exact", "integrated-gradients", "occlusion")


@dataclass(frozen=True)
class Word:
    text: str
    start: int  # character offsets into the original text
    end: int
    score: float


@dataclass(frozen=True)
class Explanation:
    text: str
    label: str  # the label explained
    probability: float  # the model's probability of `label` for the text
    method: str  # exact, integrated-gradients or occlusion
    unit: str  # what a score measures: "logit" or "probability"
    words: list[Word] = field(default_factory=list)
    bias: float = 0.0  # exact: the label's logit with no word; integrated gradients: at the baseline

    def top(self, k: int = 5) -> list[Word]:
        """The k words that speak most for the label."""
        return sorted(self.words, key=lambda w: w.score, reverse=True)[:k]

    def to_json(self) -> dict[str, Any]:
        values = asdict(self)
        values["words"] = [{"word": w.text, "start": w.start, "end": w.end, "score": round(w.score, 6)}
                           for w in self.words]
        return values

    def summary(self, k: int = 5) -> str:
        """The top k words as "word:+score" pairs, for one cell of a table."""
        return " ".join(f"{w.text}:{w.score:+.3f}" for w in self.top(k))


def word_spans(tokenizer: Any, text: str, max_tokens: int | None = None) -> tuple[list[tuple[int, int]], list[int]]:
    """The words of `text` as (start, end) spans of the original text, and for each token of the model's
    encoding the index of its word (subword pieces share one), the first `max_tokens` tokens only."""
    return spans_of(tokenizer.encode(text, add_special_tokens=False), max_tokens)


def spans_of(encoding: Any, max_tokens: int | None = None) -> tuple[list[tuple[int, int]], list[int]]:
    """word_spans of a text from its `tokenizers` Encoding (without special tokens): spans, and each
    token's word index (-1 for a token of no word)."""
    spans: list[tuple[int, int]] = []
    token_word: list[int] = []
    last = None
    for word_id, (start, end) in zip(encoding.word_ids, encoding.offsets, strict=True):
        if max_tokens is not None and len(token_word) >= max_tokens:
            break
        if word_id is None:
            token_word.append(-1)
            continue
        if not spans or word_id != last:
            spans.append((start, end))
        else:
            spans[-1] = (spans[-1][0], end)
        last = word_id
        token_word.append(len(spans) - 1)
    return spans, token_word


def label_index(labels: Sequence[str], label: str | None, probabilities: np.ndarray) -> int:
    """The column of `label`, or of the predicted label when None; ConfigError for an unknown label."""
    if label is None:
        return int(np.argmax(probabilities))
    if label not in labels:
        raise ConfigError(f"--label {label!r} is not a label of this model; expected one of {list(labels)}.")
    return list(labels).index(label)


def words_of(text: str, spans: Sequence[tuple[int, int]], scores: Sequence[float]) -> list[Word]:
    return [Word(text[a:b], a, b, float(s)) for (a, b), s in zip(spans, scores, strict=True)]


def without(text: str, spans: Sequence[tuple[int, int]]) -> str:
    """`text` with the character spans removed (sorted or not); a space keeps neighbours apart."""
    out, last = [], 0
    for start, end in sorted(spans):
        out.append(text[last:start])
        last = end
    out.append(text[last:])
    return " ".join(part.strip() for part in out if part.strip())


def occlusion(predict_proba: Callable[[list[str]], np.ndarray], labels: Sequence[str], tokenizer: Any,
              texts: Sequence[str], label: str | None = None, max_tokens: int | None = None) -> list[Explanation]:
    """Each word's score is the drop of the label's probability when that word is deleted."""
    explanations = []
    for text in texts:
        spans, _ = word_spans(tokenizer, text, max_tokens)
        variants = [text, *(without(text, [span]) for span in spans)]
        probabilities = np.asarray(predict_proba(variants), dtype=np.float64)
        k = label_index(labels, label, probabilities[0])
        drops = probabilities[0, k] - probabilities[1:, k]
        explanations.append(Explanation(text, labels[k], float(probabilities[0, k]), "occlusion", "probability",
                                        words_of(text, spans, drops)))
    return explanations


def method_available(method: str) -> bool:
    """Whether `method` can run here: integrated gradients needs Captum (the `explain` extra)."""
    if method != "integrated-gradients":
        return True
    return importlib.util.find_spec("captum") is not None


def check_method(method: str) -> None:
    if method not in METHODS:
        raise ConfigError(f"--method {method!r}: expected one of {', '.join(METHODS)}.")


@dataclass(frozen=True)
class Faithfulness:
    k: int
    top_drop: float  # mean drop of the predicted label's probability, top-k attributed words deleted
    random_drop: float  # the same, k random words deleted (mean over `draws` draws)
    texts: int


def comprehensiveness(model: Any, explanations: Sequence[Explanation], ks: Sequence[int] = (1, 3, 5),
                      draws: int = 5, seed: int = 0) -> list[Faithfulness]:
    """ERASER's comprehensiveness of `explanations` (each of its text's predicted label) against deleting
    k random words, for a Predictor `model`. Texts with fewer than k words are left out for that k."""
    rng = np.random.default_rng(seed)
    column = {label: j for j, label in enumerate(model.labels)}
    results = []
    for k in ks:
        rows = [e for e in explanations if len(e.words) >= k]
        if not rows:
            continue
        top_texts, random_texts = [], []
        for explanation in rows:
            spans = [(w.start, w.end) for w in explanation.words]
            order = np.argsort([-w.score for w in explanation.words], kind="stable")[:k]
            top_texts.append(without(explanation.text, [spans[i] for i in order]))
            random_texts += [without(explanation.text, [spans[i] for i in rng.choice(len(spans), k, replace=False)])
                             for _ in range(draws)]
        columns = np.array([column[e.label] for e in rows])
        before = np.array([e.probability for e in rows])
        top = np.asarray(model.predict_proba(top_texts), dtype=np.float64)[np.arange(len(rows)), columns]
        rand = np.asarray(model.predict_proba(random_texts), dtype=np.float64)[
            np.arange(len(random_texts)), np.repeat(columns, draws)]
        results.append(Faithfulness(k, float(np.mean(before - top)), float(np.mean(np.repeat(before, draws) - rand)),
                                    len(rows)))
    return results
