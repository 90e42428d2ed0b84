"""A record's versions and the word-level differences between consecutive ones, for ``gleaner
show --revisions``, the reader page and ``GET /api/records/{id}/revisions``."""

from __future__ import annotations

import difflib
from datetime import datetime
from typing import Literal

from pydantic import BaseModel

from worker.models import Revision

CONTEXT = 6  # unchanged words kept on each side of a change; longer unchanged runs are elided
PARAGRAPH = "\n"  # a token of its own, so a diff shows where paragraphs break


class Change(BaseModel):
    op: Literal["same", "removed", "added", "elided"]
    text: str


class Version(BaseModel):
    """One version: its title and text as first seen, and what changed since the version before."""

    number: int  # 1 is the oldest
    seen_at: datetime
    title: str
    body: list[str]
    title_before: str | None = None  # the previous version's title, if this one changed it
    changes: list[Change] | None = None  # the text's word-level diff from the version before (None: the first)


def _words(paragraphs: list[str]) -> list[str]:
    out: list[str] = []
    for n, paragraph in enumerate(paragraphs):
        if n:
            out.append(PARAGRAPH)
        out.extend(paragraph.split())
    return out


def _join(words: list[str]) -> str:
    return " ".join(words).replace(f" {PARAGRAPH} ", PARAGRAPH).replace(PARAGRAPH + " ", PARAGRAPH)


def word_diff(before: list[str], after: list[str], context: int = CONTEXT) -> list[Change]:
    """The changes from ``before`` to ``after`` (paragraphs), word by word, long unchanged runs elided."""
    a, b = _words(before), _words(after)
    out: list[Change] = []
    opcodes = difflib.SequenceMatcher(None, a, b, autojunk=False).get_opcodes()
    for n, (tag, i1, i2, j1, j2) in enumerate(opcodes):
        if tag == "equal":
            same = a[i1:i2]
            head = same[:context] if n else []  # context after the change before
            tail = same[-context:] if n < len(opcodes) - 1 else []  # context before the next change
            if len(same) > len(head) + len(tail):
                if head:
                    out.append(Change(op="same", text=_join(head)))
                out.append(Change(op="elided", text=f"{len(same) - len(head) - len(tail)} words"))
                if tail:
                    out.append(Change(op="same", text=_join(tail)))
            else:
                out.append(Change(op="same", text=_join(same)))
            continue
        if i2 > i1:
            out.append(Change(op="removed", text=_join(a[i1:i2])))
        if j2 > j1:
            out.append(Change(op="added", text=_join(b[j1:j2])))
    return out


def versions(revisions: list[Revision]) -> list[Version]:
    """The versions, oldest first, each with its diff from the one before."""
    out: list[Version] = []
    for n, rev in enumerate(revisions):
        before = revisions[n - 1] if n else None
        out.append(Version(number=n + 1, seen_at=rev.seen_at, title=rev.title, body=rev.body,
                           title_before=before.title if before and before.title != rev.title else None,
                           changes=word_diff(before.body, rev.body) if before else None))
    return out


def render_versions(found: list[Version]) -> str:
    """As text: each version's time and title, and its changes as [-removed-]{+added+}."""
    lines: list[str] = []
    for v in reversed(found):  # newest first, as a reader asks "what changed lately"
        lines.append(f"Version {v.number} of {len(found)}, seen {v.seen_at:%Y/%m/%d %H:%M} UTC: {v.title}")
        if v.title_before is not None:
            lines.append(f"  title was: {v.title_before}")
        if v.changes is None:
            lines.append("  (the first version seen)")
        elif not any(c.op in ("removed", "added") for c in v.changes):
            lines.append("  (the text is unchanged)")
        else:
            marked = {"same": "{}", "removed": "[-{}-]", "added": "{{+{}+}}", "elided": "[… {} …]"}
            lines.append("  " + " ".join(marked[c.op].format(c.text) for c in v.changes).replace("\n", "\n  "))
        lines.append("")
    return "\n".join(lines)
