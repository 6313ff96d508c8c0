"""CloudEvents 1.0 structured-mode envelope and the registry of versioned event types."""

from __future__ import annotations

import functools
import importlib
import json
import uuid
from datetime import datetime
from typing import Any, ClassVar

from pydantic import BaseModel, ConfigDict, Field

from shared.db import utcnow

CONTENT_TYPE = "application/cloudevents+json"
# Producing services whose contracts live in shared/events/<service>.py.
PRODUCERS = ("registry", "uppka", "dashat")
PRODUCER_KEYS = {"registry": "family_id", "uppka": "group_id", "dashat": "kitchen_id"}

_EVENT_TYPES: dict[str, type[EventData]] = {}


@functools.cache
def _subject_field(model: type[EventData]) -> str | None:
    # Once per type: a bulk import asks for every event's subject, and the scan of the fields cost 3-4 % of its CPU.
    return model.subject_field or next((f for f in model.model_fields if f.endswith("_id")), None)


class EventData(BaseModel):
    """Base of every event payload.

    Subclasses set `event_type` (`<service>.<aggregate>.<past_tense>.v<N>`) and a one-line docstring that the
    catalogue shows. Within a version only additive changes are allowed, so consumers ignore unknown fields.
    """

    model_config = ConfigDict(extra="ignore", frozen=True)

    event_type: ClassVar[str] = ""
    # The envelope's `subject`: the resource the event is about, written `<resource>/<id>` from this field. By
    # default the first `*_id` field (the measurement of `child.measured`, the case of `stunting_detected`); an
    # event about a thing inside an aggregate names it (a member of a group: `member_id`).
    subject_field: ClassVar[str | None] = None
    # The Kafka record key (and `partitionkey`): the aggregate whose events must stay in order. Each producer keys
    # by its main aggregate (registry: the family, uppka: the group, DASHAT: the kitchen); an event keyed otherwise
    # says so. Events of one key arrive in order; there is no order across keys.
    key_field: ClassVar[str | None] = None

    @classmethod
    def key_aggregate(cls) -> str:
        """The payload field whose value is the record key."""
        return cls.key_field or PRODUCER_KEYS[cls.producer()]

    @classmethod
    def subject_of(cls, values: Any) -> str | None:
        """`<resource>/<id>` of the event's subject, from the payload (a model or a mapping of its fields)."""
        field = _subject_field(cls)
        if field is None:
            return None
        value = values.get(field) if isinstance(values, dict) else getattr(values, field, None)
        return None if value is None else f"{field.removesuffix('_id')}/{value}"

    def __init_subclass__(cls, **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        event_type = cls.__dict__.get("event_type")
        if event_type:
            if event_type in _EVENT_TYPES and _EVENT_TYPES[event_type].__qualname__ != cls.__qualname__:
                raise TypeError(f"event type {event_type} defined twice")
            _EVENT_TYPES[event_type] = cls

    @classmethod
    def producer(cls) -> str:
        """The service that owns (publishes) this event type."""
        return cls.event_type.split(".", 1)[0]

    @classmethod
    def topic(cls) -> str:
        """The logical topic this event travels on."""
        return f"kencana.{cls.producer()}"


class CloudEvent(BaseModel):
    """The envelope: the whole Kafka record value (structured content mode)."""

    model_config = ConfigDict(extra="allow")

    specversion: str = "1.0"
    id: str = Field(description="Outbox row id; the consumers' idempotency key")
    source: str = Field(description="URI-reference of the producing service, e.g. /kencana/registry")
    type: str
    subject: str | None = None
    time: datetime
    datacontenttype: str = "application/json"
    dataschema: str | None = None
    partitionkey: str = Field(description="The Kafka key: the aggregate id")
    correlationid: str | None = None
    causationid: str | None = None
    data: dict[str, Any]


def build_envelope(
    data: EventData,
    *,
    key: str,
    subject: str | None = None,
    correlation_id: str | None = None,
    causation_id: str | None = None,
    event_id: uuid.UUID | None = None,
    time: datetime | None = None,
) -> CloudEvent:
    """Wrap a payload in its envelope."""
    if not data.event_type:
        raise TypeError(f"{type(data).__name__} has no event_type")
    return CloudEvent(
        id=str(event_id or uuid.uuid4()),
        source=f"/kencana/{data.producer()}",
        type=data.event_type,
        subject=subject or data.subject_of(data),
        time=time or utcnow(),
        dataschema=f"urn:kencana:event:{data.event_type}",
        partitionkey=key,
        correlationid=correlation_id,
        # What caused it: the event a consumer was handling, else the request (its id is the correlation id).
        causationid=causation_id or correlation_id,
        data=published_payload(data),
    )


def deprecated_field(default: Any = None, *, description: str) -> Any:
    """A field kept in a v1 schema for outside consumers but no longer filled (issue 12, item 7).

    Removing a field from a v1 event breaks outside consumers, and no field removed so far was required,
    so the project's one way is: keep it in the schema with its default, mark it `deprecated` in the JSON
    Schema, and publish it at that default whatever the producer set (`published_payload`). Events already in
    the topics still carry the old values and are still read.
    """
    return Field(
        default=default,
        description=f"Deprecated: no longer filled, always {json.dumps(default)}. {description}",
        json_schema_extra={"deprecated": True},
    )


def deprecated_fields(model: type[EventData]) -> dict[str, Any]:
    """The fields of an event type that are published at their default only, with that default."""
    return {
        name: info.default
        for name, info in model.model_fields.items()
        if isinstance(info.json_schema_extra, dict) and info.json_schema_extra.get("deprecated") is True
    }


def published_payload(data: EventData) -> dict[str, Any]:
    """The payload as it travels: deprecated fields at their default, whatever the producer set."""
    payload = data.model_dump(mode="json")
    for name, default in deprecated_fields(type(data)).items():
        payload[name] = default
    return payload


def _import_contracts() -> None:
    for producer in PRODUCERS:
        try:
            importlib.import_module(f"shared.events.{producer}")
        except ModuleNotFoundError as exc:  # a producer without contracts yet
            if exc.name != f"shared.events.{producer}":
                raise


def event_types() -> dict[str, type[EventData]]:
    """Every published event type of the Kencana services (the catalogue), by type name."""
    _import_contracts()
    return {t: m for t, m in sorted(_EVENT_TYPES.items()) if m.producer() in PRODUCERS}


def parse_data(event: CloudEvent) -> EventData | None:
    """The typed payload of an envelope, or None when the type is unknown to this build."""
    if event.type not in _EVENT_TYPES:
        _import_contracts()
    model = _EVENT_TYPES.get(event.type)
    if model is None:
        return None
    return model.model_validate(event.data)
