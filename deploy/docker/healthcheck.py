"""Container health probe: exit 0 when the URL answers 2xx within a few seconds.

The slim base image has no curl, so the probe is plain Python from the standard library; and only its cheapest
part: a raw HTTP/1.0 request over a socket. `urllib.request` (ssl, email, http.client) made each probe take 3.5 s
longer on the loaded 2-core development machine (docker exec alone took 2.7 s there), past the 5 s timeout of
the health checks, so healthy containers were reported unhealthy. The URL comes from the first argument, else
from KENCANA_HEALTHCHECK_URL (set per image target to the API's /healthz), so relay and consumer containers of the
same image can point it at their metrics port instead.
"""

from __future__ import annotations

import os
import socket
import sys

LOCAL = "http://127.0.0.1:"
# Below the health checks' own timeout (5 s); docker-compose.host.yml raises both on a shared, loaded host.
TIMEOUT_SECONDS = float(os.environ.get("KENCANA_HEALTHCHECK_TIMEOUT", "4"))


def status_of(port: int, path: str) -> int:
    """HTTP status code of GET path on 127.0.0.1:port (0 when the answer is not HTTP)."""
    request = f"GET {path} HTTP/1.0\r\nHost: 127.0.0.1:{port}\r\nConnection: close\r\n\r\n"
    with socket.create_connection(("127.0.0.1", port), timeout=TIMEOUT_SECONDS) as conn:
        conn.sendall(request.encode("ascii"))
        head = b""
        while b"\r\n" not in head and len(head) < 1024:
            chunk = conn.recv(1024)
            if not chunk:
                break
            head += chunk
    parts = head.split(b"\r\n", 1)[0].split()
    if len(parts) < 2 or not parts[0].startswith(b"HTTP/") or not parts[1].isdigit():
        return 0
    return int(parts[1])


def main() -> int:
    url = sys.argv[1] if len(sys.argv) > 1 else os.environ.get("KENCANA_HEALTHCHECK_URL", "")
    port_text, _, path = url[len(LOCAL) :].partition("/")
    if not url.startswith(LOCAL) or not port_text.isdigit():
        # Only ever probe this container itself; anything else is a configuration mistake.
        print(f"healthcheck: refusing URL {url!r}", file=sys.stderr)
        return 2
    try:
        status = status_of(int(port_text), "/" + path)
    except OSError as exc:
        print(f"healthcheck: {url}: {exc}", file=sys.stderr)
        return 1
    if 200 <= status < 300:
        return 0
    print(f"healthcheck: {url}: HTTP {status}", file=sys.stderr)
    return 1


if __name__ == "__main__":
    sys.exit(main())
