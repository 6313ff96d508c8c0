"""Schemathesis against the four services as real processes (uvicorn on the real PostgreSQL), every scope.

`make test` runs a bounded pass (tests/openapi/test_fuzz.py); `make test-fuzz` a longer one
(`python -m tests.openapi.fuzz --long`). Both fail on any 5xx and any conformance failure (checks `all`), and
report how many requests were generated and what they were answered (counted from schemathesis' HAR report).
The long run of all four services writes its figures to docs/fuzz.md.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import re
import subprocess
import sys
import tempfile
import time
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import httpx

from shared.auth import issue_dev_token
from tests.e2e.stack import SERVICES, Stack

# Every scope any service checks: the fuzzer must reach past authorisation into every operation.
ALL_SCOPES = [
    "registry:read",
    "registry:write",
    "registry:import",
    "registry:pii:read",
    "registry:nik:search",
    "uppka:read",
    "uppka:write",
    "dashat:read",
    "dashat:write",
    "dashat:rules",
    "reporting:read",
    "reporting:public",
    "kencana:subject:export",
]
SEED = 20261201
DOCS = Path(__file__).resolve().parents[2] / "docs" / "fuzz.md"
CONFIG = Path(__file__).with_name("schemathesis.toml")
HOOKS = Path(__file__).with_name("hooks.py")


@dataclass(frozen=True)
class Budget:
    """How much schemathesis generates per service."""

    max_examples: int
    seconds_per_operation: float
    min_seconds: int = 30

    def max_time(self, spec: dict[str, Any]) -> int:
        """Schemathesis' time budget for one service: by its number of operations (registry has 53, reporting 7)."""
        operations = sum(1 for item in spec["paths"].values() for method in item if method in _METHODS)
        return max(self.min_seconds, int(self.seconds_per_operation * operations))

    phases: str = "examples,coverage,fuzzing,stateful"


_METHODS = ("get", "put", "post", "delete", "patch")
# At most about 2.5 minutes of schemathesis for the four services (145 s by their 132 operations), so `make test`
# grows by about 3 minutes with the services' start; a quiet machine usually reaches max_examples first.
BOUNDED = Budget(max_examples=8, seconds_per_operation=1.0, min_seconds=20)
LONG = Budget(max_examples=100, seconds_per_operation=10)


@dataclass(frozen=True)
class Exchange:
    """One request schemathesis sent and what came back (from the HAR report)."""

    method: str
    path: str
    status: int
    headers: frozenset[str]


@dataclass
class FuzzResult:
    service: str
    returncode: int
    output: str
    exchanges: list[Exchange] = field(default_factory=list)
    undeclared_etags: set[str] = field(default_factory=set)

    @property
    def statuses(self) -> Counter[int]:
        return Counter(e.status for e in self.exchanges)

    @property
    def requests(self) -> int:
        return sum(self.statuses.values())

    @property
    def server_errors(self) -> int:
        return sum(n for status, n in self.statuses.items() if status >= 500)

    def summary(self) -> str:
        by_class = Counter(f"{status // 100}xx" for status in self.statuses.elements())
        detail = ", ".join(f"{status}: {n}" for status, n in sorted(self.statuses.items()))
        return (
            f"{self.service}: {self.requests} requests ({', '.join(f'{k} {v}' for k, v in sorted(by_class.items()))})"
            f" [{detail}] exit {self.returncode}"
        )


def headers() -> list[str]:
    token = issue_dev_token(scopes=ALL_SCOPES, sub="fuzzer", ttl_seconds=6 * 3600)
    # X-Purpose: the registry:pii:read reads and NIK searches require it, and the fuzzer holds those scopes.
    return [f"Authorization: Bearer {token}", "X-Purpose: schemathesis run"]


def run_schemathesis(base_url: str, service: str, budget: Budget, report_dir: Path) -> FuzzResult:
    """One schemathesis run against one service; the HAR report gives every request and its status."""
    har = report_dir / f"{service}.har"
    spec = httpx.get(f"{base_url}/openapi.json", timeout=30).json()
    max_time = budget.max_time(spec)
    command = [
        str(Path(sys.executable).parent / "schemathesis"),
        "--config-file",
        str(CONFIG),
        "run",
        f"{base_url}/openapi.json",
        "--checks",
        "all",
        "--phases",
        budget.phases,
        "--max-examples",
        str(budget.max_examples),
        "--max-time",
        str(max_time),
        "--seed",
        str(SEED),
        "--generation-database",
        "none",
        "--workers",
        "1",
        "--request-timeout",
        "30",
        "--no-color",
        "--report",
        "har",
        "--report-har-path",
        str(har),
        # /readyz takes no input: its answer (200, or the documented 503 when Kafka does not answer within 3 s,
        # as on a loaded test machine) says how the environment is, not how the service treats a request.
        "--exclude-path",
        "/readyz",
    ]
    for header in headers():
        command += ["--header", header]
    run = subprocess.run(
        command,
        env={**os.environ, "SCHEMATHESIS_HOOKS": str(HOOKS)},
        cwd=report_dir,  # schemathesis keeps a .schemathesis folder where it runs
        capture_output=True,
        text=True,
        timeout=max_time * 4 + 300,
        check=False,
    )
    exchanges: list[Exchange] = []
    if har.exists():
        for entry in json.loads(har.read_text())["log"]["entries"]:
            request, response = entry["request"], entry["response"]
            exchanges.append(
                Exchange(
                    request["method"],
                    urlsplit(request["url"]).path,
                    int(response["status"]),
                    frozenset(h["name"].lower() for h in response["headers"]),
                )
            )
    return FuzzResult(service, run.returncode, run.stdout + run.stderr, exchanges)


def _template_regex(template: str) -> re.Pattern[str]:
    return re.compile("^" + re.sub(r"\\{[^/]+?\\}", "[^/]+", re.escape(template)) + "$")


def undeclared_etags(spec: dict[str, Any], exchanges: list[Exchange]) -> set[str]:
    """`METHOD template status` of every answer that carried an ETag its operation does not declare."""
    # Fixed paths first, as the router matches /v1/targets/summary before /v1/targets/{target_id}.
    templates = sorted(spec["paths"], key=lambda t: "{" in t)
    regexes = [(t, _template_regex(t)) for t in templates]
    missing: set[str] = set()
    for exchange in exchanges:
        if "etag" not in exchange.headers:
            continue
        template = next((t for t, rx in regexes if rx.match(exchange.path)), None)
        operation = spec["paths"].get(template or "", {}).get(exchange.method.lower(), {})
        declared = operation.get("responses", {}).get(str(exchange.status), {}).get("headers", {})
        if "ETag" not in declared:
            missing.add(f"{exchange.method} {template or exchange.path} {exchange.status}")
    return missing


async def start_apis(log_dir: Path, database_prefix: str) -> Stack:
    """The four APIs (no relays or consumers: the fuzzer only talks HTTP) on fresh migrated databases."""
    stack = Stack(log_dir=log_dir, database_prefix=database_prefix)
    await stack.prepare()
    try:
        for service in SERVICES:
            stack.start(service, "api")
        for service in SERVICES:
            await stack.wait_healthy(service)
    except BaseException:
        stack.stop_all()
        raise
    return stack


def fuzz_all(budget: Budget, report_dir: Path, services: tuple[str, ...] = SERVICES) -> list[FuzzResult]:
    """Start the APIs, fuzz each service in turn, stop them (whatever happens)."""
    # Databases of their own per budget: the bounded run of `make test` and a long run can go side by side.
    stack = asyncio.run(start_apis(report_dir, "fuzz" if budget is BOUNDED else "fuzzlong"))
    try:
        results = []
        for service in services:
            result = run_schemathesis(stack.base_url(service), service, budget, report_dir)
            spec = httpx.get(stack.base_url(service) + "/openapi.json", timeout=30).json()
            result.undeclared_etags = undeclared_etags(spec, result.exchanges)
            results.append(result)
        return results
    finally:
        stack.stop_all()


def failures(results: list[FuzzResult]) -> list[str]:
    """What makes a run fail: schemathesis' own verdict (any check of `all`), any 5xx, any undeclared ETag."""
    out = []
    for r in results:
        if r.returncode != 0:
            out.append(f"{r.service}: schemathesis failed (exit {r.returncode}):\n{r.output}")
        if r.server_errors:
            out.append(f"{r.service}: {r.server_errors} server errors")
        if r.undeclared_etags:
            out.append(f"{r.service}: ETag sent but not declared by {sorted(r.undeclared_etags)}")
    return out


def write_docs(results: list[FuzzResult], budget: Budget, seconds: float, problems: list[str]) -> None:
    """docs/fuzz.md: what the last long run sent each service and what came back."""
    rows = []
    for r in results:
        by_class = Counter(f"{status // 100}xx" for status in r.statuses.elements())
        detail = ", ".join(f"{status}: {n}" for status, n in sorted(r.statuses.items()))
        rows.append(
            f"| {r.service} | {r.requests:,} | {by_class.get('2xx', 0):,} | {by_class.get('4xx', 0):,} "
            f"| {r.server_errors} | {'passed' if r.returncode == 0 else 'FAILED'} | {detail} |"
        )
    total = sum(r.requests for r in results)
    DOCS.write_text(
        "# Fuzzing the four APIs (schemathesis)\n\n"
        "Written by `make test-fuzz` (tests/openapi/fuzz.py --long): schemathesis against the four services as "
        "processes on a real PostgreSQL, a token with every scope and `X-Purpose`, `--checks all`, phases "
        f"{budget.phases}, seed {SEED}, at most {budget.max_examples} examples and {budget.seconds_per_operation:g} s "
        "per operation. The bounded run of `make test` (tests/openapi/test_fuzz.py) is the same with "
        f"{BOUNDED.max_examples} examples and {BOUNDED.seconds_per_operation:g} s per operation. What schemathesis is "
        "told beyond the OpenAPI is in tests/openapi/schemathesis.toml and tests/openapi/hooks.py.\n\n"
        f"Last run: {time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime())}, {total:,} requests in {seconds:.0f} s, "
        f"{sum(r.server_errors for r in results)} server errors, "
        f"{'no failure' if not problems else f'{len(problems)} failing service(s)'}.\n\n"
        "| service | requests | 2xx | 4xx | 5xx | checks | answers |\n|---|---:|---:|---:|---:|---|---|\n"
        + "\n".join(rows)
        + "\n"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--long", action="store_true", help="the longer run of `make test-fuzz`")
    parser.add_argument("--service", action="append", choices=SERVICES)
    parser.add_argument("--report-dir", type=Path)
    args = parser.parse_args()
    report_dir = args.report_dir or Path(tempfile.mkdtemp(prefix="kencana-fuzz-"))
    report_dir.mkdir(parents=True, exist_ok=True)
    started = time.monotonic()
    results = fuzz_all(LONG if args.long else BOUNDED, report_dir, tuple(args.service or SERVICES))
    problems = failures(results)
    for problem in problems:
        print(problem)
    for result in results:
        print(result.summary())
    total = sum(r.requests for r in results)
    seconds = time.monotonic() - started
    print(f"total: {total} requests in {seconds:.0f} s; reports in {report_dir}")
    if args.long and not args.service:
        write_docs(results, LONG, seconds, problems)
    sys.exit(1 if problems else 0)


if __name__ == "__main__":
    main()
