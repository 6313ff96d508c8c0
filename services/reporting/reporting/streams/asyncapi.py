"""The public stream contract as documents: AsyncAPI 3 and one JSON Schema per public event type (docs/streams).

Generated from reporting/streams/contract.py by `kencana events generate`; a test fails on drift.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import yaml

from reporting.streams.contract import MAJOR, PUBLIC_TYPES, PublicType
from reporting.streams.domain import CONTENT_TYPE, SOURCE
from shared.config import REPO_ROOT
from shared.topics import PUBLIC_TOPIC_PREFIX

DOCS_DIR = REPO_ROOT / "docs" / "streams"

_AGE = {
    "age_months": {
        "type": "integer",
        "minimum": 0,
        "description": "Completed months (child) - profile age=months",
    },
    "age_years": {
        "type": "integer",
        "minimum": 0,
        "description": "Completed years (adult) - profile age=months",
    },
    "age_band": {
        "type": "string",
        "description": "Child: 0-5, 6-11, 12-23, 24-59, 60+ (months); adult: <20, 20-34, 35+ (years) - profile age=band",
    },
}


def data_schema(public: PublicType) -> dict[str, Any]:
    properties: dict[str, Any] = {}
    for f in public.fields:
        if f.kind == "age":
            properties.update(_AGE)
            continue
        properties[f.name] = {**f.schema, "description": f"{f.description} [{f.kind}]"}
    return {
        "$schema": "https://json-schema.org/draft/2020-12/schema",
        "$id": f"urn:kencana:public:{public.name}.v{MAJOR}",
        "title": public.type,
        "description": f"{public.description} Core fields always travel; the others only when the consumer's "
        "profile names them. Consumers must ignore fields they do not know (additive changes within v1).",
        "type": "object",
        "required": list(public.core),
        "properties": properties,
        "additionalProperties": True,
    }


ENVELOPE = {
    "type": "object",
    "required": ["specversion", "id", "source", "type", "subject", "time", "data"],
    "properties": {
        "specversion": {"const": "1.0"},
        "id": {
            "type": "string",
            "format": "uuid",
            "description": "Stable per event and consumer: deduplicate on it",
        },
        "source": {"const": SOURCE},
        "type": {"type": "string"},
        "subject": {"type": "string", "description": "Pseudonym of the person or family the event is about"},
        "time": {"type": "string", "format": "date-time"},
        "datacontenttype": {"const": "application/json"},
        "dataschema": {"type": "string"},
        "data": {"type": "object"},
    },
}


def build_documents() -> dict[str, str]:
    files: dict[str, str] = {}
    messages: dict[str, Any] = {}
    schemas: dict[str, Any] = {"PublicCloudEvent": ENVELOPE}
    for public in PUBLIC_TYPES:
        key = public.type.replace(".", "_")
        files[f"schemas/{public.type}.json"] = (
            json.dumps(data_schema(public), indent=2, sort_keys=True) + "\n"
        )
        schemas[key] = {"$ref": f"schemas/{public.type}.json"}
        messages[key] = {
            "name": public.type,
            "title": public.type,
            "summary": public.description,
            "contentType": CONTENT_TYPE,
            "headers": {"type": "object", "properties": {"content-type": {"const": CONTENT_TYPE}}},
            "payload": {
                "allOf": [
                    {"$ref": "#/components/schemas/PublicCloudEvent"},
                    {
                        "type": "object",
                        "properties": {
                            "type": {"const": public.type},
                            "data": {"$ref": f"#/components/schemas/{key}"},
                        },
                    },
                ]
            },
        }
    channel = {
        "address": f"{PUBLIC_TOPIC_PREFIX}{{consumer}}.v{MAJOR}",
        "description": "One topic per registered consumer, carrying the types and fields of its profile only; "
        "Kafka key = CloudEvents subject (per-subject order). The same events are POSTed to the consumer's "
        "webhooks (CloudEvents HTTP binding, structured mode, Standard Webhooks signatures).",
        "parameters": {"consumer": {"description": "The consumer's registered name, e.g. kemenkes-eppgbm"}},
        "messages": {k: {"$ref": f"#/components/messages/{k}"} for k in messages},
    }
    document = {
        "asyncapi": "3.0.0",
        "info": {
            "title": "Kencana public streams for other ministries",
            "version": f"{MAJOR}.0.0",
            "description": (
                "Curated events per consumer: pseudonymous ids (per consumer), region codes at the profile's level, "
                "ages in completed months/years or bands, clinical values only under a health legal basis; never "
                "NIK, KK numbers, names, birth dates, RT or RW, nor Kencana's internal ids. Version policy: within "
                f"v{MAJOR} changes are additive only; a breaking change is a new major version on new topics. "
                "Generated by `kencana events generate` from reporting/streams/contract.py; do not edit by hand."
            ),
        },
        "defaultContentType": CONTENT_TYPE,
        "servers": {"local": {"host": "127.0.0.1:9092", "protocol": "kafka"}},
        "channels": {"public_stream": channel},
        "operations": {
            "receive_public_stream": {
                "action": "receive",
                "channel": {"$ref": "#/channels/public_stream"},
                "messages": [{"$ref": f"#/channels/public_stream/messages/{k}"} for k in messages],
            }
        },
        "components": {"messages": messages, "schemas": schemas},
    }
    files["asyncapi.yaml"] = yaml.safe_dump(document, sort_keys=False, allow_unicode=True, width=110)
    lines = [
        "# Public stream catalogue (v1)",
        "",
        "Generated from `reporting/streams/contract.py` by `kencana events generate`. Field kinds: `pseudonym` (the "
        "consumer's own pseudonym of a Kencana id), `region` (at the profile's level), `age` (completed months/years "
        "or band), `clinical` (only under a health legal basis), `plain`. **Core** fields always travel.",
        "",
    ]
    for public in PUBLIC_TYPES:
        lines += [
            f"## `{public.type}`",
            "",
            f"{public.description} From `{public.source}`; subject `{public.subject}`.",
            "",
        ]
        lines += ["| field | kind | core | meaning |", "| --- | --- | --- | --- |"]
        for f in public.fields:
            lines.append(
                f"| `{f.name}` | {f.kind} | {'yes' if f.name in public.core else ''} | {f.description} |"
            )
        lines.append("")
    files["CATALOGUE.md"] = "\n".join(lines)
    return files


def write_documents(target: Path = DOCS_DIR) -> list[Path]:
    files = build_documents()
    (target / "schemas").mkdir(parents=True, exist_ok=True)
    for stale in (target / "schemas").glob("*.json"):
        if f"schemas/{stale.name}" not in files:
            stale.unlink()
    written = []
    for rel, content in files.items():
        (target / rel).write_text(content, encoding="utf-8")
        written.append(target / rel)
    return written


def drift(target: Path = DOCS_DIR) -> list[str]:
    files = build_documents()
    problems = [
        r
        for r, c in files.items()
        if not (target / r).is_file() or (target / r).read_text(encoding="utf-8") != c
    ]
    existing = (
        {f"schemas/{p.name}" for p in (target / "schemas").glob("*.json")} if target.exists() else set()
    )
    return problems + sorted(existing - set(files))
