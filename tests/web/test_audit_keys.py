"""A signed audit trail (HMAC with a key kept outside the database): an attacker who can write
to the database but has no key cannot hide an edit by recomputing the hashes."""

from __future__ import annotations

import hashlib
from pathlib import Path

import pytest
from sqlalchemy import select, update
from sqlalchemy.orm import Session

from hikisig.cohort import schema
from hikisig.cohort.audit import (
    KEY_ENV,
    append_event,
    ensure_key_entry,
    entry_hash,
    key_fingerprint,
    load_audit_keys,
    verify_chain,
)
from hikisig.cohort.store import Store
from hikisig.errors import HikisigError
from web.conftest import run_cli

K1 = b"k1-" + b"a" * 61
K2 = b"k2-" + b"b" * 61


@pytest.fixture
def store(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Store:
    monkeypatch.delenv(KEY_ENV, raising=False)
    st = Store(tmp_path / "a.db")
    st.init()
    return st


def _append(store: Store, n: int, keys: list[bytes], actor: str = "doc") -> None:
    with store.session() as s:
        for i in range(n):
            append_event(s, actor=actor, role="clinician", action="view", entity="participant",
                         entity_id=i, keys=keys)


def _verify(store: Store, keys: list[bytes]) -> list[str]:
    with Session(store.engine) as s:
        return verify_chain(s, keys=keys).problems


def _rows(store: Store) -> list[schema.AuditEvent]:
    with Session(store.engine) as s:
        return list(s.scalars(select(schema.AuditEvent).order_by(schema.AuditEvent.id)))


def _rechain(store: Store, start: int, key: bytes | None = None) -> None:
    """What an attacker with database access does after an edit: recompute every hash from
    ``start`` on (plain SHA-256, or an HMAC with a key of their own)."""
    with store.session() as s:
        prev = s.get(schema.AuditEvent, start - 1)
        for e in s.scalars(select(schema.AuditEvent).where(schema.AuditEvent.id >= start)
                           .order_by(schema.AuditEvent.id)):
            e.prev_hash = prev.hash if prev is not None else "0" * 64
            e.hash = entry_hash(e, key)
            s.flush()
            prev = e


def test_signing_starts_with_a_key_entry_and_verifies_only_with_the_key(store: Store) -> None:
    _append(store, 3, [])
    assert _verify(store, []) == []
    _append(store, 2, [K1])
    rows = _rows(store)
    assert [e.action for e in rows] == ["view"] * 3 + ["audit_key", "view", "view"]
    assert key_fingerprint(K1) in (rows[3].after or "")
    assert rows[4].hash != hashlib.sha256(f"{rows[4].prev_hash}\n".encode()).hexdigest()
    with Session(store.engine) as s:
        rep = verify_chain(s, keys=[K1])
    assert rep.ok and rep.signed_from == 4 and rep.n_entries == 6
    # without the key the signed part cannot be checked, and that is said
    assert _verify(store, []) == [f"entries 4 to 6 are signed with an audit key: give the key "
                                  f"file ({KEY_ENV} or --key-file) to check them"]
    # a second writer with the same key continues the signed chain (no new key entry)
    _append(store, 1, [K1])
    assert [e.action for e in _rows(store)][-2:] == ["view", "view"] and _verify(store, [K1]) == []


def test_an_edit_rehashed_without_the_key_is_detected(store: Store) -> None:
    _append(store, 2, [K1])
    _append(store, 2, [K1])
    with store.session() as s:
        s.execute(update(schema.AuditEvent).where(schema.AuditEvent.id == 3).values(actor="mallory"))
    _rechain(store, 3)  # plain SHA-256: every link is consistent again
    problems = _verify(store, [K1])
    assert problems[0] == ("entry 3: content does not match its hash (it is not signed with the "
                           "audit key (written without the key file, or forged))")
    assert len(problems) == 3  # entries 3, 4, 5
    _rechain(store, 3, key=b"m" * 64)  # a key of the attacker's own
    assert _verify(store, [K1])[0] == "entry 3: content does not match its hash (the entry was edited)"


def test_rewriting_the_unsigned_part_breaks_the_key_entry(store: Store) -> None:
    _append(store, 3, [])
    _append(store, 1, [K1])
    with store.session() as s:
        s.execute(update(schema.AuditEvent).where(schema.AuditEvent.id == 1).values(actor="mallory"))
    _rechain(store, 1)
    with store.session() as s:  # the key entry must then point at the new hash: its HMAC breaks
        e = s.get(schema.AuditEvent, 4)
        e.prev_hash = s.get(schema.AuditEvent, 3).hash
    assert _verify(store, [K1])[0].startswith("entry 4: content does not match its hash")


def test_removing_or_replacing_the_signed_part_is_detected(store: Store) -> None:
    _append(store, 2, [])
    _append(store, 2, [K1])
    with store.session() as s:
        s.execute(schema.AuditEvent.__table__.delete().where(schema.AuditEvent.id >= 3))
    _append(store, 1, [])  # forged plain entries after the removal
    assert _verify(store, [K1]) == [
        "no entry is signed with the given key: the trail was never signed, or its signed part "
        "was removed (start the server with the key to begin signing)"]
    # a key entry naming a key the verifier does not hold
    _append(store, 1, [b"m" * 64])
    problems = _verify(store, [K1])
    assert problems[0].startswith("entry 4: signing starts with a key that was not given "
                                  f"(fingerprint {key_fingerprint(b'm' * 64)}; given: "
                                  f"{key_fingerprint(K1)})")


def test_a_writer_without_the_key_after_signing_is_flagged(store: Store) -> None:
    _append(store, 2, [K1])
    _append(store, 1, [], actor="cli-without-key")
    assert _verify(store, [K1]) == [
        "entry 4: content does not match its hash (it is not signed with the audit key (written "
        "without the key file, or forged))"]


def test_key_rotation_keeps_old_entries_verifiable(store: Store) -> None:
    _append(store, 2, [K1])
    _append(store, 2, [K2, K1])  # the new key first
    rows = _rows(store)
    assert [e.action for e in rows] == ["audit_key", "view", "view", "audit_key", "view", "view"]
    assert _verify(store, [K2, K1]) == []
    only_new = _verify(store, [K2])
    assert len(only_new) == 1 and only_new[0].startswith("entry 1: signing starts with a key that "
                                                         "was not given")


def test_ensure_key_entry_at_start_up(store: Store) -> None:
    with store.session() as s:
        assert ensure_key_entry(s, []) is False
        assert ensure_key_entry(s, [K1], actor="hikisig serve") is True
        assert ensure_key_entry(s, [K1]) is False  # already signing with it
    rows = _rows(store)
    assert [(e.action, e.actor) for e in rows] == [("audit_key", "hikisig serve")]
    assert _verify(store, [K1]) == []


def test_key_file_errors(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv(KEY_ENV, raising=False)
    assert load_audit_keys() == []
    f = tmp_path / "audit.key"
    f.write_text(f"# current first\n{K2.decode()}\n\n{K1.decode()}\n")
    monkeypatch.setenv(KEY_ENV, str(f))
    assert load_audit_keys() == [K2, K1]
    with pytest.raises(HikisigError, match=r"audit key file .*missing.key: cannot read it"):
        load_audit_keys(tmp_path / "missing.key")
    (tmp_path / "empty.key").write_text("# nothing\n")
    with pytest.raises(HikisigError, match="no key in it"):
        load_audit_keys(tmp_path / "empty.key")
    (tmp_path / "short.key").write_text("secret\n")
    with pytest.raises(HikisigError, match="key 1 has 6 characters, expected at least 32"):
        load_audit_keys(tmp_path / "short.key")


def test_cli_verify_with_and_without_the_key_file(store: Store, tmp_path: Path) -> None:
    _append(store, 1, [])
    _append(store, 2, [K1])
    key_file = tmp_path / "audit.key"
    key_file.write_text(K1.decode() + "\n")
    db = str(tmp_path / "a.db")
    ok = run_cli("--db", db, "audit", "verify", "--key-file", str(key_file))
    assert ok.code == 0 and "audit trail intact: 4 entries; signed from entry 2 on" in ok.out, ok.err
    bare = run_cli("--db", db, "audit", "verify")
    assert bare.code == 1 and "entries 2 to 4 are signed with an audit key" in bare.err
    bad = run_cli("--db", db, "audit", "verify", "--key-file", str(tmp_path / "nope.key"))
    assert bad.code == 2 and "cannot read it" in bad.err


def test_writers_sign_with_the_key_file_of_the_environment(store: Store, tmp_path: Path,
                                                           monkeypatch: pytest.MonkeyPatch) -> None:
    """Every writer (web app, user commands) reads the key file named by the environment, which
    ``hikisig serve --key-file`` sets for itself and its analysis workers."""
    key_file = tmp_path / "audit.key"
    key_file.write_text(K1.decode() + "\n")
    monkeypatch.setenv(KEY_ENV, str(key_file))
    r = run_cli("--db", str(tmp_path / "a.db"), "user", "add", "boss", "--role", "admin",
                "--password-stdin", stdin="correct horse battery staple\n")
    assert r.code == 0, r.err
    assert [e.action for e in _rows(store)] == ["audit_key", "create"]
    assert _verify(store, [K1]) == [] and _verify(store, []) != []
    monkeypatch.delenv(KEY_ENV)
    ok = run_cli("--db", str(tmp_path / "a.db"), "audit", "verify", "--key-file", str(key_file))
    assert ok.code == 0, ok.err


def test_serve_with_a_key_file_signs_from_start_up(store: Store, tmp_path: Path) -> None:
    """A real ``hikisig serve --key-file`` process: the key entry at start-up, then a signed
    sign-in entry; the trail verifies with the key file."""
    import httpx

    from web.live import ProcessServer

    assert run_cli("--db", str(tmp_path / "a.db"), "user", "add", "doc", "--role", "clinician",
                   "--site", "S1", "--password-stdin", stdin="correct horse battery staple\n").code == 0
    key_file = tmp_path / "audit.key"
    key_file.write_text(K1.decode() + "\n")
    srv = ProcessServer(tmp_path / "a.db", work_dir=tmp_path / "work",
                        extra_args=("--key-file", str(key_file))).start()
    try:
        with httpx.Client(base_url=srv.url, timeout=30.0) as c:
            page = c.get("/login")
            token = page.text.split('name="csrf_token" value="', 1)[1].split('"', 1)[0]
            r = c.post("/login", data={"username": "doc", "password": "correct horse battery staple",
                                       "csrf_token": token})
            assert r.status_code in (200, 303), r.text[:300]
    finally:
        srv.stop()
    assert [(e.action, e.actor) for e in _rows(store)] == [
        ("create", "cli"), ("audit_key", "hikisig serve"), ("login", "doc")]
    assert _verify(store, [K1]) == []


def test_auditor_sees_the_signed_trail_verified_in_the_app(tmp_path: Path,
                                                           monkeypatch: pytest.MonkeyPatch) -> None:
    """The app verifies with the key of its environment: the audit page and the API say from
    which entry the trail is signed; an edit re-hashed without the key shows as broken."""
    from hikisig.web import WebSettings, create_app
    from web.conftest import login, make_clinic

    key_file = tmp_path / "audit.key"
    key_file.write_text(K1.decode() + "\n")
    monkeypatch.setenv(KEY_ENV, str(key_file))
    clinic = make_clinic(tmp_path)
    app = create_app(str(clinic.db), WebSettings(work_dir=clinic.work_dir))
    try:
        aud, _ = login(app, "aud")
        body = aud.get("/api/v1/audit/verify").json()
        assert body["ok"] and body["signed_from"] == 1 and body["problems"] == []
        assert "signed with the audit key from entry 1" in aud.get("/audit?verify=1").text
        with clinic.store.session() as s:
            s.execute(update(schema.AuditEvent).where(schema.AuditEvent.id == 2)
                      .values(actor="mallory"))
        _rechain(clinic.store, 2)
        body = aud.get("/api/v1/audit/verify").json()
        assert not body["ok"] and "entry 2: content does not match its hash" in body["problems"][0]
    finally:
        app.state.jobs.shutdown()
        app.state.store.dispose()
