"""Split article text into whole sentences, for the summarizer.

Rule-based and dependency-free. A sentence ends at ``.``, ``!``, ``?`` or ``…``
(plus any closing quotes or brackets right after it) when whitespace and a
plausible sentence start follow, and always at a CJK full stop (``。！？``).
A full stop does not end a sentence after a title (``Mr.``, ``Dr.``), an
initial (``J. K.``), an always-inline abbreviation (``e.g.``, ``vs.``), inside
a number (``3.5``) or before a lowercase word. Abbreviations that can also
close a sentence (``U.S.``, ``Inc.``, ``etc.``) end one only when a common
sentence opener (``The``, ``He``, ...) follows. A blank line always ends one.

Every sentence returned is a stripped slice of the input, so callers can join
them back and know the result is made of the text's own sentences.
"""

from __future__ import annotations

import re

__all__ = ["join_sentences", "split_sentences"]

_CLOSERS = "\"'”’»)]}」』）】〕〉》›"
_CJK_STOPS = "。！？｡"

# A candidate end: western terminators, or CJK ones, then any closers.
_END = re.compile(rf"(?:[.!?…]+|[{_CJK_STOPS}]+[.!?…]*)[{re.escape(_CLOSERS)}]*")
# Quotation marks that can hold several sentences, and how far ahead a closing one may be
# (characters) before we stop waiting for it: a stray inch mark must not glue a paragraph.
_QUOTE_PAIRS = (("“", "”"), ('"', '"'), ("「", "」"), ("『", "』"), ("«", "»"))
QUOTE_LOOKAHEAD = 300
_STRAIGHT_QUOTE = re.compile(r'(?<!\d)"')
_QUOTING_PARTICLES = frozenset("とっ")  # "…」と言った", "…」って"
_BLANK_LINE = re.compile(r"\n[ \t\r\f\v]*\n\s*")

# Never end a sentence when capitalized: titles and labels before a name or a number.
# Lowercase they are ordinary words ("modern art. The ..."), so case matters here.
_TITLES = frozenset(
    """mr mrs ms mx dr prof rev hon fr sra srta mt ft gen lt col maj capt cmdr sgt cpl pvt
    adm gov sen rep pres supt insp det messrs mme mlle fig figs eq vol vols art sec ch
    jan feb mar apr jun jul aug sep sept oct nov dec""".split()
)
# Never end a sentence in any case: they only ever sit mid-sentence.
_INLINE = frozenset("e.g i.e cf vs v viz approx ca pp p op".split())
# After these, "No." means "number" only when a digit follows ("No. 5").
_NUMBER_ABBREVIATIONS = frozenset({"no", "nos"})
# Abbreviations that often close a sentence too ("... based in the U.S. The ...").
_SOMETIMES_FINAL = frozenset(
    """etc inc ltd co corp llc plc bros jr sr dept est al st ave blvd rd
    u.s u.k u.n e.u a.m p.m d.c ph.d b.a m.a""".split()
)
# US state abbreviations in AP style, as in datelines: "ST. JOSEPH, Mich. (AP) —".
_STATES = frozenset(
    """ala ariz ark calif colo conn del fla ga ill ind kan kans ky la md mass mich minn
    miss mo mont neb nev okla ore pa tenn tex va vt wash wis wyo""".split()
)
# Words that open a new sentence far more often than they follow an abbreviation.
_OPENERS = frozenset(
    """the a an he she it they we i you his her its their our my this that these those
    there here but and or so yet however meanwhile still also then now in on at
    after before when while if as for of to by with from some many most one two
    what who why how where officials police""".split()
)
_DOTTED = re.compile(r"^(?:[A-Za-z]\.)+[A-Za-z]$")  # U.S, e.g, a.m (final dot is the terminator)
_NON_SPACE = re.compile(r"\S")  # \s is what str.isspace and str.strip call whitespace
_NEXT_WORD = re.compile(r"[\w']+")
_WORD_CHARS = "_.'’-"  # with the alphanumerics: what the token before a full stop is made of


def split_sentences(text: str) -> list[str]:
    """The sentences of ``text``, in order, each stripped; empty text gives ``[]``."""
    sentences: list[str] = []
    for block in _BLANK_LINE.split(text):
        sentences.extend(_split_block(block))
    return sentences


def join_sentences(sentences: list[str]) -> str:
    """Join sentences with one space, or none between two CJK ones (CJK text has no spaces)."""
    out = ""
    for sentence in sentences:
        if out and _needs_space(out, sentence):
            out += " "
        out += sentence
    return out


def _needs_space(before: str, after: str) -> bool:
    # "…です。」" ends in CJK even though its last char is a closing bracket.
    core = before.rstrip(_CLOSERS) or before
    return not (_is_cjk(core[-1]) and _is_cjk(after[0]))


def _is_cjk(char: str) -> bool:
    code = ord(char)
    return (
        0x3040 <= code <= 0x30FF  # hiragana, katakana
        or 0x3400 <= code <= 0x4DBF  # CJK extension A
        or 0x4E00 <= code <= 0x9FFF  # CJK unified ideographs
        or 0xF900 <= code <= 0xFAFF  # compatibility ideographs
        or 0xFF00 <= code <= 0xFFEF  # full-width forms
        or 0x3000 <= code <= 0x303F  # CJK punctuation
        or 0x20000 <= code <= 0x2FA1F  # extensions B and later
    )


def _split_block(block: str) -> list[str]:
    sentences: list[str] = []
    start = 0
    for match in _END.finditer(block):
        end = match.end()
        if _ends_sentence(block, start, match):
            piece = block[start:end].strip()
            if piece:
                sentences.append(piece)
            start = end
    tail = block[start:].strip()
    if tail:
        sentences.append(tail)
    return sentences


def _ends_sentence(block: str, start: int, match: re.Match[str]) -> bool:
    return _looks_final(block, start, match) and not _inside_quote(block, start, match.end())


def _inside_quote(block: str, start: int, end: int) -> bool:
    # '"Meth. We're on it."' is one sentence: a quotation that closes soon after is kept whole,
    # so a summary never shows a quote mark without its partner.
    head = block[start:end]
    ahead = block[end : end + QUOTE_LOOKAHEAD]
    for opener, closer in _QUOTE_PAIRS:
        if closer not in ahead:  # looked at first: the lookahead is short, the sentence may be long
            continue
        if opener == closer:
            # A straight quote after a digit is an inch mark (5'10"), not a quotation.
            unbalanced = len(_STRAIGHT_QUOTE.findall(head)) % 2 == 1
        else:
            unbalanced = head.count(opener) > head.count(closer)
        if unbalanced:
            return True
    return False


def _looks_final(block: str, start: int, match: re.Match[str]) -> bool:
    mark = match.group()
    if mark[0] in _CJK_STOPS:
        # 「…。」と言った: a closed quote followed by a quoting particle goes on.
        quoted = mark.rstrip(_CLOSERS) != mark
        return not (quoted and block[match.end() : match.end() + 1] in _QUOTING_PARTICLES)
    end = match.end()
    if end == len(block):
        return True
    if not block[end].isspace():
        return False  # "3.5", "example.com", "U.S.-based", "Yahoo!'s"
    # The next non-space character, found in place: copying the rest of the block at every full
    # stop cost time quadratic in a paragraph's length.
    ahead = _NON_SPACE.search(block, end)
    if ahead is None:
        return True
    first = ahead.group()
    if first.islower():
        return False  # "e.g. the", '"Stop!" she said', "Yahoo! is"
    if mark.rstrip(_CLOSERS) != ".":
        return True  # "!", "?", "...", "?!" before a capital
    if mark != ".":
        return True  # '."' or '.)': the closer shows the sentence is over
    word = _word_before(block, start, match.start())
    if not word:
        return True
    lowered = word.lower()
    next_word = _NEXT_WORD.match(block, ahead.start())
    next_token = next_word.group().lower() if next_word else ""
    if lowered in _NUMBER_ABBREVIATIONS:
        return not first.isdigit()
    if lowered in _INLINE or (word[0].isupper() and lowered in _TITLES):
        return False
    if len(word) == 1 and word.isalpha() and word.isupper():
        # An initial ("J. K. Rowling", "George W. Bush") unless a sentence plainly
        # starts next ("... up two ranks to C. The patient ...").
        return next_token in _OPENERS
    if lowered in _SOMETIMES_FINAL or _DOTTED.match(word) or (word[0].isupper() and lowered in _STATES):
        return next_token in _OPENERS
    return True


def _word_before(block: str, start: int, dot: int) -> str:
    # The token the full stop is attached to, without leading punctuation: "(Dr" -> "Dr".
    # The run of word characters, dots, apostrophes and hyphens that ends at the dot (or at a line
    # break just before it), walked back from there: a regex anchored at the end would be tried
    # from every position of the sentence.
    end = dot - 1 if dot > start and block[dot - 1] == "\n" else dot
    at = end
    while at > start and (block[at - 1].isalnum() or block[at - 1] in _WORD_CHARS):
        at -= 1
    return block[at:end].lstrip(".'’-")
