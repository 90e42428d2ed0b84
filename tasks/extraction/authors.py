"""The article's authors: from the page's metadata, else its printed byline, as clean names.

A name is what remains once a byline's other words are gone: "By", dates and times, job titles
("Senior Reporter"), credentials ("MD"), the outlet's name, e-mail addresses, URLs and handles.
Several authors come back as a list, however the page joins them ("A, B and C", "A & B", a
JSON-LD list, several bylines).
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable, Sequence

from bs4 import Tag

from tasks.extraction.blocks import Block
from tasks.extraction.dates import without_dates
from tasks.extraction.metadata import PageMeta, clean

MAX_AUTHORS = 20
_MAX_NAME_CHARS = 80
_MAX_NAME_WORDS = 5
_MAX_BYLINE_CHARS = 120  # a longer line is a sentence or a biography, not a byline
_BYLINE_WINDOW = (5, 30)  # blocks before and after the headline where a byline is printed

_MARKED_HINT = re.compile(r"author|byline|writer", re.I)
_MAX_MARKED = 10
# "By", "Written by", "Posted by", "Von", "Par", "Por", "Autor:", "Author:": a byline's opening.
_BYLINE = re.compile(
    r"^(?:(?:written|posted|published|reported|compiled|edited|words|text|story|article|reviewed|photos?)\s+)?"
    r"(?:by|von|par|por|di|door|av|af|från|przez|от)\s*:?\s+(?=\S)"
    r"|^(?:authors?|autor(?:in|en)?|auteur(?:e|s)?|autore|byline|written by|article by|posted by|texto?)\s*:\s*(?=\S)",
    re.I,
)
# A label alone on its line, with the names on the next line.
_LABEL = re.compile(
    r"^(?:(?:written|posted|published|article|story|words)\s+by|by|authors?|autor(?:in|en)?|auteur(?:e|s)?|"
    r"autore|about the authors?|meet the authors?)\s*:?$",
    re.I,
)
# Where a byline's names end: a date or time was cut out before, these words follow the names.
_TAIL = re.compile(
    r"\s+(?:on|in|at|for|from|of|updated|published|posted|last updated|am|le|el|il|em)(?:\s.*)?$"
    r"|\s*(?:[|·•⋅∙‧]|\s[-–—/]\s).*$",
    re.I,
)
_SPLIT = re.compile(r"\s*(?:,|;|&|\band\b|\bund\b|\bet\b|\by\b|\be\b|\ben\b|\bog\b|\boch\b|\+|\n)\s*", re.I)
_PREFIX = re.compile(r"^(?:by|von|par|por|di|door)\s+", re.I)
_URLISH = re.compile(r"^(?:https?:)?//|^www\.|\.(?:com|org|net)\b|/", re.I)
_HANDLE = re.compile(r"^@\w")
_DIGIT = re.compile(r"\d")
_CREDENTIAL = re.compile(r"^(?:[A-Z]\.?){2,5}$")  # "MD", "LVT", "Ph.D." alone between commas
_LETTER = re.compile(r"[^\W\d_]")
# Lower-case words that stand inside names ("Ludwig van Beethoven", "María de la Cruz").
_PARTICLES = frozenset("van von der den de del della di da du la le los las bin ibn al el y zu ter".split())
_WORD = re.compile(r"[\w'’.-]+")
# What follows a name in a byline: a job title or a credential ("Keith Barry Senior Autos Reporter",
# "Ann Example, MD"). A language-level vocabulary, not any site's. Role nouns and credentials end
# a name wherever they stand; modifiers ("Senior", "Tech") only when a role noun follows them.
_ROLE_NOUNS = frozenset(
    """reporter reporters correspondent correspondents editor editors writer writers columnist columnists
    contributor contributors journalist journalists producer producers analyst analysts freelancer
    photographer photographers critic critics blogger director manager founder co-founder cofounder ceo cto
    cfo president specialist expert consultant professor lecturer researcher scientist fellow intern
    redakteur redakteurin korrespondent korrespondentin journaliste rédacteur rédactrice periodista
    redactor redactora giornalista editor-in-chief""".split()
)
_CREDENTIALS = frozenset("md m.d phd ph.d mba rn rdn ld ms ma msc bsc ba bs dds dvm vmd cpa cfp jd esq facp faclm "
                         "dacvb".split())
_MODIFIERS = frozenset(
    """senior chief associate assistant deputy managing executive special national international political
    science health tech technology business sports entertainment investigative digital news contributing
    staff freelance former lead head editorial autos travel food opinion sr""".split()
)
# Names a CMS puts where no author was entered, and a byline's own words.
_PLACEHOLDERS = frozenset(
    ("admin", "administrator", "author", "the author", "guest", "unknown", "anonymous", "webmaster", "user",
     "written by", "posted by", "by", "redaktion", "rédaction", "redacción", "redazione")
)


def _without_roles(name: str) -> str:
    """The name before its job title or credentials: "Keith Barry Senior Autos Reporter" -> "Keith
    Barry", "Ann Example MD" -> "Ann Example"; a name that is all title ("Staff Writer") is none."""
    words = [word.lower().strip(".,()") for word in name.split()]
    end = next((i for i, word in enumerate(words) if word in _ROLE_NOUNS or word in _CREDENTIALS), None)
    if end is None:
        return name
    # The title starts at its first modifier ("Senior" in "Senior Autos Reporter"), else at the role.
    start = next((i for i in range(end) if words[i] in _MODIFIERS), end)
    return " ".join(name.split()[:start])


def _one_name(raw: str) -> str | None:
    name = _PREFIX.sub("", clean(raw)).strip(" .,:;-–—|()[]\"'“”")
    if not name or _URLISH.search(name) or _HANDLE.match(name) or "@" in name or _CREDENTIAL.match(name):
        return None  # an author page's URL, a social handle or an e-mail address, not a name
    name = _without_roles(name).strip(" .,:;-–—|")
    if (not name or len(name) > _MAX_NAME_CHARS or len(name.split()) > _MAX_NAME_WORDS
            or _DIGIT.search(name) or len(_LETTER.findall(name)) < 2 or name.lower() in _PLACEHOLDERS):
        return None  # a date, a sentence or a placeholder that shared the byline
    return name


def _name_like(text: str) -> bool:
    """Whether a line reads as names: a few words, each capitalised or a name particle."""
    words = _WORD.findall(text)
    return 0 < len(words) <= 2 * _MAX_NAME_WORDS and all(w[0].isupper() or w.lower() in _PARTICLES or
                                                         w.lower() in ("and", "&") for w in words)


def _without_outlet(name: str, outlets: Sequence[str]) -> str:
    """A name without the outlet's name glued before or after it ("Ann Example USA TODAY")."""
    lowered = name.lower()
    for outlet in outlets:
        key = outlet.lower()
        if key and key != lowered:
            # Only where a person's full name remains: "Automateed Team" is the outlet's own credit.
            if lowered.endswith(" " + key) and len(name[:-len(key)].split()) >= 2:
                return name[:-len(key)].strip(" ,|-–—")
            if lowered.startswith(key + " ") and len(name[len(key):].split()) >= 2:
                return name[len(key):].strip(" ,|-–—")
    return name


def clean_authors(names: Iterable[str], outlets: Sequence[str] = ()) -> list[str]:
    """Names without "By", dates, job titles, handles, URLs or duplicates, split where a byline
    joins several, and without an outlet's name glued on."""
    found: list[str] = []
    seen: set[str] = set()
    for raw in names:
        raw = clean(raw)
        if not raw or _URLISH.match(raw):
            continue  # article:author often holds the author's page, not a name
        text = clean(without_dates(_BYLINE.sub("", raw))).lstrip(" ·|•-–—,:;")
        text = _TAIL.sub("", _BYLINE.sub("", text))
        for part in _SPLIT.split(text):
            name = _one_name(_without_outlet(clean(part), outlets))
            if name is None or name.lower() in seen:
                continue
            seen.add(name.lower())
            found.append(name)
    return found[:MAX_AUTHORS]


def byline_names(blocks: list[Block], title: str, first_body: Block | None, outlets: list[str]) -> list[str]:
    """The names of a byline printed near the headline: "By Ann Example and Bo Sample", "Posted
    by Ann Example on 20 November 2019", or a label ("Author") with the names on the next line."""
    start = next((i for i, b in enumerate(blocks) if b.tag == "h1" and b.text == title), None)
    if start is None:
        start = next((i for i, b in enumerate(blocks) if b is first_body), 0)
    before, after = _BYLINE_WINDOW
    window = blocks[max(0, start - before):start + after]
    for index, block in enumerate(window):
        if len(block.text) > _MAX_BYLINE_CHARS:
            continue
        # A byline may open with its date: "September 1, 2023 By Ann Example".
        text = clean(without_dates(block.text)).lstrip(" ·|•⋅-–—,:;")
        if _LABEL.match(text) and index + 1 < len(window):
            text = window[index + 1].text
            if len(text) <= _MAX_BYLINE_CHARS and _name_like(text):
                names = clean_authors([text], outlets)
                if names:
                    return names
            continue
        if _BYLINE.match(text):
            names = clean_authors([text], outlets)
            if names:
                return names
    return []


def _marks_author(tag: Tag) -> bool:
    attrs = tag.attrs
    if not attrs:
        return False
    marked = False
    for key in ("rel", "itemprop", "class", "id"):
        value = attrs.get(key)
        if isinstance(value, str):
            if "comment" in value.lower():
                return False  # a commenter, not an author of the article
            marked = marked or _MARKED_HINT.search(value) is not None
    return marked


def marked_bylines(soup: Tag) -> list[str]:
    """The text of elements that mark themselves as the author: ``rel="author"`` links and
    ``itemprop="author"`` first (their ``itemprop="name"`` where they have one), then elements
    whose class or id says author or byline. A walk over the whole tree: asked for last."""
    linked: list[str] = []
    hinted: list[str] = []
    # The nodes read as they come, stopping at _MAX_MARKED (find_all with a function: twice the time).
    for tag in soup.descendants:
        if type(tag) is not Tag or not _marks_author(tag):
            continue
        declared = any(isinstance(tag.get(key), str) and "author" in tag.get(key).lower() for key in ("rel", "itemprop"))
        name = tag.find(attrs={"itemprop": "name"}) if declared else None
        text = clean((name or tag).get_text(" "))
        if 0 < len(text) <= _MAX_BYLINE_CHARS:
            (linked if declared else hinted).append(text)
        if len(linked) + len(hinted) >= _MAX_MARKED:
            break
    return linked + hinted


def page_authors(meta: PageMeta, soup: Tag, blocks: list[Block], first_body: Block | None, title: str) -> list[str]:
    outlets = meta.outlets()
    return choose_authors(meta.declared_authors(), lambda: byline_names(blocks, title, first_body, outlets),
                          lambda: marked_bylines(soup), outlets)


def choose_authors(declared: list[list[str]], printed: Callable[[], list[str]], marked: Callable[[], list[str]],
                   outlets: list[str]) -> list[str]:
    """The authors: the first of the page's declarations (JSON-LD, then <meta>) that names a person,
    else the byline printed near the headline, else the elements marked as bylines.

    A name that is the outlet's own (an Organization as author, "USA TODAY") says who published,
    not who wrote: it is kept only when no source names anyone else (a company blog, a personal
    site whose name is its author's).
    """
    keys = {outlet.lower() for outlet in outlets}
    fallback: list[str] = []
    for names in declared:
        found = clean_authors(names, outlets)
        people = [name for name in found if name.lower() not in keys]
        if people:
            return people
        fallback = fallback or found
    people = printed()
    if not people:
        # The first marked element that names someone: later ones are related stories' bylines.
        for text in marked():
            people = [name for name in clean_authors([text], outlets) if name.lower() not in keys]
            if people:
                break
    return people or fallback
