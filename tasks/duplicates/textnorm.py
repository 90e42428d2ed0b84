"""Text normalization for dedupe: one form of a text for hashing, and repeats removed within a page.

``content_hash`` is the exact-duplicate key (same words in the same order, whatever the
case, punctuation, typography or paragraph breaks); ``dedupe_paragraphs`` drops paragraphs a
page prints twice, as extractors often pick up a repeated block.

Chinese and Japanese do not separate words with spaces, so a "word" there would be a whole clause
and two copies differing by one character would share no word. ``tokens`` makes each Han or kana
character a word of its own instead (what counting rules for these scripts do, see
``tasks.stats``): shingles of five become runs of five characters, the usual unit for detecting
copies of CJK text.
"""

from __future__ import annotations

import functools
import hashlib
import re
import unicodedata
from collections.abc import Iterable, Sequence

__all__ = ["CJK_CHARS", "body_words", "content_hash", "dedupe_paragraphs", "normalize_text", "paragraph_key",
           "tokens"]

# Han ideographs (with extension A, compatibility and the supplementary planes), hiragana, katakana
# (with the prolonged-sound mark and half-width forms), but not the katakana middle dot, which is
# punctuation. Korean is written with spaces between words and needs nothing special.
CJK_CHARS = ("\u3040-\u30fa\u30fc-\u30ff\u3400-\u4dbf\u4e00-\u9fff\uf900-\ufaff\uff66-\uff9f"
             "\U00020000-\U0002fa1f")
# A word is a run of word characters other than CJK ones, or a single CJK character.
_WORD = re.compile(f"[{CJK_CHARS}]|[^\\W{CJK_CHARS}]+")
# What _WORD finds in ASCII text once lower-cased, spelled out: the Unicode classes cost more per character.
_ASCII_WORD = re.compile("[a-z0-9_]+")
_SPACE = re.compile(r"\s+")
# Typographic variants that NFKC leaves alone but copy-pasted or re-typeset copies change.
_TYPOGRAPHY = {
    "\u2018": "'", "\u2019": "'", "\u201a": "'", "\u201b": "'", "\u2032": "'",
    "\u201c": '"', "\u201d": '"', "\u201e": '"', "\u201f": '"', "\u2033": '"',
    "\u00ab": '"', "\u00bb": '"',
    "\u2010": "-", "\u2011": "-", "\u2012": "-", "\u2013": "-", "\u2014": "-", "\u2015": "-", "\u2212": "-",
}
# Invisible characters that split a word in two for the tokenizer (soft hyphen, zero widths, BOM).
_INVISIBLE = "\u00ad\u200b\u200c\u200d\u2060\ufeff"
# A regex with a lookup per match is ~20x faster than str.translate with a dict on long texts.
_TYPOGRAPHY_RE = re.compile("[" + "".join(_TYPOGRAPHY) + _INVISIBLE + "]")
_INVISIBLE_RE = re.compile("[" + _INVISIBLE + "]")


def _nfkc(text: str) -> str:
    return text if unicodedata.is_normalized("NFKC", text) else unicodedata.normalize("NFKC", text)


# Within-page near-repeats: a later paragraph is dropped when it is a copy of an earlier one up
# to case and punctuation, when it sits wholly inside an earlier longer paragraph (a pull quote,
# a repeated lede), or when its word 3-shingles overlap an earlier paragraph's this much. The
# last two only apply from this many words up, so short lines ("Yes.", "Photo: AP") survive.
CONTAINED_MIN_WORDS = 8
NEAR_MIN_WORDS = 15
NEAR_JACCARD = 0.7


def normalize_text(text: str) -> str:
    """``text`` in NFKC, case-folded, with uniform quotes and dashes and single spaces."""
    text = _TYPOGRAPHY_RE.sub(lambda m: _TYPOGRAPHY.get(m.group(0), ""), _nfkc(text)).casefold()
    return _SPACE.sub(" ", text).strip()


def tokens(text: str) -> list[str]:
    """The words of ``text`` after ``normalize_text`` (each CJK character one word); punctuation
    and spacing are ignored."""
    if text.isascii():  # NFKC, the invisibles and case folding change nothing in ASCII but its case
        return _ASCII_WORD.findall(text.lower())
    # Quotes and dashes, which normalize_text rewrites, are not word characters: no need to rewrite them.
    return _WORD.findall(_INVISIBLE_RE.sub("", _nfkc(text)).casefold())


# The dedupe stage asks for the same paragraphs' words four times (site boilerplate, repeats,
# content hash, MinHash), each a regex pass over the text; the same str objects come back, so
# remembering the last few hundred answers a repeat for the price of a dict lookup.
@functools.lru_cache(maxsize=512)
def paragraph_key(paragraph: str) -> str:
    """The words of a paragraph joined by single spaces: equal keys mean the same paragraph."""
    return " ".join(tokens(paragraph))


def body_words(paragraphs: Sequence[str]) -> list[str]:
    """``tokens`` of the paragraphs joined by line breaks (a break never joins or splits words)."""
    # Keys are words joined by single spaces: joined again and split once, not a list per paragraph.
    joined = " ".join(filter(None, map(paragraph_key, paragraphs)))
    return joined.split(" ") if joined else []


def content_hash(paragraphs: Iterable[str]) -> str:
    """SHA-256 (hex) of the body's words in order: the exact-duplicate key.

    Case, punctuation, typography, whitespace and how the text is cut into paragraphs do
    not change it; any changed, added or missing word does.
    """
    # The paragraphs' keys joined by single spaces, hashed in one call (``body_words``' text).
    return hashlib.sha256(" ".join(filter(None, map(paragraph_key, paragraphs))).encode("utf-8")).hexdigest()


def _shingles(words: list[str]) -> set[tuple[str, ...]]:
    if len(words) < 3:
        return {tuple(words)}
    return set(zip(words, words[1:], words[2:]))


def dedupe_paragraphs(paragraphs: Iterable[str]) -> list[str]:
    """``paragraphs`` without repeats, first occurrences kept in their order.

    A paragraph is dropped when an earlier kept one has the same words (case, punctuation
    and spacing aside), when it is contained word for word in an earlier kept paragraph and
    has at least ``CONTAINED_MIN_WORDS`` words, or when it has at least ``NEAR_MIN_WORDS``
    words and its word 3-shingles have Jaccard similarity ``NEAR_JACCARD`` or more with an
    earlier kept paragraph (a repeat with a word or two changed). Empty paragraphs go too.
    """
    kept: list[str] = []
    seen_keys: set[str] = set()
    long_keys: list[str] = []  # " key " of each kept paragraph long enough to contain another
    long_sizes: list[int] = []  # their 3-shingle counts
    # 3-shingle -> the first kept long paragraph holding it, and in ``more_owners`` the later
    # ones: near-repeat candidates are found through shared shingles, not by comparing every pair
    # (pages with thousands of lines exist), and so are the paragraphs that may contain a new one:
    # those holding its first three words (a search through all of them would make a long page
    # quadratic). Most shingles are held by one paragraph, so a paragraph's new shingles go in
    # with one dict update and only the shared ones are walked one by one.
    owners: dict[tuple[str, ...], int] = {}
    more_owners: dict[tuple[str, ...], list[int]] = {}

    def holders(shingle: tuple[str, ...]) -> list[int]:
        first = owners.get(shingle)
        return [] if first is None else [first, *more_owners.get(shingle, ())]

    for paragraph in paragraphs:
        key = paragraph_key(paragraph)
        if not key:
            continue
        words = key.split(" ")
        if key in seen_keys:
            continue
        if len(words) < CONTAINED_MIN_WORDS:
            # Too short to be contained in, or a near-repeat of, another paragraph, or to hold one:
            # only an exact repeat counts, and its shingles are never needed.
            kept.append(paragraph)
            seen_keys.add(key)
            continue
        padded = f" {key} "
        if any(padded in long_keys[j] for j in holders(tuple(words[:3]))):
            continue
        shingles = _shingles(words)
        shared_shingles = owners.keys() & shingles
        if len(words) >= NEAR_MIN_WORDS and shared_shingles:
            shared: dict[int, int] = {}
            for shingle in shared_shingles:
                for j in holders(shingle):
                    shared[j] = shared.get(j, 0) + 1
            if any(n >= NEAR_JACCARD * (len(shingles) + long_sizes[j] - n) for j, n in shared.items()):
                continue
        kept.append(paragraph)
        seen_keys.add(key)
        at = len(long_sizes)
        for shingle in shared_shingles:
            more_owners.setdefault(shingle, []).append(at)
        owners.update(dict.fromkeys(shingles - shared_shingles, at))
        long_keys.append(padded)
        long_sizes.append(len(shingles))
    return kept
