"""MinHash signatures of article bodies, for near-duplicate search (see ``tasks.duplicates.lsh``).

A body becomes word shingles (``shingle`` consecutive normalized words), each shingle a 64-bit
hash, and the signature keeps, for each of ``num_perm`` hash permutations, the minimum. Two
bodies agree on a slot with probability equal to the Jaccard similarity of their shingle
sets. Slots are stored as 16 bits (b-bit MinHash): two different minima agree by chance
with probability 1/65536, too small to move an estimate.

Every worker must build its ``MinHasher`` with the same parameters, or their signatures
cannot be compared; ``MinHasher.fingerprint`` names them so the index can refuse a mismatch.
"""

from __future__ import annotations

import hashlib
import threading
from collections.abc import Iterable, Sequence

import numpy as np

from tasks.duplicates.textnorm import tokens as text_tokens

__all__ = ["MinHasher", "estimate_similarity", "jaccard", "mix64"]

DEFAULT_NUM_PERM = 128
DEFAULT_SHINGLE = 5  # words per shingle
DEFAULT_SEED = 0x676C65616E6572  # fixed, so signatures agree across machines and restarts
TOKEN_CACHE_SIZE = 20_000  # words remembered per process (about 2 MB): the common ones, which repeat
CHUNK = 512  # shingles per block of the (shingles x permutations) product; bounds scratch memory

_U64 = np.uint64
_TOKEN_HASH = np.dtype("<u8")
_MASK64 = (1 << 64) - 1


def mix64(x: np.ndarray) -> np.ndarray:
    """A bijective 64-bit finalizer (xor-shift-multiply) so every output bit depends on every input bit."""
    with np.errstate(over="ignore"):
        x = x ^ (x >> _U64(30))
        x = x * _U64(0xBF58476D1CE4E5B9)
        x = x ^ (x >> _U64(27))
        x = x * _U64(0x94D049BB133111EB)
        return x ^ (x >> _U64(31))


def _token_hash(token: str) -> bytes:
    # Stable across processes (Python's own str hash is salted per process). Read as a
    # little-endian uint64 (``_TOKEN_HASH``): joined digests become the array without an int each.
    return hashlib.blake2b(token.encode("utf-8"), digest_size=8).digest()


class MinHasher:
    """Builds signatures with fixed permutations, made once and reused for every document."""

    def __init__(self, num_perm: int = DEFAULT_NUM_PERM, shingle: int = DEFAULT_SHINGLE, seed: int = DEFAULT_SEED):
        if not 16 <= num_perm <= 1024:
            raise ValueError(f"num_perm must be between 16 and 1024, got {num_perm}")
        if not 1 <= shingle <= 16:
            raise ValueError(f"shingle must be between 1 and 16 words, got {shingle}")
        self.num_perm = num_perm
        self.shingle = shingle
        self.seed = seed
        rng = np.random.default_rng(seed)
        # Permutation i maps a shingle hash x to a*x + b (mod 2**64) with a odd: a bijection,
        # and its high bits, which decide the minimum, are a universal hash of x.
        self._a = (rng.integers(0, 2**63, size=num_perm, dtype=np.uint64) << _U64(1)) | _U64(1)
        self._b = rng.integers(0, 2**63, size=num_perm, dtype=np.uint64) << _U64(1)
        # Word position weights: a shingle's hash depends on its words' order.
        self._pos = (rng.integers(0, 2**63, size=shingle, dtype=np.uint64) << _U64(1)) | _U64(1)
        self._cache: dict[str, bytes] = {}
        # Scratch for the product, one per thread: allocating it per call costs more than the math.
        self._scratch = threading.local()

    @property
    def fingerprint(self) -> str:
        return f"minhash-v1:{self.num_perm}:{self.shingle}:{self.seed:x}"

    def token_hashes(self, words: Sequence[str]) -> np.ndarray:
        cache = self._cache
        if len(cache) > TOKEN_CACHE_SIZE:
            # A new dict, not a cleared one: a thread still reading the old one finds its words there.
            cache = self._cache = {}
        # Each word not yet known hashed once, however often the page repeats it.
        for word in set(words).difference(cache):
            cache[word] = _token_hash(word)
        return np.frombuffer(b"".join(map(cache.__getitem__, words)), dtype=_TOKEN_HASH).astype(_U64)

    def shingle_hashes(self, token_hashes: np.ndarray) -> np.ndarray:
        """64-bit hashes of each run of ``shingle`` consecutive words (the whole text if shorter)."""
        n = len(token_hashes)
        k = min(self.shingle, n)
        if n == 0:
            return token_hashes
        with np.errstate(over="ignore"):
            acc = np.zeros(n - k + 1, dtype=np.uint64)
            for j in range(k):
                acc = acc + token_hashes[j : n - k + 1 + j] * self._pos[j]
            # Repeated shingles stay: they cannot change a minimum, and sorting them out costs more.
            return mix64(acc + _U64(k))

    def signature_of_hashes(self, shingles: np.ndarray) -> np.ndarray | None:
        """The signature (``num_perm`` uint16 slots) of a set of shingle hashes; None when empty."""
        if len(shingles) == 0:
            return None
        scratch = getattr(self._scratch, "buf", None)
        if scratch is None:
            scratch = self._scratch.buf = np.empty((CHUNK, self.num_perm), dtype=np.uint64)
        mins = np.full(self.num_perm, _MASK64, dtype=np.uint64)
        with np.errstate(over="ignore"):
            for start in range(0, len(shingles), CHUNK):
                block = shingles[start : start + CHUNK]
                out = scratch[: len(block)]
                np.multiply(block[:, None], self._a[None, :], out=out)
                out += self._b
                np.minimum(mins, out.min(axis=0), out=mins)
            # Keep 16 bits that depend on the whole minimum (its low bits alone are a weak hash).
            return (mix64(mins) >> _U64(48)).astype("<u2")

    def signature(self, text: str | Iterable[str]) -> np.ndarray | None:
        """The signature of a body (a string, or its paragraphs); None when it has no words."""
        if not isinstance(text, str):
            text = "\n".join(text)
        return self.signature_of_tokens(text_tokens(text))

    def signature_of_tokens(self, words: Sequence[str]) -> np.ndarray | None:
        """The signature of normalized words (``textnorm.tokens``); None when there are none."""
        return self.signature_of_hashes(self.shingle_hashes(self.token_hashes(words)))

    def shingle_set(self, text: str | Iterable[str]) -> set[int]:
        """The exact shingle-hash set (for measuring true Jaccard in tests and benchmarks)."""
        if not isinstance(text, str):
            text = "\n".join(text)
        return set(self.shingle_hashes(self.token_hashes(text_tokens(text))).tolist())


def estimate_similarity(a: np.ndarray, b: np.ndarray) -> float:
    """Estimated Jaccard similarity: the share of slots on which two signatures agree."""
    if a.shape != b.shape:
        raise ValueError("signatures of different lengths cannot be compared")
    return float(np.count_nonzero(a == b)) / len(a)


def jaccard(a: set[int], b: set[int]) -> float:
    if not a and not b:
        return 1.0
    return len(a & b) / len(a | b)
