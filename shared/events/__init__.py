"""Event contracts between services: the CloudEvents envelope and the versioned data models."""

from shared.events.envelope import CloudEvent, EventData, build_envelope, event_types, parse_data

__all__ = ["CloudEvent", "EventData", "build_envelope", "event_types", "parse_data"]
