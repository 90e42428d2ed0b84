"""Extractive summaries: the article's own whole sentences, within a character budget.

How sentences are chosen (news-shaped text, about a millisecond an article):

1. Split every paragraph into sentences (``tasks.summaries.sentences``) and drop repeats.
   Fragments without a full stop (headings, captions, credits) and sentences under
   five words are not *informative*; they are used only if nothing else is.
2. Score each sentence by *centrality* — TF-IDF cosine with the centroid of all the
   other sentences, i.e. how much of what the article keeps talking about it carries —
   plus its similarity to the title when there is one, plus a *lead bias* that fades
   with position (news puts the essentials first).
3. The lead rule: the first informative sentence is taken first whenever it fits,
   because a news story's lead is written to be its summary.
4. Fill the rest of the budget greedily (maximal marginal relevance): the best score,
   less the overlap with what is already taken, among the sentences that still fit —
   a sentence that does not fit is skipped, since a shorter one further down may.
   Near-repeats are never taken; a sentence that leans on its predecessor ("But...",
   "She said...") or asks a question is marked down.
5. Output the chosen sentences in document order.

Whole sentences only. If the lead is over budget the best-scoring sentences that fit
are used instead. If no informative sentence fits at all, and only then, the best one
is cut at the last word boundary within the budget (at a character, for text without
spaces) and ends in ``…`` — the one case where the summary is not whole sentences.
"""

from __future__ import annotations

import functools
import itertools
import math
import operator
import re
from collections import Counter
from dataclasses import dataclass, field

from tasks.summaries.sentences import join_sentences, split_sentences

__all__ = ["ELLIPSIS", "summarize_extractive"]

ELLIPSIS = "…"

# How much being early counts next to centrality (both roughly 0..1).
LEAD_WEIGHT = 0.6
TITLE_WEIGHT = 0.5
# A sentence this similar (cosine) to one already chosen says the same thing.
REDUNDANT_ABOVE = 0.6
# Score taken off per unit of cosine overlap with what is already chosen.
REDUNDANCY_WEIGHT = 0.5
# Score taken off a sentence that leans on the one before it ("She noted...", "But...")
# when that one is not in the summary: out of context it reads as a non sequitur.
DANGLING_PENALTY = 0.2
# Score taken off a question: in a summary it teases rather than tells.
QUESTION_PENALTY = 0.1
# Fewer words than this is a byline, a caption or a fragment, not a summary sentence.
MIN_WORDS = 5
MIN_CJK_CHARS = 10

_WORD = re.compile(r"[^\W_]+(?:['’][^\W_]+)*")
# What _WORD finds in ASCII text, spelled out: the Unicode classes cost a third more per character.
_ASCII_WORD = re.compile(r"[A-Za-z0-9]+(?:'[A-Za-z0-9]+)*")
# 1 + ln tf for the counts a sentence holds: a list index, not a call per term.
_TF_WEIGHT = [0.0] + [1 + math.log(c) for c in range(1, 64)]
_CJK_RUN = re.compile(r"[\u3040-\u30ff\u3400-\u4dbf\u4e00-\u9fff\uf900-\ufaff]+")
_CLOSING = "\"'”’»)]」』）"
_FINAL_MARKS = ".!?…。！？｡"
_STOPWORDS = frozenset(
    """a an the and or but if of to in on at by for with from as into about over after
    before than then that this these those it its it's is are was were be been being has
    have had do does did not no so such he she they we you i his her their our your my
    him them us me who whom which what when where why how all any each also can could
    would should will may might must said says say just more most some there here very""".split()
)

# Openers that point back at an earlier sentence.
_DANGLING_OPENERS = frozenset(
    """he she they it its his her their them this that these those such but however also
    and so still yet meanwhile instead moreover furthermore besides then thus therefore
    hence likewise similarly otherwise nevertheless nonetheless later""".split()
)


@dataclass
class _Sentence:
    index: int
    text: str
    lowered: str  # ``text`` casefolded: its repeat key and its terms both start from it
    terms: dict[str, float] = field(default_factory=dict)
    informative: bool = True
    score: float = 0.0
    norm: float = 0.0  # of ``terms``, computed once: cosines are taken many times per sentence
    self_sq: float = 0.0  # norm squared (the centrality needs it too)

    # Asked only of the candidates that still fit when a pick is made, a few of an article's sentences.
    @functools.cached_property
    def dangling(self) -> bool:
        return _is_dangling(self.text)

    @functools.cached_property
    def question(self) -> bool:
        return self.text.rstrip(_CLOSING).endswith(("?", "？"))


def summarize_extractive(paragraphs: list[str], budget: int = 300, title: str | None = None) -> str:
    """A summary of at most ``budget`` characters made of the paragraphs' whole sentences.

    Empty input (or a budget below one character) gives ``""``.
    """
    if budget < 1:
        return ""
    sentences = _unique_sentences(paragraphs)
    if not sentences:
        return ""
    informative = _score(sentences, title)
    chosen: list[_Sentence] = []
    lead = informative[0]
    if len(lead.text) <= budget:
        chosen.append(lead)
    pool = [s for s in informative if s is not lead]
    # Each candidate's highest cosine with anything chosen. Taken only for the candidates that
    # still fit: the room only shrinks, so one too long now is never needed, and most are
    # (a lead fills most of a summary's budget).
    overlap = dict.fromkeys((s.index for s in pool), 0.0)
    unseen = list(chosen)  # picks not yet in ``overlap``
    while pool:
        room = budget - len(_join(chosen))
        pool = [s for s in pool if len(s.text) <= room]
        for s in pool:
            for c in unseen:
                overlap[s.index] = max(overlap[s.index], _similarity(s, c))
        pool = [s for s in pool if overlap[s.index] <= REDUNDANT_ABOVE]
        pick = _next_pick(pool, chosen, overlap, budget)
        if pick is None:
            break
        chosen = sorted([*chosen, pick], key=lambda s: s.index)
        pool.remove(pick)
        unseen = [pick]
    if chosen:
        return _join(chosen)
    best = max(informative, key=lambda s: (s.score, -s.index))
    return _cut(best.text, budget)


def _join(sentences: list[_Sentence]) -> str:
    return join_sentences([s.text for s in sentences])


def _next_pick(
    pool: list[_Sentence], chosen: list[_Sentence], overlap: dict[int, float], budget: int
) -> _Sentence | None:
    """The best sentence that still fits, scored less what it repeats (maximal marginal relevance)."""
    taken = {s.index for s in chosen}
    best: _Sentence | None = None
    best_value = -math.inf
    for candidate in pool:
        value = candidate.score - REDUNDANCY_WEIGHT * overlap[candidate.index]
        if value <= best_value:  # the penalties only lower it: no need to read the sentence for them
            continue
        if candidate.dangling and candidate.index - 1 not in taken:
            value -= DANGLING_PENALTY
        if candidate.question:
            value -= QUESTION_PENALTY
        # Joining can add a space on either side of the newcomer, so check the real length.
        if value > best_value and len(_join(sorted([*chosen, candidate], key=lambda s: s.index))) <= budget:
            best, best_value = candidate, value
    return best


def _unique_sentences(paragraphs: list[str]) -> list[_Sentence]:
    seen: set[str] = set()
    out: list[_Sentence] = []
    for paragraph in paragraphs:
        for text in split_sentences(paragraph):
            lowered = text.casefold()
            key = " ".join(lowered.split())
            if key in seen:
                continue
            seen.add(key)
            out.append(_Sentence(index=len(out), text=text, lowered=lowered))
    return out


def _terms(text: str) -> list[str]:
    """Content terms: lowercased words without stopwords, and CJK character bigrams."""
    return _terms_and_words(text.casefold())[0]


def _terms_and_words(lowered: str) -> tuple[list[str], list[str]]:
    """``_terms`` of a casefolded text, and the words they come from."""
    terms: list[str] = []
    if lowered.isascii():  # ASCII holds no CJK: two regex passes saved on most text
        words = _ASCII_WORD.findall(lowered)
    else:
        runs = _CJK_RUN.findall(lowered)
        for run in runs:
            # No spaces to split on: overlapping character pairs stand in for words.
            terms.extend(run[i : i + 2] for i in range(max(1, len(run) - 1)))
        words = _WORD.findall(_CJK_RUN.sub(" ", lowered) if runs else lowered)
    # A crude plural fold: "patients" meets "patient".
    terms.extend([word[:-1] if len(word) > 3 and word[-1] == "s" and word[-2] != "s" else word
                  for word in words if word not in _STOPWORDS])
    return terms, words


def _is_informative(text: str, ascii_words: int | None = None) -> bool:
    """``ascii_words``: how many words ``_ASCII_WORD`` finds in ``text``, if the caller counted them."""
    # Headings, captions, credits and text cut by a stray paragraph break carry no
    # full stop; a line ending in ":" introduces something else. Neither stands alone.
    if not _ends_with_final_mark(text):
        return False
    if text.isascii():
        cjk, words = 0, len(_ASCII_WORD.findall(text)) if ascii_words is None else ascii_words
    else:
        runs = _CJK_RUN.findall(text)
        cjk = sum(map(len, runs))
        words = len(_WORD.findall(_CJK_RUN.sub(" ", text) if runs else text))
    return cjk >= MIN_CJK_CHARS or words >= MIN_WORDS


def _ends_with_final_mark(text: str) -> bool:
    """A full stop (or ! ? …) followed by nothing but closing quotes and brackets (and one line break)."""
    # Read from the end: a pattern anchored there is tried from every position of the sentence.
    core = (text[:-1] if text.endswith("\n") else text).rstrip(_CLOSING)
    return bool(core) and core[-1] in _FINAL_MARKS


def _is_dangling(text: str) -> bool:
    first = _WORD.match(text.lstrip("\"'“‘(["))
    return bool(first) and first.group().casefold() in _DANGLING_OPENERS


def _score(sentences: list[_Sentence], title: str | None) -> list[_Sentence]:
    """The sentences a summary may use, in order: the informative ones (all, if none is), scored.

    Every sentence gets its term weights and ``informative`` (all count in the centroid); norms and
    scores are only worked out for those returned, as no other is ever read.
    """
    all_terms: list[list[str]] = []
    distinct: list[dict[str, None]] = []  # each sentence's terms once, in first-seen order
    for sentence in sentences:
        terms, words = _terms_and_words(sentence.lowered)
        all_terms.append(terms)
        distinct.append(dict.fromkeys(terms))
        # ASCII text casefolded holds as many ASCII words as before (the pattern takes either case).
        sentence.informative = _is_informative(sentence.text, len(words) if sentence.text.isascii() else None)
    n = len(sentences)
    df = Counter(itertools.chain.from_iterable(distinct))  # each sentence counts a term once
    idf = {term: math.log((n + 1) / (d + 0.5)) for term, d in df.items()}
    centroid: dict[str, float] = {}
    for sentence, terms, once in zip(sentences, all_terms, distinct):
        if len(once) == len(terms):
            # Most sentences use each term once: its weight is (1 + ln 1) * idf = idf, exactly.
            sentence.terms = dict(zip(once, map(idf.__getitem__, once)))
        else:
            sentence.terms = {t: (_TF_WEIGHT[c] if c < len(_TF_WEIGHT) else 1 + math.log(c)) * idf[t]
                              for t, c in Counter(terms).items()}
        for term, weight in sentence.terms.items():
            centroid[term] = centroid.get(term, 0.0) + weight
    title_terms = {t: idf.get(t, 1.0) for t in _terms(title)} if title else {}
    title_norm = _norm(title_terms)  # once, not once per sentence
    weights = list(centroid.values())
    centroid_sq = sum(map(operator.mul, weights, weights))
    usable = [s for s in sentences if s.informative] or sentences
    for sentence in usable:
        weights = list(sentence.terms.values())
        sentence.self_sq = sum(map(operator.mul, weights, weights))
        sentence.norm = math.sqrt(sentence.self_sq)
        # Cosine with the centroid of the *other* sentences (C - s), or long sentences would
        # mostly match themselves; expanded so it costs O(terms of s), not O(terms of C).
        dot = sum(map(operator.mul, sentence.terms.values(), map(centroid.__getitem__, sentence.terms)))
        self_sq = sentence.self_sq
        others_sq = centroid_sq - 2 * dot + self_sq
        denom = math.sqrt(self_sq * others_sq) if self_sq > 0 and others_sq > 1e-12 else 0.0
        centrality = max(0.0, (dot - self_sq) / denom) if denom else 0.0
        lead = 1.0 / math.sqrt(1 + sentence.index)
        title_sim = _cosine(sentence.terms, title_terms, sentence.norm, title_norm) if title_terms else 0.0
        sentence.score = centrality + TITLE_WEIGHT * title_sim + LEAD_WEIGHT * lead
    return usable


def _similarity(a: _Sentence, b: _Sentence) -> float:
    """``_cosine`` of two scored sentences, with their norms from ``_score``."""
    return _cosine(a.terms, b.terms, a.norm, b.norm)


def _norm(v: dict[str, float]) -> float:
    return math.sqrt(sum(w * w for w in v.values()))


def _cosine(a: dict[str, float], b: dict[str, float], norm_a: float | None = None,
            norm_b: float | None = None) -> float:
    if not a or not b:
        return 0.0
    x, y = (a, b) if len(a) <= len(b) else (b, a)  # the sum runs over the shorter one
    if x.keys().isdisjoint(y):  # most pairs of sentences share no term: a set test, not a sum
        return 0.0
    dot = sum(w * y[t] for t, w in x.items() if t in y)
    if dot <= 0.0:
        return 0.0
    norm = (_norm(a) if norm_a is None else norm_a) * (_norm(b) if norm_b is None else norm_b)
    return dot / norm if norm else 0.0


def _cut(text: str, budget: int) -> str:
    """The last resort: ``text`` cut at a word boundary, ending in an ellipsis, within ``budget``."""
    if len(text) <= budget:
        return text
    room = budget - len(ELLIPSIS)
    if room <= 0:
        return ""
    head = text[: room + 1]
    space = head.rfind(" ")
    # Text without spaces (CJK) or one huge word: cut at the character instead.
    head = head[:space] if space > 0 else text[:room]
    return head.rstrip(" ,;:—–-") + ELLIPSIS
