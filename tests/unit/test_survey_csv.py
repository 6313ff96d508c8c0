"""score_csv: WHO Anthro survey columns in, z-scores, flags, classes and per-row errors out."""

from __future__ import annotations

import csv
from pathlib import Path

from registry.anthropometry.domain import score_one
from registry.anthropometry.survey import OUTPUT_COLUMNS, score_csv


def _run(tmp_path: Path, text: str) -> tuple[int, list[dict[str, str]], list[str]]:
    src = tmp_path / "in.csv"
    dst = tmp_path / "out.csv"
    src.write_text(text, encoding="utf-8")
    bad = score_csv(src, dst)
    with dst.open(newline="", encoding="utf-8") as f:
        reader = csv.DictReader(f)
        rows = list(reader)
        return bad, rows, list(reader.fieldnames or [])


def test_scores_and_keeps_input_columns(tmp_path: Path) -> None:
    bad, rows, columns = _run(
        tmp_path,
        "id,sex,age_days,weight,lenhei,measure,oedema\n"
        "a,1,730,10.2,81.7,l,n\n"
        "b,2,365,9.0,74.0,L,\n"
        "c,1,731,11.0,81.0,h,y\n",
    )
    assert bad == 0
    assert columns == ["id", "sex", "age_days", "weight", "lenhei", "measure", "oedema", *OUTPUT_COLUMNS]
    a, b, c = rows
    assert a["id"] == "a" and a["zlen"] == "-2.00" and a["flen"] == "0" and a["haz_class"] == "normal"
    expected = score_one(1, 730, 10.2, 81.7, "l")
    assert a["zwei"] == f"{expected.zwei:.2f}" and a["zwfl"] == f"{expected.zwfl:.2f}"
    assert a["error"] == ""
    assert b["zlen"] == "0.00"
    assert c["zlen"] == "-2.01" and c["haz_class"] == "stunted"
    assert c["zwei"] == "" and c["fwei"] == "" and c["zwfl"] == "" and c["whz_class"] == ""


def test_sex_codes_and_dates(tmp_path: Path) -> None:
    bad, rows, _ = _run(
        tmp_path,
        "sex,dob,date_of_measurement,weight,lenhei,measure\n"
        "L,2023-01-01,2025-01-01,12.0,86.0,h\n"
        "P,2024-01-01,2025-01-01,9.0,74.0,l\n"
        "m,2024-01-01,2025-01-01,9.0,74.0,l\n"
        "f,2024-01-01,2025-01-01,9.0,74.0,l\n",
    )
    assert bad == 0
    assert rows[0]["zlen"] == f"{score_one(1, 731, 12.0, 86.0, 'h').zlen:.2f}"
    assert rows[1]["zlen"] == rows[3]["zlen"] != rows[2]["zlen"]


def test_age_days_wins_over_dates(tmp_path: Path) -> None:
    _, rows, _ = _run(
        tmp_path,
        "sex,age_days,dob,date_of_measurement,weight\n1,400,2020-01-01,2025-01-01,9.5\n",
    )
    assert rows[0]["zwei"] == f"{score_one(1, 400, 9.5, None, None).zwei:.2f}"


def test_bad_rows_get_an_error_not_a_crash(tmp_path: Path) -> None:
    bad, rows, _ = _run(
        tmp_path,
        "sex,age_days,weight,lenhei,measure,oedema,dob,date_of_measurement\n"
        "x,400,9,75,l,n,,\n"
        "1,abc,9,75,l,n,,\n"
        "1,400,heavy,75,l,n,,\n"
        "1,400,9,75,s,n,,\n"
        "1,400,9,75,,n,,\n"
        "1,400,9,75,l,maybe,,\n"
        "1,,9,75,l,n,2024-02-30,2025-01-01\n"
        "1,400,9,inf,l,n,,\n"
        "1,400,9,75,l,n,,\n",
    )
    assert bad == 8
    for row in rows[:8]:
        assert row["error"] != ""
        assert all(row[c] == "" for c in OUTPUT_COLUMNS if c != "error")
    assert "sex" in rows[0]["error"]
    assert "age_days" in rows[1]["error"]
    assert "weight" in rows[2]["error"]
    assert "measure" in rows[3]["error"] and "measure" in rows[4]["error"]
    assert "oedema" in rows[5]["error"]
    assert "dob" in rows[6]["error"]
    assert rows[8]["error"] == "" and rows[8]["zlen"] != ""


def test_missing_values_are_not_errors(tmp_path: Path) -> None:
    bad, rows, _ = _run(tmp_path, "sex,age_days,weight,lenhei,measure\n2,500,,,\n2,,9.0,75.0,l\n")
    assert bad == 0
    assert [rows[0][c] for c in ("zlen", "zwei", "zwfl", "flen")] == ["", "", "", ""]
    assert rows[1]["zlen"] == "" and rows[1]["zwei"] == "" and rows[1]["zwfl"] != ""


def test_flags_and_out_of_window(tmp_path: Path) -> None:
    _, rows, _ = _run(
        tmp_path,
        "sex,age_days,weight,lenhei,measure\n1,300,20.0,70.0,l\n1,2000,15.0,100.0,h\n1,200,7.0,65.0,h\n",
    )
    assert rows[0]["fwfl"] == "1" and rows[0]["whz_class"] == ""
    assert rows[1]["zlen"] == "" and rows[1]["zwfl"] == "" and rows[1]["error"] == ""
    assert rows[2]["c9mo_flag"] == "1"


def test_semicolon_file_with_bom_and_decimal_comma(tmp_path: Path) -> None:
    bad, rows, _ = _run(tmp_path, "\ufeffsex;age_days;weight;lenhei;measure\n1;730;10,2;81,7;l\n")
    assert bad == 0
    assert rows[0]["zlen"] == "-2.00"


def test_empty_file_with_header(tmp_path: Path) -> None:
    bad, rows, columns = _run(tmp_path, "sex,age_days,weight,lenhei,measure\n")
    assert bad == 0 and rows == []
    assert columns[-1] == "error"
