"""Fixtures of the web-app tests: a clinic store with two sites and one user per role."""

from __future__ import annotations

import re
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient

from hikisig.cohort import schema
from hikisig.cohort.store import Store
from hikisig.cohort.users import add_user
from hikisig.web import WebSettings, create_app

PASSWORD = "correct horse battery"
#: name -> (role, site)
USERS = {"admin1": ("admin", None), "docA": ("clinician", "A"), "docB": ("clinician", "B"),
         "ana": ("analyst", None), "aud": ("auditor", None)}


@dataclass
class Clinic:
    """A store with study 'clinic', sites A and B, participants PA (site A) and PB (site B),
    each with visit 1, and one user per role."""

    db: Path
    store: Store
    pid_a: int
    pid_b: int
    work_dir: Path


def make_clinic(folder: Path) -> Clinic:
    """Build the clinic store in ``folder``."""
    db = folder / "clinic.db"
    store = Store(db)
    store.init()
    with store.session() as s:
        study = store.study(s, "clinic", create=True)
        site_a, site_b = schema.Site(study_id=study.id, code="A"), schema.Site(study_id=study.id, code="B")
        s.add_all([site_a, site_b])
        s.flush()
        pa = schema.Participant(study_id=study.id, site_id=site_a.id, code="PA", sex="F", attributes={})
        pb = schema.Participant(study_id=study.id, site_id=site_b.id, code="PB", sex="M", attributes={})
        s.add_all([pa, pb])
        s.flush()
        s.add_all([schema.Visit(participant_id=pa.id, visit_index=1),
                   schema.Visit(participant_id=pb.id, visit_index=1)])
        ids = (pa.id, pb.id)
    for name, (role, site) in USERS.items():
        add_user(store, name, role, PASSWORD, site=site)
    return Clinic(db, store, ids[0], ids[1], folder / "work")


@pytest.fixture
def clinic(tmp_path: Path) -> Clinic:
    """A fresh clinic store."""
    return make_clinic(tmp_path)


@pytest.fixture
def web_app(clinic: Clinic) -> Iterator[FastAPI]:
    """The app on the clinic store."""
    app = create_app(str(clinic.db), WebSettings(work_dir=clinic.work_dir))
    yield app
    app.state.jobs.shutdown()
    app.state.store.dispose()


def login(app: FastAPI, name: str, password: str = PASSWORD) -> tuple[TestClient, str]:
    """A client signed in through the sign-in form; returns it and the session's CSRF token."""
    c = TestClient(app)
    r = c.get("/login")
    tok = re.search(r'name="csrf_token" value="([^"]+)"', r.text)
    assert tok is not None
    r = c.post("/login", data={"username": name, "password": password, "csrf_token": tok.group(1)},
               follow_redirects=False)
    assert r.status_code == 303, r.text
    me = c.get("/api/v1/me")
    assert me.status_code == 200
    return c, me.json()["csrf_token"]
