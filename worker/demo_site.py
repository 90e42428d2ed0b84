"""A small fictional news site, The Harbor Ledger, served over HTTP on 127.0.0.1.

``gleaner demo`` ingests it so a new user sees the whole pipeline work without the internet,
and integration tests use it as a realistic source. Besides six ordinary articles it holds
the two cases dedupe exists for: one article copied verbatim under ``/syndicated/`` (same
text, other template, its own canonical URL) and one page whose CMS prints the body twice.

All prose here was written for this project; names, places and events are invented.
"""

from __future__ import annotations

import ipaddress
import json
import sys
import threading
from collections.abc import Iterable
from datetime import datetime
from email.utils import format_datetime
from html import escape
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import NamedTuple
from urllib.parse import quote, urlsplit

from pydantic import BaseModel, ConfigDict, field_validator

__all__ = [
    "ARTICLES",
    "REPEATED_SLUG",
    "SITE_NAME",
    "SYNDICATED_SLUG",
    "DemoArticle",
    "DemoSite",
    "Resource",
    "build_pages",
    "render_article_page",
    "render_syndicated_page",
]

SITE_NAME = "The Harbor Ledger"
TOWN = "Merrow Bay"
FEED_SIZE = 4  # items in /rss.xml: the newest articles
RELATED_COUNT = 3  # links in each page's "Related stories" aside

HTML = "text/html; charset=utf-8"
RSS = "application/rss+xml; charset=utf-8"
XML = "application/xml; charset=utf-8"
TEXT = "text/plain; charset=utf-8"


class DemoArticle(BaseModel):
    """One article of the demo site; rejected at construction if it would make a broken page."""

    model_config = ConfigDict(frozen=True)

    slug: str
    title: str
    author: str
    published: str  # ISO 8601 with an offset; offsets differ between articles on purpose
    section: str
    paragraphs: list[str]

    @field_validator("slug")
    @classmethod
    def _slug_is_a_path_segment(cls, value: str) -> str:
        if not value or any(not (c.isascii() and (c.isalnum() or c == "-")) for c in value):
            raise ValueError(f"slug {value!r} must be ASCII letters, digits and hyphens")
        return value

    @field_validator("published")
    @classmethod
    def _published_has_offset(cls, value: str) -> str:
        parsed = datetime.fromisoformat(value)
        if parsed.tzinfo is None:
            raise ValueError(f"published {value!r} needs a UTC offset")
        return value

    @field_validator("paragraphs")
    @classmethod
    def _has_body(cls, value: list[str]) -> list[str]:
        if len(value) < 2 or any(not p.strip() for p in value):
            raise ValueError("an article needs at least two non-empty paragraphs")
        return value

    @property
    def published_at(self) -> datetime:
        return datetime.fromisoformat(self.published)

    @property
    def path(self) -> str:
        return f"/news/{self.slug}.html"

    @property
    def description(self) -> str:
        # The first paragraph cut at a word boundary, as CMSes fill og:description.
        lead = self.paragraphs[0]
        if len(lead) <= 160:
            return lead
        return lead[:160].rsplit(" ", 1)[0] + "…"


# Offsets vary (and the string order of two dates disagrees with their real order) so that
# date parsing and "newest first" are exercised, not just string sorting.
ARTICLES: list[DemoArticle] = [
    DemoArticle(
        slug="council-approves-leaner-budget",
        title="Council approves leaner budget after late-night session",
        author="Ines Farrow",
        published="2026-11-13T19:30:00+09:00",
        section="Politics",
        paragraphs=[
            "Merrow Bay's town council approved a $48.2 million budget for next year shortly before "
            "midnight on Thursday, closing three weeks of debate over how to cover a shortfall left by "
            "falling harbor fees.",
            "The plan, passed by seven votes to two, trims spending by about 4 percent. Most of the "
            "savings come from delaying the resurfacing of Quay Road and merging the parks and public "
            "works offices, which already share a depot but keep separate staff.",
            "Councilor Dana Whitlock, who chairs the finance committee, said the town had few painless "
            "options left. \u201cWe looked at every line twice,\u201d she told the chamber. \u201cWhat "
            "remains is a budget that keeps the buses running, the library open and the lifeguards on "
            "the beach next summer.\u201d",
            "The two members who voted against, Rafael Osei and Maureen Pike, objected to a 9 percent "
            "rise in mooring charges for private boats. Pike said the increase would fall hardest on "
            "retired fishermen who still keep small craft in the inner basin.",
            "Residents who stayed for the public comment period raised concerns about the delayed road "
            "work. Several described potholes on Quay Road deep enough to bend a bicycle wheel, and one "
            "shop owner presented a petition with 212 signatures.",
            "Town manager Elliot Crane said emergency repairs to the worst stretches would still go ahead "
            "in January, paid for from a maintenance reserve. The full resurfacing is now expected in "
            "the following budget year.",
            "The budget takes effect on January 1. A summary of spending by department will be posted at "
            "town hall and on the council's notice board next week.",
        ],
    ),
    DemoArticle(
        slug="library-reopens-after-restoration",
        title="Lantern Street library reopens with \u201cmore light & more room\u201d",
        author="Priya Anand",
        published="2026-11-16T10:05:00+09:00",
        section="Community",
        paragraphs=[
            "The Lantern Street library reopened its doors on Saturday morning after a two-year "
            "restoration, and by noon more than 600 visitors had passed through the new glass entrance, "
            "according to staff keeping count with a hand clicker.",
            "The 1911 building had been closed since a burst pipe flooded its basement archive and "
            "weakened the floor of the main reading room. The repairs, which cost $3.1 million, were paid "
            "for by a state heritage grant, the town and a fundraising drive that collected small "
            "donations from more than 1,400 households.",
            "Architects kept the original oak shelves and the painted ceiling but replaced the dim "
            "upstairs stacks with an open reading room lit by a row of skylights. The children's section "
            "has moved to the ground floor, beside a garden that used to be a parking lot.",
            "Head librarian Colette Marsh said the aim had been \u201cmore light & more room,\u201d a phrase "
            "borrowed from a letter written by the library's first benefactor. \u201cPeople told us they "
            "wanted a place to sit for an afternoon without buying anything,\u201d she said. \u201cNow "
            "they have one.\u201d",
            "The basement archive, which holds the town's shipping records back to the 1850s, will reopen "
            "to researchers in the spring, once the documents have finished drying and have been "
            "catalogued again.",
            "Opening hours are 9 a.m. to 7 p.m. on weekdays and 10 a.m. to 4 p.m. on Saturdays.",
        ],
    ),
    DemoArticle(
        slug="year-round-ferry-to-gull-island",
        title="Year-round ferry to link the harbor with Gull Island from April",
        author="Tomas Leclair",
        published="2026-11-16T08:00:00+00:00",
        section="Transport",
        paragraphs=[
            "A year-round passenger ferry between Merrow Bay and Gull Island will begin sailing in April, "
            "the regional transport authority announced on Monday, ending a long wait for islanders who "
            "now depend on a summer-only service.",
            "The route will be run by Tern Line, a small operator based in the neighboring town of "
            "Castmoor. Its 120-seat catamaran, the Kittiwake, is due to arrive from the shipyard in "
            "February for sea trials.",
            "Crossings will take about 35 minutes. The timetable published on Monday shows eight return "
            "sailings on weekdays and five at weekends, with the first departure from the island at "
            "6:40 a.m. so that commuters can reach the mainland before most offices open.",
            "Single fares will cost $6 for adults and $3 for children and seniors. Island residents will "
            "be able to buy a monthly pass for $90.",
            "\u201cPeople on the island have been asking for this since before I was born,\u201d said Marta "
            "Quill, who runs the general store in Gull Island's only village. \u201cIn winter we lose our "
            "doctor's appointments, our school trips, sometimes our groceries, whenever the weather "
            "turns.\u201d",
            "The authority said the service would be reviewed after its first year. A waiting shelter "
            "and a ticket machine will be installed at the foot of Pier Street over the winter.",
        ],
    ),
    DemoArticle(
        slug="kelp-forest-recovering-faster",
        title="University divers find kelp forest recovering faster than expected",
        author="Samuel Ortega",
        published="2026-11-17T14:20:00+05:30",
        section="Science",
        paragraphs=[
            "Kelp forests off the northern headland of Merrow Bay are growing back faster than "
            "scientists had predicted, according to a survey by marine biologists at Castmoor University "
            "published this week.",
            "Divers from the university's coastal ecology lab counted plants along 40 fixed transects "
            "that the team has revisited every autumn since 2019, when a marine heatwave and a boom in "
            "purple sea urchins stripped much of the seabed bare.",
            "This year kelp covered roughly 58 percent of the surveyed area, up from 21 percent three "
            "years ago. Recovery was strongest at sites where urchin density was < 2 per square meter, "
            "the report says, and weakest in sheltered coves where the animals still gather in dense "
            "patches.",
            "Lead author Hana Lindqvist credited an unexpected ally: sea otters, which returned to the "
            "headland in small numbers in 2022 and feed heavily on urchins. \u201cWe did not plan for "
            "otters in any of our models,\u201d she said. \u201cThey have done more work than a hundred "
            "volunteer divers could.\u201d",
            "The team cautioned that a single hot summer could undo the gains. Young kelp stands are "
            "still thinner than mature forest and offer less shelter to fish, the survey found.",
            "The lab plans to place underwater temperature loggers at ten sites next year and is "
            "recruiting recreational divers to report urchin sightings through the university.",
        ],
    ),
    DemoArticle(
        slug="harbor-athletic-edge-millbrook",
        title="Harbor Athletic edge Millbrook 3\u20132 in five-goal thriller",
        author="Declan Moyes",
        published="2026-11-18T22:45:00+01:00",
        section="Sport",
        paragraphs=[
            "Harbor Athletic came from behind twice to beat Millbrook Rovers 3\u20132 at Quayside Park on "
            "Wednesday night, keeping their hopes of promotion alive with three games of the season left.",
            "Millbrook took the lead after 11 minutes when their captain, Joel Brannigan, headed in a "
            "corner that the home goalkeeper misjudged in the swirling wind. Athletic equalized just "
            "before halftime through Kofi Mensah, who turned his marker on the edge of the area and shot "
            "low into the corner.",
            "The visitors went ahead again early in the second half, Ruben Sato finishing a quick "
            "counterattack. For twenty minutes Athletic struggled to create anything, and parts of the "
            "crowd of 2,300 began to drift toward the exits.",
            "Those who stayed saw the best of the night. Substitute Nico Varga leveled with his first "
            "touch, a volley from twenty yards, and in stoppage time defender Aaron Pell bundled in the "
            "winner from a scramble at the far post.",
            "\u201cWe made it hard for ourselves,\u201d said Athletic manager Lorna Keane. \u201cBut this "
            "group doesn't give up, and the supporters who stayed will remember that one for a "
            "while.\u201d",
            "Athletic travel to Castmoor next Saturday. Millbrook, who remain fourth, host the league "
            "leaders.",
        ],
    ),
    DemoArticle(
        slug="storm-odile-floods-waterfront",
        title="Storm Odile brings gales and flooding to the waterfront",
        author="Ruth Abernathy",
        published="2026-11-19T06:10:00+09:00",
        section="Weather",
        paragraphs=[
            "Storm Odile swept across Merrow Bay overnight, bringing gusts of up to 70 mph, flooding parts "
            "of the waterfront and leaving about 3,000 homes without power at its peak.",
            "The high tide shortly after 2 a.m. pushed seawater over the harbor wall at the foot of Pier "
            "Street, filling the ground floors of several shops and the fish market with up to a foot of "
            "water.",
            "Fire crews pumped out the market before dawn, and no injuries were reported. Police closed "
            "the coast road between the harbor and the northern headland after a section of fencing and "
            "several fallen trees blocked both lanes.",
            "Merrow Bay Electric said most customers had been reconnected by 6 a.m., but some homes on "
            "the exposed eastern side of town may stay without power until the afternoon while crews "
            "repair a damaged line.",
            "The national weather service has kept a wind warning in place until Friday evening. "
            "Forecaster Owen Tull said conditions should ease through the day, though another band of "
            "heavy rain is expected overnight.",
            "The council has opened the sports hall on School Lane as a warming center, with hot drinks "
            "and phone charging. Residents are asked to report blocked drains and fallen lines to the "
            "council's emergency number rather than approach them.",
        ],
    ),
]

SYNDICATED_SLUG = "year-round-ferry-to-gull-island"
REPEATED_SLUG = "council-approves-leaner-budget"

_BY_SLUG = {a.slug: a for a in ARTICLES}
assert len(_BY_SLUG) == len(ARTICLES), "article slugs must be unique"
assert SYNDICATED_SLUG in _BY_SLUG and REPEATED_SLUG in _BY_SLUG


class Resource(NamedTuple):
    """One response the site serves: its Content-Type and body."""

    content_type: str
    body: bytes


# --- page pieces -----------------------------------------------------------------------------


def _e(text: str) -> str:
    return escape(text, quote=True)


def _json_ld(data: dict[str, object]) -> str:
    # A "<" inside <script> can end it ("</script>") or confuse the parser ("<!--"); JSON's
    # \u escape keeps the value and leaves no "<" in the markup.
    return json.dumps(data, ensure_ascii=False, indent=2).replace("<", "\\u003c")


def _newest_first(articles: Iterable[DemoArticle]) -> list[DemoArticle]:
    return sorted(articles, key=lambda a: a.published_at, reverse=True)


def _human_date(article: DemoArticle) -> str:
    when = article.published_at
    return f"{when:%B} {when.day}, {when.year}, {when:%H:%M} (UTC{when:%z})".replace("UTC+0000", "UTC")


def _related(article: DemoArticle) -> list[DemoArticle]:
    # The next few articles in list order, wrapping round: stable and never the article itself.
    at = ARTICLES.index(article) if article in ARTICLES else -1
    others = ARTICLES[at + 1:] + ARTICLES[:max(at, 0)]
    return [a for a in others if a.slug != article.slug][:RELATED_COUNT]


def _head(*, title: str, canonical: str, description: str, og_type: str, site_name: str,
          extra: str = "") -> str:
    return f"""<!DOCTYPE html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>{_e(title)}</title>
<meta name="description" content="{_e(description)}">
<link rel="canonical" href="{_e(canonical)}">
<link rel="alternate" type="application/rss+xml" title="{_e(SITE_NAME)}" href="/rss.xml">
<meta property="og:site_name" content="{_e(site_name)}">
<meta property="og:type" content="{_e(og_type)}">
<meta property="og:url" content="{_e(canonical)}">
<meta property="og:description" content="{_e(description)}">
{extra}</head>
"""


def _article_meta(article: DemoArticle, url: str, publisher: str) -> str:
    ld = {
        "@context": "https://schema.org",
        "@type": "NewsArticle",
        "headline": article.title,
        "datePublished": article.published,
        "author": {"@type": "Person", "name": article.author},
        "articleSection": article.section,
        "mainEntityOfPage": url,
        "publisher": {"@type": "Organization", "name": publisher},
    }
    return (
        f'<meta property="og:title" content="{_e(article.title)}">\n'
        f'<meta property="article:published_time" content="{_e(article.published)}">\n'
        f'<meta property="article:section" content="{_e(article.section)}">\n'
        f'<meta name="author" content="{_e(article.author)}">\n'
        f'<script type="application/ld+json">\n{_json_ld(ld)}\n</script>\n'
    )


def _ledger_header() -> str:
    sections = dict.fromkeys(a.section for a in ARTICLES)
    links = "\n".join(
        f'      <li><a href="/#section-{_e(s.lower())}">{_e(s)}</a></li>' for s in sections
    )
    return f"""<header class="site-header">
  <a class="masthead" href="/">{_e(SITE_NAME)}</a>
  <p class="tagline">News for {_e(TOWN)} and the islands since 1898</p>
  <nav class="main-nav" aria-label="Sections">
    <ul>
      <li><a href="/">Home</a></li>
{links}
    </ul>
  </nav>
</header>
"""


def _ledger_footer() -> str:
    return f"""<footer class="site-footer">
  <ul class="footer-links">
    <li><a href="/">Front page</a></li>
    <li><a href="/rss.xml">RSS feed</a></li>
    <li><a href="/sitemap.xml">Sitemap</a></li>
    <li><a href="mailto:newsdesk@harborledger.invalid">Contact the newsdesk</a></li>
  </ul>
  <p class="copyright">&copy; 2026 {_e(SITE_NAME)}, {_e(TOWN)}. All rights reserved.</p>
</footer>
"""


def _share(article: DemoArticle, url: str) -> str:
    mail = f"mailto:?subject={quote(article.title)}&body={quote(url)}"
    return f"""<div class="share-tools">
  <p>Share this story</p>
  <a class="share-email" href="{_e(mail)}">Email a friend</a>
  <button type="button" class="share-copy" data-url="{_e(url)}">Copy link</button>
</div>
"""


def _related_aside(article: DemoArticle, heading: str, css: str) -> str:
    items = "\n".join(
        f'    <li><a href="{_e(a.path)}">{_e(a.title)}</a></li>' for a in _related(article)
    )
    return f"""<aside class="{css}">
  <h2>{_e(heading)}</h2>
  <ul>
{items}
  </ul>
</aside>
"""


def _body_paragraphs(article: DemoArticle, *, repeated: bool) -> list[str]:
    if not repeated:
        return list(article.paragraphs)
    # What a broken CMS template prints: the lead, then the rest of the body twice.
    return [article.paragraphs[0], *article.paragraphs[1:], *article.paragraphs[1:]]


# --- pages -----------------------------------------------------------------------------------


def render_article_page(article: DemoArticle, base_url: str, *, repeated: bool = False) -> str:
    """The Ledger's own page for one article; ``repeated`` prints the body twice after the lead."""
    url = base_url + article.path
    paragraphs = "\n".join(f"    <p>{_e(p)}</p>" for p in _body_paragraphs(article, repeated=repeated))
    head = _head(
        title=f"{article.title} | {SITE_NAME}",
        canonical=url,
        description=article.description,
        og_type="article",
        site_name=SITE_NAME,
        extra=_article_meta(article, url, SITE_NAME),
    )
    return f"""{head}<body>
{_ledger_header()}<main class="layout">
  <article class="story">
    <p class="kicker"><a href="/#section-{_e(article.section.lower())}">{_e(article.section)}</a></p>
    <h1>{_e(article.title)}</h1>
    <p class="byline">By <span class="author">{_e(article.author)}</span> &middot;
      <time datetime="{_e(article.published)}">{_e(_human_date(article))}</time></p>
    <div class="story-body">
{paragraphs}
    </div>
    {_share(article, url)}  </article>
  {_related_aside(article, "Related stories", "related")}</main>
{_ledger_footer()}</body>
</html>
"""


def render_syndicated_page(article: DemoArticle, base_url: str) -> str:
    """The same article as a partner network's template shows it, at its own URL."""
    url = f"{base_url}/syndicated/{article.slug}.html"
    wire = "Coastal Wire"
    paragraphs = "\n".join(f"      <p>{_e(p)}</p>" for p in article.paragraphs)
    head = _head(
        title=f"{article.title} \u2014 {wire}",
        canonical=url,
        description=article.description,
        og_type="article",
        site_name=wire,
        extra=_article_meta(article, url, wire),
    )
    return f"""{head}<body class="wire">
<div id="wire-top" class="wire-banner">
  <span class="wire-brand">{_e(wire)}</span>
  <span class="wire-note">Stories shared by partner newsrooms along the coast</span>
</div>
<nav class="wire-menu" aria-label="Wire">
  <a href="/">Partner home</a> | <a href="/#section-transport">Regional</a> |
  <a href="/#section-politics">Public affairs</a> | <a href="/rss.xml">Subscribe</a>
</nav>
<div class="wire-grid">
  <article class="wire-story">
    <header>
      <h1>{_e(article.title)}</h1>
      <div class="wire-credit">{_e(article.author)}, {_e(SITE_NAME)} &mdash;
        <time datetime="{_e(article.published)}">{_e(article.published[:10])}</time></div>
    </header>
    <section class="wire-text">
{paragraphs}
    </section>
    {_share(article, url)}  </article>
  {_related_aside(article, "Related stories", "wire-more")}</div>
<div class="wire-source">Originally published by {_e(SITE_NAME)}. Republished with permission.</div>
<footer class="wire-footer">
  <p>{_e(wire)} distributes local reporting to member papers.
    <a href="/">About the network</a> &middot; <a href="/sitemap.xml">Index</a></p>
  <p>&copy; 2026 {_e(wire)} and contributing newsrooms.</p>
</footer>
</body>
</html>
"""


def render_homepage(base_url: str) -> str:
    """The front page: every article, newest first, grouped under its section's anchor."""
    head = _head(
        title=f"{SITE_NAME} \u2014 news for {TOWN}",
        canonical=base_url + "/",
        description=f"Local news, sport and weather for {TOWN} and the islands.",
        og_type="website",
        site_name=SITE_NAME,
        extra=f'<meta property="og:title" content="{_e(SITE_NAME)}">\n',
    )
    rows, anchored = [], set()
    for a in _newest_first(ARTICLES):
        # The nav's section links land on the newest story of each section.
        anchor = "" if a.section in anchored else f' id="section-{_e(a.section.lower())}"'
        anchored.add(a.section)
        rows.append(
            f'    <li{anchor} class="teaser"><span class="section">{_e(a.section)}</span> '
            f'<a href="{_e(a.path)}">{_e(a.title)}</a> '
            f'<time datetime="{_e(a.published)}">{_e(_human_date(a))}</time></li>'
        )
    items = "\n".join(rows)
    return f"""{head}<body>
{_ledger_header()}<main class="front">
  <h1>Latest news</h1>
  <ul class="headlines">
{items}
  </ul>
</main>
{_ledger_footer()}</body>
</html>
"""


def render_not_found(path: str) -> str:
    return f"""<!DOCTYPE html>
<html lang="en">
<head><meta charset="utf-8"><title>Page not found | {_e(SITE_NAME)}</title></head>
<body>
{_ledger_header()}<main><h1>Page not found</h1>
<p>There is nothing at {_e(path)}. Try the <a href="/">front page</a>.</p></main>
{_ledger_footer()}</body>
</html>
"""


def render_feed(base_url: str) -> str:
    """RSS 2.0 with the newest articles."""
    newest = _newest_first(ARTICLES)[:FEED_SIZE]
    items = "\n".join(
        f"""    <item>
      <title>{_e(a.title)}</title>
      <link>{_e(base_url + a.path)}</link>
      <guid isPermaLink="true">{_e(base_url + a.path)}</guid>
      <pubDate>{format_datetime(a.published_at)}</pubDate>
      <author>newsdesk@harborledger.invalid ({_e(a.author)})</author>
      <category>{_e(a.section)}</category>
      <description>{_e(a.description)}</description>
    </item>"""
        for a in newest
    )
    return f"""<?xml version="1.0" encoding="utf-8"?>
<rss version="2.0">
  <channel>
    <title>{_e(SITE_NAME)}</title>
    <link>{_e(base_url)}/</link>
    <description>Local news for {_e(TOWN)}</description>
    <language>en</language>
    <lastBuildDate>{format_datetime(newest[0].published_at)}</lastBuildDate>
{items}
  </channel>
</rss>
"""


def render_sitemap(base_url: str) -> str:
    """Every article page plus the syndicated copy, each with its publication time as lastmod."""
    entries = [(base_url + a.path, a.published) for a in ARTICLES]
    entries.append((f"{base_url}/syndicated/{SYNDICATED_SLUG}.html", _BY_SLUG[SYNDICATED_SLUG].published))
    urls = "\n".join(
        f"  <url>\n    <loc>{_e(loc)}</loc>\n    <lastmod>{_e(lastmod)}</lastmod>\n  </url>"
        for loc, lastmod in entries
    )
    return f"""<?xml version="1.0" encoding="utf-8"?>
<urlset xmlns="http://www.sitemaps.org/schemas/sitemap/0.9">
{urls}
</urlset>
"""


def build_pages(base_url: str) -> dict[str, Resource]:
    """Every path the site serves, rendered once for ``base_url`` (no trailing slash)."""
    base_url = base_url.rstrip("/")
    pages = {
        "/": Resource(HTML, render_homepage(base_url).encode()),
        "/rss.xml": Resource(RSS, render_feed(base_url).encode()),
        "/sitemap.xml": Resource(XML, render_sitemap(base_url).encode()),
        "/robots.txt": Resource(TEXT, f"User-agent: *\nAllow: /\n\nSitemap: {base_url}/sitemap.xml\n".encode()),
        f"/syndicated/{SYNDICATED_SLUG}.html": Resource(
            HTML, render_syndicated_page(_BY_SLUG[SYNDICATED_SLUG], base_url).encode()
        ),
    }
    for article in ARTICLES:
        page = render_article_page(article, base_url, repeated=article.slug == REPEATED_SLUG)
        pages[article.path] = Resource(HTML, page.encode())
    return pages


# --- the server ------------------------------------------------------------------------------


class _Server(ThreadingHTTPServer):
    allow_reuse_address = True  # a restarted demo can take its port back at once
    daemon_threads = True
    pages: dict[str, Resource]  # set by DemoSite.start once the port is known

    def handle_error(self, request: object, client_address: object) -> None:
        # A client hanging up mid-response is normal for a crawler; anything else is a bug
        # worth its traceback on stderr.
        if isinstance(sys.exc_info()[1], ConnectionError):
            return
        super().handle_error(request, client_address)  # type: ignore[arg-type]


class _Handler(BaseHTTPRequestHandler):
    server: _Server
    server_version = "HarborLedgerDemo/1.0"
    sys_version = ""
    disable_nagle_algorithm = True  # no 40 ms Nagle/delayed-ACK stall between headers and body

    def do_GET(self) -> None:  # noqa: N802 - http.server's naming
        self._respond(with_body=True)

    def do_HEAD(self) -> None:  # noqa: N802
        self._respond(with_body=False)

    def _respond(self, *, with_body: bool) -> None:
        path = urlsplit(self.path).path
        resource = self.server.pages.get(path)
        status = 200
        if resource is None:
            status = 404
            resource = Resource(HTML, render_not_found(path).encode())
        self.send_response(status)
        self.send_header("Content-Type", resource.content_type)
        self.send_header("Content-Length", str(len(resource.body)))
        self.end_headers()
        if with_body:
            self.wfile.write(resource.body)

    def log_message(self, format: str, *args: object) -> None:  # noqa: A002
        pass  # quiet: the demo prints its own progress


class DemoSite:
    """Serves The Harbor Ledger from a daemon thread; use as a context manager or start/stop."""

    def __init__(self, host: str = "127.0.0.1", port: int = 0) -> None:
        try:
            address = ipaddress.ip_address(host)
        except ValueError:
            raise ValueError(f"demo site host must be an IPv4 loopback address, not {host!r}") from None
        if address.version != 4 or not address.is_loopback:
            raise ValueError(f"demo site host must be an IPv4 loopback address such as 127.0.0.1, not {host!r}")
        if not 0 <= port <= 65535:
            raise ValueError(f"demo site port must be 0..65535 (0 picks a free one), not {port}")
        self.host = host
        self.port = port
        self._server: _Server | None = None
        self._thread: threading.Thread | None = None
        self._base_url: str | None = None

    def start(self) -> str:
        """Bind, render the pages and serve; returns the base URL. OSError if the port is taken."""
        if self._server is not None:
            raise RuntimeError(f"demo site already running at {self._base_url}")
        try:
            server = _Server((self.host, self.port), _Handler)
        except OSError as exc:
            raise OSError(
                exc.errno,
                f"cannot serve the demo site on {self.host}:{self.port}: {exc.strerror or exc} "
                "(is another program using that port? port 0 picks a free one)",
            ) from exc
        bound_port = server.server_address[1]
        self._base_url = f"http://{self.host}:{bound_port}"
        server.pages = build_pages(self._base_url)
        self._server = server
        self._thread = threading.Thread(target=server.serve_forever, name="demo-site", daemon=True)
        self._thread.start()
        return self._base_url

    def stop(self) -> None:
        """Stop serving and free the port; harmless if not running."""
        server, thread = self._server, self._thread
        self._server = self._thread = None
        if server is not None:
            server.shutdown()
            server.server_close()
        if thread is not None:
            thread.join(timeout=5)

    def __enter__(self) -> DemoSite:
        self.start()
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.stop()

    @property
    def base_url(self) -> str:
        if self._base_url is None:
            raise RuntimeError("demo site not started yet: call start() first")
        return self._base_url

    @property
    def sitemap_url(self) -> str:
        return self.base_url + "/sitemap.xml"

    @property
    def feed_url(self) -> str:
        return self.base_url + "/rss.xml"

    def article_url(self, slug: str) -> str:
        if slug not in _BY_SLUG:
            raise KeyError(f"no demo article with slug {slug!r}")
        return self.base_url + _BY_SLUG[slug].path

    def syndicated_url(self) -> str:
        return f"{self.base_url}/syndicated/{SYNDICATED_SLUG}.html"
