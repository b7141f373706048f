"""Once the audit trail is signed, no writer without the key may append to it (it would break the
signed chain): every CLI command that writes audit entries refuses with one line and exit 2."""

from __future__ import annotations

from pathlib import Path

import pytest
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from hikisig.cohort import schema
from hikisig.cohort.audit import KEY_ENV, AuditKeyMissingError, append_event, verify_chain
from hikisig.cohort.store import Store
from web.conftest import run_cli  # also installs the cheap password hasher

KEY = "k1-" + "a" * 61
PW = "correct horse battery staple\n"


@pytest.fixture
def signed(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> tuple[Path, Path]:
    """A store whose trail is signed (an admin added with the key); returns (db, key file)."""
    monkeypatch.delenv(KEY_ENV, raising=False)
    db, key = tmp_path / "a.db", tmp_path / "audit.key"
    key.write_text(KEY + "\n")
    Store(db).init()
    monkeypatch.setenv(KEY_ENV, str(key))
    r = run_cli("--db", str(db), "user", "add", "boss", "--role", "admin", "--password-stdin", stdin=PW)
    assert r.code == 0, r.err
    monkeypatch.delenv(KEY_ENV)
    return db, key


def _entries(db: Path) -> int:
    with Session(Store(db).engine) as s:
        return int(s.scalar(select(func.count()).select_from(schema.AuditEvent)) or 0)


@pytest.mark.parametrize("args", [
    ("user", "add", "kato", "--role", "analyst", "--password-stdin"),
    ("user", "passwd", "boss", "--password-stdin"),
    ("user", "unlock", "boss"),
    ("user", "disable", "boss"),
])
def test_cli_writers_without_the_key_are_refused(signed: tuple[Path, Path], args: tuple[str, ...]) -> None:
    db, _ = signed
    before = _entries(db)
    r = run_cli("--db", str(db), *args, stdin=PW)
    assert r.code == 2, (r.out, r.err)
    lines = [ln for ln in r.err.splitlines() if ln.strip()]
    assert len(lines) == 1 and "audit trail of this store is signed" in lines[0], r.err
    assert _entries(db) == before
    with Session(Store(db).engine) as s:
        assert s.scalar(select(func.count()).select_from(schema.User)) == 1  # nothing written
        assert verify_chain(s, keys=[KEY.encode()]).ok


def test_with_the_key_the_same_command_works(signed: tuple[Path, Path],
                                             monkeypatch: pytest.MonkeyPatch) -> None:
    db, key = signed
    monkeypatch.setenv(KEY_ENV, str(key))
    r = run_cli("--db", str(db), "user", "add", "kato", "--role", "analyst", "--password-stdin", stdin=PW)
    assert r.code == 0, r.err
    monkeypatch.delenv(KEY_ENV)
    ok = run_cli("--db", str(db), "audit", "verify", "--key-file", str(key))
    assert ok.code == 0, ok.err


def test_core_refuses_every_writer_and_unsigned_stores_are_unaffected(tmp_path: Path,
                                                                      signed: tuple[Path, Path]) -> None:
    db, _ = signed
    store = Store(db)
    with pytest.raises(AuditKeyMissingError), store.session() as s:  # e.g. the web app's audit()
        append_event(s, actor="x", role="admin", action="view", entity="user")
    plain = Store(tmp_path / "plain.db")
    plain.init()
    r = run_cli("--db", str(tmp_path / "plain.db"), "user", "add", "a1", "--role", "admin",
                "--password-stdin", stdin=PW)
    assert r.code == 0, r.err


def test_serve_refuses_to_start_without_the_key(signed: tuple[Path, Path]) -> None:
    db, _ = signed
    r = run_cli("--db", str(db), "serve", "--port", "1")
    assert r.code == 2 and "audit trail of this store is signed" in r.err, r.err
