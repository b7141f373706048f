"""``hikisig user ...``, ``hikisig audit list`` and ``hikisig serve`` on the command line."""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient
from sqlalchemy import select

from hikisig.cohort import schema
from hikisig.cohort.store import Store
from hikisig.web import WebSettings, create_app
from web.conftest import PASSWORD, Clinic, run_cli, session_for

NEW_PASSWORD = "a much longer passphrase"


def _sign_in(app: FastAPI, name: str, password: str) -> int:
    return TestClient(app).post("/api/v1/session", json={"username": name, "password": password}).status_code


@pytest.fixture(scope="module")
def app(module_clinic: Clinic) -> Iterator[FastAPI]:
    application = create_app(str(module_clinic.db), WebSettings(work_dir=module_clinic.work_dir))
    yield application
    application.state.jobs.shutdown()
    application.state.store.dispose()


def _user(store: Store, name: str) -> schema.User | None:
    with store.session() as s:
        user = s.scalar(select(schema.User).where(schema.User.name == name))
        if user is not None:
            s.expunge(user)
        return user


def test_user_add_from_stdin_as_a_real_process(module_clinic: Clinic, app: FastAPI) -> None:
    env = {**os.environ, "HIKISIG_DB": "unused.db"}
    proc = subprocess.run([sys.executable, "-m", "hikisig", "--db", str(module_clinic.db), "user", "add",
                           "kato", "--role", "clinician", "--site", "A", "--password-stdin"],
                          input=PASSWORD + "\n", capture_output=True, text=True, env=env, timeout=120)
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.strip() == "added kato (clinician, site A)"
    assert PASSWORD not in proc.stdout + proc.stderr
    user = _user(module_clinic.store, "kato")
    assert user is not None and (user.role, user.site, user.active) == ("clinician", "A", True)
    assert user.password_hash.startswith("$argon2id$")
    assert _sign_in(app, "kato", PASSWORD) == 200
    assert _sign_in(app, "kato", PASSWORD + "!") == 401


def test_user_add_in_process(module_clinic: Clinic, app: FastAPI) -> None:
    r = run_cli("--db", str(module_clinic.db), "user", "add", "mori", "--role", "auditor", "--password-stdin",
                stdin=PASSWORD + "\n")
    assert r.code == 0 and r.out.strip() == "added mori (auditor)", r.err
    assert _sign_in(app, "mori", PASSWORD) == 200


@pytest.mark.parametrize(("args", "stdin", "message"), [
    (["nosite", "--role", "clinician"], PASSWORD, "a clinician needs --site"),
    (["badrole", "--role", "superuser"], PASSWORD, "unknown role 'superuser'"),
    (["shortpw", "--role", "analyst"], "short", "at least 10 characters"),
    (["docA", "--role", "analyst"], PASSWORD, "user 'docA' exists already"),
    (["bad name!", "--role", "analyst"], PASSWORD, "user name 'bad name!'"),
    (["emptypw", "--role", "analyst"], "", "no password on standard input"),
])
def test_user_add_errors_exit_2_with_one_line(module_clinic: Clinic, args: list[str], stdin: str,
                                               message: str) -> None:
    with module_clinic.store.session() as s:
        before = len(list(s.scalars(select(schema.User.name))))
    r = run_cli("--db", str(module_clinic.db), "user", "add", *args, "--password-stdin",
                stdin=stdin + "\n" if stdin else "")
    assert r.code == 2, (r.out, r.err)
    lines = r.err.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: ") and message in lines[0], r.err
    assert "Traceback" not in r.err and r.out == ""
    with module_clinic.store.session() as s:
        assert len(list(s.scalars(select(schema.User.name)))) == before


def test_password_equal_to_the_name_is_refused(module_clinic: Clinic) -> None:
    r = run_cli("--db", str(module_clinic.db), "user", "add", "longusername", "--role", "analyst",
                "--password-stdin", stdin="LongUserName\n")
    assert r.code == 2 and r.err.strip() == "error: the password must differ from the user name"


def test_user_list(module_clinic: Clinic) -> None:
    r = run_cli("--db", str(module_clinic.db), "user", "list")
    assert r.code == 0, r.err
    rows = {line.split("\t")[0]: line.split("\t") for line in r.out.strip().splitlines()}
    assert rows["docA"][1:4] == ["clinician", "A", "active"]
    assert rows["admin1"][1:4] == ["admin", "-", "active"]
    assert rows["aud"][1:4] == ["auditor", "-", "active"]
    assert "$argon2" not in r.out and PASSWORD not in r.out


def test_user_passwd_replaces_the_password_and_ends_sessions(module_clinic: Clinic, app: FastAPI) -> None:
    db = str(module_clinic.db)
    assert run_cli("--db", db, "user", "add", "pwuser", "--role", "analyst", "--password-stdin",
                   stdin=PASSWORD + "\n").code == 0
    old_session, _ = session_for(app, "pwuser")
    assert old_session.get("/api/v1/me").status_code == 200
    r = run_cli("--db", db, "user", "passwd", "pwuser", "--password-stdin", stdin=NEW_PASSWORD + "\n")
    assert r.code == 0 and r.out.strip() == "password of pwuser changed", r.err
    assert old_session.get("/api/v1/me").status_code == 401
    assert _sign_in(app, "pwuser", PASSWORD) == 401
    assert _sign_in(app, "pwuser", NEW_PASSWORD) == 200
    r = run_cli("--db", db, "user", "passwd", "pwuser", "--password-stdin", stdin="short\n")
    assert r.code == 2 and r.err.strip().startswith("error: the password must have at least")
    r = run_cli("--db", db, "user", "passwd", "nobody", "--password-stdin", stdin=NEW_PASSWORD + "\n")
    assert r.code == 2 and r.err.strip() == "error: no user named 'nobody'"


def test_user_disable_and_enable(module_clinic: Clinic, app: FastAPI) -> None:
    db = str(module_clinic.db)
    assert run_cli("--db", db, "user", "add", "temp", "--role", "auditor", "--password-stdin",
                   stdin=PASSWORD + "\n").code == 0
    open_session, _ = session_for(app, "temp")
    r = run_cli("--db", db, "user", "disable", "temp")
    assert r.code == 0 and r.out.strip() == "temp disabled", r.err
    assert _sign_in(app, "temp", PASSWORD) == 401
    assert open_session.get("/api/v1/me").status_code == 401
    user = _user(module_clinic.store, "temp")
    assert user is not None and user.active is False
    listed = run_cli("--db", db, "user", "list").out
    assert any(line.startswith("temp\t") and "\tdisabled\t" in line for line in listed.splitlines())
    r = run_cli("--db", db, "user", "disable", "temp", "--enable")
    assert r.code == 0 and r.out.strip() == "temp enabled"
    assert _sign_in(app, "temp", PASSWORD) == 200
    r = run_cli("--db", db, "user", "disable", "ghost")
    assert r.code == 2 and r.err.strip() == "error: no user named 'ghost'"


def test_user_unlock_clears_a_lockout(module_clinic: Clinic, app: FastAPI) -> None:
    db = str(module_clinic.db)
    assert run_cli("--db", db, "user", "add", "locked1", "--role", "analyst", "--password-stdin",
                   stdin=PASSWORD + "\n").code == 0
    for _ in range(5):
        assert _sign_in(app, "locked1", "wrong wrong wrong") == 401
    assert _sign_in(app, "locked1", PASSWORD) == 401
    listed = run_cli("--db", db, "user", "list").out
    row = next(line.split("\t") for line in listed.splitlines() if line.startswith("locked1\t"))
    assert row[4] != "-", "locked until is shown"
    r = run_cli("--db", db, "user", "unlock", "locked1")
    assert r.code == 0 and r.out.strip() == "locked1 unlocked"
    assert _sign_in(app, "locked1", PASSWORD) == 200


def test_audit_list(module_clinic: Clinic, app: FastAPI) -> None:
    db = str(module_clinic.db)
    c, _ = session_for(app, "aud")
    assert c.get(f"/api/v1/participants/{module_clinic.pid_b}").status_code == 200
    r = run_cli("--db", db, "audit", "list", "--limit", "3")
    assert r.code == 0, r.err
    lines = r.out.strip().splitlines()
    assert lines[0].split("\t") == ["id", "at", "actor", "role", "action", "entity", "entity_id", "study",
                                    "site", "before", "after"]
    assert len(lines) == 4
    newest = lines[1].split("\t")
    assert newest[2:9] == ["aud", "auditor", "view", "participant", str(module_clinic.pid_b), "clinic", "B"]
    ids = [int(line.split("\t")[0]) for line in lines[1:]]
    assert ids == sorted(ids, reverse=True)
    r = run_cli("--db", db, "audit", "list", "--entity", "user", "--limit", "1000")
    entries = [line.split("\t") for line in r.out.strip().splitlines()[1:]]
    assert entries and all(e[5] == "user" for e in entries)
    assert any(e[4] == "create" and e[6] == "docA" for e in entries)


def test_audit_list_is_real_tsv_even_with_hostile_text(module_clinic: Clinic, app: FastAPI) -> None:
    """A name typed at sign-in ends up in the trail; it cannot add columns or forge lines in the listing."""
    import re

    client = TestClient(app)
    form = client.get("/login").text
    token = re.search(r'name="csrf_token" value="([^"]+)"', form)
    assert token is not None
    hostile = "eve\t\\x\n999\t2024-01-01T00:00:00\tadmin1\tadmin\tdelete\taudit_event"
    r = client.post("/login", data={"username": hostile, "password": "whatever-123",
                                    "csrf_token": token.group(1)})
    assert r.status_code == 401
    out = run_cli("--db", str(module_clinic.db), "audit", "list", "--limit", "5").out
    lines = out.splitlines()
    assert len(lines) == 6 and all(len(line.split("\t")) == 11 for line in lines), out
    newest = lines[1].split("\t")
    assert newest[4] == "login_failed"
    assert newest[2] == "eve\\t\\\\x\\n999\\t2024-01-01T00:00:00\\tadmin1\\tadmin\\tdelete\\taudit_event"


def test_serve_help() -> None:
    r = run_cli("serve", "--help")
    assert r.code == 0
    assert "Example: hikisig" in r.out and "--port" in r.out and "--idle-minutes" in r.out


@pytest.fixture
def no_server(monkeypatch: pytest.MonkeyPatch) -> list[Any]:
    """``uvicorn.run`` replaced: a test that reaches it fails instead of serving forever."""
    import uvicorn

    calls: list[Any] = []

    def run(*args: Any, **kwargs: Any) -> None:
        calls.append((args, kwargs))
        raise AssertionError("the server was started")

    monkeypatch.setattr(uvicorn, "run", run)
    return calls


def test_serve_on_an_uninitialised_store_fails_cleanly(tmp_path: Path, no_server: list[Any]) -> None:
    missing = tmp_path / "missing.db"
    r = run_cli("--db", str(missing), "serve", "--port", "8765")
    assert r.code == 2, (r.out, r.err)
    lines = r.err.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: ") and "not initialised" in lines[0]
    assert "hikisig --db ... init" in lines[0] and "Traceback" not in r.err
    assert no_server == []


def test_serve_rejects_a_bad_port_before_starting(module_clinic: Clinic, no_server: list[Any]) -> None:
    r = run_cli("--db", str(module_clinic.db), "serve", "--port", "70000")
    assert r.code == 2 and r.err.strip() == "error: --port 70000: expected 1 to 65535"
    assert no_server == []


def test_serve_starts_the_app_on_an_initialised_store(module_clinic: Clinic, no_server: list[Any]) -> None:
    """The happy path up to the server: the app is built on the store and handed to uvicorn."""
    with pytest.raises(AssertionError, match="the server was started"):
        run_cli("--db", str(module_clinic.db), "serve", "--port", "8123", "--idle-minutes", "7")
    ((args, kwargs),) = no_server
    application = args[0]
    assert isinstance(application, FastAPI)
    assert application.state.settings.idle_minutes == 7
    assert (kwargs["host"], kwargs["port"]) == ("127.0.0.1", 8123)
    application.state.store.dispose()


def test_user_commands_on_an_uninitialised_store(tmp_path: Path) -> None:
    r = run_cli("--db", str(tmp_path / "none.db"), "user", "add", "someone", "--role", "admin",
                "--password-stdin", stdin=PASSWORD + "\n")
    assert r.code == 2 and len(r.err.strip().splitlines()) == 1 and "not initialised" in r.err
    r = run_cli("--db", str(tmp_path / "none.db"), "audit", "verify")
    assert r.code == 2 and "not initialised" in r.err
