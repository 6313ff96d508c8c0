"""`new_wire_ids`: random version-4 UUIDs in asyncpg's type, interchangeable with `uuid.UUID`."""

from __future__ import annotations

import uuid

from shared.db import new_wire_ids


def test_wire_ids_are_distinct_rfc_4122_version_4_uuids() -> None:
    ids = new_wire_ids(5000)
    assert len(set(ids)) == 5000
    for wire in ids:
        plain = uuid.UUID(str(wire))
        assert isinstance(wire, uuid.UUID)
        assert (plain.version, plain.variant) == (4, uuid.RFC_4122)
        # Equal, hashing alike and printed alike: usable as dict keys next to ids read back as uuid.UUID.
        assert plain == wire and hash(plain) == hash(wire) and str(plain) == str(wire)
    # Version nibble and variant bits set without disturbing the other random bits (both values appear).
    assert {str(i)[19] for i in ids} == {"8", "9", "a", "b"}
    assert new_wire_ids(0) == []
