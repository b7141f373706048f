"""The web app on both store backends (SQLite and PostgreSQL): the clinical flow under
concurrent writers keeps every submission and an intact audit chain."""

from __future__ import annotations

import threading
from pathlib import Path

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from hikisig.cohort import schema
from hikisig.cohort.audit import verify_chain
from hikisig.cohort.store import Store
from hikisig.cohort.users import add_user
from hikisig.web import WebSettings, create_app

PASSWORD = "correct horse battery"


def _populate(store: Store, n_clinicians: int) -> list[int]:
    with store.session() as s:
        study = store.study(s, "clinic", create=True)
        site = schema.Site(study_id=study.id, code="A")
        s.add(site)
        s.flush()
        people = [schema.Participant(study_id=study.id, site_id=site.id, code=f"P{k}", attributes={})
                  for k in range(n_clinicians)]
        s.add_all(people)
        s.flush()
        ids = [p.id for p in people]
    for k in range(n_clinicians):
        add_user(store, f"doc{k}", "clinician", PASSWORD, site="A")
    return ids


def test_concurrent_clinicians_lose_nothing_and_keep_the_chain(store: Store, tmp_path: Path):
    n, rounds = 6, 5
    ids = _populate(store, n)
    app = create_app(store.url, WebSettings(work_dir=tmp_path / "work"))
    errors: list[str] = []

    def clinician(k: int) -> None:
        c = TestClient(app)
        r = c.post("/api/v1/session", json={"username": f"doc{k}", "password": PASSWORD})
        h = {"X-CSRF-Token": r.json()["csrf_token"]}
        for _ in range(rounds):
            v = c.post(f"/api/v1/participants/{ids[k]}/visits", json={}, headers=h)
            if v.status_code != 201:
                errors.append(v.text)
                continue
            a = c.put(f"/api/v1/participants/{ids[k]}/visits/{v.json()['visit']}/assessments/phq9",
                      json={"answers": {f"item{i}": (i + k) % 4 for i in range(1, 10)}}, headers=h)
            if a.status_code != 200:
                errors.append(a.text)

    threads = [threading.Thread(target=clinician, args=(k,)) for k in range(n)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    try:
        assert errors == []
        with Session(store.engine) as s:
            assert s.scalar(select(func.count()).select_from(schema.Assessment)) == n * rounds
            assert s.scalar(select(func.count()).select_from(schema.AuditEvent)
                            .where(schema.AuditEvent.entity == "assessment")) == n * rounds
            rep = verify_chain(s)
        assert rep.ok, rep.problems
        # users (n) + logins (n) + visits and assessments (2 * n * rounds)
        assert rep.n_entries == n + n + 2 * n * rounds
    finally:
        app.state.jobs.shutdown()
        app.state.store.dispose()


def test_a_server_needs_an_initialised_store(tmp_path: Path):
    from hikisig.cohort.store import StoreError

    with pytest.raises(StoreError, match="not initialised"):
        create_app(str(tmp_path / "empty.db"))


def test_production_password_profile():
    """Outside the tests, passwords use argon2id with RFC 9106's low-memory profile."""
    import subprocess
    import sys

    code = "from hikisig.cohort.users import hash_password; print(hash_password('a long password'))"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.startswith("$argon2id$v=19$m=65536,t=3,p=4$")


def test_spawned_workers_do_not_rerun_the_command():
    """Analysis workers are spawned; re-importing ``python -m hikisig``'s main module must not run the CLI."""
    import subprocess
    import sys

    code = "import runpy; runpy.run_module('hikisig.__main__', run_name='__mp_main__'); print('imported')"
    r = subprocess.run([sys.executable, "-c", code, "serve"], capture_output=True, text=True)
    assert r.returncode == 0 and r.stdout.strip() == "imported", r.stderr
