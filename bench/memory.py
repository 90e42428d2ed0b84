"""Does a worker's memory stay flat on real pages? 10,000 URLs cycling through the shared corpora,
each a varied copy, through `gleaner up`, with each worker process's resident memory sampled.

    .venv/bin/python bench/memory.py                       # 10,000 URLs, writes bench/results/memory.md
    .venv/bin/python bench/memory.py --cycle 2000 --quick  # while working on it

bench/e2e.py's corpus site and Gleaner run do the work: the site serves copy k of a page at
``/copy<k>/<set>/<id>`` (``e2e.copy_path``), and URL i is copy i // n of page i % n (n pages in
all), so the run cycles through every page again and again. Every copy is varied (``varied``) so
that no two are near-duplicates of each other: after every fourth word of each text node a word is
inserted, drawn from the page's own words (the page keeps its language and script), now and then an
invented name instead (new names keep coming, as in news), and the title starts with an invented
name (in its title, title meta tags and JSON-LD headline). Every five-word shingle of the near-duplicate check then holds an inserted word, so two
copies share almost none; the books say how many ended as records.

While the run goes, the resident set size (VmRSS in /proc) of every process of a Celery worker
under ``gleaner up`` is read once a second, with the number of jobs ended. Reported per worker
process: the mean over the samples taken while the first 1,000 jobs ended and while the last 1,000
did, and their ratio (the goal: at most 1.10); a mean per tenth of the run; the books and the
articles/s.
"""

from __future__ import annotations

import argparse
import os
import platform
import random
import re
import shutil
import statistics
import sys
import tempfile
import time
import zlib
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from bench import corpora, e2e  # noqa: E402
from tasks.duplicates.textnorm import CJK_CHARS  # noqa: E402

EVERY = 4  # a word inserted after every fourth: each five-word shingle holds one (tasks/duplicates/minhash.py)
NAME_SHARE = 0.05  # of inserted words, invented names: a vocabulary that keeps growing, as news's does
WINDOW = 1000  # jobs ended: the first and the last thousand are compared

# What is not a text node: scripts, styles, comments and tags (their attributes hold no words).
_NOT_TEXT = re.compile(r"(<script\b.*?</script\s*>|<style\b.*?</style\s*>|<!--.*?-->|<[^>]*>)", re.S | re.I)
# Where a page names its headline: its title, its social-card meta tags, its JSON-LD.
_TITLE = re.compile(r"(<title\b[^>]*>)", re.I)
_TITLE_META = re.compile(r"<meta\b[^>]*\b(?:property|name)\s*=\s*[\"']?(?:og:|twitter:)?title\b[^>]*>", re.I)
_CONTENT = re.compile(r"(\bcontent\s*=\s*[\"']?)", re.I)
_HEADLINE = re.compile(r'("headline"\s*:\s*")')
# A word as the near-duplicate check counts one: a CJK character, or a run of other word
# characters; an entity (``&amp;``) is kept whole. A page not in UTF-8 is read as Latin-1 and only
# its ASCII words count, so no multi-byte character of another encoding is cut.
_WORD = re.compile(f"&#?\\w+;|[{CJK_CHARS}]|[^\\W{CJK_CHARS}]+")
_ASCII_WORD = re.compile(r"&#?\w+;|[A-Za-z]+")
_CJK_CHAR = re.compile(f"[{CJK_CHARS}]")
_SYLLABLES = ("ka", "lo", "mi", "ra", "ven", "tor", "shi", "bel", "dan", "u", "or", "ist", "el", "ba", "zu", "rin")


def _name(rng: random.Random) -> str:
    return "".join(rng.choice(_SYLLABLES) for _ in range(rng.randint(2, 4))).capitalize()


def varied(html: bytes, seed_text: str) -> bytes:
    """The page with words inserted in its text and an invented name opening its headline (title,
    title meta tags, JSON-LD), chosen by a generator seeded with ``seed_text`` (the copy's path):
    the same copy every time it is served."""
    rng = random.Random(zlib.crc32(seed_text.encode()))
    try:
        text, encoding, word = html.decode("utf-8"), "utf-8", _WORD
    except UnicodeDecodeError:
        text, encoding, word = html.decode("latin-1"), "latin-1", _ASCII_WORD
    parts = _NOT_TEXT.split(text)
    words = [m.group() for part in parts[::2] for m in word.finditer(part) if not m.group().startswith("&")]
    cjk = [w for w in words if _CJK_CHAR.fullmatch(w)]
    other = [w for w in words if not _CJK_CHAR.fullmatch(w)] or ["news"]
    count = 0

    def insert(match: re.Match) -> str:
        nonlocal count
        found = match.group()
        if found.startswith("&"):
            return found
        count += 1
        if count % EVERY:
            return found
        if _CJK_CHAR.fullmatch(found):
            return found + rng.choice(cjk)  # CJK text has no spaces: a character, as the check counts one
        return f"{found} {_name(rng) if rng.random() < NAME_SHARE else rng.choice(other)}"

    for i in range(0, len(parts), 2):
        if parts[i].strip():
            parts[i] = word.sub(insert, parts[i])
    out = "".join(parts)
    name = _name(rng)
    out = _TITLE.sub(lambda m: f"{m.group(1)}{name}: ", out, count=1)
    out = _TITLE_META.sub(lambda m: _CONTENT.sub(lambda c: f"{c.group(1)}{name}: ", m.group(), count=1), out)
    out = _HEADLINE.sub(lambda m: f"{m.group(1)}{name}: ", out)
    return out.encode(encoding)


class Sampler:
    """RSS of each Celery worker process under ``gleaner up``, read at most once a ``period``."""

    def __init__(self, period: float = 1.0) -> None:
        self.period = period
        self.last = 0.0
        self.samples: list[tuple[int, dict[int, int]]] = []  # (jobs ended, {pid: RSS in bytes})
        self.names: dict[int, str] = {}

    def __call__(self, ended: int, up_pid: int) -> None:
        now = time.monotonic()
        if now - self.last < self.period:
            return
        self.last = now
        rss = {}
        for pid in e2e.descendants(up_pid):
            role = e2e.role_of(pid)
            if not role.startswith("worker"):
                continue
            value = rss_of(pid)
            if value is None:
                continue
            if pid not in self.names:
                main = _parent(pid) == up_pid
                children = sum(1 for n in self.names.values() if n.startswith(role + ", pool process"))
                self.names[pid] = f"{role}, main process" if main else f"{role}, pool process {children + 1}"
            rss[pid] = value
        self.samples.append((ended, rss))


def rss_of(pid: int) -> int | None:
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) * 1024
    except OSError:
        pass
    return None


def _parent(pid: int) -> int:
    try:
        return int(Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[1])
    except (OSError, IndexError, ValueError):
        return 0


def mean_rss(samples: list[tuple[int, dict[int, int]]], pid: int, lo: int, hi: int) -> float | None:
    """Mean RSS of ``pid`` over the samples taken while the jobs ended were in [lo, hi)."""
    values = [rss[pid] for ended, rss in samples if lo <= ended < hi and pid in rss]
    return statistics.fmean(values) if values else None


def report(args, n_pages: int, n: int, g: dict, sampler: Sampler) -> str:
    mb = 1 << 20
    samples = sampler.samples
    lines = [
        "# Worker memory over 10,000 real pages" if n == 10_000 else f"# Worker memory over {n:,} real pages",
        "",
        f"Command: `.venv/bin/python bench/memory.py{''.join(' ' + a for a in sys.argv[1:])}`  ",
        f"Machine: {os.cpu_count()} cores, Python {platform.python_version()}, {platform.machine()}; load average "
        "(1, 5, 15 min) " + "; ".join(f"{when} {a:.2f} {b:.2f} {c:.2f}" for when, (a, b, c) in args.load.items()) + ".",
        "",
        f"{n:,} URLs cycling through the {n_pages:,} pages of {', '.join(args.sets)} ({n / n_pages:.1f} times), each "
        "a varied copy (bench/memory.py's docstring), through `gleaner up` at its defaults"
        f"{''.join(f', `{x}`' for x in args.setting)}{' `' + args.up_args + '`' if args.up_args else ''} "
        f"(the local site's settings of bench/e2e.py). {len(samples)} samples of each worker process's RSS, "
        "one a second.",
        "",
        f"## Resident memory, first {WINDOW:,} jobs ended vs last {WINDOW:,}",
        "",
        f"| worker process | first {WINDOW:,}, MB | last {WINDOW:,}, MB | last / first | peak, MB |",
        "| --- | --- | --- | --- | --- |",
    ]
    ratios = []
    for pid, name in sorted(sampler.names.items(), key=lambda kv: kv[1]):
        first = mean_rss(samples, pid, 0, WINDOW)
        last = mean_rss(samples, pid, n - WINDOW, n + 1)
        peak = max((rss[pid] for _, rss in samples if pid in rss), default=0)
        if first is None or last is None:
            lines.append(f"| {name} (pid {pid}) | {first / mb if first else 0:.0f} | "
                         f"{last / mb if last else 0:.0f} | (not alive for both) | {peak / mb:.0f} |")
            continue
        ratios.append(last / first)
        lines.append(f"| {name} | {first / mb:.1f} | {last / mb:.1f} | {last / first:.3f} | {peak / mb:.1f} |")
    met = bool(ratios) and max(ratios) <= 1.10
    lines += ["", f"Goal (every worker process at most 1.10): {'met' if met else 'NOT met'}"
              f"{f', largest ratio {max(ratios):.3f}' if ratios else ''}.", ""]
    tenth = max(n // 10, 1)
    lines += ["## Mean RSS (MB) per tenth of the run (by jobs ended)", "",
              "| worker process | " + " | ".join(f"{(i + 1) * tenth // 1000}k" if tenth >= 1000 else str((i + 1) * tenth)
                                                 for i in range(10)) + " |",
              "| --- |" + " --- |" * 10]
    for pid, name in sorted(sampler.names.items(), key=lambda kv: kv[1]):
        cells = [mean_rss(samples, pid, i * tenth, (i + 1) * tenth + (1 if i == 9 else 0)) for i in range(10)]
        lines.append(f"| {name} | " + " | ".join(f"{c / mb:.0f}" if c else "" for c in cells) + " |")
    books = g["books"]
    accounted = sum(books[k] for k in ("records", "duplicate links", "dead letters",
                                       "updates of a record (same canonical URL)"))
    lines += ["", "## The books and the rate", "",
              "| " + " | ".join(books) + " | accounted | seconds | articles/s |",
              "|" + " --- |" * (len(books) + 3),
              "| " + " | ".join(f"{v:,}" for v in books.values()) +
              f" | {accounted:,} of {n:,}{'' if accounted == n else ' (MISSING)'} | {g['seconds']:.0f} | "
              f"{n / g['seconds']:.1f} |"]
    if g["reasons"]:
        lines += ["", "Dead letters by reason:", ""]
        lines += [f"- {count} × {reason}" for reason, count in sorted(g["reasons"].items(), key=lambda kv: -kv[1])]
    return "\n".join(lines) + "\n"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                     formatter_class=argparse.RawDescriptionHelpFormatter, epilog=__doc__)
    parser.add_argument("--cycle", type=int, default=10_000, help="URLs in the run (default 10,000)")
    parser.add_argument("--sets", nargs="+", choices=corpora.SETS, default=None, help="corpora to serve (default: all)")
    parser.add_argument("--up-args", default="", help="arguments for `gleaner up`")
    parser.add_argument("--setting", action="append", default=[], metavar="GLEANER_NAME=VALUE",
                        help="a setting for Gleaner's run (repeatable)")
    parser.add_argument("--quick", action="store_true", help="print the report, do not write it")
    parser.add_argument("--out", type=Path, default=REPO / "bench" / "results" / "memory.md")
    args = parser.parse_args()
    args.sets = corpora.chosen(args.sets)
    if args.cycle < 2 * WINDOW:
        parser.error(f"--cycle must be at least {2 * WINDOW} (a first and a last {WINDOW})")
    root = Path(tempfile.mkdtemp(prefix="gleaner-memory-"))
    site, base = e2e.start_site(args.sets, root, copies=True)
    sampler = Sampler()
    try:
        pages = [page for name in args.sets for page in corpora.load(name)]
        urls = [base + e2e.copy_path(pages[i % len(pages)], i // len(pages)) for i in range(args.cycle)]
        print(f"{len(urls)} URLs over {len(pages)} pages at {base}", file=sys.stderr)
        args.load = {"start": os.getloadavg()}
        g = e2e.run_gleaner(urls, root, sys.stderr, args.up_args.split(), e2e.settings_of(parser, args.setting),
                            progress=sampler)
        args.load["end"] = os.getloadavg()
    finally:
        site.terminate()
    text = report(args, len(pages), len(urls), g, sampler)
    print(text)
    if not args.quick:
        args.out.parent.mkdir(parents=True, exist_ok=True)
        args.out.write_text(text)
    shutil.rmtree(root, ignore_errors=True)


if __name__ == "__main__":
    main()
