"""The HF `tokenizers` pipeline: NFKC + lowercase, HTML tags removed, words and punctuation split.

The vocabulary is a WordLevel model with `<pad>` = 0 and `<unk>` = 1; it is saved as tokenizer.json.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Sequence, Sized

import numpy as np
from tokenizers import Regex, Tokenizer, models, normalizers, pre_tokenizers, trainers

PAD, UNK = "<pad>", "<unk>"
PAD_ID, UNK_ID = 0, 1
TAG = r"<[^<>]{0,100}>"  # an HTML tag, as the normalizer's Replace finds it


def empty_tokenizer() -> Tokenizer:
    """textclf's pipeline (normalizer and pre-tokenizer) before any vocabulary is learnt."""
    tokenizer = Tokenizer(models.WordLevel(unk_token=UNK))
    tokenizer.normalizer = normalizers.Sequence(
        [
            normalizers.NFKC(),
            normalizers.Replace(Regex(TAG), " "),
            normalizers.Lowercase(),
        ]
    )
    tokenizer.pre_tokenizer = pre_tokenizers.Whitespace()
    return tokenizer


def build_tokenizer(texts: Iterable[str] | Iterable[list[str]], *, min_freq: int = 1,
                    max_vocab: int = 50_000) -> Tokenizer:
    """Learn the vocabulary from training texts: the `max_vocab` most frequent words seen at least
    `min_freq` times, after `<pad>` (id 0) and `<unk>` (id 1). `texts` may be an iterator, of texts or of
    lists of texts (the trainer keeps word counts, not texts)."""
    tokenizer = empty_tokenizer()
    trainer = trainers.WordLevelTrainer(
        vocab_size=max_vocab, min_frequency=min_freq, special_tokens=[PAD, UNK], show_progress=False
    )
    tokenizer.train_from_iterator(texts, trainer=trainer, length=len(texts) if isinstance(texts, Sized) else None)
    return tokenizer


def tokenizer_from_counts(words: Sequence[str], counts: np.ndarray, *, min_freq: int = 1,
                          max_vocab: int = 50_000) -> Tokenizer:
    """The tokenizer build_tokenizer learns from texts in which the pipeline's word `words[i]` occurs
    `counts[i]` times ((len(words),) ints; `words` distinct). The trainer's rule, kept exactly: `<pad>`,
    `<unk>`, then the words seen at least `min_freq` (and once) times by count, descending, then by word
    (code point order, as Rust orders strings), the first `max_vocab` of all that."""
    room, counts = max(0, max_vocab - 2), np.asarray(counts, dtype=np.int64)
    kept = np.flatnonzero(counts >= max(min_freq, 1))
    if 0 < room < len(kept):  # only words at least as frequent as the room-th can make it: sort those
        cut = np.partition(counts[kept], len(kept) - room)[len(kept) - room]
        kept = kept[counts[kept] >= cut]
    by_word = np.array(sorted(kept.tolist(), key=words.__getitem__), dtype=np.int64)
    order = by_word[np.argsort(-counts[by_word], kind="stable")][:room].tolist()  # ties stay by word
    tokens = [PAD, UNK, *(words[i] for i in order)][:max_vocab]
    tokenizer = empty_tokenizer()
    tokenizer.model = models.WordLevel(vocab={token: i for i, token in enumerate(tokens)}, unk_token=UNK)
    tokenizer.add_special_tokens([PAD, UNK])
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
    result = empty_tokenizer()
    result.model = models.WordLevel(vocab=extended, unk_token=UNK)
    return result


# On printable ASCII (plus tab, newline, carriage return) NFKC is the identity, lowercasing is
# unambiguous, and Python's `re` reads the pipeline's two patterns as the tokenizers library does.
_ASCII_TEXT = re.compile(r"[\t\n\r\x20-\x7e]*")
_TAG = re.compile(TAG)  # the normalizer's Replace
_WORD = re.compile(r"\w+|[^\w\s]+", re.ASCII)  # the Whitespace pre-tokenizer


def _ascii_unk_id(tokenizer: Tokenizer) -> int | None:
    """The unknown-word id when `tokenizer` runs exactly empty_tokenizer's pipeline into a
    WordLevel vocabulary (what ascii_ids reproduces), else None."""
    standard = empty_tokenizer()
    model = tokenizer.model
    if not (isinstance(model, models.WordLevel) and isinstance(model.unk_token, str)
            and tokenizer.normalizer is not None and tokenizer.pre_tokenizer is not None
            and tokenizer.normalizer.__getstate__() == standard.normalizer.__getstate__()
            and tokenizer.pre_tokenizer.__getstate__() == standard.pre_tokenizer.__getstate__()
            and tokenizer.post_processor is None and tokenizer.truncation is None and tokenizer.padding is None):
        return None
    return tokenizer.token_to_id(model.unk_token)


def ascii_ids(tokenizer: Tokenizer, texts: Sequence[str]) -> list[np.ndarray | None]:
    """The ids of each text computed in Python where that gives the library's ids exactly:
    printable-ASCII texts holding no added token (those, e.g. "<unk>", are matched before
    normalisation), for tokenizers running textclf's own pipeline. None for every other text."""
    unk = _ascii_unk_id(tokenizer)
    if unk is None:
        return [None] * len(texts)
    added = [token.content for token in tokenizer.get_added_tokens_decoder().values()]
    words = [_WORD.findall(_TAG.sub(" ", text).lower())
             if _ASCII_TEXT.fullmatch(text) and not any(token in text for token in added) else None
             for text in texts]
    # one vocabulary lookup per distinct word: cheaper than copying the vocabulary into a dict
    lookup = {word: tokenizer.token_to_id(word) for word in set().union(*(w for w in words if w))}
    return [None if w is None else np.array([unk if (i := lookup[x]) is None else i for x in w], dtype=np.int64)
            for w in words]


def word_ids(tokenizer: Tokenizer, words: Sequence[str]) -> np.ndarray:
    """(len(words),) int32: the id `tokenizer` gives each of `words` (the pipeline's words, as
    textclf.data.words finds them): its vocabulary's, else the unknown id. A text's ids are its words'
    unless it holds an added token (`<pad>`, `<unk>`), which the library matches before normalising.
    For tokenizers running textclf's own pipeline (build_tokenizer, extend_vocabulary) only."""
    unk = _ascii_unk_id(tokenizer)
    if unk is None:
        raise ValueError("word_ids: the tokenizer does not run textclf's pipeline into a WordLevel vocabulary with "
                         "an unknown token; expected one from build_tokenizer or extend_vocabulary.")
    vocab = tokenizer.get_vocab(with_added_tokens=False)
    return np.fromiter((vocab.get(word, unk) for word in words), dtype=np.int32, count=len(words))


def encode(tokenizer: Tokenizer, texts: Sequence[str]) -> list[np.ndarray]:
    """Token ids of each text, untruncated, as int64 arrays.

    Texts ascii_ids can encode skip the tokenizers library, whose normalizer tracks the alignment
    of every character: on the IMDb training texts that makes encoding 2.4x faster than
    Tokenizer.encode_batch, the fastest library call there (benchmarks/bench_tokenize.py). The ids
    are the library's (tests/test_ascii_encode.py); the other texts go through the library."""
    texts = list(texts)
    out = ascii_ids(tokenizer, texts)
    rest = [i for i, ids in enumerate(out) if ids is None]
    for i, encoding in zip(rest, tokenizer.encode_batch([texts[i] for i in rest]) if rest else [], strict=True):
        out[i] = np.asarray(encoding.ids, dtype=np.int64)
    return out


def truncate(ids: list[np.ndarray], max_length: int) -> list[np.ndarray]:
    return [row[:max_length] for row in ids]


def truncating(tokenizer: Tokenizer, max_length: int) -> Tokenizer:
    """A copy of a pretrained encoder's `tokenizer` that cuts every text at `max_length` tokens by its
    own truncation (which keeps the special tokens its post-processor adds, e.g. [CLS] ... [SEP]) and
    never pads: batches are padded by textclf, to their longest text."""
    copy = Tokenizer.from_str(tokenizer.to_str())
    copy.no_padding()
    copy.enable_truncation(max_length)
    return copy


def encode_truncated(tokenizer: Tokenizer, texts: Sequence[str], ids: list[np.ndarray],
                     max_length: int) -> list[np.ndarray]:
    """`ids` (encode's untruncated ids of `texts`) cut to `max_length` by `tokenizer`, a `truncating`
    tokenizer: only the texts that are too long are encoded again."""
    long = [i for i, row in enumerate(ids) if len(row) > max_length]
    out = list(ids)
    for i, encoding in zip(long, tokenizer.encode_batch([texts[i] for i in long]) if long else [], strict=True):
        out[i] = np.asarray(encoding.ids, dtype=np.int64)
    return out


def unknown_id(tokenizer: Tokenizer) -> int | None:
    """The id of the tokenizer's unknown token (textclf's own: UNK_ID), or None when its model has
    none (byte-level BPE can spell any text)."""
    token = getattr(tokenizer.model, "unk_token", None)
    return tokenizer.token_to_id(token) if token else None


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
