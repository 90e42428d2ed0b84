"""The article's language as an ISO 639-1 code: the page's declaration, checked against its text.

Pages often declare the language of their template rather than of the article (an English
``lang="en"`` on a German story, a French site's English theme), and many declare none. The text
decides when there is enough of it: py3langid (BSD, its model inside the package, no download)
reads a bounded sample of the title and body, about 0.4 ms a page.
"""

from __future__ import annotations

import functools
import re

from py3langid.langid import MODEL_FILE, LanguageIdentifier

SAMPLE_CHARS = 1000  # the detector's accuracy on the corpora is flat beyond a few hundred characters
# Below this many letters, or this confidence, the text cannot overrule what the page declares:
# a headline of two words or a caption is not evidence against a declaration.
MIN_LETTERS = 100
MIN_CONFIDENCE = 0.9

_PRIMARY = re.compile(r"^\s*([a-zA-Z]{2})(?:[-_]|\s*$)")
_LETTER = re.compile(r"[^\W\d_]")
# Languages a character model cannot reliably tell apart; where the page declares one of them and
# the text reads as another, the declaration is the better judge.
_CLOSE = (frozenset(("no", "nb", "nn")), frozenset(("bs", "hr", "sr")), frozenset(("id", "ms")))
# Codes older pages still declare, withdrawn from ISO 639-1 in favour of these.
_RENAMED = {"iw": "he", "in": "id", "ji": "yi", "jw": "jv"}


@functools.cache
def _identifier() -> LanguageIdentifier:
    """The detector, loaded once per process (half a second) and restricted to ISO 639-1 codes."""
    identifier = LanguageIdentifier.from_model_file(MODEL_FILE, norm_probs=True)
    identifier.set_languages(sorted({code for code in identifier.nb_classes if len(code) == 2}))
    return identifier


def declared_code(value: str | None) -> str | None:
    """The ISO 639-1 code a language tag starts with ("en-GB" -> "en", "pt_BR" -> "pt"), else None."""
    match = _PRIMARY.match(value) if value else None
    if match is None:
        return None
    code = match.group(1).lower()
    return _RENAMED.get(code, code)


def detect(text: str) -> tuple[str, float]:
    """The language of a text and the detector's confidence (0-1)."""
    code, confidence = _identifier().classify(text[:SAMPLE_CHARS])
    return code, float(confidence)


def _same(a: str, b: str) -> bool:
    return a == b or any(a in group and b in group for group in _CLOSE)


def choose_language(declared: list[str | None], title: str, body: list[str]) -> str:
    """The article's language: the first declaration, unless enough text says otherwise."""
    stated = next((code for code in map(declared_code, declared) if code), None)
    sample = " ".join((title, *body))[:SAMPLE_CHARS]
    detected, confidence = detect(sample)
    if stated is None:
        return detected
    if _same(stated, detected):
        return stated
    sure = confidence >= MIN_CONFIDENCE and len(_LETTER.findall(sample)) >= MIN_LETTERS
    return detected if sure else stated
