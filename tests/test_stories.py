"""Stories: which story a new record joins, outlets, and the store stage giving records stories."""

from __future__ import annotations

import uuid
from datetime import datetime, timedelta, timezone

import pytest

from tasks.store import store_draft
from worker.models import Article, Draft
from worker.render import render_text
from worker.similar import SimilarIndex
from worker.storage import Storage
from worker.stories import STORY_DAYS, STORY_FLOOR, Candidate, other_outlets, outlet, story_of

DAY = datetime(2026, 3, 2, 12, tzinfo=timezone.utc)


def test_a_record_joins_the_story_of_its_closest_dated_neighbour_within_the_window():
    near = Candidate(id="a", score=STORY_FLOOR + 0.2, story_id="s1", published_at=DAY - timedelta(days=1))
    nearer = Candidate(id="b", score=STORY_FLOOR + 0.3, story_id=None, published_at=DAY)
    assert story_of([near, nearer], DAY) == "b"  # the best one; a record without a story is its own
    assert story_of([near], DAY) == "s1"


@pytest.mark.parametrize("candidate, published", [
    (Candidate(id="a", score=STORY_FLOOR - 0.01, story_id="s", published_at=DAY), DAY),  # same subject, not event
    (Candidate(id="a", score=0.9, story_id="s", published_at=DAY - timedelta(days=STORY_DAYS + 1)), DAY),  # follow-up
    (Candidate(id="a", score=0.9, story_id="s", published_at=None), DAY),  # a guide, not news of an event
    (Candidate(id="a", score=0.9, story_id="s", published_at=DAY), None),
])
def test_no_story_below_the_floor_outside_the_window_or_without_dates(candidate, published):
    assert story_of([candidate], published) is None


def test_outlets_are_hosts_and_each_counts_once():
    assert outlet("https://www.example.com/a") == "example.com"
    assert outlet("https://news.example.com/a") == "news.example.com"
    members = [("1", "A", "https://one.test/a"), ("2", "B", "https://www.two.test/b"), ("3", "C", "https://two.test/c"),
               ("4", "D", "https://mine.test/d")]
    assert other_outlets("https://mine.test/x", members) == [("1", "A", "https://one.test/a"),
                                                             ("2", "B", "https://www.two.test/b")]


# Three outlets report one event in their own words; a fourth piece is on the subject a month later.
EVENT = [
    ("https://harbour-times.test/ferry-strike", "Ferry crews strike over pay, stranding island commuters",
     ["Crews on the Gull Island ferry walked out on Monday in a dispute over pay, cancelling every sailing "
      "and leaving hundreds of island commuters unable to reach the mainland.",
      "The Tern Line union said the strike would last 48 hours unless the operator improved its pay offer."]),
    ("https://coast-radio.test/news/ferry-walkout", "Gull Island ferry cancelled as Tern Line crews walk out",
     ["No ferries ran between Gull Island and the mainland on Monday after Tern Line crews went on strike "
      "over pay, and island commuters were left stranded.",
      "Union officials said the 48-hour walkout could end early if the operator made a better pay offer."]),
    ("https://bay-daily.test/2026/ferry", "Island commuters stranded by ferry strike",
     ["Island commuters were stranded on Monday when the Gull Island ferry crews of Tern Line began a "
      "48-hour strike over pay and every sailing was cancelled.",
      "The operator said it hoped to reach a pay deal with the union before the walkout ended."]),
]
LATER = ("https://harbour-times.test/ferry-deal", "Tern Line and union agree ferry pay deal",
         ["A month after the Gull Island ferry strike, Tern Line and the crews' union agreed a new pay deal, "
          "ending the dispute that stranded island commuters.",
          "Crews will get a raise over two years, the union said."])


def _draft(url: str, title: str, body: list[str], published: datetime | None) -> Draft:
    return Draft(job_id=str(uuid.uuid4()), category_id="news", url=url, canonical_url=url,
                 article=Article(title=title, body=body, published_at=published), content_hash=uuid.uuid4().hex)


def test_the_store_stage_groups_one_event_from_three_outlets_into_one_story(tmp_path):
    storage = Storage(f"sqlite:///{tmp_path / 'stories.db'}")
    try:
        index = SimilarIndex(storage.engine, sample_max_age=0.0)
        index.ensure_schema()
        ids = [store_draft(_draft(url, title, body, DAY + timedelta(hours=i)), storage, index)[0]
               for i, (url, title, body) in enumerate(EVENT)]
        later, _ = store_draft(_draft(*LATER, DAY + timedelta(days=30)), storage, index)
        records = [storage.get_record(i) for i in ids]
        assert {str(r.story_id) for r in records} == {ids[0]}  # named by its first record
        assert str(storage.get_record(later).story_id) == later  # a follow-up a month on: a story of its own
        # The first outlet's record shows the two others, each once, with links to their records.
        shown = storage.other_outlets(records[0])
        assert [(i, outlet(u)) for i, _t, u in shown] == [(ids[1], "coast-radio.test"), (ids[2], "bay-daily.test")]
        text = render_text(records[0], other_outlets=shown)
        assert "2 other outlets covered this" in text and f"({outlet(EVENT[1][0])}, {ids[1]})" in text
        # The later piece is from the first outlet: its story has nobody else, so no such line.
        assert storage.other_outlets(storage.get_record(later)) == []
        assert "covered this" not in render_text(storage.get_record(later), other_outlets=[])
        assert storage.story_sizes([ids[0], later]) == {ids[0]: 3, later: 1}
    finally:
        storage.close()
