"""Container health probe: exit 0 when the URL answers 2xx within a few seconds.

The slim base image has no curl, so the probe is plain Python from the standard library. The URL comes from the
first argument, else from KENCANA_HEALTHCHECK_URL (set per image target to the API's /healthz), so relay and
consumer containers of the same image can point it at their metrics port instead.
"""

from __future__ import annotations

import os
import sys
import urllib.request


def main() -> int:
    url = sys.argv[1] if len(sys.argv) > 1 else os.environ.get("KENCANA_HEALTHCHECK_URL", "")
    if not url.startswith("http://127.0.0.1:"):
        # Only ever probe this container itself; anything else is a configuration mistake.
        print(f"healthcheck: refusing URL {url!r}", file=sys.stderr)
        return 2
    try:
        with urllib.request.urlopen(url, timeout=4) as response:  # noqa: S310 - scheme checked above
            return 0 if 200 <= response.status < 300 else 1
    except Exception as exc:
        print(f"healthcheck: {url}: {exc}", file=sys.stderr)
        return 1


if __name__ == "__main__":
    sys.exit(main())
