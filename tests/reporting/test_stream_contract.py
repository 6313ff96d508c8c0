"""The public stream documents (docs/streams) must equal what the public contract generates."""

from __future__ import annotations

import json

import yaml
from reporting.streams.asyncapi import build_documents, drift
from reporting.streams.contract import PUBLIC_TYPES


def test_public_stream_documents_do_not_drift() -> None:
    problems = drift()
    assert not problems, f"run `kencana events generate`; drifted: {problems}"


def test_public_schemas_name_no_internal_or_identifying_field() -> None:
    files = build_documents()
    document = yaml.safe_load(files["asyncapi.yaml"])
    assert document["channels"]["public_stream"]["address"] == "kencana.public.{consumer}.v1"
    for public in PUBLIC_TYPES:
        schema = json.loads(files[f"schemas/{public.type}.json"])
        names = set(schema["properties"])
        assert not names & {
            "person_id",
            "birth_date",
            "rt",
            "rw",
            "nik",
            "name",
            "village_code",
            "lila_cm",
            "hb_g_dl",
        }
        assert set(schema["required"]) == set(public.core)
