"""Sentence splitting: abbreviations, numbers, initials, quotations and CJK full stops."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from tasks.summaries.sentences import join_sentences, split_sentences


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("", []),
        ("   \n ", []),
        ("One. Two! Three? Four", ["One.", "Two!", "Three?", "Four"]),
        (
            "Mr. Smith met Dr. Jones and Prof. Lee. They talked.",
            ["Mr. Smith met Dr. Jones and Prof. Lee.", "They talked."],
        ),
        ("Growth was 3.5 percent. Prices rose 0.2%.", ["Growth was 3.5 percent.", "Prices rose 0.2%."]),
        ("It costs $3.50 today. Tomorrow more.", ["It costs $3.50 today.", "Tomorrow more."]),
        (
            "The U.S. economy grew. Trade with the U.K. fell.",
            ["The U.S. economy grew.", "Trade with the U.K. fell."],
        ),
        ("She moved to the U.S. The move was hard.", ["She moved to the U.S.", "The move was hard."]),
        ("Fruit, e.g. apples, i.e. food. Yes.", ["Fruit, e.g. apples, i.e. food.", "Yes."]),
        ("J. K. Rowling met George W. Bush. It went well.", ["J. K. Rowling met George W. Bush.", "It went well."]),
        (
            "The score went up two ranks to C. The patient ate alone.",
            ["The score went up two ranks to C.", "The patient ate alone."],
        ),
        ("It was No. 5 on the list. Say no. Then go.", ["It was No. 5 on the list.", "Say no.", "Then go."]),
        ("Apple Inc. said so. Apple Inc. The firm agreed.", ["Apple Inc. said so.", "Apple Inc.", "The firm agreed."]),
        ("We met at 9 a.m. on Monday. Fine.", ["We met at 9 a.m. on Monday.", "Fine."]),
        ("Visit example.com today. Or not.", ["Visit example.com today.", "Or not."]),
        # Titles hold only when capitalized; lowercase they are ordinary words.
        ("I love modern art. The museum is big.", ["I love modern art.", "The museum is big."]),
        ("See Art. 5 of the law. Sen. Warren agreed.", ["See Art. 5 of the law.", "Sen. Warren agreed."]),
        ("St. Louis is near Main St. The shop is open.", ["St. Louis is near Main St.", "The shop is open."]),
        ("Roe v. Wade stands. He met John Smith Sr. The end.", ["Roe v. Wade stands.", "He met John Smith Sr.", "The end."]),
        ("Wait... what? Oh no... The end.", ["Wait... what?", "Oh no...", "The end."]),
        ("Yahoo! is a company. It is old.", ["Yahoo! is a company.", "It is old."]),
        # The word before the full stop is found across a line break, and the next word after spaces of any kind.
        ("Talks with Gov\n. Smith went on. Then rain.", ["Talks with Gov\n. Smith went on.", "Then rain."]),
        ("He met Dr.\u3000Jones. Then\u00a0\u2003rain. Fine.", ["He met Dr.\u3000Jones.", "Then\u00a0\u2003rain.", "Fine."]),
        (
            "ST. JOSEPH, Mich. (AP) — Officials spoke. More later.",
            ["ST. JOSEPH, Mich. (AP) — Officials spoke.", "More later."],
        ),
    ],
)
def test_western_boundaries(text: str, expected: list[str]) -> None:
    assert split_sentences(text) == expected


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        # The sentence ends inside the closing quote; the next one starts after it.
        ('He said, "We won." Then he left.', ['He said, "We won."', "Then he left."]),
        ("He said, “We won.” Then he left.", ["He said, “We won.”", "Then he left."]),
        # A question inside quotes followed by its attribution is one sentence.
        ('"Is it true?" she asked. Yes.', ['"Is it true?" she asked.', "Yes."]),
        # A quotation of several sentences stays whole: no quote mark loses its partner.
        ('The tagline? "Meth. We\'re on it." Next.', ["The tagline?", '"Meth. We\'re on it."', "Next."]),
        ("He said: “I went home. Then I slept.” Done.", ["He said: “I went home. Then I slept.”", "Done."]),
        ("(This is aside.) Next one.", ["(This is aside.)", "Next one."]),
        # An inch mark is not a quotation.
        ('He is 5\'10" tall. He runs. He said "yes."', ['He is 5\'10" tall.', "He runs.", 'He said "yes."']),
    ],
)
def test_quotes(text: str, expected: list[str]) -> None:
    assert split_sentences(text) == expected


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("東京で会議が開かれた。参加者は百人だった！本当か？", ["東京で会議が開かれた。", "参加者は百人だった！", "本当か？"]),
        ("「はい。」と彼は言った。次の文。", ["「はい。」と彼は言った。", "次の文。"]),
        ("「ありがとう。また来ます。」と言った。", ["「ありがとう。また来ます。」と言った。"]),
        ("他说：“我们赢了。”然后离开了。好的！", ["他说：“我们赢了。”", "然后离开了。", "好的！"]),
        ("日本の研究チームは3.5倍と発表した。以上。", ["日本の研究チームは3.5倍と発表した。", "以上。"]),
    ],
)
def test_cjk_full_stops(text: str, expected: list[str]) -> None:
    assert split_sentences(text) == expected


def test_blank_line_ends_a_sentence() -> None:
    assert split_sentences("A heading\n\nBody text here.\nStill body.") == [
        "A heading",
        "Body text here.",
        "Still body.",
    ]


def test_join_puts_spaces_only_between_spaced_sentences() -> None:
    assert join_sentences(["One.", "Two."]) == "One. Two."
    assert join_sentences(["東京だ。", "大阪だ。"]) == "東京だ。大阪だ。"
    assert join_sentences(["「はい。」", "次。"]) == "「はい。」次。"
    assert join_sentences(["東京だ。", "Tokyo."]) == "東京だ。 Tokyo."
    assert join_sentences([]) == ""


_text = st.lists(
    st.sampled_from(
        ["Mr.", "Dr.", "U.S.", "e.g.", "3.5", "J.", "word", "The", "he", "said", '"', "“", "”", "。", "東京", "!", "?", ".", "\n\n"]
    ),
    max_size=40,
).map(" ".join)


@given(st.one_of(st.text(max_size=200), _text))
def test_sentences_are_stripped_slices_in_order(text: str) -> None:
    sentences = split_sentences(text)
    position = 0
    for sentence in sentences:
        assert sentence and sentence == sentence.strip()
        found = text.find(sentence, position)
        assert found >= 0, (sentence, text)
        position = found + len(sentence)
    # Nothing but whitespace is lost between them.
    assert "".join("".join(sentences).split()) == "".join(text.split())
