"""What every response carries, and who may see any: security headers and the token check.

Message content is hostile input: pages are escaped by the templates, and the headers below
make sure that whatever slipped through could not run (no inline script, no framing, no
sniffing). With a token, every request must show it: ``Authorization: Bearer`` from
scripts, or the HttpOnly cookie the login form sets for browsers; both are compared in
constant time.
"""

from __future__ import annotations

import hmac
import html
import ipaddress
from urllib.parse import parse_qs

from starlette.datastructures import Headers
from starlette.requests import Request
from starlette.responses import HTMLResponse, JSONResponse, RedirectResponse, Response
from starlette.types import ASGIApp, Message, Receive, Scope, Send

__all__ = ["COOKIE", "HEADERS", "LOOPBACK_NAMES", "SecureApp", "host_name", "is_loopback", "token_matches"]

COOKIE = "journal_token"

HEADERS = {
    "content-security-policy": (
        "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
        "connect-src 'self'; form-action 'self'; frame-ancestors 'none'; base-uri 'none'"
    ),
    "x-content-type-options": "nosniff",
    "referrer-policy": "no-referrer",
    "x-frame-options": "DENY",
    "cross-origin-opener-policy": "same-origin",
    "cache-control": "no-store",
}

# The names a browser on this machine uses for a viewer bound to loopback.
LOOPBACK_NAMES = frozenset({"127.0.0.1", "localhost", "::1"})

# Reached without the token: the form that asks for it, and the style it is drawn with.
_OPEN = ("/login", "/static/")


def token_matches(given: str | None, token: str) -> bool:
    """Whether ``given`` is the token, in time independent of where they differ."""
    if given is None:
        return False
    return hmac.compare_digest(given.encode("utf-8", "surrogateescape"), token.encode("utf-8"))


def host_name(header: str) -> str:
    """The name of a Host header without its port (``[::1]:8765`` -> ``::1``)."""
    if header.startswith("["):
        return header[1:].partition("]")[0].lower()
    return header.partition(":")[0].lower()


def is_loopback(host: str) -> bool:
    """Whether binding ``host`` keeps the server reachable from this machine only."""
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False  # a name that may resolve anywhere


class SecureApp:
    """ASGI middleware: adds ``HEADERS`` to every response and, with a token, turns away
    every request that does not carry it (401; a browser gets the login form)."""

    def __init__(
        self, app: ASGIApp, token: str | None, login_page: str, hosts: frozenset[str] | None = None
    ) -> None:
        self.app = app
        self.token = token
        self.login_page = login_page
        self.hosts = hosts

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return

        async def send_secured(message: Message) -> None:
            if message["type"] == "http.response.start":
                have = {name.lower() for name, _ in message.get("headers", [])}
                extra = [(k.encode(), v.encode()) for k, v in HEADERS.items() if k.encode() not in have]
                message["headers"] = [*message.get("headers", []), *extra]
            await send(message)

        path: str = scope["path"]
        if self.hosts is not None and host_name(Headers(scope=scope).get("host", "")) not in self.hosts:
            # A page of another site whose name was pointed at 127.0.0.1 (DNS rebinding) must
            # not read a viewer that has no token: it arrives under that site's name.
            answer = JSONResponse({"error": "unknown host"}, status_code=421)
            await answer(scope, receive, send_secured)
            return
        if self.token is not None and path == "/login":
            response = await self._login(Request(scope, receive))
            await response(scope, receive, send_secured)
            return
        if self.token is not None and not path.startswith(_OPEN) and not self._allowed(scope):
            await self._refuse(scope)(scope, receive, send_secured)
            return
        await self.app(scope, receive, send_secured)

    def _allowed(self, scope: Scope) -> bool:
        assert self.token is not None
        request = Request(scope)
        auth = request.headers.get("authorization", "")
        scheme, _, value = auth.partition(" ")
        if scheme.lower() == "bearer" and token_matches(value.strip(), self.token):
            return True
        return token_matches(request.cookies.get(COOKIE), self.token)

    def _refuse(self, scope: Scope) -> Response:
        headers = Headers(scope=scope)
        wanted = scope.get("raw_path") or scope["path"].encode()
        query = scope.get("query_string", b"")
        target = wanted.decode("latin-1") + (f"?{query.decode('latin-1')}" if query else "")
        if "text/html" in headers.get("accept", "") and scope["method"] == "GET":
            return HTMLResponse(
                self.login_page.replace("{next}", html.escape(target)),
                status_code=401,
                headers={"www-authenticate": "Bearer"},
            )
        return JSONResponse(
            {"error": "unauthorized", "detail": "send Authorization: Bearer <token>"},
            status_code=401,
            headers={"www-authenticate": "Bearer"},
        )

    async def _login(self, request: Request) -> Response:
        assert self.token is not None
        if request.method != "POST":
            return HTMLResponse(self.login_page.replace("{next}", "/"), status_code=200)
        # Parsed here: Starlette's form parser needs python-multipart, for two fields.
        body = (await request.body())[:8192].decode("utf-8", "replace")
        fields = parse_qs(body)
        given = (fields.get("token") or [""])[0]
        target = (fields.get("next") or ["/"])[0]
        # Only a path of this site: "//host" or "/\host" would send the browser elsewhere.
        if not target.startswith("/") or target.startswith(("//", "/\\")):
            target = "/"
        if not token_matches(given, self.token):
            return HTMLResponse(self.login_page.replace("{next}", html.escape(target)), status_code=401)
        response = RedirectResponse(target, status_code=303)
        response.set_cookie(COOKIE, self.token, httponly=True, samesite="strict", path="/")
        return response
