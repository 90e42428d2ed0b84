"""The near-duplicate index: MinHash LSH in Redis, shared by every worker on every machine.

``LSHIndex.check_and_insert`` finds the canonical record a body duplicates (exactly, by its
content hash, or nearly, by estimated Jaccard similarity at least ``threshold``) or, finding
none, inserts it as a new canonical, all in one Lua script: Redis runs scripts one at a time,
so of two near-copies arriving at once, exactly one becomes canonical and the other links to it.

Layout under the prefix (``worker.keys.lsh_index``), shaped to keep per-key overhead low:

    meta              hash: the layout parameters; a worker built differently is refused
    n                 string: the last internal doc number handed out (INCR)
    d:<bucket>        hash: "u"+uuid(16 bytes) -> doc number, "h"+content hash(8 bytes) -> doc number
    b:<band><bucket>  hash: band hash (16 bits) -> doc numbers "12,907" sharing that band
                      (band: 1 byte, bucket: the high ``bucket_bits`` of the band hash, 2 bytes;
                      raw binary, as are the fields: see _PRELUDE)
    s:<block>         string: fixed-size records of BLOCK docs, at (number % BLOCK) * record size:
                      uuid(16) | content hash(8) | signature (8 bits a slot); a zeroed uuid = removed

Buckets are sized (``bucket_bits``) so each hash keeps well under Redis's default
``hash-max-ziplist-entries`` (128) up to ``2**bucket_bits * 90`` documents and stays listpack-encoded.
Scripts touch record keys they compute themselves, so the index needs a standalone Redis
(not Cluster).
"""

from __future__ import annotations

import hashlib
import math
import uuid as uuidlib
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

import numpy as np
import redis

from tasks.duplicates.minhash import MinHasher, mix64
from tasks.duplicates import textnorm
from worker import keys

__all__ = ["IndexLayoutError", "LSHIndex", "Verdict", "choose_bands"]

# Estimated Jaccard of word 5-shingles. Copies re-published with other boilerplate, cut or
# lightly edited mostly score 0.55-0.95; distinct articles score under 0.2, and new stories
# reusing a third of an old one's paragraphs 0.2-0.45 (bench/results/dedupe.md).
DEFAULT_THRESHOLD = 0.5
DEFAULT_BUCKET_BITS = 14  # 16384 buckets per band: listpack-sized up to about 1.5M documents
MAX_BANDS = 48
CANDIDATE_RECALL = 0.99  # chance that a doc exactly at the threshold shares a band with the query
NEAR_MIN_WORDS = 25  # shorter bodies are checked for exact copies only (check_body)
BLOCK = 1024  # records per signature string
# Doc numbers kept per band field. Templated pages can share a band by the thousand; a cap
# bounds the candidates one check verifies (bands x this) and keeps values listpack-sized.
MAX_PER_FIELD = 6
_UUID_BYTES = 16
_HASH_BYTES = 8

# Shared by the scripts: arguments, the record reader, the band keys and candidate scoring. Bands arrive packed,
# 5 bytes each (band, bucket: 16 bits, field: 16 bits), and are cut into key and field with
# string.sub: one argument instead of two per band keeps the client's encoding cost down, and
# raw bytes spare the script number formatting, which costs more than the HGETs.
# ARGV: uuid, record, content hash, min matching slots, key prefix, block, record size, bands,
# most doc numbers kept per band field.
_PRELUDE = r"""
local uid, rec, chash = ARGV[1], ARGV[2], ARGV[3]
local min_match, prefix = tonumber(ARGV[4]), ARGV[5]
local block, rsize, packed = tonumber(ARGV[6]), tonumber(ARGV[7]), ARGV[8]
local maxper = tonumber(ARGV[9])
local sigp = prefix .. 's:'
local bandp = prefix .. 'b:'
local nb = #packed / 5
local ZERO = string.rep('\0', 16)
local sub = string.sub

local function record(id)
  local n = tonumber(id)
  local off = (n % block) * rsize
  return redis.call('GETRANGE', sigp .. math.floor(n / block), off, off + rsize - 1)
end

local bkeys, bfields = {}, {}
for i = 1, nb do
  bkeys[i] = bandp .. sub(packed, 5 * i - 4, 5 * i - 2)
  bfields[i] = sub(packed, 5 * i - 1, 5 * i)
end

-- Candidate scoring: consider(v) scores the docs listed in a band field's value by matching
-- slots; the best so far is kept, removed docs are noted as dead.
local mine, nslots  -- the query's slots, unpacked at the first candidate (most checks meet none)
local dead, scored, best, best_m = {}, {}, nil, -1
local function consider(v)
  for id in string.gmatch(v, '%d+') do
    if scored[id] == nil then
      local r = record(id)
      if string.len(r) < rsize or sub(r, 1, 16) == ZERO then
        dead[id] = true
        scored[id] = -1
      else
        if not mine then
          mine = {string.byte(rec, 25, -1)}
          nslots = #mine
        end
        local other = {string.byte(r, 25, -1)}
        local m = 0
        for j = 1, nslots do
          if mine[j] == other[j] then m = m + 1 end
        end
        scored[id] = m
        if m > best_m or (m == best_m and tonumber(id) < tonumber(best)) then best, best_m = id, m end
      end
    end
  end
end
"""

# KEYS: n, doc-map bucket of the uuid, doc-map bucket of the content hash.
# Returns {0, own number} already indexed | {1, uuid} exact copy | {2, uuid, matches} near copy
# | {3, new number} inserted as canonical.
#
# Most checks are of new documents whose band fields are all empty, so each band is first
# claimed with HSETNX under the new doc's number (one call instead of HGET then HSET); if a
# near copy turns up, those claims are undone and the number handed back, all within the script.
_CHECK_AND_INSERT = _PRELUDE + r"""
local known = redis.call('HGET', KEYS[2], 'u' .. uid)
if known then return {0, known} end
if chash ~= '' then
  local id = redis.call('HGET', KEYS[3], 'h' .. chash)
  if id then
    local r = record(id)
    if string.len(r) == rsize and sub(r, 1, 16) ~= ZERO and sub(r, 17, 24) == chash then
      return {1, sub(r, 1, 16)}
    end
  end
end
local id = redis.call('INCR', KEYS[1])
local sid = tostring(id)
local values = {}
for i = 1, nb do
  if redis.call('HSETNX', bkeys[i], bfields[i], sid) == 0 then
    local v = redis.call('HGET', bkeys[i], bfields[i])
    values[i] = v
    consider(v)
  end
end
if best and best_m >= min_match then
  for i = 1, nb do
    if not values[i] then redis.call('HDEL', bkeys[i], bfields[i]) end
  end
  redis.call('DECR', KEYS[1])
  return {2, sub(record(best), 1, 16), best_m}
end
local key = sigp .. math.floor(id / block)
if redis.call('EXISTS', key) == 0 then
  -- Allocate the whole block once: growing a string by SETRANGE over-allocates up to 2x.
  redis.call('SETRANGE', key, block * rsize - 1, '\0')
end
redis.call('SETRANGE', key, (id % block) * rsize, rec)
redis.call('HSET', KEYS[2], 'u' .. uid, id)
if chash ~= '' then redis.call('HSET', KEYS[3], 'h' .. chash, id) end
for i = 1, nb do
  local v = values[i]
  if v then
    local kept = {}
    for other in string.gmatch(v, '%d+') do
      if not dead[other] then kept[#kept + 1] = other end
    end
    kept[#kept + 1] = sid
    if #kept > maxper then  -- keep the newest: older docs stay reachable through other bands
      kept = {unpack(kept, #kept - maxper + 1)}
    end
    redis.call('HSET', bkeys[i], bfields[i], table.concat(kept, ','))
  end
end
return {3, id}
"""

# Read-only: every live doc sharing a band with the query, with at least min_match slots.
# Returns {uuid, matches, uuid, matches, ...}.
_SIMILAR = _PRELUDE + r"""
for i = 1, nb do
  local v = redis.call('HGET', bkeys[i], bfields[i])
  if v then consider(v) end
end
local out = {}
for id, m in pairs(scored) do
  if m >= min_match then
    out[#out + 1] = string.sub(record(id), 1, 16)
    out[#out + 1] = m
  end
end
return out
"""

# KEYS: doc-map bucket of the uuid, doc-map bucket of the content hash.
# ARGV: uuid, the doc's number, content hash, key prefix, block, record size.
# The record is zeroed; the doc's band entries stay as tombstones that checks skip and
# inserts into the same band field drop (the bands cannot be rebuilt from 8-bit slots).
_REMOVE = r"""
local uid, want, chash, prefix = ARGV[1], ARGV[2], ARGV[3], ARGV[4]
local block, rsize = tonumber(ARGV[5]), tonumber(ARGV[6])
if redis.call('HGET', KEYS[1], 'u' .. uid) ~= want then return 0 end
redis.call('HDEL', KEYS[1], 'u' .. uid)
if chash ~= '' and redis.call('HGET', KEYS[2], 'h' .. chash) == want then
  redis.call('HDEL', KEYS[2], 'h' .. chash)
end
local n = tonumber(want)
redis.call('SETRANGE', prefix .. 's:' .. math.floor(n / block), (n % block) * rsize, string.rep('\0', rsize))
return 1
"""


class IndexLayoutError(RuntimeError):
    """The index in Redis was built with other parameters than this worker's."""


@dataclass(frozen=True)
class Verdict:
    """What ``LSHIndex.check`` decided for one document."""

    duplicate_of: str | None  # the canonical's doc id, or None when this doc is (now) canonical
    similarity: float  # estimated Jaccard with the canonical (1.0 for an exact copy); 0.0 if none
    exact: bool = False  # matched by content hash
    already_indexed: bool = False  # this doc id was indexed before (a task running twice)


def choose_bands(threshold: float, num_perm: int, max_bands: int = MAX_BANDS) -> tuple[int, int]:
    """(bands, rows) for candidate search: the most rows per band (fewest spurious candidates),
    then the fewest bands (least memory), that make a doc at ``threshold`` a candidate with
    probability at least 0.99. Candidates are then verified against ``threshold`` on the full
    signature, so a lower threshold means more, shorter bands."""
    if not 0.0 < threshold <= 1.0:
        raise ValueError(f"threshold must be in (0, 1], got {threshold}")
    for rows in range(num_perm, 0, -1):
        limit = min(max_bands, num_perm // rows)
        if limit == 0:
            continue
        p_band = threshold**rows
        if p_band < 1e-9:
            continue
        if p_band >= 1.0:
            return 1, rows
        needed = math.ceil(math.log(1.0 - CANDIDATE_RECALL) / math.log(1.0 - p_band))
        if needed <= limit:
            return needed, rows
    return min(max_bands, num_perm), 1


def _uuid_bytes(doc_id: str) -> bytes:
    try:
        return uuidlib.UUID(str(doc_id)).bytes
    except ValueError as exc:
        raise ValueError(f"doc id must be a UUID string, got {doc_id!r}") from exc


def _hash_bytes(content_hash: str | None) -> bytes:
    if not content_hash:
        return b""
    return bytes.fromhex(content_hash[: 2 * _HASH_BYTES])


def _bucket_of(data: bytes, bits: int) -> int:
    return int.from_bytes(hashlib.blake2b(data, digest_size=4).digest(), "little") >> (32 - bits)


class LSHIndex:
    """A MinHash LSH index in Redis (see module docstring for layout and guarantees)."""

    def __init__(
        self,
        client: redis.Redis,
        threshold: float = DEFAULT_THRESHOLD,
        prefix: str | None = None,
        *,
        hasher: MinHasher | None = None,
        bands: int | None = None,
        rows: int | None = None,
        bucket_bits: int = DEFAULT_BUCKET_BITS,
    ) -> None:
        if not 0.0 < threshold <= 1.0:
            raise ValueError(f"threshold must be in (0, 1], got {threshold}")
        if (bands is None) != (rows is None):
            raise ValueError("give both bands and rows, or neither")
        self.hasher = hasher or MinHasher()
        num_perm = self.hasher.num_perm
        if bands is None or rows is None:
            bands, rows = choose_bands(threshold, num_perm)
        if bands > 255:
            raise ValueError(f"at most 255 bands, got {bands}")
        if bands * rows > num_perm:
            raise ValueError(f"{bands} bands x {rows} rows need more than {num_perm} slots")
        if not 4 <= bucket_bits <= 16:
            raise ValueError(f"bucket_bits must be between 4 and 16, got {bucket_bits}")
        self.redis = client
        self.threshold = threshold
        self.prefix = prefix or keys.lsh_index()
        self.num_perm, self.bands, self.rows, self.bucket_bits = num_perm, bands, rows, bucket_bits
        self.min_match = self._matches_for(threshold)
        self.record_size = _UUID_BYTES + _HASH_BYTES + num_perm
        rng = np.random.default_rng(0xBA4D5)
        self._row_weights = (rng.integers(0, 2**63, size=rows, dtype=np.uint64) << np.uint64(1)) | np.uint64(1)
        self._band_salt = rng.integers(0, 2**63, size=bands, dtype=np.uint64)
        self._check = client.register_script(_CHECK_AND_INSERT)
        self._similar = client.register_script(_SIMILAR)
        self._remove = client.register_script(_REMOVE)
        self._check_layout(self.hasher.fingerprint)

    # -- layout -----------------------------------------------------------------------------

    def _check_layout(self, fingerprint: str) -> None:
        layout = {
            "version": "2",
            "num_perm": str(self.num_perm),
            "bands": str(self.bands),
            "rows": str(self.rows),
            "bucket_bits": str(self.bucket_bits),
            "block": str(BLOCK),
            "minhash": fingerprint,
            # Workers verifying at different thresholds would disagree on what is a copy.
            "threshold": repr(self.threshold),
        }
        meta = self.prefix + "meta"
        pipe = self.redis.pipeline(transaction=True)
        for field, value in layout.items():
            pipe.hsetnx(meta, field, value)
        pipe.hgetall(meta)
        stored = {k.decode(): v.decode() for k, v in pipe.execute()[-1].items()}
        wrong = {k: (stored.get(k), v) for k, v in layout.items() if stored.get(k) != v}
        if wrong:
            detail = ", ".join(f"{k}: index has {have!r}, worker has {want!r}" for k, (have, want) in wrong.items())
            raise IndexLayoutError(f"LSH index at {self.prefix!r} was built differently ({detail})")

    # -- similarity <-> matching slots ------------------------------------------------------------

    def _matches_for(self, similarity: float) -> int:
        # Stored slots keep 8 bits, so unequal minima still agree 1 time in 256: a doc at
        # similarity J agrees on J + (1 - J) / 256 of the slots on average.
        return math.ceil(self.num_perm * (similarity + (1.0 - similarity) / 256.0) - 1e-9)

    def _similarity(self, matches: int) -> float:
        return min(1.0, max(0.0, (matches / self.num_perm - 1.0 / 256.0) / (1.0 - 1.0 / 256.0)))

    # -- keys -------------------------------------------------------------------------------

    def _doc_bucket(self, field: bytes) -> str:
        # Two fields per doc (uuid, content hash), so one more bit than the bands.
        return f"{self.prefix}d:{_bucket_of(field, self.bucket_bits + 1):x}"

    def packed_bands(self, signature: np.ndarray) -> bytes:
        """Each band's number (8 bits), bucket and field (16 bits each, big-endian), as the scripts read them."""
        sig = self._validate(signature)
        cols = sig[: self.bands * self.rows].reshape(self.bands, self.rows).astype(np.uint64)
        with np.errstate(over="ignore"):
            h = mix64((cols * self._row_weights).sum(axis=1, dtype=np.uint64) ^ self._band_salt)
        packed = np.empty(self.bands, dtype=[("band", "u1"), ("bucket", ">u2"), ("field", ">u2")])
        packed["band"] = np.arange(self.bands)
        packed["bucket"] = h >> np.uint64(64 - self.bucket_bits)
        # 16 bits of field: with the bucket bits, about 30 bits tell bands apart; a chance match
        # only adds a candidate that verification throws out, and small fields keep listpacks small.
        packed["field"] = h & np.uint64(0xFFFF)
        return packed.tobytes()

    def _validate(self, signature: np.ndarray) -> np.ndarray:
        sig = np.asarray(signature)
        if sig.shape != (self.num_perm,):
            raise ValueError(f"signature must have {self.num_perm} slots, got shape {sig.shape}")
        return sig.astype("<u2", copy=False)

    def _args(self, doc_id: str, signature: np.ndarray | None, content_hash: str | None):
        uid = _uuid_bytes(doc_id)
        chash = _hash_bytes(content_hash)
        if signature is None:
            sig_bytes, packed = b"\0" * self.num_perm, b""
        else:
            sig = self._validate(signature)
            sig_bytes, packed = (sig & 0xFF).astype(np.uint8).tobytes(), self.packed_bands(sig)
        rec = uid + chash.ljust(_HASH_BYTES, b"\0") + sig_bytes
        keys_ = [self.prefix + "n", self._doc_bucket(b"u" + uid), self._doc_bucket(b"h" + chash)]
        args = [uid, rec, chash, self.min_match, self.prefix, BLOCK, self.record_size, packed, MAX_PER_FIELD]
        return keys_, args

    def _verdict(self, reply) -> Verdict:
        code = int(reply[0])
        if code == 0:
            return Verdict(None, 1.0, already_indexed=True)
        if code == 1:
            return Verdict(str(uuidlib.UUID(bytes=reply[1])), 1.0, exact=True)
        if code == 2:
            return Verdict(str(uuidlib.UUID(bytes=reply[1])), self._similarity(int(reply[2])))
        return Verdict(None, 0.0)

    # -- the API ----------------------------------------------------------------------------

    def check(self, doc_id: str, signature: np.ndarray | None, content_hash: str | None = None) -> Verdict:
        """Atomically: the canonical this doc duplicates, or insert it as a new canonical.

        ``signature`` is ``MinHasher.signature(body)`` (None for a body without words: only
        the exact check applies); ``content_hash`` is ``textnorm.content_hash(body)`` or None.
        Checking a doc id that is already indexed changes nothing and says it is canonical,
        so a task that runs twice gets the same answer.
        """
        keys_, args = self._args(doc_id, signature, content_hash)
        return self._verdict(self._check(keys=keys_, args=args))

    def check_body(self, doc_id: str, paragraphs: Sequence[str], content_hash: str | None = None) -> Verdict:
        """``check`` for a body: its signature and content hash made with this index's hasher.

        A body of fewer than ``NEAR_MIN_WORDS`` words gets the exact check only: with a
        handful of shingles, sharing half of them says little. ``content_hash``: the body's
        ``textnorm.content_hash`` if the caller has it already (it costs as much as the signature).
        """
        words = textnorm.body_words(paragraphs)
        signature = self.hasher.signature_of_tokens(words) if len(words) >= NEAR_MIN_WORDS else None
        return self.check(doc_id, signature, content_hash or textnorm.content_hash(paragraphs))

    def check_and_insert(self, doc_id: str, signature: np.ndarray | None, content_hash: str | None = None) -> str | None:
        """The canonical doc id this doc duplicates, or None after inserting it as a canonical."""
        return self.check(doc_id, signature, content_hash).duplicate_of

    def check_many(self, items: Iterable[tuple[str, np.ndarray | None, str | None]], batch: int = 500) -> list[Verdict]:
        """``check`` for many docs in pipelined batches; same answers as checking them in order."""
        out: list[Verdict] = []
        pending: list[tuple[list[str], list]] = []

        def flush() -> None:
            pipe = self.redis.pipeline(transaction=False)
            for keys_, args in pending:
                self._check(keys=keys_, args=args, client=pipe)
            out.extend(self._verdict(r) for r in pipe.execute())
            pending.clear()

        for doc_id, signature, content_hash in items:
            pending.append(self._args(doc_id, signature, content_hash))
            if len(pending) >= batch:
                flush()
        if pending:
            flush()
        return out

    def similar(self, signature: np.ndarray, min_similarity: float | None = None) -> list[tuple[str, float]]:
        """Indexed docs whose estimated similarity to ``signature`` is at least ``min_similarity``
        (default: the threshold), best first. Read-only; only docs sharing a band are seen."""
        floor = self.threshold if min_similarity is None else min_similarity
        keys_, args = self._args(str(uuidlib.UUID(int=0)), signature, None)
        args[3] = self._matches_for(floor)
        reply = self._similar(keys=keys_, args=args)
        pairs = [
            (str(uuidlib.UUID(bytes=reply[i])), self._similarity(int(reply[i + 1]))) for i in range(0, len(reply), 2)
        ]
        return sorted(pairs, key=lambda p: -p[1])

    def _locate(self, doc_id: str) -> tuple[bytes, int, bytes] | None:
        uid = _uuid_bytes(doc_id)
        number = self.redis.hget(self._doc_bucket(b"u" + uid), b"u" + uid)
        if number is None:
            return None
        n = int(number)
        off = (n % BLOCK) * self.record_size
        rec = self.redis.getrange(f"{self.prefix}s:{n // BLOCK}", off, off + self.record_size - 1)
        return uid, n, rec

    def contains(self, doc_id: str) -> bool:
        return self._locate(doc_id) is not None

    def remove(self, doc_id: str) -> bool:
        """Take a canonical out of the index (its record was deleted); False if it was not in it."""
        found = self._locate(doc_id)
        if found is None:
            return False
        uid, n, rec = found
        chash = rec[_UUID_BYTES : _UUID_BYTES + _HASH_BYTES]
        chash = b"" if chash == b"\0" * _HASH_BYTES else chash
        keys_ = [self._doc_bucket(b"u" + uid), self._doc_bucket(b"h" + chash)]
        args = [uid, n, chash, self.prefix, BLOCK, self.record_size]
        return bool(self._remove(keys=keys_, args=args))

    def count(self) -> int:
        """Internal numbers handed out so far (inserted docs, removed ones included)."""
        return int(self.redis.get(self.prefix + "n") or 0)

    def clear(self) -> None:
        """Delete every key of this index (tests and benchmarks)."""
        for key in self.redis.scan_iter(match=self.prefix + "*", count=10_000):
            self.redis.unlink(key)
