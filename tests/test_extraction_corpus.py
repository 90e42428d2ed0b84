"""Extraction quality on real pages: a sample of ../shared/corpus/scrapinghub scored as bench/extract.py does."""

from __future__ import annotations

import gzip
import json
import re
from collections import Counter
from pathlib import Path

import pytest

from tasks.extraction import extract_article
from worker.errors import ExtractionError

CORPUS = Path(__file__).resolve().parents[2] / "shared" / "corpus" / "scrapinghub"
SAMPLE_EVERY = 4  # every 4th page by id: 46 of 181, about a second
F1_FLOOR = 0.93  # the full corpus scores about 0.97 (bench/results/extract.md); a sample varies
_TOKEN = re.compile(r"\w+")


def _shingles(text: str) -> Counter:
    tokens = _TOKEN.findall(text)
    return Counter(tuple(tokens[i:i + 4]) for i in range(len(tokens) - 3))


@pytest.fixture(scope="module")
def truth() -> dict[str, dict]:
    if not (CORPUS / "ground-truth.json").exists():
        pytest.skip(f"corpus not found at {CORPUS}")
    return json.loads((CORPUS / "ground-truth.json").read_text(encoding="utf-8"))


def test_f1_on_a_sample_of_the_corpus(truth: dict[str, dict]) -> None:
    precisions, recalls, failures = [], [], 0
    for key in sorted(truth)[::SAMPLE_EVERY]:
        page = gzip.decompress((CORPUS / "html" / f"{key}.html.gz").read_bytes())
        try:
            predicted = "\n".join(extract_article(page, truth[key]["url"]).body)
        except ExtractionError:
            predicted, failures = "", failures + 1
        pred, true = _shingles(predicted), _shingles(truth[key]["articleBody"])
        shared = sum((pred & true).values())
        if pred:
            precisions.append(shared / sum(pred.values()))
        if true:
            recalls.append(shared / sum(true.values()))
    precision = sum(precisions) / len(precisions)
    recall = sum(recalls) / len(recalls)
    f1 = 2 * precision * recall / (precision + recall)
    assert f1 >= F1_FLOOR, f"F1 {f1:.3f} (precision {precision:.3f}, recall {recall:.3f}, {failures} failures)"


def test_every_corpus_page_gets_a_title_and_most_get_a_date(truth: dict[str, dict]) -> None:
    titled = dated = total = 0
    for key in sorted(truth)[::SAMPLE_EVERY]:
        page = gzip.decompress((CORPUS / "html" / f"{key}.html.gz").read_bytes())
        try:
            article = extract_article(page, truth[key]["url"])
        except ExtractionError:
            continue
        total += 1
        titled += bool(article.title)
        dated += article.published_at is not None
    assert titled == total
    assert dated >= 0.8 * total
