"""pytest plugin and helpers for tests against the real PostgreSQL and the real Kafka broker."""
