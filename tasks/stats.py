"""Word counts and reading times for an article body.

The counting rule, so numbers mean the same thing across languages:

- Text with spaces: every whitespace-separated token is one word (what a reader
  of English, French, Korean... calls a word; punctuation attached to a word
  does not make another one, a lone dash does count, as in most word counters).
- Chinese and Japanese (Han ideographs, hiragana, katakana): every character is
  one word, since the scripts do not mark word boundaries and their readers and
  publishers count length in characters (字数). Word processors count East Asian
  text the same way. Latin tokens inside such text ("iPS細胞") still count once; punctuation
  there (。、「」“”) counts as nothing.

Reading time uses per-language silent-reading rates in those same units, so a
Japanese character count is divided by characters per minute, not words.
"""

from __future__ import annotations

import math
import re

from tasks.duplicates.textnorm import CJK_CHARS

__all__ = ["DEFAULT_RATE", "READING_RATES", "count_words", "reading_minutes"]

_CJK_CHAR = re.compile(f"[{CJK_CHARS}]")
# CJK and full-width punctuation separates words and is not one.
_CJK_PUNCT = re.compile(r"[\u3000-\u303f\uff01-\uff0f\uff1a-\uff20\uff3b-\uff40\uff5b-\uff65]")
_HAS_WORD_CHAR = re.compile(r"[^\W_]")

# Rough adult silent-reading rates, per minute, in count_words' units.
# English 238 words (Brysbaert 2019's meta-analysis for non-fiction); Chinese and
# Japanese in characters, from the commonly cited ranges (zh ~300, ja ~400-600).
READING_RATES: dict[str, int] = {
    "en": 238,
    "zh": 300,
    "ja": 500,
}
DEFAULT_RATE = 220  # words a minute for other languages: a little under English, most run longer words


def count_words(paragraphs: list[str]) -> int:
    """Words in the (already deduplicated) body: tokens between spaces, CJK characters one each."""
    total = 0
    for paragraph in paragraphs:
        cjk = len(_CJK_CHAR.findall(paragraph))
        if not cjk:
            total += len(paragraph.split())
            continue
        # A run of CJK characters counts per character; what remains splits on spaces.
        # Quote marks and dashes left between CJK runs are not words there.
        rest = _CJK_PUNCT.sub(" ", _CJK_CHAR.sub(" ", paragraph))
        total += cjk + sum(1 for token in rest.split() if _HAS_WORD_CHAR.search(token))
    return total


def reading_minutes(words: int, language: str | None = None) -> int:
    """Whole minutes to read ``words`` (from ``count_words``) in ``language``; 0 only for no words.

    ``language`` is a BCP 47 tag such as ``"en"``, ``"ja-JP"`` or ``"zh-Hant"``; unknown or
    missing tags use ``DEFAULT_RATE``. Rounded up: a 30-word brief is a one-minute read.
    """
    if words <= 0:
        return 0
    primary = (language or "").strip().lower().replace("_", "-").split("-")[0]
    rate = READING_RATES.get(primary, DEFAULT_RATE)
    return max(1, math.ceil(words / rate))
