"""Fixtures of the web-app tests: a clinic store with two sites and one user per role."""

from __future__ import annotations

import re
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from argon2 import PasswordHasher
from fastapi import FastAPI
from fastapi.testclient import TestClient

import hikisig.cohort.users as _users
from hikisig.cohort import schema
from hikisig.cohort.store import Store
from hikisig.cohort.users import add_user
from hikisig.web import WebSettings, create_app

# In-process tests hash with a cheap argon2id profile (the algorithm and code path are the
# same; only the cost differs) so that the suite stays fast. The production profile is
# checked in a fresh process by test_web_backends.py::test_production_password_profile.
_users._hasher = PasswordHasher(time_cost=1, memory_cost=1024, parallelism=1)
_users._DUMMY = _users._hasher.hash("not-a-password-of-anyone")

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


@pytest.fixture
def live_clinic(clinic: Clinic) -> Iterator[tuple[Clinic, str]]:
    """The app on a fresh clinic store, served by uvicorn on a free loopback port: (clinic, base URL)."""
    from .live import ThreadServer

    with ThreadServer(clinic.db, work_dir=clinic.work_dir) as srv:
        yield clinic, srv.url


# -- appended for the authorization, security, audit and CLI tests ---------------------------------
@pytest.fixture(scope="module")
def module_clinic(tmp_path_factory: pytest.TempPathFactory) -> Clinic:
    """A clinic store shared by the tests of one module (build it once: sign-ins are slow)."""
    return make_clinic(tmp_path_factory.mktemp("clinic"))


@pytest.fixture(scope="module")
def module_app(module_clinic: Clinic) -> Iterator[FastAPI]:
    """The app on the module's clinic store; analyses are not really started (``jobs.submit`` is a no-op)."""
    app = create_app(str(module_clinic.db), WebSettings(work_dir=module_clinic.work_dir))
    app.state.jobs.submit = lambda job_id: None
    yield app
    app.state.jobs.shutdown()
    app.state.store.dispose()


def session_for(app: FastAPI, name: str, *, base_url: str = "http://testserver") -> tuple[TestClient, str]:
    """A client with a session made directly in the store (no sign-in form, no argon2 hash check)."""
    from sqlalchemy import select

    from hikisig.web.context import SESSION_COOKIE, new_session

    with app.state.store.session() as s:
        user = s.scalar(select(schema.User).where(schema.User.name == name))
        assert user is not None, name
        token, csrf = new_session(s, user)
    c = TestClient(app, base_url=base_url, follow_redirects=False)
    c.cookies.set(SESSION_COOKIE, token)
    return c, csrf


@dataclass
class CliResult:
    """Exit code and output of one ``hikisig`` command run in this process."""

    code: int
    out: str
    err: str


def run_cli(*args: str, stdin: str = "") -> CliResult:
    """Run ``hikisig ARGS`` through the console script's entry point (exit code, stdout, stderr)."""
    import contextlib
    import io
    import sys

    from hikisig.cli import main

    out, err = io.StringIO(), io.StringIO()
    old_stdin, sys.stdin = sys.stdin, io.StringIO(stdin)
    code = 0
    try:
        with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
            try:
                main(list(args))
            except SystemExit as exc:
                code = exc.code if isinstance(exc.code, int) else (0 if exc.code is None else 1)
    finally:
        sys.stdin = old_stdin
    return CliResult(code, out.getvalue(), err.getvalue())


#: Debian's Chromium, installed by `make test` under CI.
CHROMIUM = "/usr/bin/chromium"


@pytest.fixture(scope="module")
def browser() -> Iterator[Any]:
    """A headless Chromium for one test module (modules using it skip when it is absent)."""
    from playwright.sync_api import sync_playwright

    with sync_playwright() as p:
        b = p.chromium.launch(executable_path=CHROMIUM, headless=True, args=[
            "--no-sandbox", "--disable-gpu", "--disable-background-networking",
            "--disable-component-update", "--disable-sync", "--no-first-run",
            "--disable-default-apps", "--disable-extensions"])
        yield b
        b.close()


def synthetic_store_at_sites(folder: Path, seed: int, sites: tuple[str, ...] = ("A",)
                             ) -> tuple[Store, str]:
    """A synthetic study (20 cases, 20 controls, 40 analytes) in a store at ``folder``, every
    participant at the first of ``sites`` (the other sites created empty)."""
    from sqlalchemy import update

    from hikisig.synth import SynthConfig, SyntheticStudy
    from hikisig.synth.writers import write_store

    db = folder / "s.db"
    write_store(SyntheticStudy(SynthConfig(n_cases=20, n_controls=20, n_analytes=40, seed=seed)),
                str(db))
    store = Store(db)
    study = store.study_names()[0]
    with store.session() as s:
        st = store.study(s, study)
        made = [schema.Site(study_id=st.id, code=code) for code in sites]
        s.add_all(made)
        s.flush()
        s.execute(update(schema.Participant).values(site_id=made[0].id))
    return store, study


def api_session(app: FastAPI, name: str, password: str = PASSWORD) -> tuple[TestClient, dict[str, str]]:
    """A JSON API client signed in as ``name`` and its CSRF header."""
    c = TestClient(app)
    r = c.post("/api/v1/session", json={"username": name, "password": password})
    assert r.status_code == 200, r.text
    return c, {"X-CSRF-Token": r.json()["csrf_token"]}
