"""Made-up prose for test pages: every seed gives different sentences, so test articles are
distinct to the near-duplicate index as real articles are (templated text that differs only
in a number is, rightly, a near-duplicate)."""

from __future__ import annotations

import random

_CONSONANTS, _VOWELS = "bcdfghklmnprstvz", "aeiou"


def _vocabulary() -> list[str]:
    rng = random.Random(7)
    words: set[str] = set()
    while len(words) < 4000:
        words.add("".join(rng.choice(_CONSONANTS) + rng.choice(_VOWELS) for _ in range(rng.choice((2, 2, 3, 3, 4)))))
    return sorted(words)


_WORDS = _vocabulary()


def prose(seed: int | str, paragraphs: int = 3, sentences: int = 3) -> list[str]:
    rng = random.Random(str(seed))
    out = []
    for _ in range(paragraphs):
        out.append(" ".join(
            " ".join(rng.choice(_WORDS) for _ in range(rng.randint(9, 16))).capitalize() + "."
            for _ in range(sentences)
        ))
    return out
