"""The append-only, hash-chained audit trail.

Every entry stores who did what, when, to which entity, with the state before
and after as canonical JSON. Entry ``n`` carries ``prev_hash`` (the hash of
entry ``n - 1``; 64 zeros for the first) and ``hash = sha256(prev_hash + "\\n" +
canonical JSON of the entry)``; ids are consecutive. Editing any field,
deleting an entry in the middle, inserting one or reordering breaks the chain,
which :func:`verify_chain` (``hikisig audit verify``) reports. Deleting entries
at the end is detected against a head recorded elsewhere (``verify`` prints the
head id and hash; ``--expect-head`` checks them).

A plain SHA-256 chain can be recomputed by anyone who can write to the
database. With an audit key (a file named by ``HIKISIG_AUDIT_KEY_FILE``, kept
outside the database), entries are signed instead: ``hash = HMAC-SHA256(key,
prev_hash + "\n" + canonical JSON)``. The first signed entry is an
``audit_key`` entry carrying the key's fingerprint; from there on every entry
must verify under that key (or under a later ``audit_key`` entry's key), so an
edit can no longer be hidden by recomputing the hashes without the key. The key
file holds one key per line, the current one first; older lines keep entries
signed with retired keys verifiable.

Appends are serialised: on PostgreSQL by a transaction-scoped advisory lock,
on SQLite by the database's single writer plus the consecutive primary key
(two writers racing for the same id cannot both commit).
"""

from __future__ import annotations

import datetime as dt
import hashlib
import hmac
import json
import os
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from sqlalchemy import func, select, text
from sqlalchemy.orm import Session

from hikisig.cohort import schema
from hikisig.errors import HikisigError

__all__ = ["GENESIS", "KEY_ENV", "AuditKeyMissingError", "AuditReport", "append_event", "canonical",
           "chain_is_signed", "ensure_key_entry", "entry_hash", "iter_events", "key_fingerprint",
           "load_audit_keys", "require_key_if_signed", "verify_chain"]

#: ``prev_hash`` of the first entry.
GENESIS = "0" * 64
_PG_LOCK_KEY = 0x68696B69  # "hiki"
#: Environment variable naming the audit key file.
KEY_ENV = "HIKISIG_AUDIT_KEY_FILE"
_KEY_ACTION = "audit_key"
_MIN_KEY_CHARS = 32


def load_audit_keys(path: str | os.PathLike[str] | None = None) -> list[bytes]:
    """The audit keys of a key file (default: ``$HIKISIG_AUDIT_KEY_FILE``), current key first.

    One key per line (at least 32 characters, e.g. ``python -c "import secrets;
    print(secrets.token_hex(32))"``); blank lines and ``#`` comments are ignored.
    No file configured: no key (plain SHA-256 chain).
    """
    path = path if path is not None else (os.environ.get(KEY_ENV) or None)
    if path is None:
        return []
    p = Path(path)
    try:
        text = p.read_text(encoding="utf-8")
    except OSError as exc:
        raise HikisigError(f"audit key file {p}: cannot read it ({exc.strerror or exc})") from exc
    keys = [ln.strip() for ln in text.splitlines() if ln.strip() and not ln.lstrip().startswith("#")]
    if not keys:
        raise HikisigError(f"audit key file {p}: no key in it")
    for n, k in enumerate(keys, 1):
        if len(k) < _MIN_KEY_CHARS:
            raise HikisigError(f"audit key file {p}: key {n} has {len(k)} characters, expected at "
                               f"least {_MIN_KEY_CHARS}")
    return [k.encode() for k in keys]


def key_fingerprint(key: bytes) -> str:
    """A public name of a key (it reveals nothing of the key): 16 hex digits."""
    return hmac.new(key, b"hikisig audit key", hashlib.sha256).hexdigest()[:16]


def _now() -> dt.datetime:
    return dt.datetime.now(dt.UTC).replace(tzinfo=None)


def canonical(value: Any) -> str | None:
    """Canonical JSON text of a before/after state (sorted keys), or None."""
    if value is None:
        return None
    return json.dumps(value, sort_keys=True, separators=(",", ":"), default=str, ensure_ascii=False)


def _payload(e: schema.AuditEvent) -> str:
    at = e.at.replace(tzinfo=None).isoformat(timespec="microseconds")
    return json.dumps([e.id, at, e.actor, e.role, e.action, e.entity, e.entity_id, e.study,
                       e.site, e.before, e.after], separators=(",", ":"), ensure_ascii=False)


def entry_hash(e: schema.AuditEvent, key: bytes | None = None) -> str:
    """The hash an entry must carry, from its fields and ``prev_hash`` (HMAC with a key)."""
    msg = f"{e.prev_hash}\n{_payload(e)}".encode()
    if key:
        return hmac.new(key, msg, hashlib.sha256).hexdigest()
    return hashlib.sha256(msg).hexdigest()


def _last(session: Session) -> schema.AuditEvent | None:
    return session.scalar(select(schema.AuditEvent).order_by(schema.AuditEvent.id.desc()).limit(1))


def _add(session: Session, last: schema.AuditEvent | None, key: bytes | None,
         **fields: Any) -> schema.AuditEvent:
    e = schema.AuditEvent(id=(last.id + 1) if last else 1, at=_now(),
                          prev_hash=last.hash if last else GENESIS, **fields)
    e.hash = entry_hash(e, key)
    session.add(e)
    session.flush()
    return e


class AuditKeyMissingError(HikisigError):
    """The store's audit trail is signed, and this process has no audit key to continue it."""


#: Per store (engine URL): (a key entry was seen, entries scanned up to this id). The trail is
#: append-only, so later look-ups scan only newer entries; a trail shorter than the scanned
#: part (a new store at the same place) is scanned again. In-memory stores are not cached.
_SCANNED: dict[str, tuple[bool, int]] = {}


def chain_is_signed(session: Session) -> bool:
    """True when the trail has an ``audit_key`` entry (from there on, writers need the key)."""
    url = session.get_bind().engine.url
    cacheable = bool(url.database) and url.database != ":memory:"
    head = int(session.scalar(select(func.max(schema.AuditEvent.id))) or 0)
    signed, upto = _SCANNED.get(str(url), (False, 0)) if cacheable else (False, 0)
    if head < upto:
        signed, upto = False, 0
    if not signed:
        signed = session.scalar(select(schema.AuditEvent.id)
                                .where(schema.AuditEvent.action == _KEY_ACTION, schema.AuditEvent.id > upto)
                                .limit(1)) is not None
    if cacheable:
        _SCANNED[str(url)] = (signed, head)
    return signed


def require_key_if_signed(session: Session, keys: Sequence[bytes] | None = None) -> None:
    """Refuse to write (:class:`AuditKeyMissingError`) when the trail is signed and no key is
    configured (``keys`` default to :func:`load_audit_keys`): an unsigned entry would break
    the signed chain."""
    keys = load_audit_keys() if keys is None else list(keys)
    if not keys and chain_is_signed(session):
        raise AuditKeyMissingError(
            f"the audit trail of this store is signed: give the audit key file ({KEY_ENV}=FILE or "
            "--key-file) to write to it")


def _lock(session: Session) -> None:
    if session.get_bind().dialect.name == "postgresql":
        session.execute(text("SELECT pg_advisory_xact_lock(:k)"), {"k": _PG_LOCK_KEY})


def _signing_from(session: Session, last: schema.AuditEvent | None, key: bytes, *, actor: str,
                  role: str) -> schema.AuditEvent | None:
    """The last entry, after an ``audit_key`` entry when the chain is not yet signed with ``key``."""
    if last is not None and hmac.compare_digest(entry_hash(last, key), last.hash):
        return last
    return _add(session, last, key, actor=actor, role=role, action=_KEY_ACTION, entity="audit",
                entity_id=None, study=None, site=None, before=None,
                after=canonical({"fingerprint": key_fingerprint(key)}))


def ensure_key_entry(session: Session, keys: Sequence[bytes] | None = None, *,
                     actor: str = "hikisig", role: str = "-") -> bool:
    """Start signing now (an ``audit_key`` entry) if a key is configured and the chain's last
    entry is not signed with it; True when an entry was written. ``hikisig serve`` calls it
    at start-up."""
    keys = load_audit_keys() if keys is None else list(keys)
    if not keys:
        return False
    _lock(session)
    last = _last(session)
    return _signing_from(session, last, keys[0], actor=actor, role=role) is not last


def append_event(session: Session, *, actor: str, role: str, action: str, entity: str,
                 entity_id: Any = None, study: str | None = None, site: str | None = None,
                 before: Any = None, after: Any = None,
                 keys: Sequence[bytes] | None = None) -> schema.AuditEvent:
    """Append one entry in the caller's transaction (it commits or rolls back with the change).

    ``keys`` default to :func:`load_audit_keys` (``$HIKISIG_AUDIT_KEY_FILE``); with a key
    the entry is signed (HMAC), preceded by an ``audit_key`` entry when the chain was not
    signed with that key before. Without ``keys`` and without a key file, a signed trail
    is not written to: :class:`AuditKeyMissingError` (the CLI prints it and exits 2).

    Examples
    --------
    >>> with store.session() as s:                                          # doctest: +SKIP
    ...     append_event(s, actor="ana", role="analyst", action="export", entity="dataset")
    """
    if action not in schema.AUDIT_ACTIONS or action == _KEY_ACTION:
        raise ValueError(f"unknown audit action {action!r}")
    from_env = keys is None
    keys = load_audit_keys() if keys is None else list(keys)
    if from_env:  # an explicit ``keys=[]`` is a deliberate unsigned write (tests of the verifier)
        require_key_if_signed(session, keys)
    key = keys[0] if keys else None
    _lock(session)
    last = _last(session)
    if key is not None:
        last = _signing_from(session, last, key, actor=actor, role=role)
    return _add(session, last, key, actor=actor, role=role, action=action, entity=entity,
                entity_id=None if entity_id is None else str(entity_id), study=study, site=site,
                before=canonical(before), after=canonical(after))


def iter_events(session: Session, batch: int = 5000) -> Iterator[schema.AuditEvent]:
    """All entries in id order, read in batches."""
    after = 0
    while True:
        rows = list(session.scalars(select(schema.AuditEvent).where(schema.AuditEvent.id > after)
                                    .order_by(schema.AuditEvent.id).limit(batch)))
        if not rows:
            return
        yield from rows
        after = rows[-1].id


@dataclass
class AuditReport:
    """Result of :func:`verify_chain`."""

    n_entries: int = 0
    head_id: int | None = None
    head_hash: str | None = None
    problems: list[str] = field(default_factory=list)
    #: id of the first entry signed with an audit key (None: plain SHA-256 throughout).
    signed_from: int | None = None

    @property
    def ok(self) -> bool:
        """True when the chain is intact."""
        return not self.problems


_UNKNOWN_KEY = b""


def verify_chain(session: Session, *, expect_head: str | None = None,
                 keys: Sequence[bytes] | None = None) -> AuditReport:
    """Recompute every hash and check the links and the id sequence.

    Parameters
    ----------
    expect_head : str, optional
        ``ID:HASH`` of a head recorded earlier; an error if that entry is gone
        or changed (detects deletion at the end of the trail).
    keys : sequence of bytes, optional
        Audit keys (default: :func:`load_audit_keys`). Entries from an ``audit_key``
        entry on must verify under the key it names. Given a key, a chain with no entry
        signed by any given key is an error (signing was removed); without one, signed
        entries cannot be checked and are reported.
    """
    keys = load_audit_keys() if keys is None else list(keys)
    by_fp = {key_fingerprint(k): k for k in keys}
    rep = AuditReport()
    prev_hash, prev_id = GENESIS, 0
    seen: dict[int, str] = {}
    want_id, want_hash = _parse_head(expect_head)
    key: bytes | None = None
    unchecked: list[int] = []
    for e in iter_events(session):
        rep.n_entries += 1
        if e.id != prev_id + 1:
            rep.problems.append(f"entry {e.id}: entries {prev_id + 1} to {e.id - 1} are missing")
        if e.prev_hash != prev_hash:
            rep.problems.append(f"entry {e.id}: prev_hash does not match the hash of entry {prev_id} "
                                "(an entry before it was changed, removed or inserted)")
        if e.action == _KEY_ACTION:
            fp = _fingerprint_of(e)
            key = by_fp.get(fp, _UNKNOWN_KEY)
            if key is _UNKNOWN_KEY and keys:
                rep.problems.append(f"entry {e.id}: signing starts with a key that was not given "
                                    f"(fingerprint {fp}; given: {', '.join(by_fp)})")
            if rep.signed_from is None:
                rep.signed_from = e.id
        if key is _UNKNOWN_KEY:
            unchecked.append(e.id)
        elif not hmac.compare_digest(entry_hash(e, key), e.hash):
            what = "the entry was edited" if key is None or e.hash != entry_hash(e) else \
                "it is not signed with the audit key (written without the key file, or forged)"
            rep.problems.append(f"entry {e.id}: content does not match its hash ({what})")
        if want_id is not None and e.id == want_id:
            seen[e.id] = e.hash
        prev_hash, prev_id = e.hash, e.id
        rep.head_id, rep.head_hash = e.id, e.hash
    if unchecked and not keys:
        rep.problems.append(f"entries {unchecked[0]} to {unchecked[-1]} are signed with an audit "
                            f"key: give the key file ({KEY_ENV} or --key-file) to check them")
    if keys and rep.n_entries and rep.signed_from is None:
        rep.problems.append("no entry is signed with the given key: the trail was never signed, "
                            "or its signed part was removed (start the server with the key to "
                            "begin signing)")
    if want_id is not None:
        if want_id not in seen:
            rep.problems.append(f"expected head entry {want_id} is missing (entries at the end were "
                                "deleted)")
        elif seen[want_id] != want_hash:
            rep.problems.append(f"expected head entry {want_id} has hash {seen[want_id][:12]}..., "
                                f"not {want_hash[:12]}...")
    return rep


def _fingerprint_of(e: schema.AuditEvent) -> str:
    try:
        return str(json.loads(e.after or "{}").get("fingerprint", ""))
    except (ValueError, AttributeError):
        return ""


def _parse_head(head: str | None) -> tuple[int | None, str]:
    if not head:
        return None, ""
    ident, _, digest = head.partition(":")
    try:
        return int(ident), digest.strip().lower()
    except ValueError as exc:
        raise ValueError(f"--expect-head must be ID:HASH, got {head!r}") from exc
