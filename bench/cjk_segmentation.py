"""Japanese without spaces: two-character pieces (what Gleaner indexes) against a morphological
segmenter's words (janome, which ships its dictionary in its package), on the Japanese articles
written for the project (``tests/written_pages.py``), same run.

    .venv/bin/python bench/cjk_segmentation.py    # janome comes with the bench extra

For each way of cutting the text: every article is a tf-idf vector over all the articles (the
same weights as ``worker.similar``); R-precision = share of an article's k nearest that are on its
topic, k = the other articles on that topic; "separated" = articles whose least similar same-topic
article still scores above the most similar other one; and the time to cut one article.
Near-duplicates: the estimated Jaccard of ``tasks.duplicates.minhash`` signatures (five-token shingles over
``tasks.duplicates.textnorm`` tokens, one per CJK character) between an article and a lightly edited copy,
and the highest between two different articles.
"""

from __future__ import annotations

import math
import platform
import sys
import time
from collections import Counter
from collections.abc import Callable
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from tasks.duplicates.minhash import MinHasher, estimate_similarity  # noqa: E402
from tests import written_pages  # noqa: E402
from worker.similar import PRIOR_RECORDS, tokens  # noqa: E402

DOCS = [(topic, title, body) for topic, items in written_pages.JAPANESE.items() for title, body in items]


def janome_words() -> Callable[[str], list[str]] | None:
    try:
        from janome.tokenizer import Tokenizer
    except ImportError:
        return None
    tokenizer = Tokenizer()

    def cut(text: str) -> list[str]:
        # Content words in their dictionary form: nouns, verbs, adjectives.
        return [t.base_form.lower() for t in tokenizer.tokenize(text)
                if t.part_of_speech.split(",")[0] in ("名詞", "動詞", "形容詞")]
    return cut


def measure(cut: Callable[[str], list[str]]) -> dict:
    texts = [title + "\n" + "\n".join(body) for _, title, body in DOCS]
    cut(texts[0])  # warm up (a segmenter loads its dictionary on first use)
    t = time.perf_counter()
    counts = [Counter(cut(x)) for x in texts]
    per_article = (time.perf_counter() - t) / len(texts) * 1000
    df = Counter(w for c in counts for w in c)
    vectors = []
    for c in counts:
        v = {w: (1 + math.log(n)) * math.log((len(texts) + PRIOR_RECORDS) / (df[w] + 1)) for w, n in c.items()}
        norm = math.sqrt(sum(x * x for x in v.values())) or 1.0
        vectors.append({w: x / norm for w, x in v.items()})
    rprec, separated, n = 0.0, 0, 0
    for i, (topic, _, _) in enumerate(DOCS):
        if topic == "unrelated":
            continue
        n += 1
        sims = sorted(((sum(x * vectors[j].get(w, 0.0) for w, x in vectors[i].items()), DOCS[j][0])
                       for j in range(len(DOCS)) if j != i), reverse=True)
        k = sum(1 for d in DOCS if d[0] == topic) - 1
        rprec += sum(1 for _, t in sims[:k] if t == topic) / k
        separated += min(s for s, t in sims if t == topic) > max(s for s, t in sims if t != topic)
    return {"rprec": rprec / n, "separated": separated, "n": n, "ms": per_article}


def main() -> None:
    rows = [("two-character pieces (Gleaner)", measure(tokens))]
    cut = janome_words()
    if cut is not None:
        rows.append(("janome words", measure(cut)))
    hasher = MinHasher()
    original = written_pages.JAPANESE["ips-cell-transplants"][0][1]
    sig = hasher.signature(original)
    copy = estimate_similarity(sig, hasher.signature(written_pages.JAPANESE_COPY[1]))
    others = max(estimate_similarity(hasher.signature(a[2]), hasher.signature(b[2]))
                 for i, a in enumerate(DOCS) for b in DOCS[i + 1:])
    lines = [
        "# Japanese text: two-character pieces against a segmenter", "",
        f"Command: `.venv/bin/python bench/cjk_segmentation.py` (Python {platform.python_version()}). "
        f"{len(DOCS)} Japanese articles written for the project, 4 topics and 2 unrelated.", "",
        "| cut into | R-precision | topics separated | ms per article |", "| --- | --- | --- | --- |",
    ]
    for name, r in rows:
        lines.append(f"| {name} | {r['rprec']:.3f} | {r['separated']}/{r['n']} | {r['ms']:.2f} |")
    if cut is None:
        lines.append("\n(janome is not installed: `pip install -e '.[bench]'` for the comparison.)")
    lines += ["", f"Near-duplicates (MinHash, five-character shingles): estimated Jaccard {copy:.2f} between an "
              f"article and its lightly edited copy; at most {others:.2f} between two different articles "
              "(the near-duplicate threshold is 0.5).", ""]
    out = ROOT / "bench" / "results" / "cjk_segmentation.md"
    out.write_text("\n".join(lines), encoding="utf-8")
    print("\n".join(lines))


if __name__ == "__main__":
    main()
