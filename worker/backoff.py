"""How long a job waits before its next attempt: one formula for every retry."""

from __future__ import annotations

import random


def retry_delay(attempt: int, retry_after: float | None, *, base: float, cap: float) -> float:
    """Seconds before retry number ``attempt`` (1 for the first retry), never above ``cap``.

    The server's Retry-After wins when it gave one (a little later, never earlier, so clients told
    the same moment don't all return at once); otherwise exponential backoff with jitter: a
    random point in the upper half of ``base * 2**(attempt-1)``.
    """
    if retry_after is not None:
        delay = retry_after + random.uniform(0, min(1.0, 0.1 * retry_after))
    else:
        ceiling = base * 2.0 ** max(0, attempt - 1)
        delay = random.uniform(ceiling / 2, ceiling)
    return min(max(delay, 0.0), cap)
