"""BeautifulSoup's own path against tasks/extraction/direct_tree.py: the CPU of building a page's tree.

    .venv/bin/python bench/tree_build.py                 # every page of the shared sets, writes bench/results/tree_build.md
    .venv/bin/python bench/tree_build.py --rounds 5 --quick

Every page is decoded and cut down as the extractor does (``prepare``, ``without_empty``) before the
clock starts. Then, in rounds, the two builders each build every page's tree (the same call
``extract.parse`` makes), alternating which goes first, with the garbage collector paused as the
extractor pauses it and a collection after each pass, outside the clock. Before timing, every
page's two trees are compared object for object (``tree_signature``); the run stops on the first
page that differs. For reference, lxml alone parses the same markup into its own tree (C, no
Python object a node). The machine is shared: the ratio within a round is the result.
"""

from __future__ import annotations

import argparse
import gc
import os
import platform
import statistics
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from lxml import etree  # noqa: E402

from bench import corpora  # noqa: E402
from tasks.extraction.builder import LineEdgeBuilder  # noqa: E402
from tasks.extraction.decode import decode_html  # noqa: E402
from tasks.extraction.direct_tree import DirectBuilder, build, check, tree_signature  # noqa: E402
from tasks.extraction.prepare import prepare, without_empty  # noqa: E402

SIDES = {"BeautifulSoup's path (LineEdgeBuilder)": LineEdgeBuilder, "direct (DirectBuilder)": DirectBuilder}


def _pass(markups: list[str], make) -> float:
    gc.disable()
    start = time.process_time()
    for markup in markups:
        make(markup)
    spent = time.process_time() - start
    gc.enable()
    gc.collect()
    return spent


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                     formatter_class=argparse.RawDescriptionHelpFormatter, epilog=__doc__)
    parser.add_argument("--sets", nargs="+", choices=corpora.SETS, default=None, help="corpora (default: all)")
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--quick", action="store_true", help="print, do not write the results file")
    parser.add_argument("--out", type=Path, default=ROOT / "bench" / "results" / "tree_build.md")
    args = parser.parse_args()
    if not corpora.available():
        sys.exit(f"the shared corpus is not at {corpora.SHARED}")
    if not check():
        sys.exit("direct_tree.check() failed on this BeautifulSoup release: nothing to compare")
    sets = args.sets or corpora.available()
    markups = []
    for name in sets:
        for page in corpora.load(name):
            markup, _ = prepare(decode_html(page.html).replace("\x00", ""))
            markups.append(without_empty(markup))
    for i, markup in enumerate(markups):
        trees = [tree_signature(build(markup, builder)) for builder in SIDES.values()]
        if trees[0] != trees[1]:
            sys.exit(f"page {i}: the two builders made different trees")
        if (i + 1) % 100 == 0 or i + 1 == len(markups):
            print(f"\r  compared {i + 1}/{len(markups)} trees", end="", file=sys.stderr, flush=True)
    print(file=sys.stderr)
    names = list(SIDES)
    rows = []
    for round_ in range(args.rounds):
        order = names if round_ % 2 == 0 else names[::-1]
        spent = {name: _pass(markups, lambda m, b=SIDES[name]: build(m, b)) for name in order}
        spent["lxml alone"] = _pass(markups, lambda m: etree.fromstring(m, etree.HTMLParser()))
        rows.append(spent)
        print(f"  round {round_ + 1}: " + ", ".join(f"{k} {v * 1000 / len(markups):.2f} ms" for k, v in spent.items()),
              file=sys.stderr)
    per_page = {k: [r[k] * 1000 / len(markups) for r in rows] for k in rows[0]}
    ratios = [r[names[1]] / r[names[0]] for r in rows]
    load = " ".join(f"{x:.2f}" for x in os.getloadavg())
    lines = [
        "# Building a page's tree: BeautifulSoup's path against the direct builder",
        "",
        f"Command: `.venv/bin/python bench/tree_build.py{' --rounds ' + str(args.rounds) if args.rounds != 5 else ''}`  ",
        f"Machine: {os.cpu_count()} cores, Python {platform.python_version()}; load average at the end {load}.",
        "",
        f"{len(markups)} pages of {', '.join(sets)}, cut down as the extractor cuts them; the two builders made the same "
        "tree, object for object, on every page (`tree_signature`).",
        "",
        "| builder | ms a page, each round | median |",
        "| --- | --- | --- |",
        *[f"| {k} | {' / '.join(f'{x:.2f}' for x in v)} | {statistics.median(v):.2f} |" for k, v in per_page.items()],
        "",
        f"Direct / BeautifulSoup's path, each round: {' / '.join(f'{x:.2f}' for x in ratios)} "
        f"(median **{statistics.median(ratios):.2f}**).",
        "",
    ]
    report = "\n".join(lines)
    print(report)
    if not args.quick:
        args.out.write_text(report)
        print(f"written to {args.out}", file=sys.stderr)


if __name__ == "__main__":
    main()
