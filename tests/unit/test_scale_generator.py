"""The scale rehearsal's file generator and uploader: unique numbers, exact counts, families never split."""

from __future__ import annotations

import csv
import random
from datetime import date
from pathlib import Path

from bench.scale import report
from bench.scale.generate import DistrictSerials, families_per_village, generate
from bench.scale.rehearsal import parts


def test_village_sizes_sum_to_the_families_asked_for() -> None:
    counts = families_per_village(random.Random(1), 1585, 1_000_003)
    assert sum(counts) == 1_000_003 and len(counts) == 1585
    assert max(counts) > 2 * min(counts)  # uneven, as real villages are


def test_serials_count_per_district_birth_date_and_sex() -> None:
    s = DistrictSerials()
    day = date(1990, 1, 1)
    assert [s.next_nik("15.71.01", day, "L") for _ in range(3)] == [1, 2, 3]
    assert s.next_nik("15.71.01", day, "P") == 1
    assert s.next_kk("15.71.01", day) == 1
    assert s.next_nik("15.71.02", day, "L") == 1  # a new district starts again


def test_file_is_deterministic_unique_and_uploaded_in_whole_families(tmp_path: Path) -> None:
    a = generate(tmp_path / "a.csv", families=300, seed=3, province="15", progress_every=0)
    generate(tmp_path / "b.csv", families=300, seed=3, province="15", progress_every=0)
    assert (tmp_path / "a.csv").read_bytes() == (tmp_path / "b.csv").read_bytes()
    with (tmp_path / "a.csv").open(newline="") as fh:
        rows = list(csv.DictReader(fh))
    assert len(rows) == a.persons and len({r["kk_number"] for r in rows}) == 300
    niks = [r["nik"] for r in rows if r["nik"]]
    assert len(niks) == len(set(niks)) == a.persons - a.persons_without_nik
    assert all(r["village_code"].startswith("15.") for r in rows)

    uploads = list(parts(tmp_path / "a.csv", max_bytes=8_000))
    assert len(uploads) > 3
    header = (tmp_path / "a.csv").read_bytes().split(b"\n", 1)[0] + b"\n"
    seen: set[bytes] = set()
    total = 0
    for body in uploads:
        assert body.startswith(header)
        kks = {line.split(b",", 1)[0] for line in body[len(header) :].splitlines()}
        assert not kks & seen  # a family is never cut across two uploads
        seen |= kks
        total += body.count(b"\n") - 1
    assert total == a.persons and len(seen) == 300


def test_docs_section_is_replaced_and_the_plan_around_it_kept(tmp_path: Path) -> None:
    docs = tmp_path / "scale.md"
    docs.write_text(
        f"# plan\n\nbefore\n\n{report.BEGIN}\nold figures\n{report.END}\n\nafter: the national plan\n"
    )
    results = {
        "measured_at": "2026-12-01T15:00:00+00:00",
        "machine": {"cpus": 2, "python": "3.11"},
        "caught_up": True,
        "partitions": 6,
        "file": {"province": "15", "families": 1000, "persons": 3700, "villages": 500, "districts": 100,
                 "baduta_measured": 220, "kb_statuses": 900, "pregnancies": 80, "with_kb": True,
                 "bytes": 400_000, "seed": 1},
        "import": {"parts": 1},
        "stages_seconds": {"generate": 1.0, "upload": 0.5, "import_job": 10.0, "all_caught_up": 60.0},
        "consumers": {"reporting": {"events": 6000, "active_seconds": 50.0, "events_per_s": 120,
                                    "peak_events_per_s": 200}},
        "peak_rss_mb": {"reporting-consumer": 150},
        "cpu_seconds": {"reporting-consumer": 30.0},
        "events_per_topic": {"kencana.registry": 5600, "kencana.dashat": 400, "kencana.uppka": 0},
        "dead_letters": {"reporting": 0},
        "databases": {"registry": {"database_mb": 60, "data_mb": 40.0, "largest_tables": {"person": {"rows": 3700, "mb": 9.0}},
                                   "events_by_type": {"registry.person.registered.v1": {"count": 3700, "avg_bytes": 700}}}},
    }  # fmt: skip
    report.write_docs(results, docs)
    text = docs.read_text()
    assert text.startswith("# plan\n\nbefore\n\n") and text.endswith("\n\nafter: the national plan\n")
    assert "old figures" not in text and "| reporting | 6,000 | 50.0 | 120 | 200 | 5.0 |" in text
    # 6,000 events per 1,000 families scaled to 68 M families; 40 MB per 1,000 families -> 2,720 GB.
    assert "408 M (381 M on kencana.registry)" in text and "| 2,720 GB |" in text
    report.write_docs(results, docs)
    assert docs.read_text() == text  # a second run replaces, never appends
