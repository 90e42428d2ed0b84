"""Similar-readings benchmark: are the listed records about the same subject, are same-event
articles grouped into one story, and how fast is it at 1k, 100k and 1M stored records?

    .venv/bin/python bench/similar.py [--sizes 0,100000] [--million] [--postgres] [--out ...]

The collection. Every page of the shared corpora with a marked body (scrapinghub, fundus-eval,
wcxb-articles: about 1,050; read at run time, never copied) is stored through ``Storage`` as the
pipeline stores it: the truth body, the title and publication date our extractor finds on the page.
Beside them, the articles written for this project in English and Japanese
(``tests/written_pages.py``). Labels: ``bench/topics.py`` (subjects, their coarser areas, and
same-event stories, marked by hand from titles before any method was measured).

Relatedness. Every labelled record asks for its similar readings. Precision@5 = share of the
listed records that share a subject with it (empty lists are left out of the mean and counted
apart); recall = listed records sharing a subject / min(5, records sharing one). "Area" counts a
listed record as related when it shares the coarser area. Reported for the development half
(``bench.corpora``'s fixed split; written pages by a hash of their title) and the held-out half.

Peer, in the same run: exact TF-IDF cosine over all words of the whole page, brute force over
every stored record (sparse matrix product): sublinear tf, smoothed idf ln((1+N)/(1+df))+1, unit
length, the textbook recipe. It lists its top 5; "peer at our N" lists its top n where n is the
length of our list for the same record, which compares the two rankings at equal list lengths.

Scale. Distractor records are generated (``Filler``) and bulk-inserted through the real schema
so the triggers index them: bodies of the collection's page lengths (capped at 1,000 words) that
hold the everyday words (in at least 5% of the collection's pages) in the share of pages they are
in, every rarer word of the collection in the share of pages that name it once (passing mentions),
and for the rest a burst of made-up words on the distractor's own subject, which half of an
8-word title is drawn from. So a broad word ("trump", "nutrition") is about as common at 100k
records as at 1k, as in an archive grown from the same sources, while a subject's own repeated
words stay with its pages; the larger size tests whether 100,000 pages naming the records' words
in passing crowd out or outscore the related ones. They are unrelated to everything by
construction; the measures above are taken again among them. (Until this version distractors
held only the words in at least 5% of the pages: the words in fewer were in none, so at 100k they
weighed like names; the reading in bench/results/similar.md gives the figures under both.)
Latency: ``related()`` for each labelled record (read it, choose terms, search, score the candidates); p50/p95/p99.

Stories. Records are given stories in publication order with ``worker.stories.story_of`` over
their scored candidates among earlier records; pairs of records in one predicted story are
compared with the labelled story pairs (precision and recall over pairs).

Lists that improve. After the labelled records' lists are stored, 200 of them arrive again as new
records (a later version with a paragraph added: the most related article there can be); as in
the store stage, ``enter_lists`` decides which stored lists each enters. Reported: lists changed
per store and the time to read, decide and write them.
"""

from __future__ import annotations

import argparse
import functools
import hashlib
import json
import os
import platform
import sqlite3
import statistics
import sys
import tempfile
import time
import uuid
from collections import Counter
from collections.abc import Callable
from datetime import datetime, timezone
from pathlib import Path

import numpy as np
from sqlalchemy import event, text

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from bench import corpora  # noqa: E402
from bench.topics import AREAS, STORIES, TOPICS  # noqa: E402
from tasks.extraction import extract_article  # noqa: E402
from tests import written_pages  # noqa: E402
from worker.errors import ExtractionError  # noqa: E402
from worker.models import Article, Draft  # noqa: E402
from worker.similar import (  # noqa: E402
    LEAD_WORDS, RELATED_FLOOR, RELATED_SHARE, RELATED_SURE, SimilarIndex, _body_list, enter_lists, search_columns,
    tokens)
from worker.stories import STORY_DAYS, STORY_FLOOR, Candidate, story_of  # noqa: E402
from worker.storage import Neighbour, Storage  # noqa: E402

SETS = {"scrapinghub": "sh", "fundus-eval": "fe", "wcxb-articles": "wx"}
BATCH = 50_000


# -- the collection -----------------------------------------------------------------------------

def collection() -> list[dict]:
    """The corpus pages and the written ones, each with its key, text, date, half and labels."""
    docs = []
    for set_name, prefix in SETS.items():
        for page in corpora.load(set_name):
            paragraphs = [p.strip() for p in (page.body or "").split("\n") if p.strip()]
            if not paragraphs:
                continue
            try:
                found = extract_article(page.html, page.url or None)
            except ExtractionError:  # no body found: the title and date are still wanted
                found = Article()
            key = f"{prefix}/{page.id[:10] if set_name == 'scrapinghub' else page.id}"
            docs.append({"key": key, "title": found.title or page.title or "", "body": paragraphs,
                         "url": page.url or f"https://{prefix}.test/{page.id}", "half": page.half,
                         "published_at": found.published_at})
    for language, articles in (("en", written_pages.ENGLISH), ("ja", written_pages.JAPANESE)):
        for topic, items in articles.items():
            for i, (title, body) in enumerate(items):
                half = corpora.HALVES[hashlib.sha256(title.encode()).digest()[0] & 1]
                docs.append({"key": f"{language}/{topic}/{i}", "title": title, "body": body, "half": half,
                             "url": f"https://written.test/{language}/{topic}/{i}", "published_at": None,
                             "written": (language, topic)})
    return docs


def labels(docs: list[dict]) -> tuple[dict[str, set[str]], dict[str, set[str]], dict[str, set[str]]]:
    """Per labelled key: the keys sharing a subject, sharing an area, sharing a story."""
    present = {d["key"] for d in docs}
    area_of = {g: a for a, groups in AREAS.items() for g in groups}
    subject: dict[str, set[str]] = {}
    area: dict[str, set[str]] = {}
    story: dict[str, set[str]] = {}

    def add(groups: dict[str, list[str]], out: dict[str, set[str]], name: Callable[[str], str]) -> None:
        members: dict[str, set[str]] = {}
        for group, ids in groups.items():
            keys = {f"{group.split(':')[0]}/{i}" for i in ids} & present
            members.setdefault(name(group), set()).update(keys)
        for keys in members.values():
            for k in keys:
                out.setdefault(k, set()).update(keys - {k})

    add(TOPICS, subject, lambda g: g)
    add(TOPICS, area, lambda g: area_of[g])
    add(STORIES, story, lambda g: g)
    for d in docs:  # the written topics: a topic is a subject and an area; "unrelated" is neither
        if "written" in d and d["written"][1] != "unrelated":
            same = {e["key"] for e in docs if e.get("written") == d["written"]} - {d["key"]}
            subject[d["key"]] = area[d["key"]] = same
    return subject, area, story


def store_all(storage: Storage, docs: list[dict]) -> dict[str, str]:
    ids = {}
    for d in docs:
        draft = Draft(job_id=str(uuid.uuid4()), category_id="bench", url=d["url"],
                      article=Article(title=d["title"], body=d["body"], published_at=d["published_at"]),
                      canonical_url=f"https://bench.test/{d['key']}", content_hash=hashlib.sha256(
                          d["key"].encode()).hexdigest(), summary="", word_count=len(d["body"]))
        ids[d["key"]], _ = storage.upsert_record(draft)
    return ids


# -- synthetic distractors ----------------------------------------------------------------------

class Filler:
    """Distractor records: articles on other subjects, unrelated to every labelled page, holding the
    collection's words as unrelated pages hold them.

    A page names many words in passing and repeats the few it is about (the Poisson-mixture view of
    word use, Church & Gale 1995). So a distractor holds: the everyday words (those in at least
    COMMON_SHARE of the collection's pages) in the share of distractors they are in of the
    collection's pages; every rarer word of the collection in the share of pages that name it
    exactly once (a passing mention: "trump" is in 4.6% of the pages and named once in 1.9%; a name
    only its own subject's pages repeat is in no distractor); and, for the rest of its text, a
    burst of made-up words on its own subject (drawn from a Zipf vocabulary standing for other
    subjects' words and names), repeated as a page repeats what it is about, half its title from
    them. A word's rate is solved so that distractors of the collection's page lengths (capped at
    ``MAX_WORDS``: only the first 250 words are compared, and the cap keeps the peer's matrix in
    memory), drawing words independently, hold it in that share.

    Until this version distractors held only the everyday words: a word in fewer than 5% of the
    pages ("trump", "photography", "nutrition": 2-5%) was in no distractor, so at 100k records it
    looked as rare as a name and pages sharing one broad word were listed (bench/results/similar.md,
    reading). Every word at its full share of pages was tried too: a subject's own words then sit
    in hundreds of random distractors each, as though every distractor were a little about every
    subject, and they crowd the full-text candidates (recall 0.30 at 100k, the exact peer's 0.80);
    drawing words at their raw frequency is worse still (every subject looks common)."""

    COMMON_SHARE = 0.05
    MAX_WORDS = 1000
    TOPIC_WORDS = 40

    def __init__(self, docs: list[dict], seed: int = 7, tail: int = 300_000) -> None:
        counts: Counter[str] = Counter()
        pages: Counter[str] = Counter()
        once: Counter[str] = Counter()
        lengths = []
        for d in docs:
            words = Counter(tokens("\n".join(d["body"])))
            lengths.append(words.total())
            counts.update(words)
            pages.update(words.keys())
            once.update(w for w, n in words.items() if n == 1)
        vocab = list(counts)
        # The pages whose share of distractors is to hold each word: all those holding it for the
        # everyday words, those naming it once for the rest (see the class docstring).
        target = np.array([pages[w] if pages[w] >= self.COMMON_SHARE * len(docs) else once[w] for w in vocab],
                      dtype=float)
        # Solved for the distractors' own lengths (the collection's, capped), so that the share holds
        # at those lengths.
        length = np.array(lengths, dtype=float)
        self.lengths = np.minimum(length, self.MAX_WORDS).astype(int)
        capped = self.lengths.astype(float)
        edges = np.geomspace(1, capped.max() + 1, 65)  # lengths in geometric bins: the sums run over them
        at = np.clip(np.searchsorted(edges, capped, side="right") - 1, 0, 63)
        n_bin = np.bincount(at, minlength=64).astype(float)
        len_bin = np.bincount(at, weights=capped, minlength=64) / np.maximum(n_bin, 1)

        def pages_holding(rate: np.ndarray) -> np.ndarray:
            return (n_bin * -np.expm1(-np.outer(rate, len_bin))).sum(axis=1)

        # Each word's rate (per word of text) solves pages_holding(rate) = target, by bisection; a word
        # in every page is aimed at all but half of one, which a finite rate reaches.
        lo, hi = np.zeros(len(vocab)), np.ones(len(vocab))
        for _ in range(50):
            mid = (lo + hi) / 2
            over = pages_holding(mid) > np.minimum(target, len(docs) - 0.5)
            hi, lo = np.where(over, mid, hi), np.where(over, lo, mid)
        rate = np.where(target > 0, (lo + hi) / 2, 0.0)
        if rate.sum() > 1:  # short pages cannot hold every word at its share: all scaled down alike
            rate /= rate.sum()
        self.spread_share = float(rate.sum())  # of a distractor's words; the rest is its own subject
        self.vocabulary = len(vocab)
        zipf = 1 / np.arange(1, tail + 1, dtype=float) ** 1.07
        self.vocab = np.array(vocab + [f"zq{np.base_repr(i, 36).lower()}" for i in range(tail)], dtype=object)
        self.spread_cdf = np.cumsum(rate / rate.sum())  # drawn by searchsorted: choice(p=) sums p every call
        self.fake_cdf = np.cumsum(zipf / zipf.sum())
        self.n_real = len(vocab)
        self.rng = np.random.default_rng(seed)

    def document(self) -> tuple[str, list[str]]:
        """A title and the words of a body."""
        n = int(self.rng.choice(self.lengths))
        spread = self.rng.binomial(n, self.spread_share)
        topic = self.n_real + self._draw(self.fake_cdf, self.TOPIC_WORDS)
        weight = np.cumsum(1 / np.arange(1, self.TOPIC_WORDS + 1))  # the subject's words, most used first
        ids = np.concatenate([self._draw(self.spread_cdf, spread), topic[self._draw(weight, n - spread)]])
        self.rng.shuffle(ids)
        # A headline names the subject: half its words from the subject's, half from the body's.
        title = np.concatenate([topic[self._draw(weight, 4)], ids[self.rng.integers(0, n, size=4)]])
        return " ".join(self.vocab[title]).capitalize(), self.vocab[ids].tolist()

    def _draw(self, cdf: np.ndarray, size: int) -> np.ndarray:
        return np.minimum(np.searchsorted(cdf, self.rng.random(size) * cdf[-1], side="right"), len(cdf) - 1)

    def rows(self, start: int, count: int, now: str) -> list[dict]:
        rows = []
        for i in range(count):
            title, words = self.document()
            body = [" ".join(words[j:j + 100]) for j in range(0, len(words), 100)]
            rows.append({"id": str(uuid.uuid4()), "category_id": "filler", "url": f"https://filler.test/{start + i}",
                         "canonical_url": f"https://filler.test/{start + i}", "title": title, "body": json.dumps(body),
                         "created_at": now, "updated_at": now, "summary": "", "word_count": len(words),
                         "read_count": 0, "similar": "[]", "content_hash": uuid.uuid4().hex, "authors": "[]",
                         **search_columns(title, body)})  # as Storage writes them
        return rows


_COLUMNS = ("id", "category_id", "url", "canonical_url", "title", "body", "created_at", "updated_at", "summary",
            "word_count", "read_count", "similar", "content_hash", "authors", "search_title", "search_body")


def bulk_fill(storage: Storage, filler: Filler, start: int, stop: int) -> float:
    t0 = time.perf_counter()
    now = datetime.now(timezone.utc).replace(tzinfo=None).isoformat(sep=" ")
    for s in range(start, stop, BATCH):
        rows = filler.rows(s, min(BATCH, stop - s), now)
        if storage.engine.dialect.name == "sqlite":
            conn = sqlite3.connect(storage.engine.url.database, timeout=60)
            conn.execute("PRAGMA synchronous=OFF")
            with conn:
                conn.executemany(f"INSERT INTO records ({', '.join(_COLUMNS)}) VALUES ({', '.join('?' * len(_COLUMNS))})",
                                 [tuple(r[c] for c in _COLUMNS) for r in rows])
            conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")  # so the measured writes do not pay for the fill's
            conn.close()
        else:
            with storage.engine.begin() as conn:
                conn.exec_driver_sql(  # quoted: "similar" is a keyword in PostgreSQL
                    f"INSERT INTO records ({', '.join(chr(34) + c + chr(34) for c in _COLUMNS)}) "
                    f"VALUES ({', '.join('%(' + c + ')s' for c in _COLUMNS)})", rows)
        print(f"  filled {s + len(rows):,}  ({time.perf_counter() - t0:.0f} s)", file=sys.stderr, flush=True)
    return time.perf_counter() - t0


# -- the peer -----------------------------------------------------------------------------------

class Peer:
    """Exact TF-IDF cosine over all words of whole pages, brute force over every stored record."""

    def __init__(self, storage: Storage) -> None:
        vocab: dict[str, int] = {}
        indptr, indices, data, self.ids = [0], [], [], []
        with storage.engine.connect() as conn:
            rows = conn.execution_options(yield_per=5000).execute(
                text("SELECT id, title, body FROM records WHERE duplicate_of IS NULL"))
            for row in rows:
                counts = Counter(vocab.setdefault(t, len(vocab))
                                 for t in tokens("\n".join([row.title or "", *_body_list(row.body)])))
                self.ids.append(row.id)
                indices.extend(counts)
                data.extend(counts.values())
                indptr.append(len(indices))
        import scipy.sparse as sp  # the bench extra's; imported here so that the collection and Filler load without it

        x = sp.csr_matrix((np.asarray(data, dtype=np.float32), np.asarray(indices, dtype=np.int32), indptr),
                          shape=(len(self.ids), len(vocab)))
        df = np.bincount(x.indices, minlength=len(vocab))
        x.data = 1 + np.log(x.data)
        x = (x @ sp.diags((np.log((1 + len(self.ids)) / (1 + df)) + 1).astype(np.float32))).tocsr()
        norms = np.sqrt(np.asarray(x.multiply(x).sum(axis=1)).ravel())
        norms[norms == 0] = 1
        self.x = (sp.diags(1 / norms) @ x).tocsr()
        self.at = {rid: i for i, rid in enumerate(self.ids)}

    def related(self, record_id: str, k: int = 5) -> list[str]:
        i = self.at[record_id]
        scores = (self.x @ self.x[i].T).toarray().ravel()
        scores[i] = -1
        top = np.argpartition(-scores, k)[:k]
        return [self.ids[j] for j in top[np.argsort(-scores[top])]]


# -- measurements -------------------------------------------------------------------------------

def _pct(values: list[float]) -> dict:
    v = sorted(values)
    at = lambda f: v[min(len(v) - 1, int(f * len(v)))]  # noqa: E731
    return {"p50": statistics.median(v), "p95": at(0.95), "p99": at(0.99), "n": len(v)}


def score_lists(lists: dict[str, list[str]], subject: dict, area: dict, half: dict, keys: list[str]) -> dict:
    """P@5 and recall per half, subject and area level, for lists of keys."""
    out = {}
    for h in corpora.HALVES:
        p, pa, r, empty, n = [], [], [], 0, 0
        for k in keys:
            if half[k] != h:
                continue
            n += 1
            got = lists[k][:5]
            hits = sum(g in subject[k] for g in got)
            if got:
                p.append(hits / len(got))
                pa.append(sum(g in area[k] for g in got) / len(got))
            else:
                empty += 1
            r.append(hits / min(5, len(subject[k])))
        out[h] = {"p": float(np.mean(p)) if p else 0.0, "p_area": float(np.mean(pa)) if pa else 0.0,
                  "r": float(np.mean(r)) if r else 0.0, "empty": empty, "n": n,
                  "listed": float(np.mean([len(lists[k][:5]) for k in keys if half[k] == h]))}
    return out


def server_cpu_s(engine) -> float | None:
    """CPU seconds used so far by the PostgreSQL backends serving this database's connections (the
    server runs on this machine; Linux's /proc). None on SQLite, whose work is the process's own."""
    if engine.dialect.name != "postgresql":
        return None
    with engine.connect() as conn:
        pids = conn.exec_driver_sql("SELECT pid FROM pg_stat_activity WHERE datname = current_database() "
                                    "AND backend_type = 'client backend'").scalars().all()
    ticks = 0
    for pid in pids:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
        ticks += int(fields[11]) + int(fields[12])  # utime, stime
    return ticks / os.sysconf("SC_CLK_TCK")


def quality_and_latency(index: SimilarIndex, peer: Peer, ids: dict[str, str], subject: dict, area: dict,
                        half: dict, floors: tuple[float, ...] = ()) -> dict:
    by_id = {v: k for k, v in ids.items()}
    keys = sorted(k for k in subject if subject[k] and k in ids)
    ours, ours_nofloor, lat, cpu, refs_of, scored5 = {}, {}, [], [], {}, {}
    floorless = SimilarIndex(index.engine, floor=-1.0, share=0.0, sample_max_age=float("inf"))
    floorless._df = index._df
    server_before = server_cpu_s(index.engine)
    for k in keys:
        t, c = time.perf_counter(), time.process_time()
        refs = index.related(ids[k])
        lat.append((time.perf_counter() - t) * 1000)
        cpu.append((time.process_time() - c) * 1000)
        refs_of[k] = refs
        ours[k] = [by_id.get(str(r.id), "-") for r in refs]
        scored5[k] = [(by_id.get(str(r.id), "-"), r.score) for r in floorless.related(ids[k])]
        ours_nofloor[k] = [key for key, _ in scored5[k]]
    # Each key ran related() twice (the floorless one for the table's last columns): the same queries.
    server = None if server_before is None else (server_cpu_s(index.engine) - server_before) * 1000 / (2 * len(keys))
    peer5 = {k: [by_id.get(r, "-") for r in peer.related(ids[k])] for k in keys}
    peer_n = {k: peer5[k][:len(ours[k])] for k in keys}
    return {"ours": score_lists(ours, subject, area, half, keys),
            "ours_nofloor": score_lists(ours_nofloor, subject, area, half, keys),
            "peer": score_lists(peer5, subject, area, half, keys),
            "peer_n": score_lists(peer_n, subject, area, half, keys),
            "at_floor": {f: score_lists(_cut(scored5, f), subject, area, half, keys) for f in floors},
            "peer_at_floor": {f: score_lists({k: peer5[k][:len(v)] for k, v in _cut(scored5, f).items()}, subject,
                                             area, half, keys) for f in floors},
            "latency": _pct(lat), "cpu": _pct(cpu), "server_cpu": server, "refs": refs_of}


def _cut(scored: dict[str, list[tuple[str, float]]], floor: float) -> dict[str, list[str]]:
    return {k: [key for key, score in refs if score >= floor] for k, refs in scored.items()}


def calibrated_floor(bins: list[tuple[float, float | None, int]], target: float, min_n: int = 20) -> float:
    """The lowest cosine from which every bin of the calibration (with at least ``min_n``
    candidates) holds on-subject candidates at a share of at least ``target``."""
    floor = bins[-1][0]
    for edge, share, n in reversed(bins):
        if n >= min_n and (share is None or share < target):
            break
        floor = edge
    return floor


def calibration(index: SimilarIndex, ids: dict[str, str], subject: dict, story: dict, half: dict,
                docs: dict[str, dict]) -> dict:
    """P(same subject | cosine) and P(same story | cosine, within STORY_DAYS) per half, over every
    labelled record's scored candidates: what the floors are set from. And P(same subject | share
    of the best candidate's score), over the candidates from ``RELATED_FLOOR`` up other than the
    best: what ``RELATED_SHARE`` is set from."""
    by_id = {v: k for k, v in ids.items()}
    edges = [round(x, 3) for x in np.arange(0.05, 0.55, 0.05)]
    ratio_edges = [round(x, 3) for x in np.arange(0.3, 1.0, 0.05)]

    @functools.cache
    def scored(k: str) -> list:  # each record's candidates, scored once for all three tables
        return index.scored(docs[k]["title"], docs[k]["body"], exclude={ids[k]})

    out = {}
    for h in corpora.HALVES:
        hit, tot = np.zeros(len(ratio_edges)), np.zeros(len(ratio_edges))
        for k in subject:
            if half[k] != h or k not in ids:
                continue
            refs = scored(k)
            for ref in refs[1:]:
                if ref.score < RELATED_FLOOR:
                    break
                b = int(np.searchsorted(ratio_edges, ref.score / refs[0].score, side="right")) - 1
                if b >= 0:
                    tot[b] += 1
                    hit[b] += by_id.get(str(ref.id)) in subject[k]
        out[("share", h)] = [(ratio_edges[i], hit[i] / tot[i] if tot[i] else None, int(tot[i]))
                             for i in range(len(ratio_edges))]
    for what, truth in (("subject", subject), ("story", story)):
        for h in corpora.HALVES:
            hit, tot = np.zeros(len(edges)), np.zeros(len(edges))
            for k in truth:
                if half[k] != h or k not in ids:
                    continue
                d = docs[k]
                for ref in scored(k):
                    other = by_id.get(str(ref.id))
                    if what == "story" and (other not in docs or not d["published_at"]
                                            or not docs[other]["published_at"]
                                            or abs(d["published_at"] - docs[other]["published_at"]).days > STORY_DAYS):
                        continue  # only dated pairs within the window can be a story
                    b = int(np.searchsorted(edges, ref.score, side="right")) - 1
                    if b >= 0:
                        tot[b] += 1
                        hit[b] += other in truth[k]
            out[(what, h)] = [(edges[i], hit[i] / tot[i] if tot[i] else None, int(tot[i])) for i in range(len(edges))]
    return out


def stories(index: SimilarIndex, ids: dict[str, str], story: dict, docs: list[dict]) -> dict:
    """Assign stories in publication order (undated last) and score them as pairs, per half."""
    by_id = {v: k for k, v in ids.items()}
    by_key = {d["key"]: d for d in docs}
    order = sorted(docs, key=lambda d: (d["published_at"] is None, d["published_at"] or datetime.min, d["key"]))
    assigned: dict[str, str] = {}
    for d in order:
        cands = [Candidate(id=by_id[str(r.id)], score=r.score, story_id=assigned[by_id[str(r.id)]],
                           published_at=by_key[by_id[str(r.id)]]["published_at"])
                 for r in index.scored(d["title"], d["body"], exclude={ids[d["key"]]})
                 if by_id.get(str(r.id)) in assigned]
        assigned[d["key"]] = story_of(cands, d["published_at"]) or d["key"]
    groups: dict[str, set[str]] = {}
    for k, s in assigned.items():
        groups.setdefault(s, set()).add(k)
    predicted = {k: groups[assigned[k]] - {k} for k in assigned}
    out = {}
    for h in corpora.HALVES:
        # Pairs with at least one member in this half: a story crossing halves counts in both.
        tp = fp = fn = 0
        for d in docs:
            k = d["key"]
            if d["half"] != h:
                continue
            true = story.get(k, set())
            tp += len(predicted[k] & true)
            fp += len(predicted[k] - true)
            fn += len(true - predicted[k])
        out[h] = {"precision": tp / (tp + fp) if tp + fp else 1.0, "recall": tp / (tp + fn) if tp + fn else 1.0,
                  "pairs_predicted": tp + fp, "pairs_true": tp + fn}
    out["multi"] = sum(1 for g in groups.values() if len(g) > 1)
    if os.environ.get("BENCH_SHOW_STORIES"):
        for g in groups.values():
            if len(g) > 1:
                print("STORY", sorted((k, str(by_key[k]["published_at"])[:10], by_key[k]["title"][:40]) for k in g),
                      file=sys.stderr)
    return out


def update_cost(storage: Storage, index: SimilarIndex, docs: list[dict], *, checkpoint_apart: bool = False) -> dict:
    """Store a later version of labelled records as new records, as the store stage does, and time
    what item 3 adds to a store (the related records' lists, read with the search: ``enter_lists``, writing) and
    the whole store (the upsert too). With ``checkpoint_apart`` (SQLite), the connections do not
    checkpoint the WAL when they commit (``wal_autocheckpoint=0``): a passive checkpoint runs after
    each store, outside the timed part, and is timed on its own."""
    touched, lat, whole, ckpt = [], [], [], []
    if checkpoint_apart:
        engine = storage.engine
        engine.dispose()  # new connections, each set as below
        event.listen(engine, "connect", _no_autocheckpoint)
    for d in docs[:200]:
        body = d["body"] + ["A later report added this paragraph with the latest figures."]
        draft = Draft(job_id=str(uuid.uuid4()), category_id="bench", url=d["url"] + "#later",
                      article=Article(title=d["title"], body=body), canonical_url=f"https://bench.test/later/{d['key']}",
                      content_hash=uuid.uuid4().hex, summary="", word_count=1)
        t0 = time.perf_counter()
        found = [(r, row) for r, row in index.scored_rows(d["title"], body) if r.score >= index.floor]
        scored = [r for r, _row in found]
        rid, _ = storage.upsert_record(draft, similar=index.listed(scored))
        t = time.perf_counter()
        near = {str(r.id): Neighbour.of(row) for r, row in found}  # read by the search, as the store stage does
        changes = enter_lists(rid, d["title"], scored, {i: n.similar for i, n in near.items()}, floor=index.floor,
                              share=index.share)
        storage.set_similar_many(changes)
        end = time.perf_counter()
        lat.append((end - t) * 1000)
        whole.append((end - t0) * 1000)
        touched.append(len(changes))
        if checkpoint_apart:
            with storage.engine.connect() as conn:
                conn.exec_driver_sql("PRAGMA wal_checkpoint(PASSIVE)")
            ckpt.append((time.perf_counter() - end) * 1000)
    with storage.engine.begin() as conn:  # gone again, so the next size measures the same collection
        conn.execute(text("DELETE FROM records WHERE canonical_url LIKE 'https://bench.test/later/%'"))
    if checkpoint_apart:
        event.remove(storage.engine, "connect", _no_autocheckpoint)
        storage.engine.dispose()
    return {"touched": float(np.mean(touched)), "max_touched": max(touched), **_pct(lat), "store": _pct(whole),
            "checkpoint": _pct(ckpt) if ckpt else None}


def _no_autocheckpoint(dbapi_connection, _record) -> None:
    dbapi_connection.execute("PRAGMA wal_autocheckpoint=0")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--sizes", type=lambda s: [int(x) for x in s.split(",")], default=[0, 100_000],
                    help="distractor counts to measure at (default 0,100000)")
    ap.add_argument("--million", action="store_true", help="also 1M records, latency only")
    ap.add_argument("--postgres", action="store_true", help="run on a PostgreSQL server started for the run")
    ap.add_argument("--out", type=Path, default=None)
    ap.add_argument("--db-dir", type=Path, default=None)
    ap.add_argument("--target", type=float, default=0.9,
                    help="the share of on-subject candidates the calibrated floor must hold from (dev half)")
    args = ap.parse_args()
    out = args.out or ROOT / "bench" / "results" / ("similar-postgres.md" if args.postgres else "similar.md")

    t0 = time.perf_counter()
    docs = collection()
    subject, area, story = labels(docs)
    half = {d["key"]: d["half"] for d in docs}
    print(f"collection: {len(docs)} pages ({time.perf_counter() - t0:.0f} s)", file=sys.stderr)
    workdir = Path(tempfile.mkdtemp(prefix="gleaner-similar-", dir=args.db_dir))
    pg = None
    if args.postgres:
        from tests.servers import PostgresServer

        pg = PostgresServer(workdir / "pg").start()
        storage = Storage(pg.new_database())
    else:
        storage = Storage(f"sqlite:///{workdir / 'similar.db'}")
    frozen = {"sample_max_age": float("inf")}
    index = SimilarIndex(storage.engine, **frozen)
    index.ensure_schema()
    ids = store_all(storage, docs)
    index.refresh_sample()
    filler = Filler(docs)
    results: dict = {"docs": len(docs), "labelled": sum(1 for k in subject if subject[k]), "sizes": [],
                     "spread_share": filler.spread_share, "vocabulary": filler.vocabulary}
    results["calibration"] = calibration(index, ids, subject, story, half, {d["key"]: d for d in docs})
    results["target"] = args.target
    results["floor_cal"] = calibrated_floor(results["calibration"][("subject", "dev")], args.target)
    results["share_cal"] = calibrated_floor(results["calibration"][("share", "dev")], args.target)
    results["stories"] = stories(index, ids, story, docs)
    sizes = sorted(set(args.sizes + ([1_000_000] if args.million else [])))
    filled = 0
    try:
        for size in sizes:
            fill_s = bulk_fill(storage, filler, filled, size) if size > filled else 0.0
            filled = max(filled, size)
            index.refresh_sample()
            row = {"size": size + len(docs), "fill_s": fill_s}
            if size <= 200_000:
                t = time.perf_counter()
                peer = Peer(storage)
                row["peer_build_s"] = time.perf_counter() - t
                row.update(quality_and_latency(index, peer, ids, subject, area, half, (results["floor_cal"],)))
                if size:  # this size's own calibration, to see whether the floor carries over
                    cal = calibration(index, ids, subject, story, half, {d["key"]: d for d in docs})
                    row["floor_here"] = calibrated_floor(cal[("subject", "dev")], args.target)
                    row["calibration_here"] = {h: cal[("subject", h)] for h in corpora.HALVES}
                del peer
            else:
                lat, cpu = [], []
                for k in sorted(k for k in subject if subject[k] and k in ids):
                    t, c = time.perf_counter(), time.process_time()
                    index.related(ids[k])
                    lat.append((time.perf_counter() - t) * 1000)
                    cpu.append((time.process_time() - c) * 1000)
                row["latency"], row["cpu"] = _pct(lat), _pct(cpu)
            if "refs" in row:  # the lists as the store stage would have left them, before records arrive
                storage.set_similar_many({ids[k]: refs for k, refs in row.pop("refs").items()})
            labelled = [d for d in docs if d["key"] in subject]
            row["update"] = update_cost(storage, index, labelled)
            if not args.postgres:
                row["update_apart"] = update_cost(storage, index, labelled, checkpoint_apart=True)
            results["sizes"].append(row)
            print(json.dumps(row, default=str), file=sys.stderr, flush=True)
    finally:
        storage.close()
        if pg is not None:
            pg.stop()
    write_report(out, args, results)
    for f in sorted(workdir.rglob("*"), reverse=True):
        f.unlink() if f.is_file() or f.is_symlink() else f.rmdir()
    workdir.rmdir()


def write_report(out: Path, args: argparse.Namespace, results: dict) -> None:
    db = "PostgreSQL (tests/servers.py's private cluster)" if args.postgres else f"SQLite {sqlite3.sqlite_version}"
    cmd = ("python bench/similar.py" + (" --million" if args.million else "") + (" --postgres" if args.postgres else "")
           + (f" --sizes {','.join(map(str, args.sizes))}" if args.sizes != [0, 100_000] else "")
           + (f" --out {args.out}" if args.out else ""))
    lines = [
        "# Similar readings benchmark" + (" (PostgreSQL)" if args.postgres else ""),
        "",
        f"Command: `.venv/bin/{cmd}` (Python {platform.python_version()}, {db}, {platform.machine()}, "
        f"{os.cpu_count()} cores shared with other jobs: compare within a row). Method: the module docstring.",
        "",
        f"Collection: {results['docs']} pages (the shared corpora's marked pages and the pages written for the "
        f"project), {results['labelled']} of them in a labelled subject with at least one other page. "
        f"Our lists: cosine of title-and-lead ({LEAD_WORDS} words) tf-idf vectors over the full-text "
        f"index's candidates, listed from {RELATED_SHARE} of the best candidate's score up, never under "
        f"{RELATED_FLOOR} nor over {RELATED_SURE} (`relevance_cut`). Distractors (`Filler`): the collection's "
        f"{results['vocabulary']:,} words, the everyday ones in the share of pages they are in and the rarer ones in "
        f"the share that name them once ({results['spread_share']:.0%} of their text), and a burst of made-up words "
        "on their own subject.",
        "",
        "## Relatedness: precision@5 and recall of the subject group",
        "",
        "| stored records | half | ours P@5 | ours recall | ours P@5 (area) | empty lists | mean listed "
        "| peer at our N: P@5 | peer at our N: recall | peer top 5: P@5 | peer top 5: recall "
        "| ours without cut: P@5 | recall |",
        "| --- | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- |",
    ]
    for r in results["sizes"]:
        if "ours" not in r:
            continue
        for h in corpora.HALVES:
            o, pn, p5, nf = r["ours"][h], r["peer_n"][h], r["peer"][h], r["ours_nofloor"][h]
            lines.append(f"| {r['size']:,} | {h} | {o['p']:.3f} | {o['r']:.3f} | {o['p_area']:.3f} | "
                         f"{o['empty']}/{o['n']} | {o['listed']:.2f} | {pn['p']:.3f} | {pn['r']:.3f} | "
                         f"{p5['p']:.3f} | {p5['r']:.3f} | {nf['p']:.3f} | {nf['r']:.3f} |")
    f = results["floor_cal"]
    lines += ["", f"## One cosine floor from the calibration: {f}", "",
              f"The lowest cosine from which every bin of the dev half's calibration at {results['docs']:,} records "
              f"(below; bins of 20 or more candidates) holds on-subject candidates at a share of at least "
              f"{results['target']}; the lists cut there, on both halves. \"Own calibration\": the floor the same rule "
              "gives from that size's dev half. "
              + "One cosine cut for every record, beside the library's cut relative to each record's best "
              "candidate (the table above).", "",
              "| stored records | half | P@5 | recall | P@5 (area) | empty lists | mean listed | peer at this N: P@5 "
              "| peer at this N: recall | own calibration |",
              "| --- | --- | --- | --- | --- | --- | --- | --- | --- | --- |"]
    for r in results["sizes"]:
        if "at_floor" not in r:
            continue
        for h in corpora.HALVES:
            o, pn = r["at_floor"][f][h], r["peer_at_floor"][f][h]
            lines.append(f"| {r['size']:,} | {h} | {o['p']:.3f} | {o['r']:.3f} | {o['p_area']:.3f} | "
                         f"{o['empty']}/{o['n']} | {o['listed']:.2f} | {pn['p']:.3f} | {pn['r']:.3f} | "
                         f"{r.get('floor_here', f)} |")
    lines += ["", "## Latency of related() (ms)", "",
              "Wall time, and the CPU time of the benchmark's process (SQLite runs in it, so on SQLite this "
              "is the work a query costs, without the waits for a core that other jobs on this shared "
              "machine cause; on PostgreSQL the server's work is not in it: the server CPU column is the CPU "
              "time of the server's backends for this database over the loop, per related()).", "",
              "| stored records | wall p50 | wall p95 | wall p99 | CPU p50 | CPU p95 | CPU p99 | server CPU mean "
              "| queries | fill time | peer build |",
              "| --- | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- |"]
    for r in results["sizes"]:
        lat, cpu, server = r["latency"], r["cpu"], r.get("server_cpu")
        lines.append(f"| {r['size']:,} | {lat['p50']:.2f} | {lat['p95']:.2f} | {lat['p99']:.2f} | {cpu['p50']:.2f} | "
                     f"{cpu['p95']:.2f} | {cpu['p99']:.2f} | {'–' if server is None else f'{server:.2f}'} | "
                     f"{lat['n']} | {r['fill_s']:.0f} s | {r.get('peer_build_s', 0):.0f} s |")
    if any(r.get("update") for r in results["sizes"]):
        lines += ["", "## Lists that improve: cost per store", "",
                  "The update (read the related records' lists, decide, write) and the whole store (score, "
                  "upsert, update), in ms. \"Checkpoint apart\" (SQLite): the same 200 stores again with the "
                  "connections' WAL autocheckpoint off and a passive checkpoint after each store, timed on its own.",
                  "", "| stored records | WAL checkpoint | lists entered per store (mean / max) | update p50 | update p95 "
                  "| store p50 | store p95 | checkpoint p50 | checkpoint p95 |",
                  "| --- | --- | --- | --- | --- | --- | --- | --- | --- |"]
        for r in results["sizes"]:
            for how, u in (("in the commit", r.get("update")), ("apart", r.get("update_apart"))):
                if u:
                    c = u.get("checkpoint")
                    st = u.get("store", {})
                    lines.append(f"| {r['size']:,} | {how} | {u['touched']:.2f} / {u['max_touched']} | {u['p50']:.2f} | "
                                 f"{u['p95']:.2f} | {st.get('p50', 0):.2f} | {st.get('p95', 0):.2f} | "
                                 + (f"{c['p50']:.2f} | {c['p95']:.2f} |" if c else "– | – |"))
    s = results["stories"]
    lines += ["", f"## Stories (floor {STORY_FLOOR}, within {STORY_DAYS} days), at {results['docs']:,} records", "",
              "| half | pair precision | pair recall | pairs predicted | labelled pairs |",
              "| --- | --- | --- | --- | --- |"]
    for h in corpora.HALVES:
        lines.append(f"| {h} | {s[h]['precision']:.3f} | {s[h]['recall']:.3f} | {s[h]['pairs_predicted']} | "
                     f"{s[h]['pairs_true']} |")
    lines.append(f"\n{s['multi']} stories with more than one record.")
    lines += ["", "## Calibration: share of candidates on the same subject / story, by cosine", "",
              "| cosine from | " + " | ".join(f"{w} {h}" for w in ("subject", "story") for h in corpora.HALVES) + " |",
              "| --- | " + " | ".join("---" for _ in range(4)) + " |"]
    cal = results["calibration"]
    for i, (edge, _, _) in enumerate(cal[("subject", "dev")]):
        cells = []
        for w in ("subject", "story"):
            for h in corpora.HALVES:
                _, share, n = cal[(w, h)][i]
                cells.append("–" if share is None else f"{share:.2f} ({n})")
        lines.append(f"| {edge} | " + " | ".join(cells) + " |")
    sc = results["share_cal"]
    lines += ["", f"## Calibration by share of the best: {sc}", "",
              f"Candidates from {RELATED_FLOOR} up other than each record's best, by their score's share of the best "
              f"one's, at {results['docs']:,} records: the share on the record's subject. The lowest share from which "
              f"every dev bin of 20 or more candidates holds at least {results['target']} on-subject: {sc}; "
              + ("the library's `RELATED_SHARE` is this value." if abs(sc - RELATED_SHARE) < 1e-9 else
                 f"**the library's `RELATED_SHARE` ({RELATED_SHARE}) differs.**"), "",
              "| share from | subject dev | subject held-out |", "| --- | --- | --- |"]
    for i, (edge, _, _) in enumerate(cal[("share", "dev")]):
        cells = ["–" if share is None else f"{share:.2f} ({n})"
                 for _, share, n in (cal[("share", h)][i] for h in corpora.HALVES)]
        lines.append(f"| {edge} | " + " | ".join(cells) + " |")
    lines.append("")
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text("\n".join(lines), encoding="utf-8")
    print("\n".join(lines))


if __name__ == "__main__":
    main()
