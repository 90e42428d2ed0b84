"""The source registry in Redis, and the atomic claim of due runs that lets any number of beats tick.

Every source lives in Redis (keys in ``worker.keys``): its definition, its interval, and its next
run in a sorted set scored on Redis's own clock, so the schedule survives restarts of beat and is
the same for every process. A run is claimed by one Lua script that returns the source's slot and
moves its score to the next slot in the same step, so two ticks (or two beat processes) can never
both be handed one slot. The sources file is synced in whenever its mtime or size changes; a file
with an error is refused whole and the sources already registered keep running.
"""

from __future__ import annotations

import dataclasses
import json
import logging
import time
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from typing import Any, Literal

import redis
from pydantic import ValidationError

from worker import keys
from worker.sources import Source, SourcesFileError, parse_sources, read_sources_file, table_line

log = logging.getLogger("gleaner.registry")

Origin = Literal["file", "cli"]

CLAIM_BATCH = 100  # sources claimed per tick at most; the rest are claimed by the next tick
RUN_LOG = 20  # run summaries kept per source
LOCK_TIMEOUT = 30.0  # seconds a registry lock lives if its holder dies

# Redis's clock in ms, the same for every caller whatever its own clock says.
_NOW = """
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
"""

# KEYS: due, every, paused. ARGV: limit. Returns key, slot, next for each claimed source.
_CLAIM = "redis.replicate_commands()" + _NOW + """
local due = redis.call('ZRANGEBYSCORE', KEYS[1], '-inf', now, 'WITHSCORES', 'LIMIT', 0, tonumber(ARGV[1]))
local out = {}
for i = 1, #due, 2 do
  local key, slot = due[i], tonumber(due[i + 1])
  local every = tonumber(redis.call('HGET', KEYS[2], key))
  if not every or redis.call('SISMEMBER', KEYS[3], key) == 1 then
    redis.call('ZREM', KEYS[1], key)
  else
    -- Missed slots (nothing ticked for a while) are skipped, not run in a burst.
    local nxt = slot + every
    if nxt <= now then nxt = now + every end
    redis.call('ZADD', KEYS[1], nxt, key)
    table.insert(out, key)
    table.insert(out, tostring(slot))
    table.insert(out, tostring(nxt))
  end
end
return out
"""

# KEYS: defs, every, due, paused. ARGV: key, entry JSON, interval ms, mode (now | interval | keep).
_UPSERT = "redis.replicate_commands()" + _NOW + """
local key, every = ARGV[1], tonumber(ARGV[3])
redis.call('HSET', KEYS[1], key, ARGV[2])
redis.call('HSET', KEYS[2], key, every)
if redis.call('SISMEMBER', KEYS[4], key) == 1 then return 0 end
local cur = tonumber(redis.call('ZSCORE', KEYS[3], key))
if ARGV[4] == 'now' or not cur then
  redis.call('ZADD', KEYS[3], now, key)
elseif ARGV[4] == 'interval' and cur > now + every then
  redis.call('ZADD', KEYS[3], now + every, key)
end
return 1
"""

# KEYS: state. ARGV: slot. A slot older than (or equal to) the last one started is refused.
_BEGIN = """
local cur = tonumber(redis.call('HGET', KEYS[1], 'last_slot') or '-1')
if tonumber(ARGV[1]) <= cur then return 0 end
redis.call('HSET', KEYS[1], 'last_slot', ARGV[1])
return 1
"""


def _dt(seconds: float | str | bytes | None) -> datetime | None:
    if seconds in (None, b"", ""):
        return None
    return datetime.fromtimestamp(float(seconds), timezone.utc)


def _text(value: bytes | str | None) -> str | None:
    if value is None:
        return None
    return value.decode() if isinstance(value, bytes) else value


@dataclass(frozen=True)
class Entry:
    """A registered source and where it came from (the file, at a line, or ``gleaner sources add``)."""

    source: Source
    origin: Origin
    line: int | None = None

    def to_json(self) -> str:
        return json.dumps({"source": self.source.model_dump(mode="json"), "origin": self.origin, "line": self.line})

    @classmethod
    def from_json(cls, raw: bytes | str) -> Entry:
        data = json.loads(raw)
        # Checked where it was declared; a warc folder gone since is the run's error to report.
        return cls(source=Source.model_validate(data["source"], context={"stored": True}), origin=data["origin"],
                   line=data.get("line"))


@dataclass(frozen=True)
class Claim:
    """One due run handed to one caller: the source, its slot and the next slot (Redis ms)."""

    key: str
    slot: int
    next_run: int


@dataclass
class RunReport:
    """What one discovery run of a source did."""

    started: float  # epoch seconds
    finished: float
    found: int = 0  # distinct article URLs listed by the start points (a warc source: records read)
    new: int = 0  # of them, queued for ingestion (not seen before; a warc source: pages fed into parse)
    not_modified: int = 0  # start points that answered 304
    errors: list[str] = field(default_factory=list)
    skipped: dict[str, int] = field(default_factory=dict)  # a warc source: reason -> records not ingested


@dataclass
class SourceStatus:
    key: str
    entry: Entry
    paused: bool
    running: bool
    next_run: datetime | None
    last_run: datetime | None
    last_error: str | None
    found: int | None
    new: int | None
    runs: int
    queued_total: int
    skipped: int | None = None  # records the last run of a warc source did not ingest

    def as_dict(self) -> dict[str, Any]:
        s = self.entry.source
        return {
            "key": self.key, "origin": self.entry.origin, "line": self.entry.line,
            "state": "paused" if self.paused else "running" if self.running else "active",
            "every": s.every, "feeds": s.feeds, "sitemaps": s.sitemaps,
            "listings": [item.model_dump() for item in s.listings], "warc": s.warc,
            "next_run": self.next_run.isoformat() if self.next_run else None,
            "last_run": self.last_run.isoformat() if self.last_run else None,
            "last_error": self.last_error, "found": self.found, "new": self.new, "skipped": self.skipped,
            "runs": self.runs, "queued_total": self.queued_total,
        }


@dataclass(frozen=True)
class FileStatus:
    """The sources file as last seen: ``error`` set if that version was refused."""

    path: str | None
    error: str | None = None
    synced_at: datetime | None = None  # when a good version was last applied
    checked_at: datetime | None = None
    count: int | None = None  # sources in the last good version
    changed: bool = False  # this call read the file (it was new or had changed)


class UnknownSource(KeyError):
    def __str__(self) -> str:
        return f"no source {self.args[0]!r}"


class Registry:
    """The sources in Redis: add, change, pause, remove, sync from the file, claim due runs."""

    def __init__(self, client: redis.Redis) -> None:
        self.redis = client
        self._claim = client.register_script(_CLAIM)
        self._upsert = client.register_script(_UPSERT)
        self._begin = client.register_script(_BEGIN)

    # --- reading ----------------------------------------------------------------------------------

    def now_ms(self) -> int:
        seconds, micros = self.redis.time()
        return int(seconds) * 1000 + int(micros) // 1000

    def get(self, key: str) -> Entry | None:
        raw = self.redis.hget(keys.sources(), key)
        return Entry.from_json(raw) if raw else None

    def entries(self) -> dict[str, Entry]:
        found = {}
        for key, raw in self.redis.hgetall(keys.sources()).items():
            try:
                found[_text(key)] = Entry.from_json(raw)
            except (ValueError, KeyError, ValidationError) as exc:
                # Written by another version of Gleaner: say so rather than crash every listing.
                log.error("source %s in Redis is unreadable (%s); re-add or remove it", _text(key), exc)
        return dict(sorted(found.items()))

    def paused(self) -> set[str]:
        return {_text(k) for k in self.redis.smembers(keys.sources_paused())}

    def statuses(self) -> list[SourceStatus]:
        entries = self.entries()
        pipe = self.redis.pipeline(transaction=False)
        for key in entries:
            pipe.hgetall(keys.source_state(key))
            pipe.zscore(keys.sources_due(), key)
            pipe.exists(keys.source_running(key))
        results = pipe.execute()
        paused = self.paused()
        out = []
        for i, (key, entry) in enumerate(entries.items()):
            state = {_text(k): _text(v) for k, v in results[3 * i].items()}
            due = results[3 * i + 1]
            out.append(SourceStatus(
                key=key, entry=entry, paused=key in paused, running=bool(results[3 * i + 2]),
                next_run=_dt(due / 1000) if due is not None and key not in paused else None,
                last_run=_dt(state.get("last_run")), last_error=state.get("last_error") or None,
                found=int(state["found"]) if "found" in state else None,
                new=int(state["new"]) if "new" in state else None,
                runs=int(state.get("runs", 0)), queued_total=int(state.get("queued_total", 0)),
                skipped=int(state["skipped"]) if "skipped" in state else None,
            ))
        return out

    def runs(self, key: str) -> list[dict[str, Any]]:
        """The latest run summaries of a source, newest first."""
        return [json.loads(raw) for raw in self.redis.lrange(keys.source_runs(key), 0, -1)]

    # --- changing ---------------------------------------------------------------------------------

    def lock(self, *, wait: float = 10.0):
        """The registry lock: held by whoever changes the set of sources (a file sync, a CLI edit)."""
        return self.redis.lock(keys.sources_lock(), timeout=LOCK_TIMEOUT, blocking_timeout=wait)

    def _put(self, entry: Entry) -> None:
        old = self.get(entry.source.key)
        if old is None or old.source.start_points() != entry.source.start_points():
            mode = "now"  # new, or new places to look: look there now
        elif old.source.every != entry.source.every:
            mode = "interval"  # a shorter interval takes effect from now
        else:
            mode = "keep"
        self._upsert(keys=[keys.sources(), keys.sources_every(), keys.sources_due(), keys.sources_paused()],
                     args=[entry.source.key, entry.to_json(), int(entry.source.every * 1000), mode])

    def _remove(self, key: str) -> None:
        pipe = self.redis.pipeline()
        pipe.hdel(keys.sources(), key)
        pipe.hdel(keys.sources_every(), key)
        pipe.zrem(keys.sources_due(), key)
        pipe.srem(keys.sources_paused(), key)
        pipe.delete(keys.source_state(key), keys.source_runs(key))
        pipe.execute()

    def add(self, source: Source, *, origin: Origin = "cli", line: int | None = None) -> None:
        """Register or replace a source; a new one (or one with new start points) runs at once."""
        with self.lock():
            current = self.get(source.key)
            if origin == "cli" and current is not None and current.origin == "file":
                where = f" at line {current.line}" if current.line else ""
                raise ValueError(f"source {source.key!r} is defined in the sources file{where}; change it there")
            self._put(Entry(source, origin, line))

    def remove(self, key: str) -> Entry:
        with self.lock():
            entry = self.get(key)
            if entry is None:
                raise UnknownSource(key)
            if entry.origin == "file":
                where = f" at line {entry.line}" if entry.line else ""
                raise ValueError(f"source {key!r} is defined in the sources file{where}; delete it there "
                                 "(or pause it)")
            self._remove(key)
            return entry

    def pause(self, key: str) -> None:
        """Stop polling a source (a run in progress finishes); kept across file syncs until resumed."""
        if self.get(key) is None:
            raise UnknownSource(key)
        pipe = self.redis.pipeline()
        pipe.sadd(keys.sources_paused(), key)
        pipe.zrem(keys.sources_due(), key)
        pipe.execute()

    def resume(self, key: str) -> None:
        """Poll a paused source again, starting now."""
        if self.get(key) is None:
            raise UnknownSource(key)
        pipe = self.redis.pipeline()
        pipe.srem(keys.sources_paused(), key)
        pipe.zadd(keys.sources_due(), {key: self.now_ms()}, nx=True)
        pipe.execute()

    def run_now(self, key: str) -> None:
        """Make a source due now (its next tick polls it)."""
        if self.get(key) is None:
            raise UnknownSource(key)
        if key in self.paused():
            raise ValueError(f"source {key!r} is paused; resume it first")
        self.redis.zadd(keys.sources_due(), {key: self.now_ms()})

    # --- the sources file -------------------------------------------------------------------------

    def file_status(self) -> FileStatus:
        meta = {_text(k): _text(v) for k, v in self.redis.hgetall(keys.sources_file()).items()}
        return FileStatus(path=meta.get("path"), error=meta.get("error") or None,
                          synced_at=_dt(meta.get("synced_at")), checked_at=_dt(meta.get("checked_at")),
                          count=int(meta["count"]) if meta.get("count") else None)

    def sync_file(self, path: Path, *, force: bool = False) -> FileStatus:
        """Apply the sources file if it changed since the last look (mtime and size), or always with
        ``force``. A refused file changes nothing but the recorded error."""
        path_s = str(path)
        stamp = _stamp(path)
        seen = self.redis.hmget(keys.sources_file(), ["path", "stamp"])
        if not force and [_text(v) for v in seen] == [path_s, stamp]:
            return self.file_status()
        lock = self.lock(wait=10.0 if force else 0.0)
        if not lock.acquire():
            return self.file_status()  # another process is syncing it right now
        try:
            seen = self.redis.hmget(keys.sources_file(), ["path", "stamp"])
            if not force and [_text(v) for v in seen] == [path_s, stamp]:
                return self.file_status()
            now = time.time()
            try:
                text = read_sources_file(path)
                sources = parse_sources(text, path_s)
            except SourcesFileError as exc:
                kept = len(self.redis.hkeys(keys.sources()))
                log.error("sources file refused: %s (the %d sources registered keep running)", exc, kept)
                self.redis.hset(keys.sources_file(), mapping={"path": path_s, "stamp": stamp, "error": str(exc),
                                                              "checked_at": now})
                return dataclasses.replace(self.file_status(), changed=True)
            wanted = {s.key for s in sources}
            for source in sources:
                self._put(Entry(source, "file", table_line(text, source.key)))
            for key, entry in self.entries().items():
                if entry.origin == "file" and key not in wanted:
                    self._remove(key)
            self.redis.hset(keys.sources_file(), mapping={"path": path_s, "stamp": stamp, "error": "",
                                                          "checked_at": now, "synced_at": now,
                                                          "count": len(sources)})
            log.info("sources file %s applied: %d sources", path_s, len(sources))
            return dataclasses.replace(self.file_status(), changed=True)
        finally:
            try:
                lock.release()
            except redis.exceptions.LockError:
                log.warning("the sources lock expired during a sync of %s", path_s)

    # --- runs -------------------------------------------------------------------------------------

    def claim_due(self, limit: int = CLAIM_BATCH) -> list[Claim]:
        """Take every source whose next run has come; each slot is handed to exactly one caller."""
        flat = self._claim(keys=[keys.sources_due(), keys.sources_every(), keys.sources_paused()], args=[limit])
        return [Claim(_text(flat[i]), int(float(flat[i + 1])), int(float(flat[i + 2])))
                for i in range(0, len(flat), 3)]

    def begin_run(self, key: str, slot: int) -> bool:
        """Record that the run of ``slot`` starts; False if that slot (or a later one) already started."""
        return bool(self._begin(keys=[keys.source_state(key)], args=[slot]))

    def record_run(self, key: str, report: RunReport) -> None:
        error = "; ".join(report.errors)
        summary = {"started": report.started, "finished": report.finished, "found": report.found,
                   "new": report.new, "not_modified": report.not_modified, "errors": report.errors,
                   "skipped": report.skipped}
        pipe = self.redis.pipeline()
        pipe.hset(keys.source_state(key), mapping={"last_run": report.started, "last_finished": report.finished,
                                                   "found": report.found, "new": report.new, "last_error": error,
                                                   "skipped": sum(report.skipped.values())})
        pipe.hincrby(keys.source_state(key), "runs", 1)
        pipe.hincrby(keys.source_state(key), "queued_total", report.new)
        pipe.lpush(keys.source_runs(key), json.dumps(summary))
        pipe.ltrim(keys.source_runs(key), 0, RUN_LOG - 1)
        pipe.execute()

    def record_skip(self, key: str, reason: str) -> None:
        self.redis.hset(keys.source_state(key), "last_skip", reason)


def _stamp(path: Path) -> str:
    try:
        st = path.stat()
    except OSError as exc:
        return f"missing:{exc.errno}"
    return f"{st.st_mtime_ns}:{st.st_size}"


# --- a job's source, for the stages that read it ------------------------------------------------------

def read_source_into(pipe: redis.client.Pipeline, key: str) -> None:
    """Queue the read of source ``key``'s entry onto the caller's pipeline (one command; its reply
    goes to ``source_from``)."""
    pipe.hget(keys.sources(), key)


def source_from(raw: bytes | str | None, key: str) -> Source | None:
    """The source in an entry read by ``read_source_into``; None if there is none or it is unreadable."""
    if not raw:
        return None
    try:
        return Entry.from_json(raw).source
    except (ValueError, KeyError, ValidationError) as exc:
        log.error("source %s in Redis is unreadable (%s); using generic extraction and the global limits", key, exc)
        return None


def source_of(client: redis.Redis, key: str) -> Source | None:
    """Source ``key``'s entry, in a round trip of its own."""
    return source_from(client.hget(keys.sources(), key), key)
