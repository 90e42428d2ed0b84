"""The page archive: every fetched page kept as WARC 1.1 records, and WARC files read back
(for ``gleaner show --raw``, ``gleaner reprocess`` and ``gleaner ingest``)."""

from tasks.archive.files import ArchiveWriter
from tasks.archive.reader import DamagedArchive, Skipped, page_at, read_pages, record_at
from tasks.archive.warc import response_records

__all__ = ["ArchiveWriter", "DamagedArchive", "Skipped", "page_at", "read_pages", "record_at", "response_records"]
