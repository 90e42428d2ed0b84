"""The page archive: every fetched page kept as WARC 1.1 records, and WARC files read back
(for ``gleaner show --raw``, ``gleaner reprocess`` and ``gleaner ingest``)."""

from tasks.archive.files import ArchiveWriter
from tasks.archive.reader import TORN, DamagedArchive, Skipped, page_at, pages_from, read_pages, record_at
from tasks.archive.warc import response_records

__all__ = ["TORN", "ArchiveWriter", "DamagedArchive", "Skipped", "page_at", "pages_from", "read_pages", "record_at",
           "response_records"]
