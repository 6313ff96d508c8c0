"""`make bench-scale`: generate the province file, rehearse its import, write the figures.

.venv/bin/python -m bench.scale                      # 1,000,000 families (about an hour on 2 cores)
.venv/bin/python -m bench.scale --families 2000      # a small run while developing
.venv/bin/python -m bench.scale --generate-only      # just the file (path printed)
"""

from __future__ import annotations

import argparse
import asyncio
import json
import logging
import platform
import signal
import sys
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from kencana_cli.demo.plan import today

from bench.scale import report
from bench.scale.generate import DEFAULT_PROVINCE, FileFigures, generate, importer_has_kb
from shared.config import state_dir

RESULTS = Path(__file__).resolve().parents[1] / "scale_results.json"


def parse_args(argv: list[str]) -> argparse.Namespace:
    p = argparse.ArgumentParser(prog="python -m bench.scale", description=__doc__.splitlines()[0])
    p.add_argument("--families", type=int, default=1_000_000, help="families in the file (default 1,000,000)")
    p.add_argument("--seed", type=int, default=20261201)
    p.add_argument(
        "--province", default=DEFAULT_PROVINCE, help="Kemendagri province code (default 15, Jambi)"
    )
    kb = p.add_mutually_exclusive_group()
    kb.add_argument(
        "--with-kb",
        dest="with_kb",
        action="store_true",
        default=None,
        help="KB status and pregnancy columns (default: when the importer has kb_method)",
    )
    kb.add_argument("--no-kb", dest="with_kb", action="store_false")  # fmt: skip
    p.add_argument("--part-mb", type=int, default=50, help="upload size: the file goes in parts of this size")
    p.add_argument("--partitions", type=int, default=6, help="partitions per topic")
    p.add_argument("--deadline-minutes", type=float, default=120, help="give up waiting after this long")
    p.add_argument("--sample-seconds", type=float, default=3.0)
    p.add_argument("--generate-only", action="store_true", help="write the file and stop")
    p.add_argument("--regenerate", action="store_true", help="write the file even when this month's exists")
    p.add_argument("--keep", action="store_true", help="keep the databases and topics afterwards")
    p.add_argument("--no-docs", action="store_true", help="do not rewrite the figures in docs/scale.md")
    return p.parse_args(argv)


def main(argv: list[str]) -> int:
    args = parse_args(argv)
    # SIGTERM ends the run like Ctrl-C: the rehearsal's cleanup stops every process it started.
    signal.signal(signal.SIGTERM, signal.default_int_handler)
    logging.getLogger("httpx").setLevel(logging.WARNING)
    logging.getLogger("aiokafka").setLevel(logging.ERROR)
    from bench.scale.rehearsal import Settings, rehearse

    work = state_dir() / "scale"
    with_kb = importer_has_kb() if args.with_kb is None else args.with_kb
    # Same seed and month, same file (birth dates are anchored on the month): a second run reuses it.
    name = f"pk-{args.province}-{args.families}-{args.seed}-{today():%Y%m}{'-kb' if with_kb else ''}"
    path, sidecar = work / f"{name}.csv", work / f"{name}.json"
    if path.exists() and sidecar.exists() and not args.regenerate:
        file = FileFigures(**json.loads(sidecar.read_text()))
        print(f"[scale] reusing {path} (generated in {file.seconds:.0f} s; --regenerate to redo)", flush=True)
    else:
        print(
            f"[scale] generating {args.families:,} families of province {args.province} into {path}",
            flush=True,
        )
        file = generate(path, families=args.families, seed=args.seed, province=args.province, with_kb=with_kb)
        sidecar.write_text(json.dumps(file.as_dict()))
    print(
        f"[scale] file: {file.families:,} families, {file.persons:,} persons, {file.bytes / 1e6:,.0f} MB "
        f"in {file.seconds:.0f} s",
        flush=True,
    )
    if args.generate_only:
        return 0
    settings = Settings(
        file=path,
        work_dir=work,
        part_bytes=args.part_mb * 1024 * 1024,
        partitions=args.partitions,
        deadline_seconds=args.deadline_minutes * 60,
        sample_seconds=args.sample_seconds,
        keep=args.keep,
    )
    started = time.monotonic()
    run = asyncio.run(rehearse(settings))
    results: dict[str, Any] = {
        "measured_at": datetime.now(UTC).isoformat(timespec="seconds"),
        "machine": {"cpus": _cpus(), "python": platform.python_version()},
        "file": file.as_dict(),
        **run,
    }
    results["stages_seconds"] = {"generate": file.seconds, **run["stages_seconds"]}
    results["rehearsal_seconds"] = round(time.monotonic() - started, 1)
    RESULTS.write_text(json.dumps(results, indent=2) + "\n")
    print(f"[scale] written {RESULTS}")
    print(report.summary(results), flush=True)
    if not args.no_docs:
        print(f"[scale] written {report.write_docs(results)}")
    return 0 if results.get("caught_up") else 1


def _cpus() -> int:
    import os

    return len(os.sched_getaffinity(0))


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
