"""A record as text, in the layout of the example record: body, similar readings, summary,
statistics, details (the example's, with the page's update, authors and language after its date)."""

from __future__ import annotations

from datetime import datetime

from tasks.stats import reading_minutes
from worker.models import Record


def _when(value: datetime | None) -> str:
    return value.strftime("%Y/%m/%d %H:%M") if value else "never"


def _date(value: datetime | None) -> str:
    return f"{value:%B} {value.day}, {value.year}" if value else "unknown"


def render_text(record: Record, *, alternates: list[str] | None = None, canonical_title: str | None = None) -> str:
    lines: list[str] = [record.title, ""]
    lines.extend(record.body)
    lines.append(f"Similar Readings ({len(record.similar)} items)")
    lines.extend(f"- {ref.title}" for ref in record.similar)
    lines.append("Summary")
    lines.append(record.summary)
    lines.append("Statistics")
    lines.append(f"Words: {record.word_count}")
    lines.append(f"Reading Time: {reading_minutes(record.word_count)} min")
    lines.append(f"Read Count: {record.read_count}")
    lines.append("Details")
    lines.append(f"ID: {record.id}")
    lines.append(f"Category ID: {record.category_id}")
    lines.append(f"URL: {record.url}")
    lines.append(f"Date: {_date(record.published_at)}")
    if record.modified_at:
        lines.append(f"Modified: {_date(record.modified_at)}")
    lines.append(f"Authors: {', '.join(record.authors) or 'unknown'}")
    lines.append(f"Language: {record.language or 'unknown'}")
    lines.append(f"Created: {_when(record.created_at)}")
    lines.append(f"Updated: {_when(record.updated_at)}")
    lines.append(f"Last Read: {_when(record.last_read_at)}")
    if record.duplicate_of:
        shown = f" ({canonical_title})" if canonical_title else ""
        lines.append(f"Duplicate Of: {record.duplicate_of}{shown}")
    for url in alternates or []:
        lines.append(f"Also At: {url}")
    return "\n".join(lines) + "\n"
