"""The published event contract: a frozen JSON Schema per released event version, and what may change under it.

`docs/events/schemas/` is regenerated from the code (`kencana events generate`), so comparing the code with it
only proves the docs are current. What consumers hold us to is what was *published*: `docs/events/published/
<type>.json` (the type names its version, `registry.child.measured.v1`) is a copy of the schema taken when that
version was released (`kencana events publish`, which writes the types not yet published and never rewrites
one). Topics are kept forever and replayed, so an event version's schema may only grow (EVENTS.md, "additive
changes only within a version"): every event ever published under it must still be valid, and every field a
consumer reads must still be there. `breaking_changes` lists what breaks that; a breaking change needs a new
version (`.v2`) beside the old one.

What breaks: a field removed; a field newly required (new, or optional before); a required field made optional
(consumers read it unconditionally); a type, format or `const` changed, `null` added or removed; an enum value
removed (old events carry it); a bound tightened (`minimum`, `maxLength`, a new or changed `pattern`...).
What does not: a new optional field, a new enum value, a bound loosened, titles and descriptions.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from shared.events.asyncapi import DOCS_DIR, event_schema
from shared.events.envelope import event_types

__all__ = ["PUBLISHED_DIR", "breaking_changes", "contract_problems", "publish"]

PUBLISHED_DIR = DOCS_DIR / "published"

_LOWER_BOUNDS = ("minimum", "exclusiveMinimum", "minLength", "minItems")
_UPPER_BOUNDS = ("maximum", "exclusiveMaximum", "maxLength", "maxItems")

Schema = dict[str, Any]


def _resolve(schema: Schema, root: Schema) -> Schema:
    """Follow local `$ref`s (`#/$defs/Name`, as pydantic writes them) to the schema they name."""
    seen = 0
    while "$ref" in schema and seen < 32:
        ref: str = schema["$ref"]
        target: Any = root
        for part in ref.removeprefix("#/").split("/"):
            target = target[part]
        schema = {**target, **{k: v for k, v in schema.items() if k != "$ref"}}
        seen += 1
    return schema


def _kind(schema: Schema) -> str:
    """What a variant is: its JSON type, or `const`/`enum`/`any` when it states none."""
    if "type" in schema:
        kind = schema["type"]
        return kind if isinstance(kind, str) else "|".join(sorted(kind))
    if "const" in schema:
        return f"const:{json.dumps(schema['const'])}"
    if "enum" in schema:
        return "enum"
    if "properties" in schema:
        return "object"
    return "any"


def _variants(schema: Schema, root: Schema) -> dict[str, Schema]:
    """The alternatives of a schema (`anyOf`/`oneOf`, flattened), by kind."""
    schema = _resolve(schema, root)
    alternatives = schema.get("anyOf") or schema.get("oneOf")
    if not alternatives:
        return {_kind(schema): schema}
    out: dict[str, Schema] = {}
    for alternative in alternatives:
        out.update(_variants(alternative, root))
    return out


def _compare(old: Schema, new: Schema, path: str, old_root: Schema, new_root: Schema, out: list[str]) -> None:
    old_variants, new_variants = _variants(old, old_root), _variants(new, new_root)
    if set(old_variants) != set(new_variants):
        out.append(f"{path}: type changed from {sorted(old_variants)} to {sorted(new_variants)}")
        return
    for kind, before in old_variants.items():
        after = new_variants[kind]
        for key in ("format", "const"):
            if before.get(key) != after.get(key):
                out.append(f"{path}: {key} changed from {before.get(key)!r} to {after.get(key)!r}")
        if "enum" in before or "enum" in after:
            if "enum" not in before:
                out.append(f"{path}: values restricted to an enum")
            elif "enum" in after:
                removed = [v for v in before["enum"] if v not in after["enum"]]
                if removed:
                    out.append(f"{path}: enum value(s) removed: {removed}")
        if before.get("pattern") != after.get("pattern") and "pattern" in after:
            out.append(f"{path}: pattern changed to {after['pattern']!r}")
        for key in _LOWER_BOUNDS:
            if key in after and (key not in before or after[key] > before[key]):
                out.append(f"{path}: {key} raised to {after[key]}")
        for key in _UPPER_BOUNDS:
            if key in after and (key not in before or after[key] < before[key]):
                out.append(f"{path}: {key} lowered to {after[key]}")
        if kind == "object":
            _compare_object(before, after, path, old_root, new_root, out)
        elif kind == "array" and "items" in before and "items" in after:
            _compare(before["items"], after["items"], f"{path}[]", old_root, new_root, out)


def _compare_object(
    old: Schema, new: Schema, path: str, old_root: Schema, new_root: Schema, out: list[str]
) -> None:
    old_props: dict[str, Schema] = old.get("properties", {})
    new_props: dict[str, Schema] = new.get("properties", {})
    old_required, new_required = set(old.get("required", ())), set(new.get("required", ()))
    for name in sorted(set(old_props) - set(new_props)):
        out.append(f"{path}.{name}: field removed")
    for name in sorted(new_required - old_required):
        what = "new required field" if name not in old_props else "field became required"
        out.append(f"{path}.{name}: {what}")
    for name in sorted((old_required - new_required) & set(new_props)):
        out.append(f"{path}.{name}: required field became optional")
    for name in sorted(set(old_props) & set(new_props)):
        _compare(old_props[name], new_props[name], f"{path}.{name}", old_root, new_root, out)


def breaking_changes(published: Schema, current: Schema) -> list[str]:
    """Every non-additive difference of `current` from the `published` schema of the same event version."""
    out: list[str] = []
    _compare(published, current, "data", published, current, out)
    return out


def _current() -> dict[str, Schema]:
    return {event_type: event_schema(model) for event_type, model in event_types().items()}


def contract_problems(published_dir: Path = PUBLISHED_DIR) -> list[str]:
    """Breaking changes against every published version, plus event types produced but never published."""
    current = _current()
    problems: list[str] = []
    published = {p.stem: p for p in published_dir.glob("*.json")} if published_dir.exists() else {}
    for event_type, path in sorted(published.items()):
        if event_type not in current:
            problems.append(f"{event_type}: published, no longer produced (a consumer may still read it)")
            continue
        frozen = json.loads(path.read_text(encoding="utf-8"))
        problems += [f"{event_type} {change}" for change in breaking_changes(frozen, current[event_type])]
    problems += [
        f"{t}: not published (run `kencana events publish` when releasing it)"
        for t in sorted(set(current) - set(published))
    ]
    return problems


def publish(published_dir: Path = PUBLISHED_DIR) -> list[Path]:
    """Freeze the schema of every event version not yet published; an existing file is never rewritten."""
    published_dir.mkdir(parents=True, exist_ok=True)
    written = []
    for event_type, schema in sorted(_current().items()):
        path = published_dir / f"{event_type}.json"
        if not path.exists():
            path.write_text(json.dumps(schema, indent=2, sort_keys=True) + "\n", encoding="utf-8")
            written.append(path)
    return written
