"""``python -m worker.web``: serve the web app on GLEANER_WEB_HOST:GLEANER_WEB_PORT."""

from __future__ import annotations

import logging
import sys

from worker.web.auth import UnsafeBindError
from worker.web.serve import serve


def main() -> int:
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    try:
        serve()
    except UnsafeBindError as exc:
        print(f"gleaner web: {exc}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
