"""content_hash is the exact-duplicate key; dedupe_paragraphs drops a page's repeated paragraphs."""

from __future__ import annotations

from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from tasks.duplicates.textnorm import body_words, content_hash, dedupe_paragraphs, normalize_text, paragraph_key, tokens

SEED = Path(__file__).resolve().parents[2] / "shared" / "seed" / "example-record.txt"


def test_normalize_text_folds_case_width_typography_and_space() -> None:
    assert normalize_text("  Ｆｏｏ\u2014“Bar’s”\u00ad\u200b  baz\n") == "foo-\"bar's\" baz"


def test_tokens_ignore_punctuation() -> None:
    assert tokens("It's 5,000 — “new” cases!") == ["it", "s", "5", "000", "new", "cases"]


def test_content_hash_ignores_form_not_words() -> None:
    a = content_hash(["Hello, World!", "It’s a “test”."])
    assert a == content_hash(["hello world it's", "", "a TEST"])
    assert a == content_hash(["Hello World It's a test"])
    assert a != content_hash(["Hello World It's a test too"])
    assert a != content_hash(["World Hello It's a test"])
    assert len(a) == 64 and int(a, 16) >= 0


def test_content_hash_of_nothing_is_stable() -> None:
    assert content_hash([]) == content_hash(["", "  ", "!!"])


def test_dedupe_keeps_first_occurrences_in_order() -> None:
    paras = ["One two three.", "Four five six.", "one, two THREE", "Seven.", "Four five six."]
    assert dedupe_paragraphs(paras) == ["One two three.", "Four five six.", "Seven."]


def test_dedupe_drops_contained_repeat_but_not_short_lines() -> None:
    long = "The council voted on Tuesday to close the old bridge for repairs, the mayor said in a statement."
    quote = "“The council voted on Tuesday to close the old bridge for repairs”"
    short = "The mayor said"  # inside `long` too, but too short to call a repeat
    assert dedupe_paragraphs([long, quote, short]) == [long, short]


def test_dedupe_drops_near_repeat_with_a_word_changed() -> None:
    first = (
        "Researchers said the four patients did not develop any serious health problems during the year "
        "after the transplant, and two of them regained some motor function."
    )
    edited = first.replace("serious", "major")
    other = "An entirely different paragraph about the weather in the northern provinces this winter season."
    assert dedupe_paragraphs([first, other, edited]) == [first, other]


def test_dedupe_keeps_similar_but_different_paragraphs() -> None:
    a = "Shares of the company rose 5 percent on Monday after it reported strong quarterly earnings results."
    b = "Shares of the company fell 7 percent on Friday after it missed analysts' quarterly revenue forecasts badly."
    assert dedupe_paragraphs([a, b]) == [a, b]


@pytest.mark.skipif(not SEED.exists(), reason="seed record not present")
def test_seed_record_block_printed_twice_is_removed() -> None:
    lines = SEED.read_text(encoding="utf-8").split("\n")
    body = lines[:19]  # paragraphs 1-10, then 2-10 again
    assert body[10] == body[1] and body[18] == body[9]
    assert dedupe_paragraphs(body) == body[:10]


# Paragraph text with what makes tokenizing hard: combining marks, compatibility forms,
# invisible characters, CJK, underscores, apostrophes, line breaks inside a paragraph.
PARAGRAPH = st.text(alphabet=st.sampled_from(list("ab Z_'-.,\n5") + ["\u0301", "\u00ad", "\u200b", "\ufb01",
                                                                          "\u00e9", "\u6771", "\u0130", "\uff21"]),
                    max_size=40)


@settings(max_examples=300, deadline=None)
@given(st.lists(PARAGRAPH, max_size=6))
def test_body_words_are_the_tokens_of_the_joined_body(paragraphs: list[str]) -> None:
    # The MinHash signature is made from body_words (per paragraph, remembered) instead of
    # tokenizing the joined body again: the words must be exactly the same.
    assert body_words(paragraphs) == tokens("\n".join(paragraphs))
    assert [paragraph_key(p) for p in paragraphs] == [" ".join(tokens(p)) for p in paragraphs]


def _dedupe_pairwise(paragraphs: list[str]) -> list[str]:
    """dedupe_paragraphs' rule applied by comparing each paragraph with every kept one."""
    from tasks.duplicates.textnorm import CONTAINED_MIN_WORDS, NEAR_JACCARD, NEAR_MIN_WORDS

    kept: list[str] = []
    kept_words: list[list[str]] = []
    for paragraph in paragraphs:
        words = tokens(paragraph)
        if not words or any(words == other for other in kept_words):
            continue
        if len(words) >= CONTAINED_MIN_WORDS:
            mine = set(zip(words, words[1:], words[2:]))
            repeat = False
            for other in kept_words:
                if len(other) < CONTAINED_MIN_WORDS:
                    continue
                if f" {' '.join(words)} " in f" {' '.join(other)} ":
                    repeat = True
                elif len(words) >= NEAR_MIN_WORDS:
                    theirs = set(zip(other, other[1:], other[2:]))
                    repeat = len(mine & theirs) >= NEAR_JACCARD * len(mine | theirs)
                if repeat:
                    break
            if repeat:
                continue
        kept.append(paragraph)
        kept_words.append(words)
    return kept


# Pieces of one text, some with a word changed: paragraphs share shingles with several earlier
# ones, contain each other and nearly repeat each other, so every branch of the shingle index is taken.
@st.composite
def _overlapping_paragraphs(draw: st.DrawFn) -> list[str]:
    vocabulary = ["red", "green", "blue", "amber", "grey"]
    text = draw(st.lists(st.sampled_from(vocabulary), min_size=30, max_size=60))
    paragraphs = []
    for _ in range(draw(st.integers(0, 14))):
        start = draw(st.integers(0, len(text) - 1))
        words = text[start:start + draw(st.integers(1, 30))]
        if draw(st.booleans()):
            words = [*words]
            words[draw(st.integers(0, len(words) - 1))] = draw(st.sampled_from(vocabulary))
        paragraphs.append(" ".join(words))
    return paragraphs


@settings(max_examples=500, deadline=None)
@given(_overlapping_paragraphs())
def test_dedupe_paragraphs_is_the_pairwise_rule(paragraphs: list[str]) -> None:
    assert dedupe_paragraphs(paragraphs) == _dedupe_pairwise(paragraphs)


@settings(max_examples=300, deadline=None)
@given(st.text(alphabet=st.characters(max_codepoint=127), max_size=60))
def test_ascii_text_is_cut_as_any_text_is(text: str) -> None:
    # ASCII text takes a shorter way (no NFKC, no invisibles): a non-ASCII word after it sends the
    # same text the long way, which must give the same words before that one.
    assert tokens(text + " Ü") == [*tokens(text), "ü"]
