"""Appending WARC records to this process's archive file, rotated by size, old files removed.

Each process writes its own file, named for the host, the process, the time it was opened and
a sequence number (and created exclusively), so workers on many machines sharing one directory
never write the same file. A page's records are appended in one write of whole gzip members,
so a process killed mid-write leaves at most one torn member at the end, which the reader
(tasks/archive/reader.py) detects and stops before.
"""

from __future__ import annotations

import os
import re
import socket
import threading
import time
from datetime import datetime, timezone
from io import BytesIO
from pathlib import Path

from warcio.warcwriter import WARCWriter

from tasks.archive.warc import DEFAULT_GZIP_LEVEL, WARC_VERSION, record_member, response_records
from tasks.fetching.download import Download
from worker.deflated import Deflated
from worker.models import ArchivedAt

PREFIX = "gleaner"
SUFFIX = ".warc.gz"
_UNSAFE = re.compile(r"[^A-Za-z0-9.-]+")


def _host() -> str:
    return _UNSAFE.sub("_", socket.gethostname()) or "host"


class ArchiveWriter:
    """One per process; thread-safe (a threads pool's fetches share it). Records are built and
    compressed outside the lock; only the append is serialized."""

    def __init__(self, directory: Path, *, max_bytes: int, retention_days: float = 0.0,
                 gzip_level: int = DEFAULT_GZIP_LEVEL, software: str = "Gleaner") -> None:
        self.directory = directory
        self.max_bytes = max_bytes
        self.retention_days = retention_days  # 0: keep every file
        self.gzip_level = gzip_level
        self.software = software
        self._lock = threading.Lock()
        self._fd: int | None = None
        self._name = ""
        self._size = 0
        self._sequence = 0

    def write(self, got: Download, body: Deflated | None = None) -> ArchivedAt:
        """Append the page's response and request records; where the response lies. ``body``: the
        page's body already deflated, put in the record as it is (see ``response_records``)."""
        data = response_records(got, self.gzip_level, body)
        with self._lock:
            if self._fd is None or (self._size and self._size + len(data) > self.max_bytes) or self._unlinked():
                self._rotate()
            offset = self._size
            _write_all(self._fd, data)
            self._size += len(data)
            return ArchivedAt(file=self._name, offset=offset, at=got.requested_at)

    def close(self) -> None:
        with self._lock:
            if self._fd is not None:
                os.close(self._fd)
                self._fd = None

    def _unlinked(self) -> bool:
        # Another process's retention may remove a file this one left idle for that long.
        return self._fd is not None and os.fstat(self._fd).st_nlink == 0

    def _rotate(self) -> None:
        if self._fd is not None:
            os.close(self._fd)
            self._fd = None
        self.directory.mkdir(parents=True, exist_ok=True)
        self.prune()
        while True:
            self._sequence += 1
            stamp = datetime.now(timezone.utc).strftime("%Y%m%d%H%M%S")
            name = f"{PREFIX}-{stamp}-{self._sequence:05d}-{_host()}-{os.getpid()}{SUFFIX}"
            try:
                fd = os.open(self.directory / name, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_APPEND, 0o644)
            except FileExistsError:
                continue
            break
        self._fd, self._name, self._size = fd, name, 0
        info = _warcinfo(name, self.software, self.gzip_level)
        _write_all(fd, info)
        self._size = len(info)

    def prune(self) -> list[str]:
        """Remove archive files last written more than ``retention_days`` ago; their names."""
        if not self.retention_days:
            return []
        cutoff = time.time() - self.retention_days * 86400
        removed = []
        for path in self.directory.glob(f"{PREFIX}-*{SUFFIX}"):
            try:
                if path.stat().st_mtime < cutoff:
                    path.unlink()
                    removed.append(path.name)
            except FileNotFoundError:
                continue  # another worker removed it first
        return removed


def _warcinfo(name: str, software: str, gzip_level: int) -> bytes:
    builder = WARCWriter(BytesIO(), gzip=False, warc_version=WARC_VERSION)
    info = builder.create_warcinfo_record(name, {"software": software, "format": "WARC File Format 1.1",
                                                 "hostname": socket.gethostname()})
    return record_member(info, gzip_level)


def _write_all(fd: int, data: bytes) -> None:
    view = memoryview(data)
    while view:
        view = view[os.write(fd, view):]
