"""Base classes of API models."""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict


class ApiInput(BaseModel):
    """Request bodies: unknown fields are an error (422 naming the field), never silently dropped."""

    model_config = ConfigDict(extra="forbid", str_strip_whitespace=True)


class ApiOutput(BaseModel):
    """Response bodies, built from ORM rows or dicts."""

    model_config = ConfigDict(from_attributes=True)
