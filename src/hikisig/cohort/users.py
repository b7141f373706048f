"""Users of the web app: creation, argon2id passwords, sign-in with lock-out.

Passwords are hashed with argon2id (``argon2-cffi``'s RFC 9106 low-memory
profile: 3 passes, 64 MiB, 4 lanes) and never stored or logged in clear.
After :data:`MAX_FAILURES` consecutive failed sign-ins an account is locked
for :data:`LOCK_MINUTES` minutes.
"""

from __future__ import annotations

import datetime as dt
import re
from dataclasses import dataclass

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError, VerifyMismatchError
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from hikisig.cohort import schema
from hikisig.cohort.audit import append_event, require_key_if_signed
from hikisig.cohort.store import Store
from hikisig.errors import HikisigError

__all__ = ["LOCK_MINUTES", "MAX_FAILURES", "MIN_PASSWORD", "SignIn", "add_user", "check_password_rules",
           "hash_password", "precheck", "set_password", "sign_in", "unlock_user", "verify_password"]

#: Consecutive failures that lock an account.
MAX_FAILURES = 5
#: Minutes an account stays locked.
LOCK_MINUTES = 15
#: Minimum password length.
MIN_PASSWORD = 10
_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._@-]{1,99}$")
_hasher = PasswordHasher()
#: A hash of a random password: verified against when the user does not exist,
#: so that a sign-in takes as long for unknown names as for known ones.
_DUMMY = _hasher.hash("not-a-password-of-anyone")


def _now() -> dt.datetime:
    return dt.datetime.now(dt.UTC).replace(tzinfo=None)


def hash_password(password: str) -> str:
    """argon2id hash (PHC string) of a password."""
    return _hasher.hash(password)


def verify_password(stored: str, password: str) -> bool:
    """True when ``password`` matches the stored argon2 hash."""
    try:
        return bool(_hasher.verify(stored, password))
    except (VerifyMismatchError, VerificationError, InvalidHashError):
        return False


def check_password_rules(password: str, name: str = "") -> None:
    """Raise :class:`HikisigError` for a password that is too weak."""
    if len(password) < MIN_PASSWORD:
        raise HikisigError(f"the password must have at least {MIN_PASSWORD} characters")
    if name and password.casefold() == name.casefold():
        raise HikisigError("the password must differ from the user name")


def add_user(store: Store, name: str, role: str, password: str, *, site: str | None = None,
             actor: str = "cli", actor_role: str = "admin") -> schema.User:
    """Create a user (audited).

    Raises
    ------
    HikisigError
        Bad name, unknown role, a clinician without a site, a weak password,
        or a name already taken.
    """
    store.require_ready()
    if not _NAME.match(name):
        raise HikisigError(f"user name {name!r}: use 2-100 letters, digits, '.', '_', '@' or '-'")
    if role not in schema.ROLES:
        raise HikisigError(f"unknown role {role!r} (expected {', '.join(schema.ROLES)})")
    if role == "clinician" and not site:
        raise HikisigError("a clinician needs --site (the site code whose participants they see)")
    check_password_rules(password, name)
    _writable(store)
    digest = hash_password(password)
    with store.session() as s:
        if s.scalar(select(func.count()).select_from(schema.User).where(schema.User.name == name)):
            raise HikisigError(f"user {name!r} exists already")
        user = schema.User(name=name, role=role, site=site or None, password_hash=digest,
                           active=True, failed_logins=0)
        s.add(user)
        s.flush()
        append_event(s, actor=actor, role=actor_role, action="create", entity="user", entity_id=name,
                     site=site, after={"name": name, "role": role, "site": site})
    return user


def set_password(store: Store, name: str, password: str, *, actor: str = "cli") -> None:
    """Replace a user's password and unlock the account (audited; the hash is not logged)."""
    check_password_rules(password, name)
    _writable(store)
    with store.session() as s:
        user = _get(s, name)
        user.password_hash = hash_password(password)
        user.failed_logins, user.locked_until = 0, None
        s.query(schema.WebSession).filter(schema.WebSession.user_id == user.id).delete()
        append_event(s, actor=actor, role="admin", action="update", entity="user", entity_id=name,
                     after={"password": "changed"})


def unlock_user(store: Store, name: str, *, actor: str = "cli", active: bool | None = None) -> None:
    """Clear a lock-out (and optionally enable/disable the account); audited."""
    _writable(store)
    with store.session() as s:
        user = _get(s, name)
        before = {"locked_until": user.locked_until, "active": user.active}
        user.failed_logins, user.locked_until = 0, None
        if active is not None:
            user.active = active
            if not active:
                s.query(schema.WebSession).filter(schema.WebSession.user_id == user.id).delete()
        append_event(s, actor=actor, role="admin", action="update", entity="user", entity_id=name,
                     before=before, after={"locked_until": None, "active": user.active})


def _writable(store: Store) -> None:
    """Fail before any work when the trail is signed and this process has no audit key
    (:func:`~hikisig.cohort.audit.append_event` would refuse the entry anyway)."""
    with Session(store.engine) as s:
        require_key_if_signed(s)


def _get(s: Session, name: str) -> schema.User:
    user = s.scalar(select(schema.User).where(schema.User.name == name))
    if user is None:
        raise HikisigError(f"no user named {name!r}")
    return user


def precheck(store: Store, name: str, password: str) -> tuple[str | None, bool]:
    """Verify a password outside any write transaction (argon2 is slow on purpose).

    Returns the hash that was checked and whether it matched; hand both to
    :func:`sign_in`, which re-verifies only if the stored hash changed meanwhile.
    """
    with Session(store.engine) as s:
        stored = s.scalar(select(schema.User.password_hash).where(schema.User.name == name))
    if stored is None:
        verify_password(_DUMMY, password)
        return None, False
    return stored, verify_password(stored, password)


@dataclass
class SignIn:
    """Outcome of :func:`sign_in`: the user, or why not."""

    user: schema.User | None
    reason: str = ""


def sign_in(s: Session, name: str, password: str, *, ip: str = "",
            checked: tuple[str | None, bool] | None = None) -> SignIn:
    """Check a name and password in the caller's transaction, counting failures.

    ``checked`` is the result of :func:`precheck`, so that the slow hash is not
    computed while the caller holds a write lock.

    Every attempt is audited (``login`` or ``login_failed``; ``lockout`` when
    the account becomes locked). The reason is for the audit trail; show
    users one message for every failure.
    """
    now = _now()
    user = s.scalar(select(schema.User).where(schema.User.name == name))
    if user is None:
        if checked is None:
            verify_password(_DUMMY, password)
        append_event(s, actor=name[:100] or "-", role="-", action="login_failed", entity="user",
                     entity_id=name[:200], after={"reason": "unknown user", "ip": ip})
        return SignIn(None, "unknown user")
    if not user.active:
        append_event(s, actor=user.name, role=user.role, action="login_failed", entity="user",
                     entity_id=user.name, after={"reason": "disabled", "ip": ip})
        return SignIn(None, "disabled")
    if user.locked_until is not None and user.locked_until > now:
        append_event(s, actor=user.name, role=user.role, action="login_failed", entity="user",
                     entity_id=user.name, after={"reason": "locked", "ip": ip})
        return SignIn(None, "locked")
    if checked is not None and checked[0] == user.password_hash:
        matches = checked[1]
    else:
        matches = verify_password(user.password_hash, password)
    if not matches:
        user.failed_logins = (user.failed_logins or 0) + 1
        append_event(s, actor=user.name, role=user.role, action="login_failed", entity="user",
                     entity_id=user.name, after={"reason": "wrong password", "ip": ip,
                                                 "failures": user.failed_logins})
        if user.failed_logins >= MAX_FAILURES:
            user.locked_until = now + dt.timedelta(minutes=LOCK_MINUTES)
            user.failed_logins = 0
            append_event(s, actor=user.name, role=user.role, action="lockout", entity="user",
                         entity_id=user.name, after={"locked_until": user.locked_until, "ip": ip})
        return SignIn(None, "wrong password")
    user.failed_logins, user.locked_until, user.last_login = 0, None, now
    if _hasher.check_needs_rehash(user.password_hash):
        user.password_hash = hash_password(password)
    append_event(s, actor=user.name, role=user.role, action="login", entity="user",
                 entity_id=user.name, site=user.site, after={"ip": ip})
    return SignIn(user)
