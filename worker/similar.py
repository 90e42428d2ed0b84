"""Similar readings: the stored records about the same subject as one record, best first, and
none that is not.

Two steps. The full-text index finds candidates: the record's most distinctive words (tf-idf
against document frequencies from a sample of the index), OR'ed together, ranked by the database;
big indexes rank only the records that share one (SQLite) or two (PostgreSQL) of the words the
record tells most about, those of its title or repeated in its lead (the "gate"; see ``Gate`` and
``RANKING``). Then each candidate is scored exactly: the cosine of the two records'
``unit_vector``s, tf-idf weights of the words of their title and lead. Records are listed best
first, at most k, and only those that pass ``relevance_cut``: from ``RELATED_SURE`` up, and from
``RELATED_FLOOR`` up when near the best candidate's score (``RELATED_SHARE`` of it), so a list is
shorter, or empty, rather than filled with strangers.

Only the title and lead (the first ``_LEAD_CHARS`` characters of the body) are indexed: what is
scored is what is searched, and the index stays small. Indexing whole bodies let BM25's length
normalization bury long related pages under short strangers: at 100k records the related records
fell out of the candidates (bench/results/similar.md).

- SQLite: an FTS5 index over title and lead (unicode61 tokenizer), ranked by BM25 with the title
  weighted above the body. SQL triggers on ``records`` keep it in sync, so no write path needs to
  know about it; only canonical records (``duplicate_of IS NULL``) are indexed.
- PostgreSQL: a generated ``search_vector`` tsvector column (title weight A, body weight D, the
  ``simple`` configuration) with a partial GIN index, ranked by ``ts_rank``; the vector kept in
  its row and the index without a pending list (``_PG_TUNING``), the reads outside a transaction.

The writer of a record puts its useful words, as ``tokens`` cuts them, in ``records.search_title``
and ``search_body`` (``search_columns``); the index is given those, and scoring reads them back.
Chinese and Japanese are written without spaces: their runs of Han and kana become overlapping
two-character pieces, as search engines index such scripts without a dictionary. A row written
without those columns (a bulk load) is indexed from its own text and scored from it. Why unicode61
and not trigram: trigram triples the index and turns every English query word into several
trigram lookups (slower and noisier for BM25).
"""

from __future__ import annotations

import functools
import itertools
import json
import logging
import math
import operator
import random
import re
import threading
import time
import unicodedata
from array import array
from collections import Counter
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Protocol

import numpy as np
from sqlalchemy import text
from sqlalchemy.engine import Connection, Engine

from tasks.duplicates.textnorm import CJK_CHARS
from worker.models import SimilarRef
from worker.sqltypes import UTCDateTime

__all__ = ["RANKING", "CandidateRow", "Gate", "RecordWords", "Ranking", "SimilarIndex", "create_schema", "enter_lists", "listed",
           "query_terms", "readings", "rebuild_index", "relevance_cut", "search_columns", "token_set", "tokens", "tune_index"]

log = logging.getLogger("gleaner.similar")

# --- terms ----------------------------------------------------------------------------------

# Words too common in news prose to say what an article is about. Document frequencies from the
# sample would demote them anyway; dropping them early keeps the sample and the scoring small.
STOPWORDS = frozenset("""
a about above after again against all almost along already also although always am among an and
another any anyone anything are around as at away back be became because become been before being
below between both but by can cannot could did do does doing done down during each either else
enough even ever every few for from further get gets got had has have having he her here hers
herself him himself his how however i if in into is it its itself just last least less like made
make many may me might more most much must my myself near need never new next no nor not now of
off often on once one only or other others our ours ourselves out over own per perhaps put rather
really said same say says see seen several she should since so some something still such than that
the their theirs them themselves then there these they thing things this those though through thus
to told too two under until up upon us use used very via was way we well were what when where
whether which while who whom whose why will with within without would yet you your yours yourself
mr mrs ms dr year years time times today yesterday week according people percent
""".split())

_TOKEN = re.compile(r"[^\W_]+")
_MAX_TOKEN = 40  # longer "words" are URLs or hashes: no use as query terms
_CJK_RUN = re.compile(f"[{CJK_CHARS}]+")
_HAS_CJK = re.compile(f"[{CJK_CHARS}]")
# Non-ASCII characters that may be part of a word: all but the no-break space, guillemets, middle
# dot and the general punctuation block (curly quotes, dashes, ellipses), none of which is one.
_NON_ASCII_WORD = re.compile("[^\x00-\x7f\u00a0\u00ab\u00b7\u00bb\u2000-\u206f]")
_ASCII_WORD = re.compile(r"[a-z0-9]+")
# Such a text's UTF-8 bytes with ASCII letters lower-cased and every byte that is not a letter or
# digit a space (the non-ASCII characters it may hold are separators): ``_ASCII_WORD.findall`` of
# its lower-cased text by ``split``, in half the time (a whole body's words are cut at every store).
_ASCII_FOLD = bytes(c | 0x20 if chr(c).isalpha() else c if chr(c).isdigit() else 0x20 for c in range(128)) + b" " * 128
# Where unicode61's lower-casing differs from Python's str.lower.
_FOLD = str.maketrans({"\u03c2": "\u03c3", "\u017f": "s", "\u00b5": "\u03bc"})


def _latin(c: str) -> bool:
    # unicode61 (remove_diacritics 2) strips accents from Latin letters only: Greek keeps its
    # tonos and kana their voicing marks.
    return "a" <= c <= "z" or "\u00c0" <= c <= "\u024f" or "\u1e00" <= c <= "\u1eff"


# The non-ASCII words a process meets again and again (a language's common words) are folded once.
# On the 1,799 corpus pages the working set is under 5,000 words: 8,192 entries keep every hit of
# 65,536 (0.904 of look-ups) at an eighth of the memory. The larger cache filled up over a long
# crawl with words met once (names, a Chinese or Japanese text's runs, each with its pieces), some
# 15-20 MB a process, most of a stage worker's growth over bench/memory.py's 10,000 pages.
@functools.lru_cache(maxsize=8192)
def _fold_word(word: str) -> tuple[str, ...]:
    """A lower-cased word that is not plain ASCII, as ``tokens`` gives it."""
    out: list[str] = []
    after_latin = False
    for c in word.translate(_FOLD):
        if unicodedata.combining(c):
            if not after_latin:
                out.append(c)
            continue
        if "\u00c0" <= c <= "\u024f" or "\u1e00" <= c <= "\u1eff":
            c = "".join(x for x in unicodedata.normalize("NFD", c) if not unicodedata.combining(x))
        out.append(c)
        after_latin = _latin(c[:1])
    folded = "".join(out)
    if not _HAS_CJK.search(folded):
        return (folded,)
    parts: list[str] = []
    at = 0
    for run in _CJK_RUN.finditer(folded):
        if run.start() > at:
            parts.append(folded[at:run.start()])
        parts.extend(_bigrams(run.group()))
        at = run.end()
    if at < len(folded):
        parts.append(folded[at:])
    return tuple(parts)


def _bigrams(run: str) -> list[str]:
    return [run] if len(run) < 2 else [run[i:i + 2] for i in range(len(run) - 1)]


def _ascii_words(text_: str) -> list[str]:
    """``_ASCII_WORD.findall(text_.lower())`` of a text whose only non-ASCII characters are
    separators (see ``_NON_ASCII_WORD``)."""
    return text_.encode().translate(_ASCII_FOLD).decode("ascii").split()


def tokens(text_: str) -> list[str]:
    """The words of a text as the index holds them: those unicode61 (``remove_diacritics 2``)
    finds, lower-cased, accents dropped from Latin letters, except that a run of Chinese or
    Japanese characters becomes its overlapping two-character pieces (the search engines' way to
    index scripts without spaces: a word of two or more characters is found through its pieces,
    with no dictionary). The index is given these words (``search_columns``)."""
    if text_.isascii() or not _NON_ASCII_WORD.search(text_):
        return _ascii_words(text_)  # English with curly quotes and dashes comes this way
    # "İ".lower() is "i" and a combining dot, which would cut the word in two; unicode61 gives "i".
    words = _TOKEN.findall(text_.replace("\u0130", "I").lower())
    out: list[str] = []
    for word in words:
        if word.isascii():
            out.append(word)
        else:
            out.extend(_fold_word(word))
    return out


def token_set(text_: str) -> set[str]:
    """``set(tokens(text_))``, each distinct word folded once: what document frequencies count. A
    word's pieces do not depend on its neighbours, so the set of the pieces is the union of each
    distinct word's (a whole body holds about five words for each distinct one)."""
    if text_.isascii() or not _NON_ASCII_WORD.search(text_):
        return set(_ascii_words(text_))
    words = set(_TOKEN.findall(text_.replace("\u0130", "I").lower()))
    out = {word for word in words if word.isascii()}
    for word in words - out:
        out.update(_fold_word(word))
    return out


def _useful(token: str) -> bool:
    if len(token) > _MAX_TOKEN or token in STOPWORDS or token.isdigit():
        return False
    # One ASCII letter is noise; one CJK character is a word.
    return len(token) > 1 or not token.isascii()


@dataclass
class DocFreq:
    """Document frequencies estimated from a random sample of indexed records.

    Exact frequencies would cost a scan of each term's posting list per lookup (as much as
    putting the term in the query); a sample of a few thousand records gets the common words right,
    and a word absent from it is rare, which is all the term choice needs to know.

    Held as two arrays (sorted word hashes, counts) rather than a dict of words: a sample of
    news holds tens of thousands of distinct words, about 5 MB as a dict and 0.6 MB this way,
    and a worker keeps one for good. The hash is Python's own: this object never leaves its process.
    """

    n_docs: int
    sample_size: int
    hashes: np.ndarray  # int64, sorted: the words seen in the sample
    counts: np.ndarray  # int64: how many sampled records hold each
    built_at: float = field(default_factory=time.monotonic)
    read_upto: int = 0  # SQLite, a whole index read: the highest docid read (later ones are newer records)
    full_at: float = field(default_factory=time.monotonic)  # when the records were last all read again

    def grown(self, new: DocFreq, read_upto: int) -> DocFreq:
        """These frequencies with those of records added since (``new``): a whole index's counts
        without reading again the records already counted (as many records as were read)."""
        hashes, at = np.unique(np.concatenate([self.hashes, new.hashes]), return_inverse=True)
        counts = np.bincount(at, weights=np.concatenate([self.counts, new.counts]), minlength=len(hashes))
        size = self.sample_size + new.sample_size
        return DocFreq(n_docs=size, sample_size=size, hashes=hashes, counts=counts.astype(np.int64),
                       read_upto=read_upto, full_at=self.full_at)

    def estimates(self, terms: Sequence[str]) -> list[float]:
        """Estimated number of indexed records holding each term (one vectorised lookup)."""
        if self.sample_size <= 0:
            return [1.0] * len(terms)
        wanted = np.fromiter(map(hash, terms), dtype=np.int64, count=len(terms))
        at = np.searchsorted(self.hashes, wanted)
        at[at >= len(self.hashes)] = 0
        found = (self.hashes[at] == wanted) if len(self.hashes) else np.zeros(len(terms), dtype=bool)
        seen = np.where(found, self.counts[at] if len(self.counts) else 0, 0)
        # Unseen in a full sample: only in newer records. Unseen in a partial one: rarer than one
        # in sample_size, so guess half of that.
        unseen = 1.0 if self.sample_size >= self.n_docs else 0.5 * self.n_docs / self.sample_size
        scale = max(self.n_docs, self.sample_size) / self.sample_size
        return np.where(seen > 0, seen * scale, unseen).tolist()

    def estimate(self, term: str) -> float:
        return self.estimates([term])[0]

    def idf(self, terms: Sequence[str]) -> np.ndarray:
        """How much finding each term in two records says they are related: -ln of the share of
        records holding it, estimated with a prior (see ``PRIOR_RECORDS``)."""
        freq = np.asarray(self.estimates(terms), dtype=np.float64)
        return np.log((self.n_docs + PRIOR_RECORDS) / (freq + 1.0))

    @classmethod
    def from_texts(cls, n_docs: int, texts: Iterable[tuple[str, Sequence[str]]]) -> DocFreq:
        # One flat buffer of each record's distinct word hashes, counted at the end: no
        # per-word objects that would outlive the count in the worker's heap. Stopwords go; the
        # other words a query never asks for (numbers, single letters) stay, costing a little
        # memory and no wrong answer, where filtering each word of each record took a third of
        # the time.
        seen = array("q")
        size = 0
        for title, body in texts:
            size += 1
            words = token_set("\n".join([title, *body]))
            words -= STOPWORDS
            seen.extend(map(hash, words))
        hashes, counts = np.unique(np.frombuffer(seen, dtype=np.int64), return_counts=True)
        return cls(n_docs=max(n_docs, size), sample_size=size, hashes=hashes, counts=counts.astype(np.int64))


TITLE_BOOST = 2.0  # a word in the headline counts like a word said e^2 ≈ 7 times in the body

# Document frequencies from a small collection cannot tell a common word from a rare one: in a
# fresh install holding five stories about iPS cells, "ips" is in most records, yet it is what
# relates them. A word's share of records is therefore estimated as if the collection also held
# PRIOR_RECORDS records in which the word appears once: (df + 1) / (N + PRIOR_RECORDS). That is the
# size of the collection RELATED_FLOOR was calibrated on, so a small collection's scores mean what
# they mean there; from ten times that size on, the collection's own frequencies decide. (On the
# calibration collection itself, 1,000 rather than 100 changed precision by under 0.01 and raised
# recall by 0.01-0.02: bench/similar.py's dev half.)
PRIOR_RECORDS = 1000

# Which scored candidates are listed (``relevance_cut``). One cosine cut cannot serve every record:
# the dev half's calibration at 1,074 records (bench/similar.py: the lowest cosine from which every
# bin of candidates is at least 90% on the record's subject) asks for 0.25, yet the written iPS-cell
# stories of tests/test_similar.py score 0.20-0.23 with the example and several written Japanese
# topics about 0.24 among themselves, and would list nothing; at 0.2 neighbouring subjects fill the
# lists (precision@5 0.86 at 101,074 records). So a candidate is
# listed from RELATED_SURE (that calibrated cosine) up whatever else is stored, and between
# RELATED_FLOOR and RELATED_SURE only when it scores at least RELATED_SHARE of the record's best
# candidate. What cosine related records reach depends on the record (short texts on a narrow
# subject share a few words with their relatives; long pages many with a close sibling), and the
# best candidate's score says which kind this one is: among the candidates scoring 0.2-0.25 on the
# dev half, 85% of those near their record's best are on its subject against 63% of those far under
# it at 1,074 records, 76% against 64% at 101,074. Under RELATED_FLOOR a candidate is on another
# subject in most cases (0.46 on-subject at 0.15-0.2) however weak the best is. RELATED_SHARE is
# calibrated as the floor was, on the dev half at 1,074 records (bench/similar.py, "Calibration by
# share of the best": the lowest share of the best from which every bin of candidates is at least
# 90% on the record's subject); checked on the held-out half and at 101,074 records in
# bench/results/similar.md.
RELATED_FLOOR = 0.2
RELATED_SHARE = 0.75
RELATED_SURE = 0.25


def relevance_cut(best: float, *, floor: float = RELATED_FLOOR, share: float = RELATED_SHARE) -> float:
    """The lowest score a candidate needs to be listed when the best candidate scores ``best``:
    ``share`` of the best, but never under ``floor`` nor over ``RELATED_SURE`` (unless ``floor`` is:
    then ``floor`` alone)."""
    return max(floor, min(RELATED_SURE, share * best))


def listed(refs: Sequence[SimilarRef], *, k: int = 5, floor: float = RELATED_FLOOR,
           share: float = RELATED_SHARE) -> list[SimilarRef]:
    """The similar readings among scored candidates (best first): at most ``k``, each from the
    ``relevance_cut`` of the best one up. A reading stored without a score (an older list) is kept."""
    scores = [r.score for r in refs if r.score is not None]
    cut = relevance_cut(max(scores), floor=floor, share=share) if scores else floor
    return [r for r in refs if r.score is None or r.score >= cut][:max(k, 0)]


# Records are compared on their headline and lead: the first LEAD_WORDS words of the body, where
# news writing says what a story is about. Later sections of long pages drift to side subjects
# (on the dev half, comparing whole bodies listed fewer related records at the same precision:
# bench/results/similar.md), and reading a fixed amount keeps the cost of scoring a candidate
# flat however long its page is.
LEAD_WORDS = 250
_LEAD_CHARS = 8 * LEAD_WORDS  # enough text for that many words in any script
_LEAD_BYTES = 2 * _LEAD_CHARS  # of a body's JSON, escapes included


def lead(body: Sequence[str]) -> str:
    """The beginning of the body that holds its first ``LEAD_WORDS`` words (or a little more)."""
    out: list[str] = []
    size = 0
    for paragraph in body:
        out.append(paragraph[:_LEAD_CHARS - size])
        size += len(out[-1]) + 1
        if size >= _LEAD_CHARS:
            break
    return "\n".join(out)


@dataclass(frozen=True)
class RecordWords:
    """A record's useful words (``tokens`` less stopwords, numbers and single letters) in order:
    its title's, and its lead's (of its first ``LEAD_WORDS`` words). Cut once per stored record:
    they score it (``counts``) and are its search columns (``columns``)."""

    title: list[str]
    lead: list[str]

    @classmethod
    def of(cls, title: str, body: Sequence[str]) -> RecordWords:
        return cls(title=[t for t in tokens(title) if _useful(t)],
                   lead=[t for t in tokens(lead(body))[:LEAD_WORDS] if _useful(t)])

    @classmethod
    def stored(cls, search_title: str | None, search_body: str | None) -> RecordWords | None:
        """The words a record's writer cut, read back from its search columns (``columns``); None
        for a row written without them."""
        if search_body is None:
            return None
        return cls(title=(search_title or "").split(), lead=search_body.split())

    def counts(self) -> tuple[Counter[str], set[str]]:
        """``term_counts``: the lead's words with their counts, and the title's."""
        return Counter(self.lead), set(self.title)

    def columns(self) -> dict[str, str | None]:
        """``search_columns``."""
        return {"search_title": " ".join(self.title), "search_body": " ".join(self.lead)}


def term_counts(title: str, body: Sequence[str]) -> tuple[Counter[str], set[str]]:
    """The useful words of the record's lead with their counts, and those of its title."""
    return RecordWords.of(title, body).counts()


class CandidateRow(Protocol):
    """A candidate's row from the search, as ``SimilarIndex.scored_rows`` gives it: besides its words,
    what the store stage needs of the records a new one relates to (worker/storage.py ``Neighbour``)."""

    # Its readings as the driver gives the records.similar column (JSON text on SQLite, the list on
    # PostgreSQL): ``readings`` decodes them. The search leaves them undecoded: most candidates
    # score under the floor, and their readings are never read.
    similar: str | list[dict[str, Any]] | None
    story_id: str | None
    published_at: datetime | None


def readings(value: str | list[dict[str, Any]] | None) -> list[dict[str, Any]]:
    """A candidate's readings (``CandidateRow.similar``), as the records.similar column holds them."""
    if isinstance(value, str):
        value = json.loads(value)
    return value or []


# 1 + ln tf for the counts a lead of LEAD_WORDS words can hold: a list index, not a call per word.
_TF_WEIGHT = [0.0] + [1.0 + math.log(tf) for tf in range(1, LEAD_WORDS + 1)]


def _weights(body_tf: Counter[str], title_words: set[str], idf: dict[str, float]) -> tuple[dict[str, float], float]:
    """``unit_vector`` before the division: each word's weight, and their norm."""
    raw = {w: (_TF_WEIGHT[tf] if 0 <= tf <= LEAD_WORDS else 1.0 + math.log(tf)) * idf[w] for w, tf in body_tf.items()}
    for w in title_words:
        raw[w] = raw.get(w, 0.0) + TITLE_BOOST * idf[w]
    values = list(raw.values())
    return raw, math.sqrt(sum(map(operator.mul, values, values))) or 1.0


def unit_vector(body_tf: Counter[str], title_words: set[str], idf: dict[str, float]) -> dict[str, float]:
    """A record (``term_counts``) as a unit vector of word weights, (1 + ln tf + title boost) *
    idf over its title and lead: what ``cosine`` compares."""
    raw, norm = _weights(body_tf, title_words, idf)
    return {w: x / norm for w, x in raw.items()}


def cosine_to(mine: dict[str, float], body_tf: Counter[str], title_words: set[str], idf: dict[str, float]) -> float:
    """``cosine(mine, unit_vector(body_tf, title_words, idf))``, the same number, computed with
    only the shared words' weights divided by the norm: a candidate shares a few dozen of its
    words with the record, and the other hundred or so need no unit weight."""
    raw, norm = _weights(body_tf, title_words, idf)
    return _dot(mine, raw, norm)


def _dot(mine: dict[str, float], raw: dict[str, float], norm: float) -> float:
    if len(mine) > len(raw):  # as ``cosine`` does: the sum runs over the shorter vector, in its order
        return sum(x / norm * mine[w] for w, x in raw.items() if w in mine)
    return sum(x * (raw[w] / norm) for w, x in mine.items() if w in raw)


def cosine_by_norm(mine: dict[str, float], body_tf: Counter[str], title_words: set[str], idf: dict[str, float],
                   norm: float, size: int) -> float:
    """``cosine_to``, the same number, for a candidate whose ``_weights`` norm and number of words
    (``size``) under these frequencies are known: only the words it shares with ``mine`` are
    weighted (so ``idf`` needs only those, and ``body_tf`` may hold only those), summed in the
    order ``cosine_to`` sums them."""

    def weight(w: str) -> float:  # _weights' value for one word, by the same operations
        tf = body_tf.get(w)
        x = 0.0 if tf is None else (_TF_WEIGHT[tf] if 0 <= tf <= LEAD_WORDS else 1.0 + math.log(tf)) * idf[w]
        return x + TITLE_BOOST * idf[w] if w in title_words else x

    if len(mine) > size:
        shared = [w for w in body_tf if w in mine] + [w for w in title_words if w not in body_tf and w in mine]
        return sum(weight(w) / norm * mine[w] for w in shared)
    return sum(x * (weight(w) / norm) for w, x in mine.items() if w in body_tf or w in title_words)


def cosine(a: dict[str, float], b: dict[str, float]) -> float:
    """Cosine similarity of two ``unit_vector``s: 0 (no word in common) to 1 (the same words,
    equally weighted)."""
    if len(a) > len(b):
        a, b = b, a
    return sum(x * b[w] for w, x in a.items() if w in b)


def query_terms(title: str, body: Sequence[str], df: DocFreq, *, max_terms: int = 24,
                postings_budget: float = 20_000, max_df_share: float = 0.1) -> list[str]:
    """The most distinctive words of the record's title and lead, best first, as the query to run.

    Score = (1 + ln tf + title boost) * idf. Terms are taken best first while the estimated
    number of postings the query must read (the sum of their document frequencies) stays under
    ``postings_budget``: that sum is what a BM25 OR query costs, so it bounds latency as the
    index grows, at the price of skipping mid-frequency words on huge indexes.
    """
    body_tf, title_words = term_counts(title, body)
    return _choose_terms(body_tf, title_words, df, max_terms=max_terms, postings_budget=postings_budget,
                         max_df_share=max_df_share)


def _choose_terms(body_tf: Counter[str], title_words: set[str], df: DocFreq, *, max_terms: int,
                  postings_budget: float, max_df_share: float) -> list[str]:
    n = max(df.n_docs, 1)
    scored: list[tuple[float, str, float]] = []
    candidates = list(body_tf.keys() | title_words)
    for term, freq in zip(candidates, df.estimates(candidates)):
        if freq > max_df_share * n and n > 50:
            continue  # in more than a tenth of all records: says nothing, costs a lot
        tf = body_tf.get(term, 0)
        weight = (1 + math.log(tf) if tf else 0.0) + (TITLE_BOOST if term in title_words else 0.0)
        scored.append((weight * math.log((n + 1) / (freq + 0.5)), term, freq))
    scored.sort(key=lambda s: (-s[0], s[1]))
    chosen: list[str] = []
    spent = 0.0
    for _score, term, freq in scored:
        if spent + freq > postings_budget:
            continue
        chosen.append(term)
        spent += freq
        if len(chosen) == max_terms:
            break
    return chosen


def _telling(body_tf: Counter[str], title_words: set[str]) -> set[str]:
    """The words a record tells most about: those of its title and those its lead repeats."""
    return title_words | {w for w, n in body_tf.items() if n > 1}


@dataclass(frozen=True)
class Gate:
    """The rows a big query ranks: those holding one of ``words``, or, with ``pairs``, two of them."""

    words: tuple[str, ...]
    pairs: bool = False


@dataclass(frozen=True)
class Ranking:
    """How a database ranks full-text matches, and so how many rows a query may rank.

    ``budget``: the estimated postings (records) of the words a query ranks by; a query over it is
    gated. ``pair_gate``: over budget, rank only the records holding two of the record's telling
    words, when it has two in the query (failing that, the one-word gate within the budget).
    """

    budget: float
    pair_gate: bool


# Declared per database because ranking a row costs each a different thing (bench/results/
# similar.md, similar-postgres.md):
# - SQLite's FTS5 ranks from the index itself, BM25 at about 1.5 µs a row: up to 5,000 rows
#   holding one telling word each (related() CPU p95 7.7 ms at 100k records; measured when the
#   query ordered by FTS5's rank, which sorts every match: ordering by bm25() itself, as now, took
#   a third less a query on the corpus's 1,799, so the budget now has room). FTS5 runs each AND
#   of a pair gate as its own pass over both words' postings, so pairs would read them many times.
# - PostgreSQL's GIN index holds no frequencies or positions: every row ranked is fetched from the
#   table and its vector read (about 4.6 µs a row, then ts_rank). At 100k records the one-word
#   gate within 5,000 postings took 11 ms of server CPU a query (27.7 ms with ts_rank_cd). But GIN
#   tests the whole boolean query on each record while reading each word's postings once, so
#   "two of the telling words" costs an index pass, not a row fetch: 2.4 ms of server CPU a query,
#   and a better list (P@5 0.935 / 0.922 against 0.916 / 0.917 at 100k; recall 0.54 / 0.53 against
#   0.58). Ungated up to 1,500 postings (about 3 ms of ranking).
RANKING = {"sqlite": Ranking(budget=5_000, pair_gate=False),
           "postgresql": Ranking(budget=1_500, pair_gate=True)}
# The pair gate's words: the record's first telling words in the query's order (28 pairs). The index
# pass reads their postings and tests the pairs on each record: with 12 words (66 pairs) it took
# 3.8 ms of server CPU a query at 100k and related() wall p95 12 ms, for recall 0.550 / 0.532
# against 8's 0.544 / 0.525.
PAIR_WORDS = 8


def _gated(terms: Sequence[str], gate: Gate | None) -> str:
    """The FTS5 query: ``(gate terms) AND (all terms)``, or all terms OR'ed without a gate.

    FTS5 ranks every row the query matches, and BM25 per row (document length lookup, per-phrase
    hit counts) costs several times what reading the posting does. The gate keeps out of the
    ranking the records that share none of the gate's words, most of the matches, while every
    query word still scores the records that pass it. (Gate words appear twice in the expression,
    so BM25 counts them twice: a bonus for the record's telling words.)
    """
    if gate is None:
        return _fts5_query(terms)
    if gate.pairs:
        raise ValueError("similar readings: SQLite's query has no pair gate (see RANKING)")
    return f"({_fts5_query(gate.words)}) AND ({_fts5_query(terms)})"


def _fts5_query(terms: Sequence[str]) -> str:
    # Each term as an FTS5 string: keywords (OR, NEAR), '*', '^', ':' and quotes lose their meaning.
    return " OR ".join('"' + t.replace('"', '""') + '"' for t in terms)


def _tsquery(terms: Sequence[str]) -> str:
    return " | ".join(_tsword(t) for t in terms)


def _tsword(term: str) -> str:
    return "'" + term.replace("\\", "\\\\").replace("'", "''") + "'"


def _tsquery_gate(gate: Gate) -> str:
    """The PostgreSQL gate: any of its words, or (``pairs``) any two of them."""
    if not gate.pairs:
        return _tsquery(gate.words)
    return " | ".join(f"({_tsword(a)} & {_tsword(b)})" for a, b in itertools.combinations(gate.words, 2))


def _candidate_counts(row: Any) -> tuple[Counter[str], set[str]]:
    """``term_counts`` of a search result: from its stored words (``search_columns``), or from
    its text for a row written without them."""
    _id, title, search_title, search_body, body = row[:5]
    if search_body is not None:
        return Counter(search_body.split()), set((search_title or "").split())
    return term_counts(title, _lead_paragraphs(body))


def _shared_counts(row: Any, mine: dict[str, float]) -> tuple[Counter[str], set[str]]:
    """``_candidate_counts`` of a search result with its stored words, as ``cosine_by_norm`` reads
    them: of its lead's words only those in ``mine``, counted in the same order (a candidate shares
    a few dozen of its words with the record), and all of its title's."""
    _id, _title, search_title, search_body = row[:4]
    return Counter(filter(mine.__contains__, search_body.split())), set((search_title or "").split())


# Candidates' norms a process keeps under one set of frequencies (``SimilarIndex._norms_under``):
# about 370 bytes each with the key, 1.5 MB when full.
_NORMS_HELD = 4096


def _words_key(row: Any) -> tuple[str, int, int] | None:
    """A search result's record id and the hashes of its search columns: the same key, the same
    words (a changed record has other columns, and a 2^-128 chance of the same two hashes); None
    for a row without them, whose words are cut from its text."""
    if row[3] is None:
        return None
    return row[0], hash(row[2]), hash(row[3])


def _lead_paragraphs(value: Any) -> list[str]:
    """The paragraphs of a body the search returned cut to its first characters (enough for the
    lead): the JSON array may end mid-string, so it is closed after its last complete string."""
    if not isinstance(value, str):
        return _body_list(value)
    try:
        return _body_list(json.loads(value))
    except ValueError:
        pass
    end = len(value)
    while (end := value.rfind('",', 0, end)) > 0:
        escapes = len(value[:end]) - len(value[:end].rstrip("\\"))
        if escapes % 2 == 0:  # an unescaped quote: the end of a string
            try:
                return _body_list(json.loads(value[:end + 1] + "]"))
            except ValueError:
                pass
    return []


def _body_list(value: Any) -> list[str]:
    if isinstance(value, str):
        try:
            value = json.loads(value)
        except ValueError:
            return [value]
    if isinstance(value, list):
        return [p for p in value if isinstance(p, str)]
    return []


def enter_lists(record_id: str, title: str, scored: Sequence[SimilarRef],
                lists: dict[str, list[SimilarRef]], *, k: int = 5, floor: float = RELATED_FLOOR,
                share: float = RELATED_SHARE) -> dict[str, list[SimilarRef]]:
    """The stored records whose similar readings a new record enters, with their new lists.

    ``scored`` are the new record's scored candidates (``SimilarIndex.scored``) and ``lists``
    their current readings. Cosine is symmetric, so a candidate's score is also how related the
    new record is to it: the new record enters a list that is not full, or displaces its weakest
    reading (one stored without a score counts as weakest), when the list with it still lists it
    (``listed``: from ``floor``, and from ``share`` of the list's best score, up). A new record
    that becomes a list's best may leave readings under that share: they go, as ``related`` would
    no longer list them.
    """
    changed: dict[str, list[SimilarRef]] = {}
    for ref in scored:
        if ref.score is None or ref.score < floor:
            continue
        current = [r for r in lists.get(str(ref.id), []) if str(r.id) != str(record_id)]
        if len(current) >= k:
            weakest = min(current, key=lambda r: -1.0 if r.score is None else r.score)
            if weakest.score is not None and weakest.score >= ref.score:
                continue
            current.remove(weakest)
        current.append(SimilarRef(id=record_id, title=title, score=ref.score))
        current.sort(key=lambda r: (r.score is None, -(r.score or 0.0)))  # best first, unscored last
        kept = listed(current, k=k, floor=floor, share=share)
        if any(str(r.id) == str(record_id) for r in kept):
            changed[str(ref.id)] = kept
    return changed


# --- schema ---------------------------------------------------------------------------------

# The body is a JSON array of paragraphs; the index wants their text. Guarded so that a body that
# is not an array of strings indexes as empty instead of failing the write to `records`.
_SQLITE_BODY_TEXT = (
    "(CASE WHEN json_valid({b}) AND json_type({b}) = 'array' "
    "THEN (SELECT group_concat(value, char(10)) FROM json_each({b}) WHERE type = 'text') ELSE '' END)"
)


def _indexed(prefix: str) -> str:
    """The title and body text the index is given for a row: the ``search_*`` columns where the
    writer filled them (CJK text, see ``search_columns``), else the row's own text."""
    return (f"coalesce({prefix}.search_title, {prefix}.title), "
            f"substr(coalesce({prefix}.search_body, {_SQLITE_BODY_TEXT.format(b=prefix + '.body')}), 1, {_LEAD_CHARS})")


def _sqlite_unindex(prefix: str) -> str:
    # External-content FTS5 deletes by re-tokenizing the values that were indexed; the trigger's
    # old.* are exactly those, because every change to them passes through these triggers.
    return (
        "INSERT INTO similar_fts(similar_fts, rowid, title, body) "
        f"SELECT 'delete', docid, {_indexed(prefix)} "
        f"FROM similar_docs WHERE record_id = {prefix}.id;\n"
        f"DELETE FROM similar_docs WHERE record_id = {prefix}.id;\n"
    )


def _sqlite_index(prefix: str) -> str:
    return (
        f"INSERT INTO similar_docs(record_id) SELECT {prefix}.id WHERE {prefix}.duplicate_of IS NULL;\n"
        "INSERT INTO similar_fts(rowid, title, body) "
        f"SELECT docid, {_indexed(prefix)} "
        f"FROM similar_docs WHERE record_id = {prefix}.id;\n"
    )


def search_columns(title: str, body: Sequence[str]) -> dict[str, str | None]:
    """The ``records.search_title`` and ``search_body`` values for a record: the useful words of
    its title and of its lead (``term_counts``), space-separated, in order. The index is given
    these (CJK text in two-character pieces, see ``tokens``), and scoring a candidate reads them
    instead of cutting its text into words again: the work is done once, when the record is
    written, not for every query it is a candidate of."""
    return RecordWords.of(title, body).columns()


# Built once: text() scans its SQL for parameters every time one is made.
# Ordered by bm25() itself, not by FTS5's ``rank`` column (``rank MATCH 'bm25(...)'``, the same
# function and weights): to order by ``rank`` FTS5 runs a statement of its own that sorts every
# match and computes BM25 twice a row (for the order and for the column), where ORDER BY bm25()
# LIMIT computes it once and keeps only the best :n. Ties come in docid order either way. On the
# 1,799 real pages of bench/stages_ab.py the query took a third less CPU for the same rows.
# Besides what is scored, each candidate's readings, story and publication date (``CandidateRow``):
# the store stage reads them here rather than in a second statement, the readings left as the
# driver gives them (``readings``). (SIMILAR is a keyword in PostgreSQL: the column's name is quoted.)
_SQLITE_SEARCH = text(
    "SELECT d.record_id, r.title, r.search_title, r.search_body, "
    "CASE WHEN r.search_body IS NULL THEN substr(r.body, 1, :lead) END AS lead, "
    "r.\"similar\", r.story_id, r.published_at FROM ("
    "  SELECT rowid AS docid, bm25(similar_fts, :title_weight, 1.0) AS score FROM similar_fts"
    "  WHERE similar_fts MATCH :q ORDER BY score LIMIT :n) AS hit "
    "JOIN similar_docs d ON d.docid = hit.docid JOIN records r ON r.id = d.record_id "
    "WHERE r.duplicate_of IS NULL ORDER BY hit.score").columns(published_at=UTCDateTime)

_PG_SEARCH = text(
    "SELECT id, title, search_title, search_body, CASE WHEN search_body IS NULL "
    "THEN substr(CAST(body AS text), 1, :lead) END AS lead, \"similar\", story_id, published_at "
    "FROM records, to_tsquery('simple', :q) AS q, to_tsquery('simple', :g) AS g "
    "WHERE duplicate_of IS NULL AND search_vector @@ g AND NOT (id = ANY(:ex)) "
    "ORDER BY ts_rank(CAST(:w AS float4[]), search_vector, q, 1) DESC, id LIMIT :n"
).columns(published_at=UTCDateTime)

# A record's title and the start of its body (all that is compared, see LEAD_WORDS), and its words
# as its writer cut them (``search_columns``), when it did.
_RECORD_LEAD = text("SELECT id, title, substr(CAST(body AS TEXT), 1, :lead) AS lead, duplicate_of, search_title, "
                    "search_body FROM records WHERE id = :id")

_SQLITE_SCHEMA = [
    # records has a text primary key, so its implicit rowid may change on VACUUM: the index
    # numbers documents itself and maps them to record ids here.
    "CREATE TABLE IF NOT EXISTS similar_docs (docid INTEGER PRIMARY KEY, record_id VARCHAR(36) NOT NULL UNIQUE)",
    "CREATE VIEW IF NOT EXISTS similar_content AS SELECT d.docid AS docid, coalesce(r.search_title, r.title) "
    f"AS title, substr(coalesce(r.search_body, {_SQLITE_BODY_TEXT.format(b='r.body')}), 1, {_LEAD_CHARS}) AS body "
    "FROM similar_docs d JOIN records r ON r.id = d.record_id",
    # External content: the text lives only in `records`; the index holds postings and sizes.
    "CREATE VIRTUAL TABLE IF NOT EXISTS similar_fts USING fts5(title, body, content='similar_content', "
    "content_rowid='docid', tokenize='unicode61 remove_diacritics 2')",
    "CREATE TRIGGER IF NOT EXISTS similar_records_insert AFTER INSERT ON records BEGIN\n"
    + _sqlite_index("new") + "END",
    "CREATE TRIGGER IF NOT EXISTS similar_records_update AFTER UPDATE OF title, body, duplicate_of, search_title, "
    "search_body ON records "
    "WHEN old.title IS NOT new.title OR old.body IS NOT new.body OR old.duplicate_of IS NOT new.duplicate_of "
    "OR old.search_title IS NOT new.search_title OR old.search_body IS NOT new.search_body "
    "OR old.id IS NOT new.id BEGIN\n" + _sqlite_unindex("old") + _sqlite_index("new") + "END",
    "CREATE TRIGGER IF NOT EXISTS similar_records_delete AFTER DELETE ON records BEGIN\n"
    + _sqlite_unindex("old") + "END",
]

# Each store is its own transaction and writes a small segment; a query seeks every term in every
# segment. FTS5 merges a level once it holds 4 segments by default; at 2 the index keeps about one
# segment per level (10,000 load-run records: 6 segments, not 10; the similar-readings query 2.3 ms,
# not 2.9; writes no slower). The setting is stored in the index, so an index made before it was
# chosen gets it from ``tune_index`` at the next start (worker/schema.py ``prepare``).
AUTOMERGE = 2

_PG_LOCK_KEY = 0x73696D696C  # "simil": one process at a time alters the records table

_PG_SCHEMA = [
    # Immutable so a generated column may use it: it only reads its argument.
    "CREATE OR REPLACE FUNCTION gleaner_body_text(body json) RETURNS text LANGUAGE sql IMMUTABLE "
    "PARALLEL SAFE AS $$ SELECT coalesce(string_agg(p, E'\\n'), '') FROM json_array_elements_text("
    "CASE WHEN json_typeof(body) = 'array' THEN body ELSE '[]'::json END) AS p $$",
    "ALTER TABLE records ADD COLUMN IF NOT EXISTS search_vector tsvector GENERATED ALWAYS AS ("
    "setweight(to_tsvector('simple', coalesce(search_title, title, '')), 'A') || "
    f"setweight(to_tsvector('simple', left(coalesce(search_body, gleaner_body_text(body)), {_LEAD_CHARS})), 'D')) "
    "STORED",
    "CREATE INDEX IF NOT EXISTS ix_records_search_vector ON records USING gin (search_vector) "
    "WHERE duplicate_of IS NULL",
]

# What PostgreSQL keeps in the table and index themselves, as (is it so?, make it so): applied by
# ``create_schema`` and, to a database made before they were chosen, by ``tune_index`` at start.
# Both spare the similar-readings query work on every row it looks at (bench/results/similar-postgres.md):
# - The vector stays in the row (STORAGE MAIN: compressed if need be, moved out only if the row
#   would not fit a page). Out of line, each row the query tests or ranks cost a TOAST index
#   lookup and fetch; the planner does not count that, and at 1k records it chose a scan testing
#   every row (that filter alone: 3.8 ms a query; 0.5 ms, 0.16 of it server CPU, with the vectors
#   in the rows). Rows written before keep theirs out of line until they are next written.
# - The GIN index without its pending list (fastupdate off): with it, new entries wait in an
#   unsorted list that every query reads whole (684 rows waiting added about 3 ms to each query at
#   100k) until vacuum or a writer that finds it full merges them (one insert then took 150-190 ms).
#   Off, each insert updates the index itself: 1.1 ms instead of 0.6 at 100k records.
_PG_TUNING = [
    ("SELECT attstorage = 'm' FROM pg_attribute WHERE attrelid = 'records'::regclass "
     "AND attname = 'search_vector'",
     "ALTER TABLE records ALTER COLUMN search_vector SET STORAGE MAIN"),
    ("SELECT coalesce('fastupdate=off' = ANY(reloptions), false) FROM pg_class "
     "WHERE oid = 'ix_records_search_vector'::regclass",
     "ALTER INDEX ix_records_search_vector SET (fastupdate = off)"),
]


def create_schema(conn: Connection) -> bool:
    """Create the index and what keeps it in sync, if missing; True if the index is new.

    Takes a connection so ``rebuild_index`` can run it in its own transaction; the caller commits.
    Safe to run again. (Migrations write out their own statements: tests/test_schema.py checks
    that the head revision makes the same objects.)
    """
    dialect = conn.dialect.name
    if dialect == "sqlite":
        existed = conn.execute(
            text("SELECT 1 FROM sqlite_master WHERE name = 'similar_fts'")).first() is not None
        for statement in _SQLITE_SCHEMA:
            conn.exec_driver_sql(statement)
        return not existed
    if dialect == "postgresql":
        conn.execute(text("SELECT pg_advisory_xact_lock(:k)"), {"k": _PG_LOCK_KEY})
        existed = conn.execute(text(
            "SELECT 1 FROM information_schema.columns WHERE table_name = 'records' "
            "AND column_name = 'search_vector' AND table_schema = current_schema()")).first() is not None
        for statement in _PG_SCHEMA:
            if existed and statement.startswith("CREATE OR REPLACE FUNCTION"):
                continue  # replacing a function a generated column uses would need a table rewrite
            conn.exec_driver_sql(statement)
        _tune_postgresql(conn)
        return not existed
    raise NotImplementedError(f"similar readings: no full-text search for {dialect}")


def tune_index(conn: Connection) -> bool:
    """Apply the index's stored settings (SQLite's FTS5 ``automerge``, PostgreSQL's ``_PG_TUNING``)
    if it lacks them; True if anything changed. Reads first, so the processes starting together
    take no write lock for it."""
    if conn.dialect.name == "postgresql":
        if conn.execute(text("SELECT to_regclass('ix_records_search_vector')")).scalar() is None:
            return False
        return _tune_postgresql(conn)
    if conn.dialect.name != "sqlite" or conn.execute(
            text("SELECT 1 FROM sqlite_master WHERE name = 'similar_fts'")).first() is None:
        return False
    current = conn.exec_driver_sql("SELECT v FROM similar_fts_config WHERE k = 'automerge'").scalar()
    if current is not None and int(current) == AUTOMERGE:
        return False
    conn.exec_driver_sql(f"INSERT INTO similar_fts(similar_fts, rank) VALUES ('automerge', {AUTOMERGE})")
    return True


def _tune_postgresql(conn: Connection) -> bool:
    if all(conn.exec_driver_sql(check).scalar() for check, _change in _PG_TUNING):
        return False
    conn.execute(text("SELECT pg_advisory_xact_lock(:k)"), {"k": _PG_LOCK_KEY})
    for check, change in _PG_TUNING:
        if not conn.exec_driver_sql(check).scalar():
            conn.exec_driver_sql(change)
    # Entries already waiting in the pending list: merged now, not left for every query to read.
    conn.exec_driver_sql("SELECT gin_clean_pending_list('ix_records_search_vector')")
    return True


def rebuild_index(conn: Connection) -> None:
    """Create the index if missing and re-index every canonical record; the caller commits."""
    create_schema(conn)
    if conn.dialect.name == "sqlite":
        conn.exec_driver_sql("INSERT INTO similar_fts(similar_fts) VALUES ('delete-all')")
        conn.exec_driver_sql("DELETE FROM similar_docs")
        conn.exec_driver_sql(
            "INSERT INTO similar_docs(record_id) SELECT id FROM records WHERE duplicate_of IS NULL "
            "ORDER BY created_at, id")
        # Not FTS5's own 'rebuild': it cannot read a content view that calls json_each
        # ("SQL logic error" on SQLite 3.40); a plain INSERT ... SELECT can.
        conn.exec_driver_sql(
            "INSERT INTO similar_fts(rowid, title, body) SELECT docid, title, body FROM similar_content")
        conn.exec_driver_sql("INSERT INTO similar_fts(similar_fts) VALUES ('optimize')")
    else:
        conn.exec_driver_sql("REINDEX INDEX ix_records_search_vector")
        conn.exec_driver_sql("ANALYZE records")


# --- the index ------------------------------------------------------------------------------


class SimilarIndex:
    """Related records by full-text ranking over ``records`` (see the module docstring).

    One per process is enough (it caches the document-frequency sample, and the norms of the
    candidates scored under it); thread-safe.
    """

    def __init__(self, engine: Engine, *, title_weight: float = 3.0, max_terms: int = 24,
                 postings_budget: float = 20_000, postings_share: float = 0.02, max_df_share: float = 0.1,
                 rank_budget: float | None = None, pair_gate: bool | None = None, sample_size: int = 3000,
                 sample_max_age: float = 900.0, candidates: int = 12, floor: float = RELATED_FLOOR,
                 share: float = RELATED_SHARE) -> None:
        self.engine = engine
        self.dialect = engine.dialect.name
        if self.dialect not in ("sqlite", "postgresql"):
            raise NotImplementedError(f"similar readings: no full-text search for {self.dialect}")
        # PostgreSQL: the queries' reads each run on their own, outside a transaction: no BEGIN
        # and ROLLBACK to wait for around each (related() sent 2 of each beside its 2 statements;
        # at 100k records its queries' wall time 3.1-3.3 ms instead of 6.0-6.9 on the shared
        # 2-core machine). The same pool: only a connection's autocommit is switched while it is
        # checked out.
        self._reads = engine.execution_options(isolation_level="AUTOCOMMIT") if self.dialect == "postgresql" else engine
        self.title_weight = title_weight
        self.max_terms = max_terms
        # The budget bounds the postings a query reads. Reading a posting is cheap (about 0.1 µs
        # here: 5k → 20k postings added 1.2 ms at 100k records); ranking its row with BM25 is not
        # (about 1.5 µs), hence the gate below, which bounds the rows ranked. 20k holds the two or
        # three words a subject's pages repeat even when each is in 5-8% of the records, as the
        # everyday words of a subject ("tax", "sleep", "trade") are at 100k; 5k held none of them.
        # From 1M records on, postings_share of the records (2%).
        self.postings_budget = postings_budget
        self.postings_share = postings_share
        self.max_df_share = max_df_share
        # The gate: ranking's per-row cost is paid only on the records holding the query's gate
        # words (see _gate); a query whose words are all in fewer records than rank_budget is not
        # gated. Both from the database's RANKING unless given.
        ranking = RANKING[self.dialect]
        self.rank_budget = ranking.budget if rank_budget is None else rank_budget
        self.pair_gate = ranking.pair_gate if pair_gate is None else pair_gate
        self.sample_size = sample_size
        self.sample_max_age = sample_max_age  # seconds
        self.candidates = candidates  # records the full-text query returns for cosine to rank
        self.floor = floor  # the lowest score listed; with share 0, the only cut (relevance_cut)
        self.share = share
        self._df: DocFreq | None = None
        self._norms: tuple[DocFreq | None, dict[tuple[str, int, int], tuple[float, int]]] = (None, {})
        self._lock = threading.Lock()
        self._refreshing = False

    # --- schema and maintenance -------------------------------------------------------------

    def ensure_schema(self) -> None:
        """Create the index if missing and fill it from existing records when just created."""
        with self.engine.begin() as conn:
            created = create_schema(conn)
        if created and self.dialect == "sqlite":
            self.rebuild()

    def remove(self, record_id: str) -> None:
        """Drop a record from the index while keeping its row (deleting the row drops it anyway).

        On SQLite the record comes back at its next change of title, body or duplicate_of;
        PostgreSQL indexes the row itself, so there this does nothing.
        """
        if self.dialect != "sqlite":
            return
        with self.engine.begin() as conn:
            row = conn.execute(text(
                f"SELECT d.docid, {_indexed('r')} FROM similar_docs d JOIN records r ON r.id = d.record_id "
                "WHERE d.record_id = :id"), {"id": str(record_id)}).first()
            if row is None:
                return
            conn.execute(text(
                "INSERT INTO similar_fts(similar_fts, rowid, title, body) VALUES ('delete', :docid, :title, :body)"),
                {"docid": row[0], "title": row[1], "body": row[2]})
            conn.execute(text("DELETE FROM similar_docs WHERE docid = :docid"), {"docid": row[0]})

    def rebuild(self) -> None:
        """Re-index every canonical record from scratch (after a restore, or if in doubt)."""
        with self.engine.begin() as conn:
            rebuild_index(conn)
        self._df = None

    def check(self) -> None:
        """Raise AssertionError if the SQLite index is damaged or does not cover exactly the
        canonical records. (FTS5's content comparison, 'integrity-check' with rank 1, trips on
        the same json_each limitation as 'rebuild', so the coverage half is checked here.)"""
        if self.dialect != "sqlite":
            return
        with self.engine.begin() as conn:
            conn.exec_driver_sql("INSERT INTO similar_fts(similar_fts) VALUES ('integrity-check')")
            missing = conn.exec_driver_sql(
                "SELECT count(*) FROM records r WHERE r.duplicate_of IS NULL "
                "AND NOT EXISTS (SELECT 1 FROM similar_docs d WHERE d.record_id = r.id)").scalar()
            extra = conn.exec_driver_sql(
                "SELECT count(*) FROM similar_docs d WHERE NOT EXISTS "
                "(SELECT 1 FROM records r WHERE r.id = d.record_id AND r.duplicate_of IS NULL)").scalar()
        if missing or extra:
            raise AssertionError(f"similar index: {missing} records not indexed, {extra} stale entries")

    # --- queries ----------------------------------------------------------------------------

    def related(self, record_id: str, k: int = 5) -> list[SimilarRef]:
        """The k stored records most related to ``record_id``, best first.

        Never the record itself, its canonical record (if it is a duplicate), nor any record that
        is a duplicate (of it or of anything else). Empty if the record does not exist.
        """
        with self._reads.connect() as conn:
            row = conn.execute(_RECORD_LEAD, {"id": str(record_id), "lead": _LEAD_BYTES}).first()
        if row is None:
            return []
        exclude = {row.id} | ({row.duplicate_of} if row.duplicate_of else set())
        # The words its writer cut (as a candidate's are read): cutting the lead again took a
        # millisecond of each query's CPU at 100k records.
        words = RecordWords.stored(row.search_title, row.search_body)
        return self.related_to(row.title, _lead_paragraphs(row.lead), k=k, exclude=exclude, record_words=words)

    def related_to(self, title: str, body: Sequence[str], *, k: int = 5, exclude: Iterable[str] = (),
                   record_words: RecordWords | None = None) -> list[SimilarRef]:
        """The k canonical records most related to a text that need not be stored, best first,
        each with its ``score`` (``cosine`` of the two ``unit_vector``s); only those ``listed``
        (from ``floor``, and from ``share`` of the best score, up). ``record_words``: as in ``scored``."""
        return self.listed(self.scored(title, body, exclude=exclude, record_words=record_words), k=k)

    def listed(self, scored: Sequence[SimilarRef], *, k: int = 5) -> list[SimilarRef]:
        """``listed`` with this index's ``floor`` and ``share``."""
        return listed(scored, k=k, floor=self.floor, share=self.share)

    def scored(self, title: str, body: Sequence[str], *, exclude: Iterable[str] = (),
               record_words: RecordWords | None = None) -> list[SimilarRef]:
        """Up to ``candidates`` records sharing the text's distinctive words, scored and sorted
        best first, with no floor: the full-text index finds them, ``cosine`` ranks them.
        ``record_words``: the text's ``RecordWords``, if the caller has cut them already."""
        return [ref for ref, _row in self.scored_rows(title, body, exclude=exclude, record_words=record_words)]

    def scored_rows(self, title: str, body: Sequence[str], *, exclude: Iterable[str] = (),
                    record_words: RecordWords | None = None) -> list[tuple[SimilarRef, CandidateRow]]:
        """``scored``, each candidate with its row (``CandidateRow``)."""
        df = self._doc_freq()
        budget = max(self.postings_budget, self.postings_share * df.n_docs)
        body_tf, title_words = (record_words or RecordWords.of(title, body)).counts()
        terms = _choose_terms(body_tf, title_words, df, max_terms=self.max_terms, postings_budget=budget,
                              max_df_share=self.max_df_share)
        if not terms:
            return []
        excluded = {str(e) for e in exclude}
        limit = self.candidates + len(excluded)
        gate = self._gate(terms, df, _telling(body_tf, title_words))
        if self.dialect == "sqlite":
            rows = self._search_sqlite(_gated(terms, gate), limit)
        else:
            rows = self._search_postgresql(terms, gate, limit, excluded)
        found = [r for r in rows if r[0] not in excluded]
        # A candidate's norm depends only on its words and the frequencies: known for those already
        # scored under these (the same records come up again and again), whose other words then
        # need neither a weight nor an idf, nor counting.
        norms = self._norms_under(df)
        keys = [_words_key(r) for r in found]
        known = [None if key is None else norms.get(key) for key in keys]
        counted = [_candidate_counts(r) if n is None else None for r, n in zip(found, known)]
        # One lookup for every word involved: a numpy call per record would cost more than the math.
        words = list(set().union(body_tf.keys(), title_words, *(c.keys() | t for c, t in filter(None, counted))))
        idf = dict(zip(words, df.idf(words).tolist()))
        mine = unit_vector(body_tf, title_words, idf)
        refs = []
        for r, key, n, counts in zip(found, keys, known, counted):
            if counts is not None:
                raw, norm = _weights(*counts, idf)
                score = _dot(mine, raw, norm)
                if key is not None:
                    norms[key] = (norm, len(raw))
            else:
                score = cosine_by_norm(mine, *_shared_counts(r, mine), idf, *n)
            refs.append((SimilarRef(id=r[0], title=r[1], score=round(score, 4)), r))
        refs.sort(key=lambda pair: -pair[0].score)
        return refs

    def _norms_under(self, df: DocFreq) -> dict[tuple[str, int, int], tuple[float, int]]:
        """The candidates' norms and sizes known under ``df`` (by ``_words_key``); empty for new
        frequencies, and emptied at ``_NORMS_HELD`` entries."""
        held_df, norms = self._norms
        if held_df is not df or len(norms) >= _NORMS_HELD:
            norms = {}
            self._norms = (df, norms)
        return norms

    def _gate(self, terms: Sequence[str], df: DocFreq, telling: set[str]) -> Gate | None:
        """The query's gate: None (no gate) when the whole query fits ``rank_budget``; with
        ``pair_gate``, the records holding two of the record's first ``PAIR_WORDS`` telling words
        (``telling``: in its title or repeated in its lead) among the query's; otherwise the records
        holding one of its telling words, best first while their estimated postings fit the budget,
        failing those any query words that fit.

        Why telling words and not the rarest: the rows ranked must be the likely relatives, and
        what a page shares with its relatives is the words it repeats or names in its title. A rare
        word said once is what a page shares with pages naming it in passing: gated on the rarest
        words (the former gate: words in at most 500 records at 100k), a third of the records' lists
        were empty at 100k among distractors naming the collection's rarer words in passing, the
        candidates being those distractors (bench/results/similar.md). Two of them: a page naming
        one in passing seldom names a second.
        """
        freqs = df.estimates(terms)
        if sum(freqs) <= self.rank_budget:
            return None
        if self.pair_gate:
            told = tuple(t for t in terms if t in telling)[:PAIR_WORDS]
            if len(told) >= 2:
                return Gate(told, pairs=True)
        for allowed in (telling, None):
            words: list[str] = []
            spent = 0.0
            for term, freq in zip(terms, freqs):
                if (allowed is None or term in allowed) and spent + freq <= self.rank_budget:
                    words.append(term)
                    spent += freq
            if words:
                return Gate(tuple(words))
        return None

    def _search_sqlite(self, query: str, limit: int) -> list[Any]:
        with self.engine.connect() as conn:
            return list(conn.execute(_SQLITE_SEARCH, {"q": query, "title_weight": float(self.title_weight), "n": limit,
                                                      "lead": _LEAD_BYTES}))

    def _search_postgresql(self, terms: Sequence[str], gate: Gate | None, limit: int,
                           excluded: set[str]) -> list[Any]:
        # Weights are {D, C, B, A}: body words count 1/title_weight of title words. Only rows that
        # pass the gate are ranked, by all the terms. ts_rank and not ts_rank_cd: the same lists
        # (P@5 0.916 / 0.917 against 0.913 / 0.915 at 100k records), a third of the server's CPU.
        weights = "{%r, 0, 0, 1.0}" % (1.0 / float(self.title_weight))
        with self._reads.connect() as conn:
            return list(conn.execute(_PG_SEARCH, {
                "q": _tsquery(terms), "g": _tsquery(terms) if gate is None else _tsquery_gate(gate), "w": weights,
                "n": limit, "ex": sorted(excluded), "lead": _LEAD_BYTES}))

    # --- document frequencies ---------------------------------------------------------------

    def _doc_freq(self) -> DocFreq:
        df = self._df
        if df is not None and not self._stale(df):
            return df
        if df is not None and df.sample_size < df.n_docs:
            # A big index: re-reading the sample takes about half a second, too long to hold up a
            # query, and the old frequencies are still nearly right. Refresh it in the background.
            self._refresh_in_background()
            return df
        with self._lock:
            df = self._df
            if df is None or self._stale(df):
                df = self._df = self._grown(df) if df is not None else self._sample()
        return df

    def _grown(self, df: DocFreq) -> DocFreq:
        """A small index read whole, brought up to date: on SQLite only the records added since it
        was read are read and counted (re-reading them all every few seconds cost more than
        everything else the store stage does, bench/results/e2e-profile.md); the whole index is
        read again every ``sample_max_age``, which also forgets replaced and removed records.
        The store stage's ``RecordWords`` cannot stand in for this process's own new records: they
        hold the useful words of the title and lead, these counts every word of the whole text, and
        cutting those is most of the cost (0.39 ms of a record's ~0.41 on real pages, the read 0.02)."""
        if self.dialect != "sqlite" or not df.read_upto or time.monotonic() - df.full_at >= self.sample_max_age:
            return self._sample()
        with self.engine.connect() as conn:
            top = conn.execute(text("SELECT max(docid) FROM similar_docs")).scalar() or 0
            if top > self.sample_size:
                return self._sample()  # too big to read whole now: a random sample from here on
            rows = conn.execute(text(
                "SELECT r.title, r.body FROM similar_docs d JOIN records r ON r.id = d.record_id "
                "WHERE d.docid > :after AND d.docid <= :top"), {"after": df.read_upto, "top": top})
            new = DocFreq.from_texts(0, ((r.title or "", _body_list(r.body)) for r in rows))
        return df.grown(new, top)

    def _refresh_in_background(self) -> None:
        with self._lock:
            if self._refreshing:
                return
            self._refreshing = True

        def run() -> None:
            try:
                fresh = self._sample()
                with self._lock:
                    self._df = fresh
            except Exception:  # noqa: BLE001 - keep the old sample; the next stale query retries
                log.warning("similar readings: refreshing the word-frequency sample failed", exc_info=True)
            finally:
                self._refreshing = False

        threading.Thread(target=run, name="similar-sample", daemon=True).start()

    def _stale(self, df: DocFreq) -> bool:
        age = time.monotonic() - df.built_at
        if df.sample_size >= df.n_docs:
            # A small index read whole: cheap to re-read, and it changes fast while it is small.
            return age >= min(self.sample_max_age, 5.0 + 0.01 * df.n_docs)
        return age >= self.sample_max_age

    def refresh_sample(self) -> None:
        """Re-read the document-frequency sample now (it refreshes itself every sample_max_age)."""
        with self._lock:
            self._df = self._sample()

    def _sample(self) -> DocFreq:
        # Rows are counted as they arrive, a chunk at a time: holding a few thousand bodies at
        # once would leave the worker's heap that much bigger for good (Python keeps the arenas).
        with self.engine.connect() as conn:
            if self.dialect == "sqlite":
                # docids are dense-ish integers: random ones are a cheap uniform sample.
                top = conn.execute(text("SELECT max(docid) FROM similar_docs")).scalar() or 0
                whole = top <= self.sample_size
                if whole:
                    picks = list(range(1, top + 1))
                else:
                    picks = random.sample(range(1, top + 1), self.sample_size)
                chunks = (picks[i:i + 200] for i in range(0, len(picks), 200))
                rows = (row for chunk in chunks for row in conn.execute(text(
                    "SELECT r.title, r.body FROM similar_docs d JOIN records r ON r.id = d.record_id "
                    f"WHERE d.docid IN ({','.join(str(p) for p in chunk)})")))
                # A whole read counts the records it finds: an updated or removed record leaves its
                # docid unused, so max(docid) overstates the count, and a count above what was read
                # would pass for a partial sample (refreshed only every sample_max_age, _stale).
                n_docs = 0 if whole else top
            else:
                n_docs = conn.execute(text(
                    "SELECT count(*) FROM records WHERE duplicate_of IS NULL")).scalar() or 0
                if n_docs <= self.sample_size:
                    query, params = "SELECT title, body FROM records WHERE duplicate_of IS NULL", {}
                else:
                    pct = min(100.0, 100.0 * 2 * self.sample_size / n_docs)
                    query, params = (f"SELECT title, body FROM records TABLESAMPLE BERNOULLI ({pct:.6f}) "
                                     "WHERE duplicate_of IS NULL LIMIT :n", {"n": self.sample_size})
                rows = conn.execution_options(yield_per=200).execute(text(query), params)
            df = DocFreq.from_texts(n_docs, ((r.title or "", _body_list(r.body)) for r in rows))
            if self.dialect == "sqlite" and whole:
                df.read_upto = top  # every docid up to here is counted: later reads add the newer ones
            return df
