"""Security of the web app: passwords, lock-out, throttling, CSRF, cookies, sessions, headers, redirects."""

from __future__ import annotations

import datetime as dt
import re
from collections.abc import Iterator
from html.parser import HTMLParser
from pathlib import Path
from typing import Any
from urllib.parse import urljoin, urlsplit

import httpx
import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient
from sqlalchemy import select, text

from hikisig.cohort import schema
from hikisig.cohort.users import LOCK_MINUTES, MAX_FAILURES, add_user, unlock_user
from hikisig.web import WebSettings, create_app
from hikisig.web.analyses import REPORT_CSP
from hikisig.web.context import SESSION_COOKIE
from web.conftest import PASSWORD, USERS, Clinic, login, session_for

TEMPLATES = Path(__file__).resolve().parents[2] / "src" / "hikisig" / "web" / "templates"


def _events(clinic: Clinic, entity_id: str) -> list[schema.AuditEvent]:
    with clinic.store.session() as s:
        return list(s.scalars(select(schema.AuditEvent).where(schema.AuditEvent.entity_id == entity_id)
                              .order_by(schema.AuditEvent.id)))


def _form_sign_in(client: TestClient, name: str, password: str, next_: str = "") -> httpx.Response:
    r = client.get("/login")
    token = re.search(r'name="csrf_token" value="([^"]+)"', r.text)
    assert token is not None
    return client.post("/login", data={"username": name, "password": password, "csrf_token": token.group(1),
                                       "next": next_}, follow_redirects=False)


def _set_cookie(r: httpx.Response, name: str) -> str:
    cookies = [v for k, v in r.headers.multi_items()
               if k.lower() == "set-cookie" and v.startswith(name + "=")]
    assert len(cookies) == 1, cookies
    return cookies[0]


# -- passwords ---------------------------------------------------------------------------------------
def test_passwords_are_argon2id_and_never_stored_in_clear(module_app: FastAPI, module_clinic: Clinic) -> None:
    client = TestClient(module_app)
    wrong = "a-wrong-guess-1234"
    assert _form_sign_in(client, "docA", wrong).status_code == 401
    assert _form_sign_in(client, "docA", PASSWORD).status_code == 303
    with module_clinic.store.engine.connect() as con:
        rows = con.execute(text("SELECT name, password_hash FROM app_user")).all()
    assert {n for n, _ in rows} >= set(USERS)
    for name, digest in rows:
        assert digest.startswith("$argon2id$v=19$"), (name, digest[:20])
        assert PASSWORD not in digest
    assert len({d for _, d in rows}) == len(rows), "equal passwords must give different hashes (salt)"
    module_clinic.store.dispose()
    blob = b"".join(p.read_bytes() for p in module_clinic.db.parent.glob("clinic.db*"))
    assert PASSWORD.encode() not in blob and wrong.encode() not in blob
    assert b"$argon2id$" in blob  # the check above searched the right file


# -- lock-out ----------------------------------------------------------------------------------------
def test_lockout_after_five_failures_until_unlocked(module_app: FastAPI, module_clinic: Clinic) -> None:
    add_user(module_clinic.store, "lockme", "analyst", PASSWORD)
    client = TestClient(module_app)
    for _ in range(MAX_FAILURES):
        r = _form_sign_in(client, "lockme", "not the password")
        assert r.status_code == 401 and "Sign-in failed" in r.text
    # locked: even the right password fails, through the form and the API
    assert _form_sign_in(client, "lockme", PASSWORD).status_code == 401
    r = client.post("/api/v1/session", json={"username": "lockme", "password": PASSWORD})
    assert r.status_code == 401
    with module_clinic.store.session() as s:
        user = s.scalar(select(schema.User).where(schema.User.name == "lockme"))
        assert user is not None and user.locked_until is not None
        now = dt.datetime.now(dt.UTC).replace(tzinfo=None)
        assert dt.timedelta(minutes=LOCK_MINUTES - 1) < user.locked_until - now <= dt.timedelta(
            minutes=LOCK_MINUTES)
    events = _events(module_clinic, "lockme")
    actions = [(e.action, (e.after or "")) for e in events]
    failed = [a for a in actions if a[0] == "login_failed" and '"wrong password"' in a[1]]
    assert len(failed) == MAX_FAILURES
    assert [a for a, _ in actions].count("lockout") == 1
    lock_at = [a for a, _ in actions].index("lockout")
    assert all(a == "login_failed" for a, _ in actions[lock_at + 1:])
    assert sum('"locked"' in a for _, a in actions[lock_at + 1:]) == 2
    assert all(e.actor == "lockme" for e in events if e.action != "create")
    unlock_user(module_clinic.store, "lockme", actor="admin1")
    assert _form_sign_in(client, "lockme", PASSWORD).status_code == 303
    assert _events(module_clinic, "lockme")[-1].action == "login"


def test_a_success_resets_the_failure_count(module_app: FastAPI, module_clinic: Clinic) -> None:
    add_user(module_clinic.store, "resetme", "analyst", PASSWORD)
    client = TestClient(module_app)
    for _ in range(MAX_FAILURES - 1):
        assert _form_sign_in(client, "resetme", "nope nope nope").status_code == 401
    assert _form_sign_in(client, "resetme", PASSWORD).status_code == 303
    for _ in range(MAX_FAILURES - 1):
        assert _form_sign_in(client, "resetme", "nope nope nope").status_code == 401
    assert _form_sign_in(client, "resetme", PASSWORD).status_code == 303
    assert "lockout" not in [e.action for e in _events(module_clinic, "resetme")]


# -- throttle ----------------------------------------------------------------------------------------
def test_login_throttle_per_address(module_clinic: Clinic) -> None:
    app = create_app(str(module_clinic.db), WebSettings(login_limit=3, work_dir=module_clinic.work_dir))
    try:
        attacker = TestClient(app, client=("203.0.113.9", 4000))
        for i in range(3):
            assert _form_sign_in(attacker, f"nobody{i}", "whatever-123").status_code == 401
        r = _form_sign_in(attacker, "docA", PASSWORD)
        assert r.status_code == 429 and "Too many failed sign-ins" in r.text
        assert SESSION_COOKIE not in r.cookies
        assert attacker.post("/api/v1/session",
                             json={"username": "docA", "password": PASSWORD}).status_code == 429
        other = TestClient(app, client=("198.51.100.7", 4000))
        assert _form_sign_in(other, "docA", PASSWORD).status_code == 303
        api = TestClient(app, client=("192.0.2.44", 4000))
        for _ in range(3):
            assert api.post("/api/v1/session", json={"username": "x-y", "password": "z"}).status_code == 401
        assert api.post("/api/v1/session", json={"username": "docA", "password": PASSWORD}).status_code == 429
    finally:
        app.state.jobs.shutdown()
        app.state.store.dispose()


# -- CSRF --------------------------------------------------------------------------------------------
def test_csrf_token_required_on_forms_and_api(module_app: FastAPI, module_clinic: Clinic) -> None:
    client, csrf = session_for(module_app, "docA")
    _, csrf_b = session_for(module_app, "docB")
    body = {"study": "clinic", "code": "CSRF-1"}
    for data in (body, {**body, "csrf_token": ""}, {**body, "csrf_token": "x" * 43},
                 {**body, "csrf_token": csrf_b}):
        r = client.post("/participants", data=data)
        assert r.status_code == 403 and "CSRF" in r.text, data
    for headers in ({}, {"X-CSRF-Token": ""}, {"X-CSRF-Token": csrf[:-1]}, {"X-CSRF-Token": csrf_b}):
        r = client.post("/api/v1/participants", json=body, headers=headers)
        assert r.status_code == 403 and "CSRF" in r.json()["detail"], headers
        r = client.put(f"/api/v1/participants/{module_clinic.pid_a}/visits/1/criteria", headers=headers,
                       json={"days_out_per_week": 1, "rarely_leaves_room": True, "months_isolated": 7,
                             "impairment": True, "distress": True})
        assert r.status_code == 403
    # a token in a query string is not accepted either
    assert client.post(f"/participants?csrf_token={csrf}", data=body).status_code == 403
    with module_clinic.store.session() as s:
        assert s.scalar(select(schema.Participant).where(schema.Participant.code == "CSRF-1")) is None
    # the right token works (the checks above were refused for the token, not for something else)
    assert client.post("/participants", data={**body, "csrf_token": csrf}).status_code == 303
    assert client.post("/api/v1/participants", json={**body, "code": "CSRF-2"},
                       headers={"X-CSRF-Token": csrf}).status_code == 201


def test_sign_in_form_has_its_own_csrf_token(module_app: FastAPI) -> None:
    client = TestClient(module_app, follow_redirects=False)
    r = client.post("/login", data={"username": "docA", "password": PASSWORD, "csrf_token": "forged"})
    assert r.status_code == 403 and SESSION_COOKIE not in r.cookies
    client.get("/login")
    r = client.post("/login", data={"username": "docA", "password": PASSWORD, "csrf_token": "forged"})
    assert r.status_code == 403 and SESSION_COOKIE not in r.cookies
    login_cookie = _set_cookie(client.get("/login"), "hikisig_login_csrf").lower()
    assert "httponly" in login_cookie and "samesite=strict" in login_cookie


# -- cookies and sessions ----------------------------------------------------------------------------
@pytest.mark.parametrize("scheme", ["http", "https"])
def test_session_cookie_flags(module_app: FastAPI, scheme: str) -> None:
    client = TestClient(module_app, base_url=f"{scheme}://testserver", follow_redirects=False)
    r = _form_sign_in(client, "ana", PASSWORD)
    assert r.status_code == 303
    api = TestClient(module_app, base_url=f"{scheme}://testserver").post(
        "/api/v1/session", json={"username": "ana", "password": PASSWORD})
    assert api.status_code == 200
    for resp in (r, api):
        cookie = _set_cookie(resp, SESSION_COOKIE)
        attrs = [a.strip().lower() for a in cookie.split(";")[1:]]
        assert "httponly" in attrs and "samesite=lax" in attrs and "path=/" in attrs
        assert ("secure" in attrs) is (scheme == "https"), cookie
        assert not any(a.startswith(("expires", "max-age", "domain")) for a in attrs), "not a session cookie"
    token = cookie.split(";")[0].split("=", 1)[1]
    assert len(token) >= 40
    with module_app.state.store.session() as s:
        stored = set(s.scalars(select(schema.WebSession.id)))
    assert token not in stored, "the store keeps only the hash of the session token"
    if scheme == "https":
        assert "max-age" in r.headers.get("strict-transport-security", "")


def _age_session(app: FastAPI, client: TestClient, **delta: dt.timedelta) -> None:
    from hikisig.web.context import token_hash

    sid = token_hash(client.cookies[SESSION_COOKIE])
    with app.state.store.session() as s:
        ws = s.get(schema.WebSession, sid)
        assert ws is not None
        for attr, d in delta.items():
            setattr(ws, attr, getattr(ws, attr) - d)


def _session_exists(app: FastAPI, client: TestClient) -> bool:
    from hikisig.web.context import token_hash

    with app.state.store.session() as s:
        return s.get(schema.WebSession, token_hash(client.cookies[SESSION_COOKIE])) is not None


def test_idle_session_expires(module_app: FastAPI) -> None:
    idle = module_app.state.settings.idle_minutes
    page, _ = session_for(module_app, "aud")
    api, _ = session_for(module_app, "aud")
    # activity within the idle time keeps the session and moves last_seen forward
    _age_session(module_app, page, last_seen=dt.timedelta(minutes=idle - 1))
    assert page.get("/participants").status_code == 200
    _age_session(module_app, page, last_seen=dt.timedelta(minutes=idle - 1))
    assert page.get("/participants").status_code == 200
    for c in (page, api):
        _age_session(module_app, c, last_seen=dt.timedelta(minutes=idle + 1))
    r = page.get("/participants")
    assert r.status_code == 303 and r.headers["location"] == "/login?next=%2Fparticipants"
    r = api.get("/api/v1/me")
    assert r.status_code == 401 and r.json() == {"detail": "not signed in"}
    assert not _session_exists(module_app, page) and not _session_exists(module_app, api)


def test_session_ends_after_max_hours_whatever_the_activity(module_app: FastAPI) -> None:
    c, _ = session_for(module_app, "aud")
    hours = module_app.state.settings.max_hours
    _age_session(module_app, c, created_at=dt.timedelta(hours=hours, minutes=1))
    assert c.get("/api/v1/me").status_code == 401


@pytest.mark.parametrize("how", ["form", "api"])
def test_sign_out_ends_the_session_server_side(module_app: FastAPI, how: str) -> None:
    client, csrf = login(module_app, "aud")
    client.follow_redirects = False
    token = client.cookies[SESSION_COOKIE]
    if how == "form":
        r = client.post("/logout", data={"csrf_token": csrf})
        assert r.status_code == 303 and r.headers["location"] == "/login"
    else:
        r = client.delete("/api/v1/session", headers={"X-CSRF-Token": csrf})
        assert r.status_code == 204
    cleared = _set_cookie(r, SESSION_COOKIE).lower()
    assert "max-age=0" in cleared or "expires=thu, 01 jan 1970" in cleared
    stolen = TestClient(module_app, follow_redirects=False)
    stolen.cookies.set(SESSION_COOKIE, token)
    assert stolen.get("/api/v1/me").status_code == 401
    assert stolen.get("/audit").status_code == 303
    with module_app.state.store.session() as s:
        last = s.scalars(select(schema.AuditEvent).order_by(schema.AuditEvent.id.desc()).limit(1)).one()
    assert (last.action, last.actor) == ("logout", "aud")


def test_forged_or_oversized_cookie_is_not_a_session(module_app: FastAPI) -> None:
    for value in ("forged", "x" * 5000, ""):
        c = TestClient(module_app, follow_redirects=False)
        c.cookies.set(SESSION_COOKIE, value)
        assert c.get("/api/v1/me").status_code == 401
        assert c.get("/participants").status_code == 303


def test_disabled_user_loses_open_sessions(module_app: FastAPI, module_clinic: Clinic) -> None:
    add_user(module_clinic.store, "leaver", "auditor", PASSWORD)
    c, _ = session_for(module_app, "leaver")
    assert c.get("/api/v1/me").status_code == 200
    unlock_user(module_clinic.store, "leaver", active=False)
    assert c.get("/api/v1/me").status_code == 401
    c2, _ = session_for(module_app, "leaver")  # a session that somehow survived is refused too
    assert c2.get("/api/v1/me").status_code == 401


# -- headers and page content ------------------------------------------------------------------------
def _csp(value: str) -> dict[str, list[str]]:
    out: dict[str, list[str]] = {}
    for part in value.split(";"):
        words = part.split()
        if words:
            out[words[0]] = words[1:]
    return out


class _Tags(HTMLParser):
    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.scripts: list[dict[str, str | None]] = []
        self.inline: list[str] = []
        self.handlers: list[str] = []
        self._in_script = False

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        a = dict(attrs)
        self.handlers += [f"{tag} {k}" for k in a if k.startswith("on") or k.startswith("hx-on")]
        if tag == "script":
            self.scripts.append(a)
            self._in_script = True

    def handle_endtag(self, tag: str) -> None:
        if tag == "script":
            self._in_script = False

    def handle_data(self, data: str) -> None:
        if self._in_script and data.strip():
            self.inline.append(data.strip()[:80])


@pytest.fixture(scope="module")
def pages(module_app: FastAPI, module_clinic: Clinic) -> Iterator[dict[str, Any]]:
    """Every page of the app as each role sees it (and the templates they were rendered from)."""
    app, clinic = module_app, module_clinic
    out_dir = clinic.db.parent / "results"
    (out_dir / "models" / "severity").mkdir(parents=True)
    (out_dir / "report.html").write_text("<!doctype html><p>report</p>")
    (out_dir / "models" / "severity" / "model_card.md").write_text("card")
    with clinic.store.session() as s:
        job = schema.AnalysisJob(study="clinic", status="done", progress=1.0, options={},
                                 out_dir=str(out_dir), created_by="ana")
        failed = schema.AnalysisJob(study="clinic", status="failed", progress=0.2, options={},
                                    message="it broke", created_by="ana")
        s.add_all([job, failed])
        s.flush()
        m = schema.RegisteredModel(name="sec-model", study="clinic", kind="severity",
                                   path=str(out_dir / "models" / "severity"), registered_by="ana")
        s.add(m)
        s.flush()
        ids = {"job": job.id, "failed": failed.id, "model": m.id}
    rendered: list[str] = []
    templates = app.state.templates
    original = templates.TemplateResponse

    def spy(request: Any, name: str, *args: Any, **kwargs: Any) -> Any:
        rendered.append(name)
        return original(request, name, *args, **kwargs)

    templates.TemplateResponse = spy
    pa = clinic.pid_a
    urls = ["/login", "/login?next=/participants", "/participants", "/participants/new",
            f"/participants/{pa}", f"/participants/{pa}/visits/1/assess/phq9",
            f"/participants/{pa}/visits/1/criteria", "/labs",
            "/data", "/analyses", f"/analyses/{ids['job']}", f"/analyses/{ids['failed']}",
            f"/analyses/{ids['job']}/progress", "/models", f"/models/{ids['model']}/card", "/admin/users",
            "/admin/studies", "/audit?verify=1", "/api", "/participants/999999", "/no-such-page"]
    got: dict[str, httpx.Response] = {}
    for user in ("admin1", "docA", "ana", "aud"):
        c, csrf = session_for(app, user)
        for url in urls:
            got[f"{user} GET {url}"] = c.get(url)
        if user == "docA":
            got["docA POST /participants (invalid)"] = c.post("/participants", data={
                "csrf_token": csrf, "study": "clinic", "code": "X", "birth_year": "year"})
            got["docA POST assess (invalid)"] = c.post(f"/participants/{pa}/visits/1/assess/phq9",
                                                       data={"csrf_token": csrf, "item1": "99"})
            got["docA POST criteria (invalid)"] = c.post(f"/participants/{pa}/visits/1/criteria",
                                                         data={"csrf_token": csrf, "days_out_per_week": "x"})
        if user == "ana":
            ok = c.post("/labs/preview", data={"csrf_token": csrf, "study": "clinic"},
                        files={"file": ("lab.csv", b"sample,participant,visit,Orn\nSEC-1,PA,1,1\n")})
            got["ana POST /labs/preview"] = ok
            token = re.search(r'name="token" value="([^"]+)"', ok.text)
            assert token is not None, ok.text
            got["ana POST /labs/import"] = c.post("/labs/import", data={"csrf_token": csrf, "study": "clinic",
                                                                        "token": token.group(1)})
            got["ana POST /labs/preview (bad)"] = c.post(
                "/labs/preview", data={"csrf_token": csrf, "study": "clinic"},
                files={"file": ("lab.csv", b"sample,Orn\nS1,abc\n")})
        if user == "admin1":
            got["admin POST /admin/users (invalid)"] = c.post("/admin/users", data={
                "csrf_token": csrf, "name": "x", "role": "analyst", "password": "short"})
    got["anon GET /login (failed sign-in)"] = _form_sign_in(TestClient(app), "docA", "wrong password!")
    got["anon GET /login"] = TestClient(app).get("/login")
    templates.TemplateResponse = original
    yield {**got, "_rendered": rendered, "_ids": ids}


def _html(pages: dict[str, Any]) -> Iterator[tuple[str, httpx.Response]]:
    for key, r in pages.items():
        if not key.startswith("_") and r.headers.get("content-type", "").startswith("text/html"):
            yield key, r


def test_every_template_is_checked(pages: dict[str, Any]) -> None:
    # base.html and the hidden-fields partial are checked through the pages that use them
    want = {p.name for p in TEMPLATES.glob("*.html")} - {"base.html", "_labs_import_fields.html"}
    assert want - set(pages["_rendered"]) == set()


def test_security_headers_on_every_page(pages: dict[str, Any]) -> None:
    n = 0
    for key, r in _html(pages):
        if "/report" in key:
            continue
        h = r.headers
        csp = _csp(h["content-security-policy"])
        script = csp.get("script-src", csp.get("default-src"))
        assert script == ["'self'"], (key, script)
        assert csp["default-src"] == ["'self'"] and csp["object-src"] == ["'none'"], key
        assert csp["frame-ancestors"] == ["'none'"] and csp["base-uri"] == ["'none'"], key
        for directive, sources in csp.items():
            for src in sources:
                assert src in ("'self'", "'none'", "data:"), f"{key}: {directive} allows {src}"
                assert not (src == "data:" and directive != "img-src"), key
        assert h["x-frame-options"] == "DENY", key
        assert h["x-content-type-options"] == "nosniff", key
        assert h["referrer-policy"] in ("no-referrer", "same-origin", "strict-origin-when-cross-origin"), key
        assert h["cache-control"] == "no-store", key
        n += 1
    assert n > 60


def test_no_inline_script_and_no_other_origin_in_any_page(pages: dict[str, Any]) -> None:
    statuses = set()
    for key, r in _html(pages):
        statuses.add(r.status_code)
        tags = _Tags()
        tags.feed(r.text)
        if r.text.lstrip().lower().startswith("<!doctype html>"):
            assert len(tags.scripts) == 2, f"{key}: {tags.scripts}"
        else:  # an htmx fragment
            assert key.endswith("/progress") and not tags.scripts, key
        for attrs in tags.scripts:
            src = attrs.get("src") or ""
            assert src.startswith("/static/") and not src.startswith("//"), f"{key}: script {attrs}"
        assert not tags.inline, f"{key}: inline script {tags.inline}"
        assert not tags.handlers, f"{key}: inline event handler {tags.handlers}"
        assert not re.search(r"https?://", r.text, re.IGNORECASE), f"{key}: a URL of another origin"
        assert "javascript:" not in r.text.lower(), key
    assert {200, 401, 403, 404, 422} <= statuses


def test_static_files_are_served_locally(module_app: FastAPI) -> None:
    c = TestClient(module_app)
    for name in ("htmx.min.js", "app.js", "app.css", "favicon.svg"):
        r = c.get(f"/static/{name}")
        assert r.status_code == 200 and r.headers["x-content-type-options"] == "nosniff"
    assert c.get("/static/%2e%2e/templates/base.html").status_code == 404
    assert c.get("/static/%2e%2e/services.py").status_code == 404


def test_report_has_its_own_csp_without_script(pages: dict[str, Any], module_app: FastAPI) -> None:
    job = pages["_ids"]["job"]
    assert "Open the report" in pages[f"ana GET /analyses/{job}"].text
    c, _ = session_for(module_app, "ana")
    r = c.get(f"/analyses/{job}/report")
    assert r.status_code == 200 and "report" in r.text
    csp = _csp(r.headers["content-security-policy"])
    assert r.headers["content-security-policy"] == REPORT_CSP
    assert csp["default-src"] == ["'none'"] and "script-src" not in csp and "sandbox" in csp
    assert r.headers["x-frame-options"] == "DENY" and r.headers["x-content-type-options"] == "nosniff"


# -- open redirects ----------------------------------------------------------------------------------
def _lands_on(location: str) -> str:
    """The host a browser would go to (it ignores tabs and newlines and reads '\\' as '/')."""
    cleaned = re.sub(r"[\t\n\r]", "", location).replace("\\", "/")
    return urlsplit(urljoin("http://testserver/participants/x", cleaned)).netloc


@pytest.mark.parametrize("target", ["//evil.example", "https://evil.example", "//evil.example/participants",
                                    "/\\evil.example", "\\\\evil.example", "/\t/evil.example",
                                    "https:evil.example", "javascript:alert(1)", "%2F%2Fevil.example",
                                    " //evil.example"])
def test_no_open_redirect_after_sign_in(module_app: FastAPI, target: str) -> None:
    client = TestClient(module_app, follow_redirects=False)
    form = client.get("/login", params={"next": target})
    assert form.status_code == 200 and "evil.example" not in form.text
    r = _form_sign_in(client, "ana", PASSWORD, next_=target)
    assert r.status_code == 303
    location = r.headers["location"]
    assert _lands_on(location) == "testserver", location
    assert location.startswith("/") and not location.lower().startswith(("//", "/\\"))


def test_next_on_this_site_is_kept(module_app: FastAPI) -> None:
    anon = TestClient(module_app, follow_redirects=False)
    r = anon.get("/analyses?x=1")
    assert r.status_code == 303 and r.headers["location"] == "/login?next=%2Fanalyses%3Fx%3D1"
    form = anon.get(r.headers["location"])
    assert 'name="next" value="/analyses?x=1"' in form.text
    r = _form_sign_in(TestClient(module_app, follow_redirects=False), "ana", PASSWORD, next_="/analyses?x=1")
    assert r.headers["location"] == "/analyses?x=1"
