"""Word counts and reading times, for spaced and unspaced scripts."""

from __future__ import annotations

from pathlib import Path

import pytest

from tasks.stats import DEFAULT_RATE, READING_RATES, count_words, reading_minutes

EXAMPLE = Path(__file__).resolve().parents[1] / ".." / "shared" / "seed" / "example-record.txt"


def test_example_body_has_314_words() -> None:
    if not EXAMPLE.exists():
        pytest.skip("the shared seed example is not available")
    body = list(dict.fromkeys(EXAMPLE.read_text(encoding="utf-8").splitlines()[:19]))
    assert len(body) == 10
    assert count_words(body) == 314


@pytest.mark.parametrize(
    ("paragraphs", "expected"),
    [
        ([], 0),
        (["", "  "], 0),
        (["Hello world."], 2),
        (["Hello,   world — again.", "Two\twords\n here"], 7),
        (["2 million iPSC-derived cells"], 4),
        # One per CJK character; punctuation is not a word.
        (["東京で会議が開かれた。"], 10),
        (["「はい。」と彼は言った。"], 8),
        (["他说：“我们赢了。”"], 6),
        # Latin tokens inside CJK text still count once each.
        (["iPS細胞を使った治療。"], 9),
        (["日本 Japan 2025年"], 5),
        # Korean is written with spaces: words, not syllables.
        (["남상미 연기가 돋보인 이유"], 4),
    ],
)
def test_count_words(paragraphs: list[str], expected: int) -> None:
    assert count_words(paragraphs) == expected


def test_reading_minutes_round_up_and_know_the_language() -> None:
    assert reading_minutes(0, "en") == 0
    assert reading_minutes(1, "en") == 1
    assert reading_minutes(314, "en") == 2
    assert reading_minutes(READING_RATES["en"], "en") == 1
    assert reading_minutes(READING_RATES["en"] + 1, "en-GB") == 2
    assert reading_minutes(1000, "ja-JP") == 2
    assert reading_minutes(1000, "zh_Hant") == 4
    assert reading_minutes(DEFAULT_RATE * 3, None) == 3
    assert reading_minutes(DEFAULT_RATE * 3, "xx") == 3
