import numpy as np

from textclf.data.tokenize import (
    PAD_ID,
    UNK_ID,
    build_tokenizer,
    choose_max_length,
    encode,
    encode_truncated,
    token_counts,
    truncate,
    truncating,
    unknown_id,
    vocabulary,
)


def test_normalisation_html_lowercase_punctuation():
    tok = build_tokenizer(["Great movie!<br /><br />I LOVED it, really.", "ｆｕｌｌ width"])
    assert tok.encode("Great movie!<br /><br />I LOVED it, really.").tokens == [
        "great", "movie", "!", "i", "loved", "it", ",", "really", "."]
    assert tok.encode("ｆｕｌｌ").tokens == ["full"]  # NFKC


def test_special_ids_min_freq_and_max_vocab():
    texts = ["a a a b b c"] * 2
    tok = build_tokenizer(texts, min_freq=3)
    vocab = vocabulary(tok)
    assert vocab[PAD_ID] == "<pad>" and vocab[UNK_ID] == "<unk>"
    assert set(vocab[2:]) == {"a", "b"}  # c occurs only twice
    assert encode(tok, ["c a"])[0].tolist() == [UNK_ID, tok.token_to_id("a")]
    small = build_tokenizer(texts, max_vocab=3)
    assert vocabulary(small) == ["<pad>", "<unk>", "a"]


def test_lengths_truncation_and_counts():
    tok = build_tokenizer(["one two three four", "one"])
    ids = encode(tok, ["one two three four", "one", ""])
    assert [len(r) for r in ids] == [4, 1, 0]
    assert [len(r) for r in truncate(ids, 2)] == [2, 1, 0]
    counts = token_counts(ids, tok.get_vocab_size())
    assert counts[tok.token_to_id("one")] == 2
    assert choose_max_length(np.arange(1, 101), percentile=95, cap=400) == 96
    assert choose_max_length(np.arange(1, 1001), percentile=95, cap=400) == 400
    assert choose_max_length(np.zeros(5, dtype=int)) == 1


def test_a_pretrained_tokenizer_truncates_by_itself_keeping_its_special_tokens():
    from tests.pretrained.conftest import wordpiece_tokenizer  # the BERT-style tokenizer the pretrained tests use

    pretrained = wordpiece_tokenizer(["one two three four five six seven eight"] * 3)
    texts = ["one two three four five six", "two", ""]
    full = encode(pretrained, texts)
    pretrained.enable_padding(length=32)  # as some tokenizer.json files ship (MiniLM's): textclf never pads so
    cut = truncating(pretrained, 5)
    assert pretrained.padding is not None and cut.padding is None
    ids = encode_truncated(cut, texts, encode(cut, texts), 5)
    cls, sep = pretrained.token_to_id("[CLS]"), pretrained.token_to_id("[SEP]")
    assert [row.tolist() for row in ids] == [[cls, *full[0][1:4].tolist(), sep], full[1].tolist(), [cls, sep]]
    assert unknown_id(pretrained) == pretrained.token_to_id("[UNK]") and unknown_id(build_tokenizer([])) == UNK_ID
