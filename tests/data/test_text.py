"""clean_text (the one cleaning step at ingestion), count_empty and suspicious_labels."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from textclf.data.text import clean_text, count_empty, is_empty, replace_lone_surrogates, suspicious_labels


@pytest.mark.parametrize("raw, clean", [
    ("plain text", "plain text"),
    ("lone \ud800 high", "lone \ufffd high"),
    ("lone \udc00 low", "lone \ufffd low"),
    ("pair \ud83d\ude00 joined", "pair \U0001f600 joined"),
    ("reversed \ude00\ud83d", "reversed \ufffd\ufffd"),
    ("nul\x00between", "nul between"),
    ("bell\x07 del\x7f c1\x85", "bell  del  c1 "),
    ("tab\tnew\nline\r\n", "tab\tnew\nline\r\n"),
    ("\ufeffbom and zero\u200bwidth", "\ufeffbom and zero\u200bwidth"),
    ("café ☕ \u2028", "café ☕ \u2028"),
    ("", ""),
])
def test_clean_text(raw: str, clean: str) -> None:
    assert clean_text(raw) == clean


def test_replace_lone_surrogates_changes_nothing_else() -> None:
    assert replace_lone_surrogates("a\x00\ud800\ud83d\ude00") == "a\x00\ufffd\U0001f600"


def test_clean_text_returns_a_clean_text_itself() -> None:
    text = "nothing to change here"
    assert clean_text(text) is text


ANY_TEXT = st.text(st.one_of(st.characters(exclude_categories=()),  # surrogates included
                             st.sampled_from("\ud800\udc00\ud83d\ude00\x00\x7f\x85\r\n")))


@settings(max_examples=200, deadline=None)
@given(ANY_TEXT)
def test_clean_text_always_gives_utf8_and_is_idempotent(text: str) -> None:
    cleaned = clean_text(text)
    cleaned.encode("utf-8")  # no lone surrogate left
    assert clean_text(cleaned) == cleaned
    assert len(cleaned) <= len(text)


def test_count_empty() -> None:
    texts = ["", "  ", "\t\n", "\u3000", "a", " . ", "\x00"]
    assert count_empty(texts) == 4
    assert [is_empty(t) for t in texts] == [True, True, True, True, False, False, False]
    assert count_empty([]) == 0


def test_suspicious_labels_counts_the_spellings_of_a_missing_value() -> None:
    labels = ["joy", "NaN", "nan", "NaN", "fear", "null", "None", "N/A", "NA", "#N/A", "<NA>", "NULL",
              "nana", "none of these", "na ", "anger"]
    assert suspicious_labels(labels) == {"NaN": 2, "nan": 1, "null": 1, "None": 1, "N/A": 1, "NA": 1, "#N/A": 1,
                                         "<NA>": 1, "NULL": 1}
    assert list(suspicious_labels(labels))[0] == "NaN"  # most frequent first
    assert suspicious_labels(["joy", "fear"]) == {}
