"""Browser and cache safety: CORS from an allow-list, security headers and `Cache-Control: no-store` everywhere.

The API answers JSON (and CSV/XLSX/PNG exports) to partner systems and internal frontends; nothing it sends is
meant to be framed, sniffed, cached by a proxy or a browser, or read by another site's scripts. The headers
follow the OWASP Secure Headers Project's recommendations for a REST API.
"""

from __future__ import annotations

from collections.abc import Sequence

from starlette.datastructures import Headers, MutableHeaders
from starlette.middleware.cors import CORSMiddleware
from starlette.responses import Response
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from shared.web.problems import problem_response

# A JSON API loads nothing and may be framed by nobody.
API_CSP = "default-src 'none'; frame-ancestors 'none'; base-uri 'none'; form-action 'none'"
# Swagger UI and ReDoc (FastAPI's /docs and /redoc pages) load their script, styles and fonts from a CDN, run
# one inline script and fetch /openapi.json; only those pages get this policy.
DOCS_CSP = (
    "default-src 'none'; script-src 'unsafe-inline' https://cdn.jsdelivr.net; "
    "style-src 'unsafe-inline' https://cdn.jsdelivr.net https://fonts.googleapis.com; "
    "font-src https://fonts.gstatic.com; img-src 'self' data: https://fastapi.tiangolo.com https://cdn.redoc.ly; "
    "connect-src 'self'; worker-src blob:; frame-ancestors 'none'; base-uri 'none'; form-action 'none'"
)
# Request headers a browser frontend sends besides the CORS-safelisted ones.
CORS_ALLOW_HEADERS = (
    "Authorization",
    "Content-Type",
    "If-Match",
    "Idempotency-Key",
    "X-Purpose",
    "X-Request-ID",
)
# Response headers its scripts may read.
CORS_EXPOSE_HEADERS = (
    "ETag",
    "Location",
    "Content-Disposition",
    "Retry-After",
    "RateLimit-Limit",
    "RateLimit-Remaining",
    "RateLimit-Reset",
    "RateLimit-Policy",
    "X-Request-ID",
    "Idempotent-Replayed",
)
CORS_ALLOW_METHODS = ("GET", "POST", "PUT", "PATCH", "DELETE")


class SecurityHeadersMiddleware:
    """Adds the security headers and `Cache-Control: no-store` to every HTTP response.

    `no-store` goes on every response, not only the authenticated ones: nearly all of them carry personal data
    or are about it (a 404 says a record is not visible to you), and an operations endpoint loses nothing by
    not being cached. HSTS is sent only when configured (the API is then reachable over HTTPS only).
    """

    def __init__(
        self, app: ASGIApp, *, hsts_max_age_seconds: int = 0, docs_paths: Sequence[str] = ()
    ) -> None:
        self.app = app
        self.docs_paths = frozenset(p for p in docs_paths if p)
        self.common: list[tuple[str, str]] = [
            ("X-Content-Type-Options", "nosniff"),
            ("Referrer-Policy", "no-referrer"),
            ("X-Frame-Options", "DENY"),
            ("Cross-Origin-Resource-Policy", "same-origin"),
            ("Cache-Control", "no-store"),
        ]
        if hsts_max_age_seconds > 0:
            self.common.append(
                ("Strict-Transport-Security", f"max-age={hsts_max_age_seconds}; includeSubDomains")
            )

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        csp = DOCS_CSP if scope.get("path") in self.docs_paths else API_CSP

        async def send_with_headers(message: Message) -> None:
            if message["type"] == "http.response.start":
                headers = MutableHeaders(scope=message)
                for name, value in self.common:
                    headers[name] = value
                headers["Content-Security-Policy"] = csp
                # The banner says which server and version to attack; uvicorn's own is switched off at start.
                del headers["server"]
            await send(message)

        await self.app(scope, receive, send_with_headers)


class AllowListCORSMiddleware(CORSMiddleware):
    """Starlette's CORS with an explicit origin list; a refused preflight carries no Access-Control-* header.

    Starlette answers a refused preflight 400 text/plain but still lists the allowed methods and headers, and
    lists the exposed headers to any origin; this answers a refused preflight 403 problem+json and gives an
    unlisted origin no Access-Control-* header at all, so it learns nothing about the API.
    """

    def __init__(self, app: ASGIApp, *, allow_origins: Sequence[str], max_age: int = 600) -> None:
        super().__init__(
            app,
            allow_origins=list(allow_origins),
            allow_methods=CORS_ALLOW_METHODS,
            allow_headers=CORS_ALLOW_HEADERS,
            expose_headers=CORS_EXPOSE_HEADERS,
            # Bearer tokens, never cookies: a browser must not attach credentials on its own.
            allow_credentials=False,
            max_age=max_age,
        )

    async def send(self, message: Message, send: Send, request_headers: Headers) -> None:
        origin = request_headers.get("origin")
        if (
            message["type"] == "http.response.start"
            and origin is not None
            and not self.is_allowed_origin(origin)
        ):
            # Starlette would still list the exposed headers to an unlisted origin; it gets no CORS header.
            headers = MutableHeaders(scope=message)
            headers["Vary"] = ", ".join([*headers.getlist("Vary"), "Origin"])
            await send(message)
            return
        await super().send(message, send, request_headers)

    def preflight_response(self, request_headers: Headers) -> Response:
        response = super().preflight_response(request_headers)
        if response.status_code < 400:
            return response
        refused = [
            part.strip() for part in bytes(response.body).decode().removeprefix("Disallowed CORS ").split(",")
        ]
        return problem_response(
            403,
            "Cross-origin request refused",
            "this origin, method or header is not allowed to call the API from a browser",
            code="cors-refused",
            extra={"refused": refused},
            headers={"Vary": "Origin"},
        )
