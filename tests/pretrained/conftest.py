"""A tiny Hugging Face encoder built in the test session: random weights, a 2-layer BertConfig with
hidden size 32, and a fixed WordPiece vocabulary of the test corpus's words, saved as save_pretrained
writes a folder (config.json, model.safetensors) plus tokenizer.json."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from tokenizers import Tokenizer, decoders, models, normalizers, pre_tokenizers, processors

from tests.conftest import CUES, FILLER

SPECIAL = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]"]


def wordpiece_tokenizer(texts: list[str]) -> Tokenizer:
    """A BERT-style tokenizer: lower-casing normaliser, WordPiece, [CLS] text [SEP]."""
    # A fixed vocabulary (specials, the corpus's words in sorted order, single letters and their "##"
    # continuations), not a trained one: WordPieceTrainer breaks ties in no fixed order, and a vocabulary
    # that changes between runs would change what the random encoder computes.
    words = sorted({word for text in texts for word in re.findall(r"\w+", text.lower())})
    letters = [chr(c) for c in range(ord("a"), ord("z") + 1)] + [",", ".", "!", "?"]
    pieces = SPECIAL + words + [x for x in letters if x not in words] + ["##" + x for x in letters[:26]]
    tokenizer = Tokenizer(models.WordPiece(vocab={piece: i for i, piece in enumerate(pieces)}, unk_token="[UNK]"))
    tokenizer.normalizer = normalizers.BertNormalizer(lowercase=True)
    tokenizer.pre_tokenizer = pre_tokenizers.BertPreTokenizer()
    tokenizer.decoder = decoders.WordPiece()
    cls, sep = tokenizer.token_to_id("[CLS]"), tokenizer.token_to_id("[SEP]")
    tokenizer.post_processor = processors.TemplateProcessing(
        single="[CLS] $A [SEP]", pair="[CLS] $A [SEP] $B:1 [SEP]:1", special_tokens=[("[CLS]", cls), ("[SEP]", sep)])
    return tokenizer


def make_encoder(folder: Path, *, max_positions: int = 64, seed: int = 0, tokenizer: bool = True) -> Path:
    """Save a tiny random BERT encoder and its tokenizer into `folder`."""
    torch = pytest.importorskip("torch")
    transformers = pytest.importorskip("transformers")
    texts = [" ".join(FILLER + cues) for cues in CUES.values()] * 3
    wordpiece = wordpiece_tokenizer(texts)
    config = transformers.BertConfig(vocab_size=wordpiece.get_vocab_size(), hidden_size=32, num_hidden_layers=2,
                                     num_attention_heads=2, intermediate_size=64,
                                     max_position_embeddings=max_positions, pad_token_id=0)
    torch.manual_seed(seed)
    transformers.BertModel(config).save_pretrained(folder)
    if tokenizer:
        wordpiece.save(str(folder / "tokenizer.json"))
    return folder


@pytest.fixture(scope="session")
def tiny_encoder(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return make_encoder(tmp_path_factory.mktemp("tiny-bert"))
