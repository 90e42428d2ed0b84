"""The shared corpora (``../shared/corpus/``) as one list of pages, each with its truth, its half
of a fixed development/held-out split, and the scores every extraction benchmark uses.

    from bench.corpora import load, shingle_f1, word_f1, ...

The pages are read from the shared folder at run time and never copied. The split is fixed by a
hash of each page's split key (the publisher for ``fundus-eval``, whose pages share a template per
publisher; the page id elsewhere), so the same page is always in the same half: tune on ``dev``,
report ``held-out`` beside it.
"""

from __future__ import annotations

import gzip
import hashlib
import json
import re
import statistics
import sys
from collections import Counter
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import date, datetime
from pathlib import Path

SHARED = Path(__file__).resolve().parents[2] / "shared" / "corpus"
SETS = ("scrapinghub", "wcxb-articles", "fundus-eval", "htmldate")
HALVES = ("dev", "held-out")

_TOKEN = re.compile(r"\w+")


@dataclass(frozen=True)
class Page:
    """One page of a shared set with what a person marked true on it (None where unmarked)."""

    set: str
    id: str
    url: str
    html: bytes = field(repr=False)  # as saved: the page's own encoding
    body: str | None = None  # paragraphs separated by newlines
    title: str | None = None
    author: str | None = None
    published: str | None = None  # ISO date as marked: YYYY-MM-DD, or a shorter YYYY-MM / YYYY

    @property
    def half(self) -> str:
        return half_of(self.set, self.id)


def split_key(set_name: str, page_id: str) -> str:
    if set_name == "fundus-eval":
        return page_id.rsplit("_", 1)[0]  # "BBC_3.html.gz" -> "BBC": a publisher's pages stay together
    return page_id


def half_of(set_name: str, page_id: str) -> str:
    digest = hashlib.sha256(f"{set_name}/{split_key(set_name, page_id)}".encode()).digest()
    return HALVES[digest[0] & 1]


def _day(value: str | None) -> str | None:
    if not value or not re.fullmatch(r"\d{4}(-\d{2}(-\d{2})?)?", value[:10]):
        return None
    return value[:10]


def _scrapinghub(root: Path) -> Iterable[Page]:
    truth = json.loads((root / "ground-truth.json").read_text(encoding="utf-8"))
    for key in sorted(truth):
        yield Page("scrapinghub", key, truth[key].get("url", ""),
                   gzip.decompress((root / "html" / f"{key}.html.gz").read_bytes()),
                   body=truth[key].get("articleBody", ""))


def _wcxb(root: Path) -> Iterable[Page]:
    truth = json.loads(gzip.decompress((root / "ground-truth.json.gz").read_bytes()))
    for key in sorted(truth):
        t = truth[key]
        yield Page("wcxb-articles", key, t.get("url") or "",
                   gzip.decompress((root / "html" / f"{key}.html.gz").read_bytes()),
                   body=t.get("main_content") or "", title=t.get("title"), author=t.get("author"),
                   published=_day(t.get("publish_date")))


def _fundus(root: Path) -> Iterable[Page]:
    truth = json.loads((root / "ground-truth.json").read_text(encoding="utf-8"))
    for key in sorted(truth):
        t = truth[key]
        body = t.get("body") or []
        if isinstance(body, str):
            body = [body]
        yield Page("fundus-eval", key, t.get("url") or "", gzip.decompress((root / "html" / key).read_bytes()),
                   body="\n".join(body))


def _htmldate(root: Path) -> Iterable[Page]:
    truth = json.loads((root / "truth.json").read_text(encoding="utf-8"))
    for url in sorted(truth):
        t = truth[url]
        yield Page("htmldate", t["file"], url, gzip.decompress((root / "html" / t["file"]).read_bytes()),
                   published=_day(t.get("date")))


_LOADERS = {"scrapinghub": _scrapinghub, "wcxb-articles": _wcxb, "fundus-eval": _fundus, "htmldate": _htmldate}


def available(root: Path = SHARED) -> list[str]:
    return [name for name in SETS if (root / name).is_dir()]


def chosen(sets: list[str] | None, root: Path = SHARED) -> list[str]:
    """The sets a benchmark was asked for, else every set present; exits saying so when there is none."""
    sets = sets or available(root)
    if not sets:
        sys.exit(f"no corpus found under {root}")
    return sets


def load(set_name: str, *, half: str | None = None, root: Path = SHARED) -> list[Page]:
    """Every page of one set (or of one half of it), in a fixed order."""
    if set_name not in _LOADERS:
        raise ValueError(f"unknown corpus {set_name!r}; the sets are {', '.join(SETS)}")
    if half is not None and half not in HALVES:
        raise ValueError(f"unknown half {half!r}; the halves are {', '.join(HALVES)}")
    pages = list(_LOADERS[set_name](root / set_name))
    return [p for p in pages if half is None or p.half == half]


# --- body scores ----------------------------------------------------------------------------------

def shingles(text: str) -> Counter:
    tokens = _TOKEN.findall(text)
    return Counter(tuple(tokens[i:i + 4]) for i in range(len(tokens) - 3))


@dataclass
class BodyScore:
    """The per-page precision and recall lists of one extractor on one set, and their F1."""

    precisions: list[float] = field(default_factory=list)
    recalls: list[float] = field(default_factory=list)
    f1s: list[float] = field(default_factory=list)  # per-page F1 (the wcxb metric averages these)
    empty: int = 0  # pages where the extractor returned no text

    @property
    def precision(self) -> float:
        return statistics.fmean(self.precisions) if self.precisions else 0.0

    @property
    def recall(self) -> float:
        return statistics.fmean(self.recalls) if self.recalls else 0.0

    @property
    def f1_of_means(self) -> float:
        """The scrapinghub benchmark's F1: harmonic mean of the averaged precision and recall."""
        p, r = self.precision, self.recall
        return 2 * p * r / (p + r) if p + r else 0.0

    @property
    def mean_f1(self) -> float:
        """The WCXB benchmark's F1: per-page F1 averaged over pages."""
        return statistics.fmean(self.f1s) if self.f1s else 0.0


def _f1(p: float, r: float) -> float:
    return 2 * p * r / (p + r) if p + r else 0.0


def add_shingle_score(score: BodyScore, predicted: str, truth: str) -> None:
    """scrapinghub's metric (also used for fundus-eval): multisets of 4-token shingles of ``\\w+``
    tokens; precision over pages with output, recall over pages with true text."""
    pred, true = shingles(predicted), shingles(truth)
    shared = sum((pred & true).values())
    n_pred, n_true = sum(pred.values()), sum(true.values())
    if not predicted.strip():
        score.empty += 1
    if not n_pred and not n_true:
        score.precisions.append(1.0)
        score.recalls.append(1.0)
        score.f1s.append(1.0)
        return
    p = shared / n_pred if n_pred else None
    r = shared / n_true if n_true else None
    if p is not None:
        score.precisions.append(p)
    if r is not None:
        score.recalls.append(r)
    score.f1s.append(_f1(p or 0.0, r or 0.0))


def words(text: str) -> Counter:
    return Counter(_TOKEN.findall(text.lower()))


def add_word_score(score: BodyScore, predicted: str, truth: str) -> None:
    """WCXB's metric: lower-cased ``\\w+`` tokens as a bag; per-page precision, recall and F1."""
    pred, true = words(predicted), words(truth)
    shared = sum((pred & true).values())
    n_pred, n_true = sum(pred.values()), sum(true.values())
    if not predicted.strip():
        score.empty += 1
    if not n_pred and not n_true:
        p = r = 1.0
    else:
        p = shared / n_pred if n_pred else 0.0
        r = shared / n_true if n_true else 0.0
    score.precisions.append(p)
    score.recalls.append(r)
    score.f1s.append(_f1(p, r))


def body_metric(set_name: str) -> str:
    """The headline body figure of a set: its own benchmark's metric."""
    return "word F1" if set_name == "wcxb-articles" else "shingle F1"


def add_body_score(set_name: str, score: BodyScore, predicted: str, truth: str) -> None:
    (add_word_score if set_name == "wcxb-articles" else add_shingle_score)(score, predicted, truth)


def headline(set_name: str, score: BodyScore) -> float:
    return score.mean_f1 if set_name == "wcxb-articles" else score.f1_of_means


# --- metadata scores --------------------------------------------------------------------------------

def _space(text: str) -> str:
    return " ".join(text.split())


def title_exact(predicted: str | None, truth: str | None) -> bool:
    """The title as a person marked it, up to runs of white space."""
    return bool(predicted) and truth is not None and _space(predicted) == _space(truth)


def date_right(predicted: date | datetime | str | None, truth: str | None) -> bool:
    """The marked date, to the precision it was marked with (a day, else a month or a year)."""
    if predicted is None or truth is None:
        return False
    if isinstance(predicted, datetime):
        predicted = predicted.date()
    day = predicted.isoformat() if isinstance(predicted, date) else str(predicted)[:10]
    return day[:len(truth)] == truth


# Words in a marked author string that are not part of a name: joiners and credentials.
_NOT_NAME = {"and", "by", "und", "y", "et", "ms", "md", "rd", "phd", "ph", "d", "mba", "fand", "rn", "dr", "jr"}


def _name_tokens(text: str) -> set[str]:
    return {t for t in _TOKEN.findall(text.lower()) if t not in _NOT_NAME and not t.isdigit()}


def author_right(predicted: Iterable[str] | str | None, truth: str | None) -> bool:
    """Found: the predicted names share at least half of the marked name's words, and at least half
    of the predicted words are in the marked names (so a byline with a date, a job title or the
    outlet's name glued on, or a different person, does not count)."""
    if not truth or not predicted:
        return False
    text = predicted if isinstance(predicted, str) else " ; ".join(predicted)
    pred, true = _name_tokens(text), _name_tokens(truth)
    if not pred or not true:
        return False
    shared = len(pred & true)
    return shared / len(true) >= 0.5 and shared / len(pred) >= 0.5
