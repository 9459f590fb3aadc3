"""Text normalisation for duplicate detection, and recognising non-answers.

Survey-style data sets (ISEAR and many annotation exports) hold rows that are not texts about
anything: "[ No response.]", "NO RESPONSE", "Not applicable.", "[ Same as in anger.]". They appear
under every label, so a classifier can only learn noise from them.
"""

from __future__ import annotations

import re
import unicodedata

_NON_WORD = re.compile(r"[^\w]+|_")

_NO_RESPONSE = re.compile(r"^(no (response|reponse|respons|answer|reply|description|comment)s?|not answered|blank)\b")
# Whole-text patterns for short answers that say there is nothing to report.
_NON_ANSWER = tuple(re.compile(p) for p in (
    r"^(nothing|none|never|no|nil|n a|na|not really|no idea|don t know|do not know|dunno|not sure)$",
    r"^(it )?(is )?(not applicable|does not apply|doesn t apply|n a)\b",
    r"^(i )?(do not|don t|can not|cannot|can t|could not|couldn t) (remember|recall|think of|know)\b",
    r"^(i )?(have )?never (experienced|felt)\b",
    r"^(i )?have not (yet )?(felt|experienced)\b",
    r"^(the )?same (as|for)\b",
    r"^has not (really )?happened\b",
    r"\bn a$",
    r"\bnot applicable\b",
))
_MAX_NON_ANSWER_WORDS = 16  # longer texts that start like a non-answer usually go on to describe something
_MAX_NO_RESPONSE_WORDS = 25


def normalise(text: str) -> str:
    """NFKC, case-folded, every run of punctuation/space one space: 'NO RESPONSE.' == '[ no response ]'."""
    return _NON_WORD.sub(" ", unicodedata.normalize("NFKC", text).casefold()).strip()


def non_answer_kind(text: str) -> str | None:
    """'empty', 'no_response', 'non_answer' (never experienced, not applicable, same as ...) or None."""
    norm = normalise(text)
    if not norm:
        return "empty"
    words = norm.count(" ") + 1
    if words <= _MAX_NO_RESPONSE_WORDS and _NO_RESPONSE.search(norm):
        return "no_response"
    if words <= _MAX_NON_ANSWER_WORDS and any(p.search(norm) for p in _NON_ANSWER):
        return "non_answer"
    return None
