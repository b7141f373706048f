"""The append-only, hash-chained audit trail.

Every entry stores who did what, when, to which entity, with the state before
and after as canonical JSON. Entry ``n`` carries ``prev_hash`` (the hash of
entry ``n - 1``; 64 zeros for the first) and ``hash = sha256(prev_hash + "\\n" +
canonical JSON of the entry)``; ids are consecutive. Editing any field,
deleting an entry in the middle, inserting one or reordering breaks the chain,
which :func:`verify_chain` (``hikisig audit verify``) reports. Deleting entries
at the end is detected against a head recorded elsewhere (``verify`` prints the
head id and hash; ``--expect-head`` checks them).

Appends are serialised: on PostgreSQL by a transaction-scoped advisory lock,
on SQLite by the database's single writer plus the consecutive primary key
(two writers racing for the same id cannot both commit).
"""

from __future__ import annotations

import datetime as dt
import hashlib
import json
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import select, text
from sqlalchemy.orm import Session

from hikisig.cohort import schema

__all__ = ["GENESIS", "AuditReport", "append_event", "canonical", "entry_hash", "iter_events",
           "verify_chain"]

#: ``prev_hash`` of the first entry.
GENESIS = "0" * 64
_PG_LOCK_KEY = 0x68696B69  # "hiki"


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


def entry_hash(e: schema.AuditEvent) -> str:
    """The hash an entry must carry, from its fields and ``prev_hash``."""
    return hashlib.sha256(f"{e.prev_hash}\n{_payload(e)}".encode()).hexdigest()


def append_event(session: Session, *, actor: str, role: str, action: str, entity: str,
                 entity_id: Any = None, study: str | None = None, site: str | None = None,
                 before: Any = None, after: Any = None) -> schema.AuditEvent:
    """Append one entry in the caller's transaction (it commits or rolls back with the change).

    Examples
    --------
    >>> with store.session() as s:                                          # doctest: +SKIP
    ...     append_event(s, actor="ana", role="analyst", action="export", entity="dataset")
    """
    if action not in schema.AUDIT_ACTIONS:
        raise ValueError(f"unknown audit action {action!r}")
    if session.get_bind().dialect.name == "postgresql":
        session.execute(text("SELECT pg_advisory_xact_lock(:k)"), {"k": _PG_LOCK_KEY})
    last = session.execute(select(schema.AuditEvent.id, schema.AuditEvent.hash)
                           .order_by(schema.AuditEvent.id.desc()).limit(1)).first()
    e = schema.AuditEvent(
        id=(last[0] + 1) if last else 1, at=_now(), actor=actor, role=role, action=action,
        entity=entity, entity_id=None if entity_id is None else str(entity_id), study=study,
        site=site, before=canonical(before), after=canonical(after),
        prev_hash=last[1] if last else GENESIS)
    e.hash = entry_hash(e)
    session.add(e)
    session.flush()
    return e


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

    @property
    def ok(self) -> bool:
        """True when the chain is intact."""
        return not self.problems


def verify_chain(session: Session, *, expect_head: str | None = None) -> AuditReport:
    """Recompute every hash and check the links and the id sequence.

    Parameters
    ----------
    expect_head : str, optional
        ``ID:HASH`` of a head recorded earlier; an error if that entry is gone
        or changed (detects deletion at the end of the trail).
    """
    rep = AuditReport()
    prev_hash, prev_id = GENESIS, 0
    seen: dict[int, str] = {}
    want_id, want_hash = _parse_head(expect_head)
    for e in iter_events(session):
        rep.n_entries += 1
        if e.id != prev_id + 1:
            rep.problems.append(f"entry {e.id}: entries {prev_id + 1} to {e.id - 1} are missing")
        if e.prev_hash != prev_hash:
            rep.problems.append(f"entry {e.id}: prev_hash does not match the hash of entry {prev_id} "
                                "(an entry before it was changed, removed or inserted)")
        recomputed = entry_hash(e)
        if recomputed != e.hash:
            rep.problems.append(f"entry {e.id}: content does not match its hash (the entry was edited)")
        if want_id is not None and e.id == want_id:
            seen[e.id] = e.hash
        prev_hash, prev_id = e.hash, e.id
        rep.head_id, rep.head_hash = e.id, e.hash
    if want_id is not None:
        if want_id not in seen:
            rep.problems.append(f"expected head entry {want_id} is missing (entries at the end were "
                                "deleted)")
        elif seen[want_id] != want_hash:
            rep.problems.append(f"expected head entry {want_id} has hash {seen[want_id][:12]}..., "
                                f"not {want_hash[:12]}...")
    return rep


def _parse_head(head: str | None) -> tuple[int | None, str]:
    if not head:
        return None, ""
    ident, _, digest = head.partition(":")
    try:
        return int(ident), digest.strip().lower()
    except ValueError as exc:
        raise ValueError(f"--expect-head must be ID:HASH, got {head!r}") from exc
