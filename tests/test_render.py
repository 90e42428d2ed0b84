"""``gleaner show``'s text layout: the example record's, with the page's update, authors and language."""

from __future__ import annotations

from datetime import datetime, timezone

from worker.models import Record
from worker.render import render_text


def _record(**fields) -> Record:
    return Record(category_id="nhk", url="https://news.example/a", title="Ferries return", body=["One.", "Two."],
                  published_at=datetime(2025, 3, 21, 9, 30, tzinfo=timezone.utc), **fields)


def test_details_name_the_update_authors_and_language_after_the_date() -> None:
    shown = render_text(_record(modified_at=datetime(2025, 3, 22, tzinfo=timezone.utc),
                                authors=["Ann Example", "Bo Sample"], language="ja"))
    details = shown[shown.index("Details"):].splitlines()
    date = details.index("Date: March 21, 2025")
    assert details[date + 1:date + 4] == ["Modified: March 22, 2025", "Authors: Ann Example, Bo Sample",
                                          "Language: ja"]
    assert details[date + 4].startswith("Created: ")


def test_details_say_unknown_and_skip_an_update_the_page_never_stated() -> None:
    shown = render_text(_record())
    assert "Modified:" not in shown
    assert "Authors: unknown" in shown and "Language: unknown" in shown
