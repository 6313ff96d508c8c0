"""Schemathesis hooks of the fuzz runs (loaded through SCHEMATHESIS_HOOKS by tests/openapi/fuzz.py).

Two values a client cannot make up, and a schema cannot describe, are supplied as a real client would:

- `Idempotency-Key`: a client generates a fresh key per logical operation (the parameter's description says
  so). Schemathesis draws keys from the schema, so two different requests often share a key ("0") and the
  second is rightly refused 422 `idempotency-key-reused`. A key the schema admits is replaced by a fresh UUID;
  a malformed one (schemathesis' negative values) is sent as drawn and must be refused 400.
- `cursor`: a page cursor is only ever one the service issued in `next_cursor`; any other string is refused
  422 (tests/shared/inputs.py sends forged and wrong-typed ones to every list). A request schemathesis means
  to be valid is sent without one; its negative cases keep theirs.
"""

from __future__ import annotations

import re
import uuid
from typing import Any

import schemathesis

from shared.web.idempotency import KEY_PATTERN

_KEY = re.compile(KEY_PATTERN)


@schemathesis.hook
def before_call(context: Any, case: Any, kwargs: Any = None) -> None:
    meta = case.meta
    if meta is None or not meta.generation.mode.is_positive:
        # A negative case is sent as drawn: changing it would make schemathesis revalidate it, and a case
        # without its Authorization (the token is added to every request by the command line) would then be
        # sent with it. Its refusal comes before the key or the cursor matter, or is the 422 they cause.
        return
    headers = case.headers or {}
    for name, value in list(headers.items()):
        if name.lower() == "idempotency-key" and isinstance(value, str) and _KEY.fullmatch(value):
            headers[name] = str(uuid.uuid4())
    if isinstance(case.query, dict):
        case.query.pop("cursor", None)
