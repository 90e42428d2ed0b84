"""Per-site boilerplate: paragraphs a host prints on most of its pages (share prompts, related lists).

Each page seen for a host adds one to a page counter and to a counter per distinct paragraph
(by a hash of its words), in Redis so every worker learns from every page. Once the host has
``min_pages`` pages counted, a paragraph found on more than ``max_share`` of its recent pages is
dropped from bodies. Counts halve every ``window`` pages (or when a host holds more than
``max_lines`` paragraph counters), so memory per host stays bounded and old templates fade.
"""

from __future__ import annotations

import hashlib
from collections.abc import Sequence
from urllib.parse import urlsplit

import redis

from tasks.duplicates.textnorm import paragraph_key
from worker import keys

__all__ = ["BoilerplateFilter", "site_of"]

DEFAULT_MIN_PAGES = 20  # pages of a host counted before anything is dropped
DEFAULT_MAX_SHARE = 0.5  # a paragraph on more than this share of recent pages is boilerplate
DEFAULT_WINDOW = 200  # pages between two halvings of a host's counts
DEFAULT_MAX_LINES = 512  # paragraph counters per host before an early halving
DEFAULT_TTL = 30 * 24 * 3600  # seconds a host's counts live after its last page
_HASH_BYTES = 8  # a paragraph's hash, its field in the host's lines hash

# KEYS: lines hash, pages hash. ARGV: window, max_lines, ttl, the paragraph hashes (8 bytes each)
# joined in one string: one argument rather than one per paragraph keeps the client's encoding
# cost down. Returns {recent pages, total pages, count of each paragraph}, counted with this page.
_OBSERVE = r"""
local window, max_lines, ttl = tonumber(ARGV[1]), tonumber(ARGV[2]), tonumber(ARGV[3])
local packed = ARGV[4]
local recent = redis.call('HINCRBY', KEYS[2], 'recent', 1)
local total = redis.call('HINCRBY', KEYS[2], 'total', 1)
local out = {recent, total}
for i = 1, #packed, HASH_BYTES do
  out[#out + 1] = redis.call('HINCRBY', KEYS[1], string.sub(packed, i, i + HASH_BYTES - 1), 1)
end
if recent >= window or redis.call('HLEN', KEYS[1]) > max_lines then
  -- Halve counts and pages together: shares stay, one-off paragraphs (count 1) go.
  local all = redis.call('HGETALL', KEYS[1])
  for i = 1, #all, 2 do
    local c = math.floor(tonumber(all[i + 1]) / 2)
    if c == 0 then redis.call('HDEL', KEYS[1], all[i]) else redis.call('HSET', KEYS[1], all[i], c) end
  end
  redis.call('HSET', KEYS[2], 'recent', math.floor(recent / 2))
end
redis.call('EXPIRE', KEYS[1], ttl)
redis.call('EXPIRE', KEYS[2], ttl)
return out
""".replace("HASH_BYTES", str(_HASH_BYTES))


def site_of(url: str) -> str:
    """The host a URL's boilerplate is counted under (lowercase, without ``www.``)."""
    host = (urlsplit(url.strip()).hostname or "").rstrip(".")
    return host[4:] if host.startswith("www.") else host


def _line_hash(key: str) -> bytes:
    return hashlib.blake2b(key.encode("utf-8"), digest_size=_HASH_BYTES).digest()


class BoilerplateFilter:
    """Learns each host's repeated paragraphs from the pages it is shown and drops them."""

    def __init__(
        self,
        client: redis.Redis,
        *,
        min_pages: int = DEFAULT_MIN_PAGES,
        max_share: float = DEFAULT_MAX_SHARE,
        window: int = DEFAULT_WINDOW,
        max_lines: int = DEFAULT_MAX_LINES,
        ttl: int = DEFAULT_TTL,
    ) -> None:
        if not 0.0 < max_share < 1.0:
            raise ValueError(f"max_share must be between 0 and 1, got {max_share}")
        if min_pages < 2 or window < 2 or max_lines < 1:
            raise ValueError("min_pages and window must be at least 2, max_lines at least 1")
        self.redis = client
        self.min_pages, self.max_share, self.window, self.max_lines, self.ttl = (
            min_pages, max_share, window, max_lines, ttl,
        )
        self._observe = client.register_script(_OBSERVE)

    def observe_and_filter(self, site: str, paragraphs: Sequence[str]) -> list[str]:
        """Count this page's paragraphs for ``site`` and return them without the site's boilerplate.

        Call once per page (a page counted twice, by a task that reruns, nudges its lines'
        shares up a little; harmless at ``max_share`` 0.5). Paragraphs without words are kept
        as they are; order is kept.
        """
        if not site:
            return list(paragraphs)
        line_keys = [paragraph_key(p) for p in paragraphs]
        hashes = {k: _line_hash(k) for k in line_keys if k}
        unique = list(dict.fromkeys(hashes.values()))
        reply = self._observe(
            keys=[keys.boilerplate_lines(site), keys.boilerplate_pages(site)],
            args=[self.window, self.max_lines, self.ttl, b"".join(unique)],
        )
        recent, total, counts = int(reply[0]), int(reply[1]), [int(c) for c in reply[2:]]
        if total < self.min_pages:
            return list(paragraphs)
        count_of = dict(zip(unique, counts))
        return [
            p
            for p, k in zip(paragraphs, line_keys)
            if not k or count_of[hashes[k]] <= self.max_share * recent
        ]

    def forget(self, site: str) -> None:
        """Drop everything learned about a site (its templates changed, or for tests)."""
        self.redis.delete(keys.boilerplate_lines(site), keys.boilerplate_pages(site))
