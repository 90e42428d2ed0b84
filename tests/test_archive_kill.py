"""A process SIGKILLed while it appends to its archive file leaves the file readable up to its
last whole record; the torn record is found and reported, never read as a page."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import textwrap

import pytest

from tasks.archive import ArchiveWriter, DamagedArchive, read_pages
from worker.payloads import FetchedPage

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))

# The writer appends a page's records with os.write, which the kernel may complete in part (a
# signal, a full disk, a slow device): here each call takes at most 4 KiB, and the page numbered
# argv[2] stalls after its first part, so the SIGKILL lands inside its append, every time.
# Each page is 2 MB of random hex digits in an HTML shell.
CHILD = textwrap.dedent("""
    import os, sys, time
    from datetime import datetime, timezone
    import httpx
    from tasks.archive import files
    from tasks.fetching.download import Download

    real_write, build = os.write, files.response_records
    stall_at, built, stalling = int(sys.argv[2]), [], []

    def sliced(fd, data):
        written = real_write(fd, bytes(data[:4096]))
        if stalling:
            print("inside", flush=True)  # part of the page is in the file, the rest is not
            time.sleep(60)
        return written

    def counted(got, *args):
        data = build(got, *args)
        built.append(got)
        stalling.extend([True] if len(built) - 1 == stall_at else [])
        return data

    files.os.write, files.response_records = sliced, counted
    writer = files.ArchiveWriter(files.Path(sys.argv[1]), max_bytes=1 << 40)
    for n in range(stall_at + 1):
        body = b"<html><body><p>" + os.urandom(1 << 20).hex().encode() + b"</p></body></html>"
        got = Download(url=f"http://127.0.0.1/{n}.html", final_url=f"http://127.0.0.1/{n}.html", status=200,
                       headers=httpx.Headers({"Content-Type": "text/html"}), body=body, raw=body, reason="OK",
                       requested_at=datetime.now(timezone.utc))
        at = writer.write(got)
        print("wrote", at.file, at.offset, flush=True)
""")


def _kill_mid_write(directory, after: int) -> tuple[str, list[int]]:
    """Run the writer and SIGKILL it inside the append of page ``after`` (0-based); its file and
    the offsets of the pages it finished."""
    proc = subprocess.Popen([sys.executable, "-c", CHILD, str(directory), str(after)], stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True, cwd=REPO, env={**os.environ, "PYTHONPATH": REPO})
    done: list[int] = []
    name = ""
    try:
        for line in proc.stdout:
            if line.startswith("wrote"):
                _, name, offset = line.split()
                done.append(int(offset))
            elif line.startswith("inside"):
                os.kill(proc.pid, signal.SIGKILL)
                break
        else:
            pytest.fail(f"the writer ended before page {after}: {proc.stderr.read()}")
    finally:
        proc.kill()
        proc.wait()
    return name, done


def _read(path):
    pages, damage = [], None
    try:
        for item in read_pages(path, path.name, 16 << 20):
            if isinstance(item, FetchedPage):
                pages.append(item)
    except DamagedArchive as exc:
        damage = exc
    return pages, damage


@pytest.mark.parametrize("after", [1, 3])
def test_a_writer_killed_mid_write_leaves_its_file_readable_to_the_last_whole_record(tmp_path, after):
    name, done = _kill_mid_write(tmp_path, after)
    assert len(done) == after
    path = tmp_path / name
    assert sorted(tmp_path.iterdir()) == [path]
    pages, damage = _read(path)
    # Every page the writer finished reads back whole, in order; the one it was killed writing
    # is reported torn where it starts, never read as a page.
    assert [p.page.archived.offset for p in pages] == done
    assert all(p.body.startswith(b"<html>") and p.body.endswith(b"</html>") and len(p.body) > 2 << 20
               for p in pages)
    assert damage is not None and damage.offset > done[-1] and "ends inside a record" in damage.reason
    assert damage.offset < path.stat().st_size  # some of the torn page is there

    # The next process starts a file of its own; the torn one is never appended to.
    size = path.stat().st_size
    writer = ArchiveWriter(tmp_path, max_bytes=1 << 30)
    writer._rotate()
    writer.close()
    assert path.stat().st_size == size and len(list(tmp_path.iterdir())) == 2
