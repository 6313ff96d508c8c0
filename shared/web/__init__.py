"""The web kit: app factory, problem+json errors, middleware, pagination, idempotency, health."""
