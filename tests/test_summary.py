"""The extractive summary: whole sentences, lead first, within budget, no repeats."""

from __future__ import annotations

import math
import re
from functools import cache
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from tasks.summaries.extractive import (
    _CLOSING, ELLIPSIS, _ends_with_final_mark, _is_informative, _next_pick, _score, _Sentence, _terms, _terms_and_words,
    summarize_extractive,
)
from tasks.summaries.sentences import split_sentences

EXAMPLE = Path(__file__).resolve().parents[1] / ".." / "shared" / "seed" / "example-record.txt"


def whole_sentences(summary: str, paragraphs: list[str]) -> list[str] | None:
    """The input sentences ``summary`` is made of, in document order and each once, or None."""
    sentences: list[str] = []
    for paragraph in paragraphs:
        for sentence in split_sentences(paragraph):
            if sentence not in sentences:
                sentences.append(sentence)

    @cache
    def match(pos: int, start: int) -> tuple[str, ...] | None:
        if pos == len(summary):
            return ()
        if pos and summary[pos] == " ":
            pos += 1
        for i in range(start, len(sentences)):
            if summary.startswith(sentences[i], pos):
                rest = match(pos + len(sentences[i]), i + 1)
                if rest is not None:
                    return (sentences[i], *rest)
        return None

    found = match(0, 0) if summary else ()
    return list(found) if found is not None else None


@pytest.fixture(scope="module")
def example_paragraphs() -> list[str]:
    if not EXAMPLE.exists():
        pytest.skip("the shared seed example is not available")
    lines = EXAMPLE.read_text(encoding="utf-8").splitlines()
    # The record's body is its first 19 lines: 10 paragraphs, then 9 of them repeated.
    return lines[:19]


def test_example_starts_with_the_lead_in_whole_sentences(example_paragraphs: list[str]) -> None:
    unique = list(dict.fromkeys(example_paragraphs))
    assert len(unique) == 10
    summary = summarize_extractive(unique)
    lead = split_sentences(unique[0])[0]
    assert summary.startswith(lead + " ")
    assert len(summary) <= 300
    parts = whole_sentences(summary, unique)
    assert parts is not None and len(parts) >= 2
    assert not summary.endswith(ELLIPSIS)
    # The repeated tail changes nothing: a repeated sentence is never taken twice.
    assert summarize_extractive(example_paragraphs) == summary


def test_lead_comes_first_and_output_is_in_document_order() -> None:
    paragraphs = [
        "The city council approved a new budget for public transport on Monday evening.",
        "Buses will run every ten minutes on the busiest routes from next spring.",
        "The budget for public transport grows by a fifth, the council said in a statement.",
        "Critics said the public transport budget still leaves rural routes behind.",
    ]
    summary = summarize_extractive(paragraphs, budget=200)
    parts = whole_sentences(summary, paragraphs)
    assert parts is not None
    assert parts[0] == paragraphs[0]
    assert [paragraphs.index(p) for p in parts] == sorted(paragraphs.index(p) for p in parts)
    assert len(summary) <= 200


def test_skips_a_sentence_that_does_not_fit_for_one_that_does() -> None:
    long_lead = "Officials " + "said the long meeting about the new harbour went on " * 6 + "late."
    paragraphs = [long_lead, "The harbour will open in May after repairs to the old pier are done."]
    summary = summarize_extractive(paragraphs, budget=120)
    assert summary == paragraphs[1]


def test_never_repeats_a_sentence() -> None:
    sentence = "The new bridge across the river opened to traffic on Sunday morning."
    paragraphs = [sentence, sentence + " Thousands of people walked across it before the cars came.", sentence]
    summary = summarize_extractive(paragraphs, budget=300)
    assert summary.count(sentence) == 1
    assert "Thousands of people walked" in summary


def test_prefers_informative_sentences_to_fragments() -> None:
    paragraphs = [
        "Photo: AP",
        "Advertisement",
        "A powerful storm knocked out power to thousands of homes across the region overnight.",
        "Crews expect to restore most connections by Tuesday afternoon, the utility said.",
    ]
    summary = summarize_extractive(paragraphs, budget=300)
    assert summary.startswith("A powerful storm")
    assert "Photo" not in summary and "Advertisement" not in summary


def test_last_resort_cuts_at_a_word_boundary_with_an_ellipsis() -> None:
    text = "The committee published an extraordinarily detailed report on regional water management yesterday."
    summary = summarize_extractive([text], budget=40)
    assert summary.endswith(ELLIPSIS)
    assert len(summary) <= 40
    head = summary[: -len(ELLIPSIS)]
    assert text.startswith(head) and text[len(head)] == " "


def test_last_resort_without_spaces_cuts_at_a_character() -> None:
    text = "日本の研究チームは脊髄損傷の患者にiPS細胞から作った細胞を移植する臨床研究で運動機能の回復を確認したと発表した。"
    summary = summarize_extractive([text], budget=20)
    assert len(summary) == 20 and summary.endswith(ELLIPSIS)
    assert text.startswith(summary[:-1])


def test_cjk_summary_is_whole_sentences_without_spaces() -> None:
    paragraphs = [
        "日本の研究チームは、iPS細胞を使った脊髄損傷の治療で患者の運動機能が回復したと発表した。",
        "研究チームは四人の患者に細胞を移植し、一年後に運動機能の回復を調べた。",
        "二人の患者は運動機能が改善し、一人は支えなしで立てるようになった。",
    ]
    summary = summarize_extractive(paragraphs, budget=80)
    assert summary.startswith(paragraphs[0])
    assert " " not in summary
    assert whole_sentences(summary, paragraphs) is not None


def test_empty_and_degenerate_inputs() -> None:
    assert summarize_extractive([]) == ""
    assert summarize_extractive(["", "   "]) == ""
    assert summarize_extractive(["Some text here."], budget=0) == ""
    assert summarize_extractive(["Short."]) == "Short."


def test_title_steers_the_choice_among_later_sentences() -> None:
    paragraphs = [
        "The regional government presented its plans for the coming year on Thursday morning.",
        "Schools will receive new laptops for every pupil in the final two grades next autumn.",
        "Hospitals will hire four hundred additional nurses to shorten waiting lists this winter.",
    ]
    budget = len(paragraphs[0]) + 1 + max(len(paragraphs[1]), len(paragraphs[2]))
    about_schools = summarize_extractive(paragraphs, budget=budget, title="New laptops for pupils in schools")
    about_hospitals = summarize_extractive(paragraphs, budget=budget, title="Hospitals to hire more nurses")
    assert "laptops" in about_schools and "nurses" not in about_schools
    assert "nurses" in about_hospitals and "laptops" not in about_hospitals


_WORDS = ["the", "council", "said", "river", "budget", "3.5", "percent", "Mr.", "Smith", "U.S.", "police", "東京", "new"]
_sentence = st.builds(
    lambda words, end: " ".join(words).capitalize() + end,
    st.lists(st.sampled_from(_WORDS), min_size=5, max_size=25),
    st.sampled_from([".", "!", "?"]),
)
_paragraph = st.lists(_sentence, min_size=1, max_size=4).map(" ".join)


@settings(max_examples=150, deadline=None)
@given(st.lists(_paragraph, max_size=8), st.integers(min_value=1, max_value=400))
def test_property_whole_sentences_within_budget_no_repeats(paragraphs: list[str], budget: int) -> None:
    summary = summarize_extractive(paragraphs, budget=budget)
    assert len(summary) <= budget
    sentences = [s for p in paragraphs for s in split_sentences(p)]
    if summary.endswith(ELLIPSIS) and whole_sentences(summary, paragraphs) is None:
        # The last resort happens only when no informative sentence fits at all.
        assert all(len(s) > budget for s in sentences if _is_informative(s))
        return
    parts = whole_sentences(summary, paragraphs)
    assert parts is not None
    assert len(parts) == len(set(parts))
    if sentences and min(len(s) for s in sentences) <= budget:
        assert parts, "a sentence fits, so the summary is not empty"


@settings(max_examples=150, deadline=None)
@given(st.lists(st.text(max_size=120), max_size=6), st.integers(min_value=1, max_value=300))
def test_property_any_text_stays_within_budget(paragraphs: list[str], budget: int) -> None:
    summary = summarize_extractive(paragraphs, budget=budget)
    assert len(summary) <= budget
    if summary and not summary.endswith(ELLIPSIS):
        assert whole_sentences(summary, paragraphs) is not None


def test_a_near_repeat_of_a_later_pick_is_not_taken() -> None:
    # The lead leaves room for both versions of the ferry sentence and the market one; once one
    # ferry sentence is taken, the other repeats it (cosine over REDUNDANT_ABOVE) and stays out.
    paragraphs = [
        "Storm warnings closed the harbour on Friday.",
        "The island ferry service stopped all crossings until Sunday noon.",
        "The island ferry service stopped all its crossings until Sunday.",
        "Market traders moved their stalls indoors for the weekend.",
    ]
    summary = summarize_extractive(paragraphs, budget=300)
    assert summary.startswith(paragraphs[0])
    assert sum(p in summary for p in paragraphs[1:3]) == 1
    assert paragraphs[3] in summary


def test_a_near_repeat_of_the_lead_is_not_taken() -> None:
    paragraphs = [
        "Storm warnings closed the island harbour on Friday.",
        "Market traders moved their stalls indoors for the weekend.",
        "Storm warnings closed the island harbour again on Friday.",
    ]
    summary = summarize_extractive(paragraphs, budget=300)
    assert summary == " ".join(paragraphs[:2])


@settings(max_examples=300, deadline=None)
@given(st.text(alphabet=st.sampled_from(list("ab'Zs9 .,-!?\n\"")), max_size=60))
def test_ascii_sentences_are_read_as_any_text_is(text: str) -> None:
    # ASCII text takes a shorter way (one ASCII pattern, no CJK passes); a no-break space or a
    # non-ASCII word sends the same text the long way, which must find the same words.
    assert _terms(text + " über") == [*_terms(text), "über"]
    assert _is_informative(text) == _is_informative("\u00a0" + text)


@settings(max_examples=300, deadline=None)
@given(st.text(alphabet=st.sampled_from(list("ab'Zs9 .,-!?\n\"")), max_size=60))
def test_an_ascii_word_count_handed_in_is_the_one_counted(text: str) -> None:
    # The scorer hands _is_informative the words it found in the casefolded sentence.
    words = _terms_and_words(text.casefold())[1]
    assert _is_informative(text, len(words)) == _is_informative(text)


# What _ends_with_final_mark reads from the end: the pattern it replaced, anchored with "$".
_FINAL_MARK = re.compile(rf"[.!?…。！？｡][{re.escape(_CLOSING)}]*$")


@settings(max_examples=500, deadline=None)
@given(st.text(alphabet=st.sampled_from(list(".!?…。！？｡\"'”’»)]」』）\n a:")), max_size=8))
def test_a_final_mark_is_found_as_the_anchored_pattern_finds_it(text: str) -> None:
    assert _ends_with_final_mark(text) == bool(_FINAL_MARK.search(text))


def test_term_weights_are_log_tf_times_idf_whether_or_not_terms_repeat() -> None:
    sentences = [_Sentence(index=i, text=t, lowered=t.casefold()) for i, t in enumerate([
        "Ferry crossings stopped.", "Ferry ferry crossings resumed.", "Traders moved stalls indoors."])]
    _score(sentences, None)
    idf = {t: math.log(4 / (d + 0.5)) for t, d in {"ferry": 2, "crossing": 2, "stopped": 1, "resumed": 1}.items()}
    assert sentences[0].terms == {"ferry": idf["ferry"], "crossing": idf["crossing"], "stopped": idf["stopped"]}
    assert sentences[1].terms == {"ferry": (1 + math.log(2)) * idf["ferry"], "crossing": idf["crossing"],
                                  "resumed": idf["resumed"]}
    assert [s.informative for s in sentences] == [False, False, False]  # three words each: under MIN_WORDS


def test_the_pick_weighs_leaning_openers_and_questions() -> None:
    def sentence(index: int, text: str, score: float) -> _Sentence:
        s = _Sentence(index=index, text=text, lowered=text.casefold())
        s.score = score
        return s

    lead = sentence(0, "Storm warnings closed the harbour.", 2.0)
    leaning = sentence(2, "But the ferry kept its timetable.", 1.0)
    asking = sentence(3, "Will the ferry sail tomorrow?", 0.98)
    plain = sentence(4, "Traders moved their stalls indoors.", 0.9)
    overlap = {s.index: 0.0 for s in (leaning, asking, plain)}
    # "But ..." without the sentence before it loses 0.2, the question 0.1: the plain one wins.
    assert _next_pick([leaning, asking, plain], [lead], overlap, 300) is plain
    assert _next_pick([asking, leaning], [lead], overlap, 300) is asking
    # With its predecessor taken, "But ..." reads fine and its score wins.
    before = sentence(1, "The port stayed open to freight.", 0.5)
    assert _next_pick([plain, asking, leaning], [lead, before], overlap, 300) is leaning
    # Nothing that does not fit is picked.
    assert _next_pick([leaning, asking, plain], [lead], overlap, len(lead.text) + 5) is None
