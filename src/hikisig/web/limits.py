"""Limits before work: request bodies are refused before they are read.

:class:`BodyLimits` is a pure ASGI middleware in front of every route:

- each unsafe request (POST, PUT, PATCH, DELETE) has a body limit: lab uploads
  (``/labs/preview``, ``/api/v1/labs``) the configured upload size plus room for
  the other form fields, everything else (sign-in, forms, JSON) :data:`FORM_LIMIT`;
- an upload route first looks up the session of the cookie and its role: no
  session is 401 (pages: a redirect to the sign-in form), another role 403,
  before a byte of the body is read;
- a ``Content-Length`` above the limit is 413 at once; a body without one
  (chunked) is counted as it streams in, and the request fails with 413 as soon
  as the count passes the limit (the multipart parser then closes and deletes
  its spooled temporary files; nothing reaches the upload folder).
"""

from __future__ import annotations

import datetime as dt
import json
from collections.abc import Awaitable, Callable, MutableMapping
from typing import Any
from urllib.parse import quote

import anyio
from sqlalchemy import select
from sqlalchemy.orm import Session
from starlette.exceptions import HTTPException
from starlette.requests import cookie_parser

from hikisig.cohort import schema
from hikisig.web.context import SESSION_COOKIE, token_hash

__all__ = ["FORM_LIMIT", "UPLOAD_ROUTES", "BodyLimits", "BodyTooLargeError", "body_limit", "session_role"]

Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]
ASGIApp = Callable[[Scope, Receive, Send], Awaitable[None]]

#: Body limit of sign-in, forms and JSON requests (bytes).
FORM_LIMIT = 64 * 1024
#: Routes that take a lab file -> roles allowed to send one.
UPLOAD_ROUTES: dict[str, tuple[str, ...]] = {"/labs/preview": ("analyst",), "/api/v1/labs": ("analyst",)}
_UNSAFE = {"POST", "PUT", "PATCH", "DELETE"}


class BodyTooLargeError(HTTPException):
    """The body passed the route's limit while streaming in (413)."""

    def __init__(self, limit: int) -> None:
        super().__init__(413, f"the request is larger than {_size(limit)}")


def _size(n: int) -> str:
    return f"{n // (1024 * 1024)} MB" if n >= 1024 * 1024 else f"{n // 1024} kB"


def body_limit(path: str, upload_mb: int) -> int:
    """The largest body accepted on ``path`` (bytes)."""
    if path in UPLOAD_ROUTES:
        return upload_mb * 1024 * 1024 + FORM_LIMIT
    return FORM_LIMIT


def session_role(app_state: Any, token: str | None) -> str | None:
    """The role of the session ``token`` if it is valid now (not idle, not too old, user
    active); None otherwise. Reads only: the app's own check renews or ends sessions."""
    if not token or len(token) > 200:
        return None
    settings = app_state.settings
    now = dt.datetime.now(dt.UTC).replace(tzinfo=None)
    with Session(app_state.store.engine) as s:
        row = s.execute(select(schema.WebSession.last_seen, schema.WebSession.created_at, schema.User.role,
                               schema.User.active)
                        .join(schema.User, schema.User.id == schema.WebSession.user_id)
                        .where(schema.WebSession.id == token_hash(token))).first()
    if row is None:
        return None
    last_seen, created, role, active = row
    if (not active or now - last_seen > dt.timedelta(minutes=settings.idle_minutes)
            or now - created > dt.timedelta(hours=settings.max_hours)):
        return None
    return str(role)


def _headers(scope: Scope) -> dict[bytes, bytes]:
    return {k.lower(): v for k, v in scope.get("headers", [])}


async def _respond(send: Send, status: int, scope: Scope, detail: str, *,
                   location: str | None = None) -> None:
    """A small complete response (JSON under /api/, plain HTML elsewhere); the connection is closed."""
    if scope["path"].startswith("/api/"):
        body, ctype = json.dumps({"detail": detail}).encode(), b"application/json"
    else:
        text = detail.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")
        body = (f"<!doctype html><title>{status}</title><p>{text}</p>"
                f"<p><a href=\"/\">Back</a></p>").encode()
        ctype = b"text/html; charset=utf-8"
    headers = [(b"content-type", ctype), (b"content-length", str(len(body)).encode()),
               (b"connection", b"close"), (b"cache-control", b"no-store"),
               (b"x-content-type-options", b"nosniff"), (b"x-frame-options", b"DENY"),
               (b"content-security-policy", b"default-src 'none'; frame-ancestors 'none'")]
    if location:
        headers.append((b"location", location.encode()))
    await send({"type": "http.response.start", "status": status, "headers": headers})
    await send({"type": "http.response.body", "body": body, "more_body": False})


class BodyLimits:
    """Pure ASGI middleware: auth pre-check of upload routes and body limits (see the module)."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope.get("method") not in _UNSAFE:
            await self.app(scope, receive, send)
            return
        state = scope["app"].state
        path: str = scope["path"]
        limit = body_limit(path, state.settings.upload_mb)
        headers = _headers(scope)
        roles = UPLOAD_ROUTES.get(path)
        if roles is not None:
            cookies = cookie_parser(headers.get(b"cookie", b"").decode("latin-1"))
            role = await anyio.to_thread.run_sync(session_role, state, cookies.get(SESSION_COOKIE))
            if role is None:
                if path.startswith("/api/"):
                    await _respond(send, 401, scope, "not signed in")
                else:
                    await _respond(send, 303, scope, "sign in first",
                                   location=f"/login?next={quote(path.replace('/preview', ''), safe='')}")
                return
            if role not in roles:
                await _respond(send, 403, scope, f"a {role} cannot do this (needs: {', '.join(roles)})")
                return
        declared = headers.get(b"content-length")
        if declared is not None:
            try:
                n = int(declared)
            except ValueError:
                await _respond(send, 400, scope, "invalid Content-Length")
                return
            if n > limit:
                await _respond(send, 413, scope, f"the request is larger than {_size(limit)}")
                return

        seen = 0
        started = False

        async def limited_receive() -> Message:
            nonlocal seen
            message = await receive()
            if message["type"] == "http.request":
                seen += len(message.get("body", b""))
                if seen > limit:
                    raise BodyTooLargeError(limit)
            return message

        async def watched_send(message: Message) -> None:
            nonlocal started
            if message["type"] == "http.response.start":
                started = True
            await send(message)

        try:
            await self.app(scope, limited_receive, watched_send)
        except BodyTooLargeError as exc:  # raised where no exception handler turned it into a response
            if started:
                raise
            await _respond(send, 413, scope, str(exc.detail))
