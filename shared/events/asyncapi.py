"""Generates the AsyncAPI 3 document and one JSON Schema per event type from the code."""

from __future__ import annotations

import importlib
import json
from pathlib import Path
from typing import Any

import yaml

from shared.config import REPO_ROOT
from shared.events.envelope import (
    CONTENT_TYPE,
    PRODUCERS,
    CloudEvent,
    EventData,
    deprecated_fields,
    event_types,
)

DOCS_DIR = REPO_ROOT / "docs" / "events"


def _schema_name(event_type: str) -> str:
    return event_type.replace(".", "_")


def event_schema(model: type[EventData]) -> dict[str, Any]:
    """JSON Schema of one event's data."""
    schema = model.model_json_schema(mode="serialization", ref_template="#/$defs/{model}")
    schema["$id"] = f"urn:kencana:event:{model.event_type}"
    schema["title"] = model.event_type
    schema["description"] = (model.__doc__ or "").strip()
    return schema


def build_documents() -> dict[str, str]:
    """Relative path -> file content for everything under docs/events."""
    types = event_types()
    files: dict[str, str] = {}
    channels: dict[str, Any] = {}
    operations: dict[str, Any] = {}
    messages: dict[str, Any] = {}
    schemas: dict[str, Any] = {"CloudEventEnvelope": CloudEvent.model_json_schema()}
    by_topic: dict[str, list[str]] = {}
    for event_type, model in types.items():
        name = _schema_name(event_type)
        schema = event_schema(model)
        files[f"schemas/{event_type}.json"] = json.dumps(schema, indent=2, sort_keys=True) + "\n"
        schemas[name] = {"$ref": f"schemas/{event_type}.json"}
        messages[name] = {
            "name": event_type,
            "title": event_type,
            "summary": (model.__doc__ or "").strip().splitlines()[0] if model.__doc__ else event_type,
            "contentType": CONTENT_TYPE,
            "headers": {
                "type": "object",
                "properties": {
                    "content-type": {"const": CONTENT_TYPE},
                    "ce_type": {
                        "const": event_type,
                        "description": "The event type, so a consumer can skip a record without parsing it",
                    },
                },
            },
            "bindings": {
                "kafka": {
                    "key": {
                        "type": "string",
                        "format": "uuid",
                        "description": f"The record key: the payload's `{model.key_aggregate()}` (also the "
                        "envelope's `partitionkey`). Events of one key arrive in order; none across keys.",
                    },
                    "bindingVersion": "0.5.0",
                }
            },
            "payload": {
                "allOf": [
                    {"$ref": "#/components/schemas/CloudEventEnvelope"},
                    {
                        "type": "object",
                        "properties": {
                            "type": {"const": event_type},
                            "data": {"$ref": f"#/components/schemas/{name}"},
                        },
                    },
                ]
            },
        }
        by_topic.setdefault(model.topic(), []).append(name)
    for topic, names in sorted(by_topic.items()):
        channel_id = topic.replace(".", "_")
        channels[channel_id] = {
            "address": topic,
            "description": f"Events published by the {topic.split('.')[1]} service; the record key is each "
            "message's aggregate (see the message's Kafka binding).",
            "bindings": {"kafka": {"topic": topic, "partitions": 6, "bindingVersion": "0.5.0"}},
            "messages": {n: {"$ref": f"#/components/messages/{n}"} for n in names},
        }
        operations[f"publish_{channel_id}"] = {
            "action": "send",
            "channel": {"$ref": f"#/channels/{channel_id}"},
            "messages": [{"$ref": f"#/channels/{channel_id}/messages/{n}"} for n in names],
        }
    document = {
        "asyncapi": "3.0.0",
        "info": {
            "title": "Kencana domain events",
            "version": "1.0.0",
            "description": (
                "Domain events of the Kencana services, as CloudEvents 1.0 in structured mode on Apache Kafka. "
                "Payloads carry Kencana ids, region codes, ages, categories and flags: never NIK, KK numbers or "
                "names. Generated from the code by `kencana events generate`; do not edit by hand."
            ),
        },
        "defaultContentType": CONTENT_TYPE,
        "servers": {"local": {"host": "127.0.0.1:9092", "protocol": "kafka"}},
        "channels": channels,
        "operations": operations,
        "components": {"messages": messages, "schemas": schemas},
    }
    files["asyncapi.yaml"] = yaml.safe_dump(document, sort_keys=False, allow_unicode=True, width=110)
    lines = ["# Event catalogue", "", "Generated from the code by `kencana events generate`.", ""]
    lines += [
        "Every record is a CloudEvents 1.0 envelope (structured mode) with the headers `content-type` and `ce_type`.",
        "The record **key** (and `partitionkey`) is the aggregate named below: events of one key arrive in the order",
        "they happened, and there is no order across keys. The envelope's `subject` is the resource the event is",
        "about (`<resource>/<id>`); `causationid` is the event a consumer was handling when it published this one, or",
        "the request that caused it (then equal to `correlationid`).",
        "",
    ]
    lines += ["| type | topic | key | subject | what happened |", "| --- | --- | --- | --- | --- |"]
    for event_type, model in types.items():
        summary = (model.__doc__ or "").strip().splitlines()[0] if model.__doc__ else ""
        subject = model.subject_of({f: "<id>" for f in model.model_fields})
        lines.append(
            f"| `{event_type}` | `{model.topic()}` | `{model.key_aggregate()}` | `{subject}` | {summary} |"
        )
    lines += [
        "",
        "Order per person is not guaranteed where a person's events travel under another key: DASHAT's enrolment",
        "and waitlist events are keyed by kitchen (a person moving between kitchens has events under two keys: order",
        "them by `time`), UPPKA's member events by group.",
    ]
    lines += _field_needs_sections(types)
    files["CATALOGUE.md"] = "\n".join(lines) + "\n"
    return files


def field_needs() -> dict[str, dict[str, str]]:
    """Per event type, per field, who in the project needs it: each producer module's `FIELD_NEEDS`."""
    event_types()
    needs: dict[str, dict[str, str]] = {}
    for producer in PRODUCERS:
        module = importlib.import_module(f"shared.events.{producer}")
        needs |= getattr(module, "FIELD_NEEDS", {})
    return needs


def _field_needs_sections(types: dict[str, type[EventData]]) -> list[str]:
    needs = field_needs()
    if not needs:
        return []
    lines = [
        "",
        "## Who needs each field",
        "",
        "Only what a consumer of this project needs travels on the internal topics (issue 12, item 7). A field no "
        "consumer needs is deprecated: kept in the v1 schema (outside consumers do not break) and published at "
        "its default. Nothing else leaves the project: see docs/security.md.",
    ]
    for event_type, per_field in needs.items():
        model = types[event_type]
        deprecated = deprecated_fields(model)
        lines += ["", f"### `{event_type}`", "", "| field | who needs it |", "| --- | --- |"]
        for name in model.model_fields:
            mark = " (deprecated)" if name in deprecated else ""
            lines.append(f"| `{name}`{mark} | {per_field.get(name, '**undocumented**')} |")
    return lines


def write_documents(target: Path = DOCS_DIR) -> list[Path]:
    """Write the generated documents, removing schemas of types that no longer exist."""
    files = build_documents()
    (target / "schemas").mkdir(parents=True, exist_ok=True)
    for stale in (target / "schemas").glob("*.json"):
        if f"schemas/{stale.name}" not in files:
            stale.unlink()
    written = []
    for rel, content in files.items():
        path = target / rel
        path.write_text(content, encoding="utf-8")
        written.append(path)
    return written


def drift(target: Path = DOCS_DIR) -> list[str]:
    """Files whose checked-in copy differs from what the code generates."""
    files = build_documents()
    problems = [
        rel
        for rel, content in files.items()
        if not (target / rel).is_file() or (target / rel).read_text(encoding="utf-8") != content
    ]
    existing = (
        {f"schemas/{p.name}" for p in (target / "schemas").glob("*.json")} if target.exists() else set()
    )
    problems += sorted(existing - set(files))
    return problems
