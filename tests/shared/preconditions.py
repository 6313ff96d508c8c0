"""Issue 13: the OpenAPI says which operations take `If-Match`, and it is exactly the ones that answer 428.

Every write operation is sent without `If-Match` by a caller holding every scope: an operation whose OpenAPI
declares the header must answer 428 (the precondition is checked before the body and before the resource is
looked up), and 400 `if-match-malformed` to an empty or unquoted one, and one that does not declare it must never answer 428. Each such operation also declares its 412
and 428 answers.
"""

from __future__ import annotations

from typing import Any

import httpx

from tests.shared.web_controls import PUBLIC_TAG, WRITE_METHODS, concrete


async def if_match_declared_where_taken(client: httpx.AsyncClient, headers: dict[str, str]) -> int:
    """Returns how many operations declare If-Match (a test also fails when the walk found none)."""
    spec: dict[str, Any] = (await client.get("/openapi.json")).json()
    declared = 0
    for path, item in spec["paths"].items():
        for method, op in item.items():
            if method not in WRITE_METHODS or PUBLIC_TAG in op.get("tags", []):
                continue
            declared_as = [
                p for p in op.get("parameters", []) if p["in"] == "header" and p["name"] == "If-Match"
            ]
            takes = bool(declared_as)
            assert all(p["required"] for p in declared_as), (method, path, "If-Match is needed: required")
            r = await client.request(method.upper(), concrete(path), json={}, headers=headers)
            if takes:
                assert r.status_code == 428, (method, path, r.status_code, r.text)
                assert r.json()["errors"][0]["field"] == "header.If-Match"
                assert {"400", "412", "428"} <= set(op["responses"]), (method, path)
                # Present but empty or unquoted: malformed (400), not missing (428) and not stale (412).
                for malformed in ("", "3", '"3'):
                    bad = await client.request(
                        method.upper(), concrete(path), json={}, headers={**headers, "If-Match": malformed}
                    )
                    assert bad.status_code == 400, (method, path, malformed, bad.status_code, bad.text)
                    assert [e["field"] for e in bad.json()["errors"]] == ["header.If-Match"], bad.text
                    assert bad.json()["errors"][0]["rule"] == "if-match-malformed", bad.text
                declared += 1
            else:
                assert r.status_code != 428, (method, path, "answers 428 but declares no If-Match")
    return declared
