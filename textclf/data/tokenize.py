"""The HF `tokenizers` pipeline: NFKC + lowercase, HTML tags removed, words and punctuation split.

The vocabulary is a WordLevel model with `<pad>` = 0 and `<unk>` = 1; it is saved as tokenizer.json.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
from tokenizers import Regex, Tokenizer, models, normalizers, pre_tokenizers, trainers

PAD, UNK = "<pad>", "<unk>"
PAD_ID, UNK_ID = 0, 1


def _empty_tokenizer() -> Tokenizer:
    tokenizer = Tokenizer(models.WordLevel(unk_token=UNK))
    tokenizer.normalizer = normalizers.Sequence(
        [
            normalizers.NFKC(),
            normalizers.Replace(Regex(r"<[^<>]{0,100}>"), " "),
            normalizers.Lowercase(),
        ]
    )
    tokenizer.pre_tokenizer = pre_tokenizers.Whitespace()
    return tokenizer


def build_tokenizer(texts: Sequence[str], *, min_freq: int = 1, max_vocab: int = 50_000) -> Tokenizer:
    """Learn the vocabulary from training texts: the `max_vocab` most frequent words seen at least
    `min_freq` times, after `<pad>` (id 0) and `<unk>` (id 1)."""
    tokenizer = _empty_tokenizer()
    trainer = trainers.WordLevelTrainer(
        vocab_size=max_vocab, min_frequency=min_freq, special_tokens=[PAD, UNK], show_progress=False
    )
    tokenizer.train_from_iterator(texts, trainer=trainer, length=len(texts))
    return tokenizer


def extend_vocabulary(tokenizer: Tokenizer, words: Sequence[str], *, limit: int | None = None) -> Tokenizer:
    """A copy of `tokenizer` with `words` it lacks appended (ids after the existing ones).

    Only words the pipeline can produce are added: unchanged by the normalizer and one token
    for the pre-tokenizer (so "New_York" or "Paris" from a cased file are skipped). At most
    `limit` words are added. Used to keep pretrained vectors for words training never saw.
    """
    vocab = tokenizer.get_vocab(with_added_tokens=True)
    extended = dict(vocab)
    added = 0
    for word in words:
        if limit is not None and added >= limit:
            break
        if word in extended or tokenizer.normalizer.normalize_str(word) != word:
            continue
        pieces = tokenizer.pre_tokenizer.pre_tokenize_str(word)
        if len(pieces) != 1 or pieces[0][0] != word:
            continue
        extended[word] = len(extended)
        added += 1
    result = _empty_tokenizer()
    result.model = models.WordLevel(vocab=extended, unk_token=UNK)
    return result


def encode(tokenizer: Tokenizer, texts: Sequence[str]) -> list[np.ndarray]:
    """Token ids of each text, untruncated, as int64 arrays. Printable-ASCII texts take an exact,
    cheaper path (textclf.data.ascii_encode); the rest go through the tokenizers library."""
    from textclf.data.ascii_encode import encode_ascii

    texts = list(texts)
    out = encode_ascii(tokenizer, texts)
    rest = [i for i, ids in enumerate(out) if ids is None]
    for i, encoding in zip(rest, tokenizer.encode_batch([texts[i] for i in rest]) if rest else [], strict=True):
        out[i] = np.asarray(encoding.ids, dtype=np.int64)
    return out


def truncate(ids: list[np.ndarray], max_length: int) -> list[np.ndarray]:
    return [row[:max_length] for row in ids]


def choose_max_length(lengths: np.ndarray, *, percentile: float = 95.0, cap: int = 400) -> int:
    """The `percentile` of training lengths, at least 1 and at most `cap`."""
    if len(lengths) == 0:
        return 1
    return int(min(cap, max(1, np.ceil(np.percentile(lengths, percentile)))))


def vocabulary(tokenizer: Tokenizer) -> list[str]:
    """Tokens by id: vocabulary(t)[i] is the token with id i."""
    vocab = tokenizer.get_vocab(with_added_tokens=True)
    tokens = [""] * len(vocab)
    for token, index in vocab.items():
        tokens[index] = token
    return tokens


def token_counts(ids: list[np.ndarray], vocab_size: int) -> np.ndarray:
    """How often each id occurs: (V,) int64."""
    if not ids:
        return np.zeros(vocab_size, dtype=np.int64)
    return np.bincount(np.concatenate(ids), minlength=vocab_size)
