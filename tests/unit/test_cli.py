"""The `kencana` command line: tokens, offline z-scores, the event catalogue check."""

from __future__ import annotations

import csv
from pathlib import Path

import jwt
from kencana_cli.main import app
from typer.testing import CliRunner

runner = CliRunner()


def test_token_prints_a_signed_token_with_scopes_and_region() -> None:
    result = runner.invoke(
        app, ["token", "--scope", "registry:read uppka:read", "--region", "15.71", "--ttl", "60"]
    )
    assert result.exit_code == 0, result.output
    claims = jwt.decode(result.output.strip(), options={"verify_signature": False})
    assert claims["scope"] == "registry:read uppka:read"
    assert claims["region"] == "15.71"
    assert claims["exp"] - claims["iat"] == 60


def test_zscore_scores_a_survey_file(tmp_path: Path) -> None:
    source = tmp_path / "survey.csv"
    source.write_text(
        "sex,age_days,weight,lenhei,measure,oedema\n1,730,11.2,81.7,l,n\n2,365,8.9,74.0,l,n\n1,abc,3,50,l,n\n"
    )
    target = tmp_path / "scored.csv"
    result = runner.invoke(app, ["zscore", str(source), str(target)])
    assert result.exit_code == 0, result.output
    rows = list(csv.DictReader(target.open()))
    assert [r["zlen"] for r in rows] == ["-2.00", "0.00", ""]
    assert rows[2]["error"]
    assert "1" in result.output


def test_events_check_passes_on_the_checked_in_catalogue() -> None:
    result = runner.invoke(app, ["events", "check"])
    assert result.exit_code == 0, result.output
