"""MinHash signatures and the Redis LSH index: accuracy, exact and near copies, removal,
and one canonical when near-copies race in from several processes at once."""

from __future__ import annotations

import hashlib
import multiprocessing
import random
import subprocess
import sys
import threading
import uuid

import numpy as np
import pytest
import redis

from tasks.duplicates.lsh import IndexLayoutError, LSHIndex, choose_bands
from tasks.duplicates import minhash
from tasks.duplicates.minhash import MinHasher, estimate_similarity, jaccard
from tasks.duplicates.textnorm import content_hash
from tests.servers import REPO

_VOCAB = ["".join(random.Random(i).choices("abcdefghijklmnopqrstuvwxyz", k=3 + i % 7)) for i in range(5000)]


def article(seed: int, words: int = 300) -> str:
    rng = random.Random(seed)
    paragraphs = []
    for _ in range(words // 50):
        paragraphs.append(" ".join(rng.choice(_VOCAB) for _ in range(50)) + ".")
    return "\n".join(paragraphs)


def near_copy(text: str, seed: int, changed_words: int = 2) -> str:
    """The same article with a few words changed and a short line of boilerplate added."""
    rng = random.Random(seed)
    words = text.split(" ")
    for _ in range(changed_words):
        i = rng.randrange(len(words))
        words[i] = rng.choice(_VOCAB)
    return " ".join(words) + "\nShare this article on social media"


@pytest.fixture
def client(redis_url: str) -> redis.Redis:
    return redis.Redis.from_url(redis_url)


@pytest.fixture
def hasher() -> MinHasher:
    return MinHasher()


@pytest.fixture
def index(client: redis.Redis, hasher: MinHasher):
    idx = LSHIndex(client, 0.8, prefix=f"gleaner:test-lsh:{uuid.uuid4().hex}:", hasher=hasher)
    yield idx
    idx.clear()


def new_id() -> str:
    return str(uuid.uuid4())


# -- signatures ---------------------------------------------------------------------------


def test_signature_estimates_jaccard(hasher: MinHasher) -> None:
    base = article(1, 600)
    words = base.split(" ")
    for keep in (0.5, 0.7, 0.9, 1.0):
        other = " ".join(words[: int(len(words) * keep)])
        true = jaccard(hasher.shingle_set(base), hasher.shingle_set(other))
        est = estimate_similarity(hasher.signature(base), hasher.signature(other))
        assert abs(est - true) < 0.12, (keep, est, true)
    assert estimate_similarity(hasher.signature(article(1)), hasher.signature(article(2))) < 0.1


def test_signature_ignores_case_and_punctuation_but_not_word_order(hasher: MinHasher) -> None:
    text = article(3)
    assert np.array_equal(hasher.signature(text), hasher.signature(text.upper().replace(" ", " , ")))
    assert hasher.signature(text).dtype == np.dtype("<u2") and hasher.signature(text).shape == (128,)
    assert not np.array_equal(hasher.signature("a b c d e f"), hasher.signature("f e d c b a"))
    assert hasher.signature("") is None and hasher.signature(["", "  !"]) is None
    assert hasher.signature("two words") is not None  # shorter than a shingle: one shingle of all


def test_signature_is_the_same_in_another_process(hasher: MinHasher) -> None:
    # Python salts str hashes per process; signatures must not depend on that.
    code = "from tests.test_minhash_lsh import article; from tasks.duplicates.minhash import MinHasher;" \
        "print(MinHasher().signature(article(5)).tobytes().hex())"
    out = subprocess.run(
        [sys.executable, "-c", code], cwd=REPO, capture_output=True, text=True, check=True,
        env={"PYTHONHASHSEED": "12345", "PATH": ""},
    ).stdout.strip()
    assert out == hasher.signature(article(5)).tobytes().hex()


def test_token_hashes_are_each_words_blake2b_however_the_cache_stands(monkeypatch: pytest.MonkeyPatch) -> None:
    # Signatures stored in an index must stay comparable across versions: a word's hash is its
    # 8-byte BLAKE2b read little-endian, whether the word is new, repeated or known from before.
    monkeypatch.setattr(minhash, "TOKEN_CACHE_SIZE", 3)
    hasher = MinHasher()

    def expected(words: list[str]) -> list[int]:
        return [int.from_bytes(hashlib.blake2b(w.encode(), digest_size=8).digest(), "little") for w in words]

    pages = [["the", "ferry", "the", "übergang", "ferry"], ["ferry", "harbour", "storm", "the", "quay", "quay"],
             ["storm", "東", "京"], []]
    for words in pages + pages:  # the second time round, after the cache was renewed
        hashes = hasher.token_hashes(words)
        assert hashes.dtype == np.uint64 and hashes.tolist() == expected(words)
    assert hasher.token_hashes(["ferry"]).tolist() == [0x6e53a75f838d7d10]  # pinned: what indexes built before hold


def test_choose_bands_finds_near_threshold_docs() -> None:
    for threshold in (0.4, 0.5, 0.7, 0.8, 0.9):
        bands, rows = choose_bands(threshold, 128)
        assert bands * rows <= 128 and bands <= 48
        assert 1 - (1 - threshold**rows) ** bands >= 0.99
        if threshold >= 0.7:
            assert 1 - (1 - 0.2**rows) ** bands < 0.5  # loosely related docs rarely become candidates


# -- the index ----------------------------------------------------------------------------


def test_distinct_articles_are_all_canonical(index: LSHIndex, hasher: MinHasher) -> None:
    for seed in range(200):
        text = article(seed)
        assert index.check_and_insert(new_id(), hasher.signature(text), content_hash([text])) is None
    assert index.count() == 200


def test_exact_and_near_copies_link_to_the_canonical(index: LSHIndex, hasher: MinHasher) -> None:
    originals = {new_id(): article(seed) for seed in range(20)}
    for doc_id, text in originals.items():
        assert index.check_and_insert(doc_id, hasher.signature(text), content_hash([text])) is None
    for doc_id, text in originals.items():
        exact = index.check(new_id(), hasher.signature(text), content_hash([text]))
        assert exact.duplicate_of == doc_id and exact.exact
        near = near_copy(text, 7)
        verdict = index.check(new_id(), hasher.signature(near), content_hash([near]))
        assert verdict.duplicate_of == doc_id and not verdict.exact
        assert 0.8 <= verdict.similarity < 1.0
    assert index.count() == 20  # copies are links, not new canonicals


def test_checking_the_same_doc_twice_changes_nothing(index: LSHIndex, hasher: MinHasher) -> None:
    doc_id, text = new_id(), article(11)
    assert index.check(doc_id, hasher.signature(text), content_hash([text])).duplicate_of is None
    again = index.check(doc_id, hasher.signature(text), content_hash([text]))
    assert again.duplicate_of is None and again.already_indexed
    assert index.count() == 1


def test_body_without_words_uses_the_exact_check_only(index: LSHIndex) -> None:
    first = new_id()
    assert index.check_and_insert(first, None, content_hash([])) is None
    assert index.check_and_insert(new_id(), None, content_hash([])) == first


def test_remove_takes_a_canonical_out(index: LSHIndex, hasher: MinHasher) -> None:
    keep_id, gone_id = new_id(), new_id()
    keep, gone = article(21), article(22)
    index.check_and_insert(keep_id, hasher.signature(keep), content_hash([keep]))
    index.check_and_insert(gone_id, hasher.signature(gone), content_hash([gone]))
    assert index.remove(gone_id) and not index.contains(gone_id) and index.contains(keep_id)
    assert not index.remove(gone_id)
    assert index.similar(hasher.signature(gone), 0.5) == []  # its band entries are tombstones now
    copy = near_copy(gone, 3)
    replacement = new_id()
    assert index.check_and_insert(replacement, hasher.signature(copy), content_hash([copy])) is None
    assert index.check_and_insert(new_id(), hasher.signature(gone), content_hash([gone])) == replacement
    assert index.check_and_insert(new_id(), hasher.signature(keep), None) == keep_id


def test_check_body_uses_the_index_hasher(index: LSHIndex) -> None:
    body = article(41).split("\n")
    first = new_id()
    assert index.check_body(first, body).duplicate_of is None
    assert index.check_body(new_id(), [p.upper() for p in body]).exact
    assert index.check_body(new_id(), near_copy("\n".join(body), 2).split("\n")).duplicate_of == first
    # A content hash the caller already made is the one checked (dedupe has it from the draft).
    other = article(42).split("\n")
    assert index.check_body(new_id(), other, content_hash(body)).duplicate_of == first
    assert index.check_body(new_id(), other, content_hash(body)).exact


def test_short_bodies_get_the_exact_check_only(index: LSHIndex) -> None:
    short = ["Photo gallery: the storm in pictures, by our staff photographers"]
    first = new_id()
    assert index.check_body(first, short).duplicate_of is None
    assert index.check_body(new_id(), short).duplicate_of == first  # exact copy still found
    edited = ["Photo gallery: the storm in pictures, by our photographers"]
    assert index.check_body(new_id(), edited).duplicate_of is None


def test_similar_is_read_only(index: LSHIndex, hasher: MinHasher) -> None:
    doc_id, text = new_id(), article(31)
    index.check_and_insert(doc_id, hasher.signature(text), None)
    found = index.similar(hasher.signature(near_copy(text, 1)), 0.5)
    assert [d for d, _ in found] == [doc_id] and found[0][1] > 0.8
    assert index.similar(hasher.signature(article(32)), 0.5) == []
    assert index.count() == 1


def test_check_many_answers_like_checking_in_order(index: LSHIndex, hasher: MinHasher) -> None:
    texts = [article(s) for s in range(30)]
    items = []
    for i, text in enumerate(texts):
        items.append((new_id(), hasher.signature(text), content_hash([text])))
        if i % 3 == 0:
            items.append((new_id(), hasher.signature(near_copy(text, i)), None))
    verdicts = index.check_many(items, batch=7)
    assert [v.duplicate_of for v in verdicts] == [
        items[j - 1][0] if items[j][2] is None else None for j in range(len(items))
    ]


def test_docs_sharing_a_band_are_capped_per_field(index: LSHIndex, client: redis.Redis) -> None:
    from tasks.duplicates.lsh import MAX_PER_FIELD

    rng = np.random.default_rng(5)
    shared = rng.integers(0, 1 << 16, size=index.rows, dtype=np.uint16)
    ids = []
    for _ in range(MAX_PER_FIELD + 4):
        sig = rng.integers(0, 1 << 16, size=128, dtype=np.uint16)
        sig[: index.rows] = shared  # band 0 equal, the rest unrelated
        ids.append(new_id())
        assert index.check_and_insert(ids[-1], sig) is None
    packed = index.packed_bands(sig)
    value = client.hget(index.prefix.encode() + b"b:" + packed[:3], packed[3:5])
    assert value is not None and len(value.split(b",")) == MAX_PER_FIELD
    assert index.count() == MAX_PER_FIELD + 4


def test_a_worker_built_differently_is_refused(client: redis.Redis, index: LSHIndex, hasher: MinHasher) -> None:
    with pytest.raises(IndexLayoutError):
        LSHIndex(client, 0.6, prefix=index.prefix, hasher=hasher)
    with pytest.raises(IndexLayoutError):  # same bands, other verification threshold
        LSHIndex(client, 0.81, prefix=index.prefix, hasher=hasher)
    with pytest.raises(IndexLayoutError):
        LSHIndex(client, 0.8, prefix=index.prefix, hasher=MinHasher(shingle=3))
    LSHIndex(client, 0.8, prefix=index.prefix, hasher=MinHasher())  # built the same: accepted
    with pytest.raises(ValueError):
        index.check(new_id(), np.zeros(64, dtype=np.uint16))
    with pytest.raises(ValueError):
        index.check("not-a-uuid", hasher.signature(article(1)))


# -- concurrency --------------------------------------------------------------------------

ROUNDS = 15
RACERS = 4


def _race(redis_url: str, prefix: str, racer: int, barrier, results) -> None:
    hasher = MinHasher()
    idx = LSHIndex(redis.Redis.from_url(redis_url), 0.8, prefix=prefix, hasher=hasher)
    for rnd in range(ROUNDS):
        # Each racer holds a different near-copy of the round's article.
        text = near_copy(article(1000 + rnd), seed=racer)
        sig, doc_id = hasher.signature(text), str(uuid.uuid4())
        barrier.wait()
        results.put((rnd, doc_id, idx.check_and_insert(doc_id, sig, content_hash([text]))))


def _assert_one_canonical_per_round(results: list[tuple[int, str, str | None]]) -> None:
    assert len(results) == ROUNDS * RACERS
    for rnd in range(ROUNDS):
        rows = [(doc, dup) for r, doc, dup in results if r == rnd]
        canonicals = [doc for doc, dup in rows if dup is None]
        assert len(canonicals) == 1, rows
        assert all(dup == canonicals[0] for doc, dup in rows if dup is not None), rows


def test_racing_processes_make_one_canonical(redis_url: str, client: redis.Redis) -> None:
    prefix = f"gleaner:test-lsh:{uuid.uuid4().hex}:"
    ctx = multiprocessing.get_context("spawn")
    barrier, results = ctx.Barrier(RACERS), ctx.Queue()
    procs = [ctx.Process(target=_race, args=(redis_url, prefix, i, barrier, results)) for i in range(RACERS)]
    for p in procs:
        p.start()
    got = [results.get(timeout=120) for _ in range(ROUNDS * RACERS)]
    for p in procs:
        p.join(30)
        assert p.exitcode == 0
    _assert_one_canonical_per_round(got)
    assert int(client.get(prefix + "n")) == ROUNDS
    LSHIndex(client, 0.8, prefix=prefix).clear()


def test_racing_threads_make_one_canonical(redis_url: str, client: redis.Redis) -> None:
    import queue

    prefix = f"gleaner:test-lsh:{uuid.uuid4().hex}:"
    barrier, results = threading.Barrier(RACERS), queue.Queue()
    threads = [threading.Thread(target=_race, args=(redis_url, prefix, i, barrier, results)) for i in range(RACERS)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(120)
    _assert_one_canonical_per_round([results.get_nowait() for _ in range(results.qsize())])
    LSHIndex(client, 0.8, prefix=prefix).clear()
