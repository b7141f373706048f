"""Who is asking: sessions, CSRF tokens, roles and the login throttle.

A session is a random token in an HttpOnly, SameSite=Lax cookie (Secure when
the request came over TLS); the store keeps only its sha256 with the user, the
CSRF token and the time last seen. A session ends after ``idle_minutes``
without a request or ``max_hours`` after sign-in. Every unsafe request must
carry the session's CSRF token (form field ``csrf_token`` or header
``X-CSRF-Token``).
"""

from __future__ import annotations

import collections
import datetime as dt
import hashlib
import hmac
import secrets
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import AbstractContextManager, contextmanager, nullcontext
from dataclasses import dataclass
from typing import Annotated, Any

from fastapi import Depends, HTTPException, Path, Request
from sqlalchemy import delete, select
from sqlalchemy.orm import Session

from hikisig.cohort import schema
from hikisig.cohort.store import Store

__all__ = ["SESSION_COOKIE", "Ctx", "LoginThrottle", "NotSignedInError", "RowId", "VisitNo", "csrf_ok",
           "current", "end_session", "new_session", "require", "token_hash", "writer_turn", "writing"]

SESSION_COOKIE = "hikisig_session"
UNSAFE = {"POST", "PUT", "PATCH", "DELETE"}
#: An object id in a URL path: a number the database can hold (anything else is a 422, not a crash).
RowId = Annotated[int, Path(ge=1, le=2_147_483_647)]
#: A visit number in a URL path (visit 0 is the baseline visit of imported data).
VisitNo = Annotated[int, Path(ge=0, le=2_147_483_647)]


class NotSignedInError(Exception):
    """No valid session: pages redirect to the sign-in form, the API answers 401."""


@dataclass(frozen=True)
class Ctx:
    """The signed-in user of a request."""

    user_id: int
    name: str
    role: str
    site: str | None
    session_id: str
    csrf: str

    def is_(self, *roles: str) -> bool:
        """True when the user has one of ``roles``."""
        return self.role in roles


def _now() -> dt.datetime:
    return dt.datetime.now(dt.UTC).replace(tzinfo=None)


def token_hash(token: str) -> str:
    """sha256 of a session token (what the store keeps)."""
    return hashlib.sha256(token.encode()).hexdigest()


def new_session(s: Session, user: schema.User) -> tuple[str, str]:
    """Create a session; returns (cookie token, CSRF token)."""
    token, csrf = secrets.token_urlsafe(32), secrets.token_urlsafe(32)
    s.add(schema.WebSession(id=token_hash(token), user_id=user.id, csrf=csrf, created_at=_now(),
                            last_seen=_now()))
    return token, csrf


def end_session(s: Session, session_id: str) -> None:
    """Delete a session."""
    s.execute(delete(schema.WebSession).where(schema.WebSession.id == session_id))


def writer_turn(request: Request) -> AbstractContextManager[Any]:
    """Wait for this process's turn to write (SQLite: one writer at a time; PostgreSQL: no wait)."""
    lock: threading.Lock | None = request.app.state.write_lock
    return lock if lock is not None else nullcontext()


@contextmanager
def writing(request: Request) -> Iterator[Session]:
    """A write transaction, taken in the writers' turn (see :func:`writer_turn`)."""
    store: Store = request.app.state.store
    with writer_turn(request), store.session() as s:
        yield s


def current(request: Request) -> Ctx:
    """Dependency: the signed-in user, or :class:`NotSignedInError`."""
    cached = getattr(request.state, "ctx", None)
    if cached is not None:
        return cached
    token = request.cookies.get(SESSION_COOKIE)
    if not token or len(token) > 200:
        raise NotSignedInError
    settings = request.app.state.settings
    sid = token_hash(token)
    store: Store = request.app.state.store
    now = _now()
    with Session(store.engine) as s:
        row = s.execute(select(schema.WebSession, schema.User)
                        .join(schema.User, schema.User.id == schema.WebSession.user_id)
                        .where(schema.WebSession.id == sid)).first()
    if row is None:
        raise NotSignedInError
    ws, user = row
    idle = dt.timedelta(minutes=settings.idle_minutes)
    expired = (now - ws.last_seen > idle or now - ws.created_at > dt.timedelta(hours=settings.max_hours)
               or not user.active)
    if expired:
        with writing(request) as w:
            end_session(w, sid)
        raise NotSignedInError
    if (now - ws.last_seen).total_seconds() > 30:
        with writing(request) as w:
            obj = w.get(schema.WebSession, sid)
            if obj is not None:
                obj.last_seen = now
    ctx = Ctx(user.id, user.name, user.role, user.site, sid, ws.csrf)
    request.state.ctx = ctx
    return ctx


async def csrf_ok(request: Request, ctx: Ctx = Depends(current)) -> Ctx:
    """Dependency for unsafe requests: the CSRF token must match the session's."""
    if request.method in UNSAFE:
        sent = request.headers.get("x-csrf-token")
        if sent is None and request.headers.get("content-type", "").startswith(
                ("application/x-www-form-urlencoded", "multipart/form-data")):
            form = await request.form()
            value = form.get("csrf_token")
            sent = value if isinstance(value, str) else None
        if not sent or not hmac.compare_digest(sent, ctx.csrf):
            raise HTTPException(403, "missing or wrong CSRF token: reload the page and try again")
    return ctx


def require(*roles: str, write: bool = False) -> Callable[..., Ctx]:
    """Dependency factory: the user must have one of ``roles`` (403 otherwise).

    With ``write``, the CSRF token is checked as well.
    """

    def dep(ctx: Ctx = Depends(csrf_ok if write else current)) -> Ctx:
        if ctx.role not in roles:
            raise HTTPException(403, f"a {ctx.role} cannot do this (needs: {', '.join(roles)})")
        return ctx

    return dep


class LoginThrottle:
    """At most ``limit`` failed sign-ins per client address in ``window`` seconds."""

    def __init__(self, limit: int = 20, window: float = 600.0) -> None:
        self.limit, self.window = limit, window
        self._fails: dict[str, collections.deque[float]] = collections.defaultdict(collections.deque)
        self._lock = threading.Lock()

    def _trim(self, q: collections.deque[float], now: float) -> None:
        while q and now - q[0] > self.window:
            q.popleft()

    def blocked(self, ip: str) -> bool:
        """True when ``ip`` has used up its failures."""
        now = time.monotonic()
        with self._lock:
            q = self._fails[ip]
            self._trim(q, now)
            return len(q) >= self.limit

    def failed(self, ip: str) -> None:
        """Count one failure."""
        with self._lock:
            self._fails[ip].append(time.monotonic())
