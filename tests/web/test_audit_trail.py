"""The audit trail: what is recorded (who, what, before, after) and that tampering is detected."""

from __future__ import annotations

import itertools
import json
import os
import sqlite3
import subprocess
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient
from sqlalchemy import select
from sqlalchemy.orm import Session

from hikisig.assess.definition import load_instrument
from hikisig.cohort import schema
from hikisig.cohort.audit import GENESIS, entry_hash, verify_chain
from hikisig.cohort.store import Store
from web.conftest import PASSWORD, Clinic, login, run_cli


@dataclass
class Trail:
    """The module's store after a clinic day, with the ids the day produced."""

    clinic: Clinic
    app: FastAPI
    ids: dict[str, Any]


def _last(store: Store, n: int = 1) -> list[schema.AuditEvent]:
    with Session(store.engine) as s:
        rows = list(s.scalars(select(schema.AuditEvent).order_by(schema.AuditEvent.id.desc()).limit(n)))
    return rows[::-1]


def _j(text: str | None) -> Any:
    return None if text is None else json.loads(text)


@pytest.fixture(scope="module")
def trail(module_app: FastAPI, module_clinic: Clinic) -> Iterator[Trail]:
    yield Trail(module_clinic, module_app, {})


def test_each_action_adds_an_entry_with_who_what_before_after(trail: Trail) -> None:
    app, store, pa = trail.app, trail.clinic.store, trail.clinic.pid_a
    inst = load_instrument("phq9")

    # sign-in
    doc, csrf = login(app, "docA")
    doc.follow_redirects = False
    signin = [e for e in _last(store, 3) if e.action == "login"]
    assert len(signin) == 1
    e = signin[0]
    assert (e.actor, e.role, e.entity, e.entity_id, e.site) == ("docA", "clinician", "user", "docA", "A")
    assert _j(e.after)["ip"] == "testclient"

    # a failed sign-in (unknown name and wrong password) is recorded too, without the password
    TestClient(app).post("/api/v1/session", json={"username": "docA", "password": "guess-guess-1"})
    (e,) = _last(store)
    assert (e.action, e.actor, _j(e.after)["reason"]) == ("login_failed", "docA", "wrong password")
    assert "guess-guess-1" not in (e.after or "")

    # viewing a participant
    assert doc.get(f"/participants/{pa}").status_code == 200
    (e,) = _last(store)
    assert (e.actor, e.role, e.action, e.entity, e.entity_id, e.study, e.site) == (
        "docA", "clinician", "view", "participant", str(pa), "clinic", "A")
    assert doc.get(f"/api/v1/participants/{pa}").status_code == 200
    (e,) = _last(store)
    assert (e.action, e.entity, e.entity_id, _j(e.after)) == ("view", "participant", str(pa), {"via": "api"})

    # creating a participant
    r = doc.post("/participants", data={"csrf_token": csrf, "study": "clinic", "code": "AUD-001", "sex": "F",
                                        "birth_year": "2001"})
    assert r.status_code == 303
    new_id = int(r.headers["location"].rsplit("/", 1)[1])
    (e,) = _last(store)
    assert (e.actor, e.action, e.entity, e.entity_id, e.site, e.before) == (
        "docA", "create", "participant", str(new_id), "A", None)
    assert _j(e.after) == {"id": new_id, "code": "AUD-001", "study": "clinic", "site": "A", "sex": "F",
                                "birth_year": 2001, "age": None, "group": None}

    # a visit
    assert doc.post(f"/participants/{new_id}/visits", data={"csrf_token": csrf,
                                                            "visit_date": "2024-03-04"}).status_code == 303
    (e,) = _last(store)
    assert (e.action, e.entity, e.site) == ("create", "visit", "A")
    assert _j(e.after) == {"participant": new_id, "visit": 1, "date": "2024-03-04"}

    # a questionnaire, then a correction of it: before and after are recorded
    first = {c: "1" for c in inst.item_columns}
    url = f"/participants/{new_id}/visits/1/assess/phq9"
    assert doc.post(url, data={"csrf_token": csrf, **first}).status_code == 303
    (created,) = _last(store)
    assert (created.action, created.entity, created.before) == ("create", "assessment", None)
    after = _j(created.after)
    assert after["instrument"] == "phq9" and after["visit"] == 1 and after["participant"] == new_id
    assert after["answers"] == {c: 1.0 for c in inst.item_columns}
    assert after["scores"]["total"] == inst.n_items
    second = {**first, "item1": "3"}
    assert doc.post(url, data={"csrf_token": csrf, **second}).status_code == 303
    (updated,) = _last(store)
    assert (updated.action, updated.entity, updated.entity_id) == ("update", "assessment", created.entity_id)
    assert _j(updated.before)["answers"]["item1"] == 1.0
    assert _j(updated.before)["scores"]["total"] == inst.n_items
    assert _j(updated.after)["answers"]["item1"] == 3.0
    assert _j(updated.after)["scores"]["total"] == inst.n_items + 2
    # through the API as well
    r = doc.put(f"/api/v1/participants/{new_id}/visits/1/assessments/phq9", headers={"X-CSRF-Token": csrf},
                json={"answers": {c: 0 for c in inst.item_columns}})
    assert r.status_code == 200
    (api_upd,) = _last(store)
    assert api_upd.action == "update" and _j(api_upd.before)["answers"]["item1"] == 3.0

    # the criteria checklist, then a change
    crit = {"csrf_token": csrf, "days_out_per_week": "1", "rarely_leaves_room": "no", "months_isolated": "8",
            "impairment": "yes", "distress": "no"}
    assert doc.post(f"/participants/{new_id}/visits/1/criteria", data=crit).status_code == 303
    (e,) = _last(store)
    assert (e.action, e.entity, e.before) == ("create", "criteria", None)
    assert _j(e.after)["months_isolated"] == 8.0 and _j(e.after)["status"]
    assert doc.post(f"/participants/{new_id}/visits/1/criteria",
                    data={**crit, "months_isolated": "2"}).status_code == 303
    (e,) = _last(store)
    assert e.action == "update" and _j(e.before)["months_isolated"] == 8.0
    assert _j(e.after)["months_isolated"] == 2.0

    # an export of the pseudonymised data
    ana, _ = login(app, "ana")
    r = ana.get("/data/export.csv", params={"study": "clinic"})
    assert r.status_code == 200
    (e,) = _last(store)
    assert (e.actor, e.role, e.action, e.entity, e.entity_id, e.study) == (
        "ana", "analyst", "export", "dataset", "clinic", "clinic")
    assert _j(e.after)["pseudonymised"] is True and _j(e.after)["format"] == "csv"

    # signing out
    assert doc.post("/logout", data={"csrf_token": csrf}).status_code == 303
    (e,) = _last(store)
    assert (e.actor, e.action, e.entity) == ("docA", "logout", "user")

    # every entry is linked to the one before it, and the whole chain verifies
    with Session(store.engine) as s:
        rows = list(s.scalars(select(schema.AuditEvent).order_by(schema.AuditEvent.id)))
        rep = verify_chain(s)
    assert rows[0].prev_hash == GENESIS
    assert [r.id for r in rows] == list(range(1, len(rows) + 1))
    assert all(b.prev_hash == a.hash and b.hash == entry_hash(b) for a, b in itertools.pairwise(rows))
    assert rep.ok and rep.n_entries == len(rows) and rep.head_id == rows[-1].id
    aud, _ = login(app, "aud")
    r = aud.get("/api/v1/audit/verify")
    assert r.status_code == 200 and r.json()["ok"] is True and r.json()["problems"] == []


# -- tampering ---------------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def intact(tmp_path_factory: pytest.TempPathFactory, module_clinic: Clinic) -> Path:
    """A store whose trail has some entries (users, sign-ins, views) and verifies."""
    from hikisig.web import WebSettings, create_app
    from web.conftest import session_for

    app = create_app(str(module_clinic.db), WebSettings(work_dir=module_clinic.work_dir))
    c, _ = session_for(app, "aud")
    for pid in (module_clinic.pid_a, module_clinic.pid_b) * 3:
        assert c.get(f"/api/v1/participants/{pid}").status_code == 200
    TestClient(app).post("/api/v1/session", json={"username": "aud", "password": PASSWORD + "x"})
    app.state.store.dispose()
    module_clinic.store.dispose()
    path = tmp_path_factory.mktemp("intact") / "intact.db"
    _backup(module_clinic.db, path)
    return path


def _backup(source: Path, target: Path) -> None:
    src, dst = sqlite3.connect(source), sqlite3.connect(target)
    try:
        src.backup(dst)
    finally:
        dst.close()
        src.close()


@pytest.fixture
def copy(intact: Path, tmp_path: Path) -> Path:
    path = tmp_path / "trail.db"
    _backup(intact, path)
    return path


def _sql(db: Path, *statements: str, params: tuple[Any, ...] = ()) -> None:
    con = sqlite3.connect(db)
    try:
        for st in statements:
            con.execute(st, params if "?" in st else ())
        con.commit()
    finally:
        con.close()


def _verify(db: Path, expect_head: str | None = None) -> Any:
    store = Store(db)
    try:
        with Session(store.engine) as s:
            return verify_chain(s, expect_head=expect_head)
    finally:
        store.dispose()


def _count(db: Path) -> int:
    con = sqlite3.connect(db)
    try:
        return int(con.execute("SELECT count(*) FROM audit_event").fetchone()[0])
    finally:
        con.close()


def test_untouched_trail_verifies_by_function_and_cli(copy: Path) -> None:
    rep = _verify(copy)
    assert rep.ok and rep.problems == [] and rep.n_entries == _count(copy) > 10
    r = run_cli("--db", str(copy), "audit", "verify")
    assert r.code == 0, r.err
    assert "intact" in r.out and f"head {rep.head_id}:{rep.head_hash}" in r.out
    r = run_cli("--db", str(copy), "audit", "verify", "--expect-head", f"{rep.head_id}:{rep.head_hash}")
    assert r.code == 0 and "intact" in r.out


def _assert_cli_names(db: Path, entry: int, *extra: str) -> None:
    r = run_cli("--db", str(db), "audit", "verify", *extra)
    assert r.code == 1, (r.out, r.err)
    assert f"TAMPERED: entry {entry}:" in r.err or f"head entry {entry} " in r.err, r.err
    assert "BROKEN" in r.err and "intact" not in r.out and "Traceback" not in r.err


def test_edited_entry_is_detected(copy: Path) -> None:
    target = 5
    _sql(copy, "UPDATE audit_event SET after = '{\"ip\":\"10.9.9.9\"}' WHERE id = ?", params=(target,))
    rep = _verify(copy)
    assert not rep.ok
    assert rep.problems == [f"entry {target}: content does not match its hash (the entry was edited)"]
    _assert_cli_names(copy, target)


def test_edited_entry_with_recomputed_hash_breaks_the_next_link(copy: Path) -> None:
    """A forger who also recomputes the edited entry's hash is caught by the next entry's prev_hash."""
    target = 6
    store = Store(copy)
    with store.session() as s:
        e = s.get(schema.AuditEvent, target)
        assert e is not None
        e.actor = "someone-else"
        e.hash = entry_hash(e)
    store.dispose()
    rep = _verify(copy)
    assert not rep.ok
    assert any(p.startswith(f"entry {target + 1}: prev_hash does not match") for p in rep.problems)
    _assert_cli_names(copy, target + 1)


def test_deleted_middle_entry_is_detected(copy: Path) -> None:
    target = 4
    _sql(copy, f"DELETE FROM audit_event WHERE id = {target}")
    rep = _verify(copy)
    assert not rep.ok
    assert f"entry {target + 1}: entries {target} to {target} are missing" in rep.problems
    assert any(p.startswith(f"entry {target + 1}: prev_hash does not match") for p in rep.problems)
    _assert_cli_names(copy, target + 1)


def test_inserted_forged_entry_is_detected(copy: Path) -> None:
    """A forged entry slipped in after entry 3 (later ids shifted up), with a well-formed own hash."""
    n = _count(copy)
    _sql(copy, "UPDATE audit_event SET id = id + 100000 WHERE id > 3",
         "UPDATE audit_event SET id = id - 100000 + 1 WHERE id > 100000")
    store = Store(copy)
    with store.session() as s:
        prev = s.get(schema.AuditEvent, 3)
        assert prev is not None
        forged = schema.AuditEvent(id=4, at=prev.at, actor="admin1", role="admin", action="update",
                                   entity="user", entity_id="docB", after='{"role":"admin"}',
                                   prev_hash=prev.hash)
        forged.hash = entry_hash(forged)
        s.add(forged)
    store.dispose()
    assert _count(copy) == n + 1
    rep = _verify(copy)
    assert not rep.ok
    assert any(p.startswith("entry 5: prev_hash does not match") for p in rep.problems)
    assert "entry 5: content does not match its hash (the entry was edited)" in rep.problems
    _assert_cli_names(copy, 5)


def test_appended_entry_with_a_made_up_hash_is_detected(copy: Path) -> None:
    n = _count(copy)
    _sql(copy, "INSERT INTO audit_event (id, at, actor, role, action, entity, entity_id, study, site, "
               "before, after, prev_hash, hash) SELECT id + 1, at, 'mallory', role, 'view', entity, "
               "entity_id, study, site, before, after, hash, ? FROM audit_event WHERE id = ?",
         params=("f" * 64, n))
    rep = _verify(copy)
    assert rep.problems == [f"entry {n + 1}: content does not match its hash (the entry was edited)"]
    _assert_cli_names(copy, n + 1)


def test_entries_deleted_at_the_end_are_detected_against_the_head(copy: Path) -> None:
    rep = _verify(copy)
    head = f"{rep.head_id}:{rep.head_hash}"
    _sql(copy, f"DELETE FROM audit_event WHERE id > {rep.head_id - 2}")
    # the chain itself is still consistent: only the recorded head shows the loss
    assert _verify(copy).ok
    after = _verify(copy, expect_head=head)
    assert not after.ok
    assert after.problems == [
        f"expected head entry {rep.head_id} is missing (entries at the end were deleted)"]
    _assert_cli_names(copy, rep.head_id, "--expect-head", head)
    # a head whose hash does not match (the entry was replaced) is reported too
    wrong = f"{rep.head_id - 2}:{'0' * 64}"
    r = run_cli("--db", str(copy), "audit", "verify", "--expect-head", wrong)
    assert r.code == 1 and f"expected head entry {rep.head_id - 2} has hash" in r.err


def test_malformed_expect_head_is_a_usage_error(copy: Path) -> None:
    r = run_cli("--db", str(copy), "audit", "verify", "--expect-head", "latest")
    assert r.code == 2
    assert r.err.strip().splitlines() == ["error: --expect-head must be ID:HASH, got 'latest'"]


def test_cli_exit_codes_as_a_real_process(copy: Path) -> None:
    """The console script itself (not only its entry point in this process) exits 0 and 1."""
    env = {**os.environ, "HIKISIG_DB": "unused.db"}
    cmd = [sys.executable, "-m", "hikisig", "--db", str(copy), "audit", "verify"]
    ok = subprocess.run(cmd, capture_output=True, text=True, env=env, timeout=120)
    assert ok.returncode == 0 and "audit trail intact" in ok.stdout, ok.stderr
    _sql(copy, "UPDATE audit_event SET actor = 'nobody' WHERE id = 2")
    bad = subprocess.run(cmd, capture_output=True, text=True, env=env, timeout=120)
    assert bad.returncode == 1
    assert "TAMPERED: entry 2: content does not match its hash" in bad.stderr
    assert "Traceback" not in bad.stderr
