"""The authorization matrix: every route x every role x own/other site answers what it must.

The expectation table :data:`ROUTES` has one entry per route of the app; a
route that is not in it fails :func:`test_every_route_is_in_the_matrix`, so a
new route must be added here with its rule. Rules (``hikisig.web.services``):

- clinician: participants of their own site (other sites: 404); create, visits,
  questionnaires, criteria;
- auditor: reads everything (participants of every site, audit trail, users,
  analyses, models); every unsafe request is refused (403);
- analyst: no participant pages (403); pseudonymised data, lab uploads,
  analyses and models;
- admin: users, studies and sites; no participant data (403);
- not signed in: pages redirect to ``/login?next=...`` (303), the API answers 401.

Unsafe requests carry the session's valid CSRF token so that the role rule is
what is tested; :func:`test_unsafe_request_without_valid_csrf_token_is_refused`
checks the token separately for every unsafe route.
"""

from __future__ import annotations

import itertools
import secrets
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import httpx
import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient
from sqlalchemy import func, select
from starlette.routing import Mount

from hikisig.assess.definition import instrument_ids, load_instrument
from hikisig.cohort import schema
from hikisig.web import WebSettings, create_app
from web.conftest import PASSWORD, Clinic, login, make_clinic, session_for

ROLES = ("admin", "clinician", "analyst", "auditor", "anon")
#: The user who plays each role in the matrix (the clinician works at site A).
USER_OF = {"admin": "admin1", "clinician": "docA", "analyst": "ana", "auditor": "aud"}
SIGNED_IN = ("admin", "clinician", "analyst", "auditor")
#: Distinctive codes of the participants the scoped routes are called on.
CODE = {"A": "ZZ-SITEA-001", "B": "ZZ-SITEB-001"}
INSTRUMENT = "phq9" if "phq9" in instrument_ids() else instrument_ids()[0]
SKIPPED = {"/openapi.json", "/healthz"}


# -- the world the matrix runs in --------------------------------------------------------------------
@dataclass
class Caller:
    """Who sends a request: a client with its session, and how to present the CSRF token."""

    client: TestClient
    csrf: str
    user: str | None
    mode: str = "valid"  # valid | missing | wrong

    def token(self, real: str | None = None) -> str | None:
        value = real or self.csrf
        return {"valid": value, "missing": None, "wrong": "wrong-" + value[::-1]}[self.mode]

    def headers(self, real: str | None = None) -> dict[str, str]:
        t = self.token(real)
        return {} if t is None else {"X-CSRF-Token": t}

    def form(self, data: dict[str, Any] | None = None, real: str | None = None) -> dict[str, Any]:
        t = self.token(real)
        return dict(data or {}) if t is None else {**(data or {}), "csrf_token": t}


@dataclass
class World:
    """The module's app, one signed-in client per user, and the objects routes need."""

    app: FastAPI
    clinic: Clinic
    clients: dict[str, tuple[TestClient, str]]
    pids: dict[str, int]
    job_id: int
    model_id: int
    counter: Iterator[int] = field(default_factory=lambda: itertools.count(1))

    def caller(self, role_or_user: str, mode: str = "valid") -> Caller:
        if role_or_user == "anon":
            return Caller(TestClient(self.app, follow_redirects=False), "not-a-session-token", None, mode)
        user = USER_OF.get(role_or_user, role_or_user)
        client, csrf = self.clients[user]
        return Caller(client, csrf, user, mode)

    def unique(self, prefix: str) -> str:
        return f"{prefix}{next(self.counter):04d}"

    def stage_lab_file(self) -> str:
        """A lab file staged as the preview leaves it (an upload token) for /labs/import."""
        token = secrets.token_urlsafe(18)
        folder = self.clinic.work_dir / "uploads" / token
        folder.mkdir(parents=True)
        (folder / "lab.csv").write_text(lab_csv(self.unique("IMP-")))
        return token


def lab_csv(sample: str) -> str:
    return f"sample,participant,visit,Orn,Arg\n{sample},{CODE['A']},1,1.5,2.5\n"


def _done_job(folder: Path) -> Path:
    """The outputs of a finished analysis: report.html and a discriminate model folder."""
    out = folder / "job-results"
    (out / "models" / "discriminate").mkdir(parents=True)
    (out / "report.html").write_text("<!doctype html><title>report</title><p>REPORT-BODY</p>")
    card = out / "models" / "discriminate"
    (card / "model_card.json").write_text('{"kind": "discriminate"}')
    (card / "model_card.md").write_text("# Model card\nMODEL-CARD-TEXT\n")
    return out


@pytest.fixture(scope="module")
def world(tmp_path_factory: pytest.TempPathFactory) -> Iterator[World]:
    folder = tmp_path_factory.mktemp("authz")
    clinic = make_clinic(folder)
    app = create_app(str(clinic.db), WebSettings(work_dir=clinic.work_dir))
    app.state.jobs.submit = lambda job_id: None  # no real analysis in a process pool
    clients = {}
    for name in ("admin1", "docA", "docB", "ana", "aud"):
        client, csrf = login(app, name)
        client.follow_redirects = False
        clients[name] = (client, csrf)
    pids = {}
    for site, user in (("A", "docA"), ("B", "docB")):
        c, csrf = clients[user]
        h = {"X-CSRF-Token": csrf}
        r = c.post("/api/v1/participants", json={"study": "clinic", "code": CODE[site], "sex": "F"},
                   headers=h)
        assert r.status_code == 201, r.text
        pid = r.json()["id"]
        assert c.post(f"/api/v1/participants/{pid}/visits", json={}, headers=h).status_code == 201
        inst = load_instrument(INSTRUMENT)
        answers = {col: float(inst.response_min) for col in inst.item_columns}
        assert c.put(f"/api/v1/participants/{pid}/visits/1/assessments/{INSTRUMENT}",
                     json={"answers": answers}, headers=h).status_code == 200
        assert c.put(f"/api/v1/participants/{pid}/visits/1/criteria", headers=h, json={
            "days_out_per_week": 1, "rarely_leaves_room": True, "months_isolated": 8, "impairment": True,
            "distress": False}).status_code == 200
        pids[site] = pid
    ana, ana_csrf = clients["ana"]
    lab = (f"sample,participant,visit,Orn,Arg\nLAB-A,{CODE['A']},1,1,2\nLAB-B,{CODE['B']},1,3,4\n")
    r = ana.post("/api/v1/labs", headers={"X-CSRF-Token": ana_csrf},
                 files={"file": ("lab.csv", lab.encode())}, data={"study": "clinic", "dry_run": "false"})
    assert r.status_code == 200, r.text
    out = _done_job(folder)
    with clinic.store.session() as s:
        job = schema.AnalysisJob(study="clinic", status="done", stage="done", progress=1.0, options={},
                                 out_dir=str(out), created_by="ana")
        s.add(job)
        s.flush()
        model = schema.RegisteredModel(name="model-0", study="clinic", kind="discriminate",
                                       path=str(out / "models" / "discriminate"), registered_by="ana")
        s.add(model)
        s.flush()
        job_id, model_id = job.id, model.id
    yield World(app, clinic, clients, pids, job_id, model_id)
    app.state.jobs.shutdown()
    app.state.store.dispose()


# -- the expectation table ---------------------------------------------------------------------------
Call = Callable[[World, Caller, str], httpx.Response]


@dataclass(frozen=True)
class Route:
    """One route: who may call it, the success code, and how to call it (with a valid body)."""

    method: str
    path: str
    allowed: tuple[str, ...]
    ok: int
    call: Call
    scoped: bool = False  # takes a participant id: clinicians get 404 outside their site
    public: bool = False  # works without a session (sign-in)

    @property
    def api(self) -> bool:
        return self.path.startswith("/api/")

    @property
    def unsafe(self) -> bool:
        return self.method not in ("GET", "HEAD")

    def expected(self, role: str, site: str) -> int:
        if self.public:
            return self.ok
        if role == "anon":
            return 401 if self.api else 303
        if role not in self.allowed:
            return 403
        if self.scoped and role == "clinician" and site != "A":
            return 404
        return self.ok


def get(url: str | Callable[[World, str], str]) -> Call:
    def call(w: World, c: Caller, site: str) -> httpx.Response:
        return c.client.get(url(w, site) if callable(url) else url, follow_redirects=False)
    return call


def form_post(url: str | Callable[[World, str], str],
              data: Callable[[World], dict[str, Any]] | None = None) -> Call:
    def call(w: World, c: Caller, site: str) -> httpx.Response:
        target = url(w, site) if callable(url) else url
        return c.client.post(target, data=c.form(data(w) if data else {}), follow_redirects=False)
    return call


def api_send(method: str, url: str | Callable[[World, str], str],
             body: Callable[[World], dict[str, Any]] | None = None) -> Call:
    def call(w: World, c: Caller, site: str) -> httpx.Response:
        target = url(w, site) if callable(url) else url
        return c.client.request(method, target, json=body(w) if body else None, headers=c.headers(),
                                follow_redirects=False)
    return call


def p(suffix: str = "") -> Callable[[World, str], str]:
    return lambda w, site: f"/participants/{w.pids[site]}{suffix}"


def ap(suffix: str = "") -> Callable[[World, str], str]:
    return lambda w, site: f"/api/v1/participants/{w.pids[site]}{suffix}"


def answers_form(w: World) -> dict[str, Any]:
    inst = load_instrument(INSTRUMENT)
    return {col: str(inst.response_max) for col in inst.item_columns}


def answers_json(w: World) -> dict[str, Any]:
    inst = load_instrument(INSTRUMENT)
    return {"answers": {col: float(inst.response_min + 1) for col in inst.item_columns}}


CRITERIA_FORM = {"days_out_per_week": "2", "rarely_leaves_room": "no", "months_isolated": "7",
                 "impairment": "yes", "distress": "yes"}
CRITERIA_JSON = {"days_out_per_week": 0.5, "rarely_leaves_room": False, "months_isolated": 12,
                 "impairment": True, "distress": True}


def form_login(w: World, c: Caller, site: str) -> httpx.Response:
    fresh = TestClient(w.app, follow_redirects=False)
    r = fresh.get("/login")
    token = fresh.cookies.get("hikisig_login_csrf")
    assert r.status_code == 200 and token
    return fresh.post("/login", data={"username": c.user or "docA", "password": PASSWORD,
                                      "csrf_token": token})


def api_login(w: World, c: Caller, site: str) -> httpx.Response:
    fresh = TestClient(w.app, follow_redirects=False)
    return fresh.post("/api/v1/session", json={"username": c.user or "docA", "password": PASSWORD})


def _fresh(w: World, c: Caller) -> tuple[TestClient, str | None]:
    """Sign-out ends a session: use a fresh one of the same user (or none when not signed in)."""
    if c.user is None:
        return c.client, None
    return session_for(w.app, c.user)


def form_logout(w: World, c: Caller, site: str) -> httpx.Response:
    client, csrf = _fresh(w, c)
    return client.post("/logout", data=c.form(real=csrf), follow_redirects=False)


def api_logout(w: World, c: Caller, site: str) -> httpx.Response:
    client, csrf = _fresh(w, c)
    return client.delete("/api/v1/session", headers=c.headers(real=csrf), follow_redirects=False)


def lab_preview(w: World, c: Caller, site: str) -> httpx.Response:
    return c.client.post("/labs/preview", data=c.form({"study": "clinic", "format": "auto"}),
                         files={"file": ("lab.csv", lab_csv(w.unique("PRE-")).encode())},
                         follow_redirects=False)


def lab_import(w: World, c: Caller, site: str) -> httpx.Response:
    return c.client.post("/labs/import", data=c.form({"token": w.stage_lab_file(), "study": "clinic",
                                                      "format": "auto"}), follow_redirects=False)


def api_labs(w: World, c: Caller, site: str) -> httpx.Response:
    return c.client.post("/api/v1/labs", headers=c.headers(), data={"study": "clinic"},
                         files={"file": ("lab.csv", lab_csv(w.unique("API-")).encode())},
                         follow_redirects=False)


def _day(w: World) -> str:
    import datetime as dt

    return (dt.date(2020, 1, 1) + dt.timedelta(days=next(w.counter))).isoformat()


def end_intervention(w: World, c: Caller, site: str) -> httpx.Response:
    """End a fresh ongoing intervention of the site's participant."""
    import datetime as dt

    with w.clinic.store.session() as s:
        rec = schema.Intervention(participant_id=w.pids[site], kind="other",
                                  start=dt.date.fromisoformat(_day(w)))
        s.add(rec)
        s.flush()
        iid = rec.id
    return c.client.post(f"/participants/{w.pids[site]}/interventions/{iid}/end",
                         data=c.form({"end": dt.date.today().isoformat()}), follow_redirects=False)


CLINICAL = ("clinician", "auditor")
VIEWERS = ("analyst", "auditor")
ROUTES: list[Route] = [
    # signing in and out, the home redirect
    Route("GET", "/", SIGNED_IN, 303, get("/"), public=True),
    Route("GET", "/login", SIGNED_IN, 200, get("/login"), public=True),
    Route("POST", "/login", SIGNED_IN, 303, form_login, public=True),
    Route("POST", "/logout", SIGNED_IN, 303, form_logout),
    Route("GET", "/api", SIGNED_IN, 200, get("/api")),
    # clinic pages
    Route("GET", "/participants", CLINICAL, 200, get("/participants")),
    Route("GET", "/participants/new", ("clinician",), 200, get("/participants/new")),
    Route("POST", "/participants", ("clinician",), 303,
          form_post("/participants", lambda w: {"study": "clinic", "code": w.unique("NEW-"), "sex": "M",
                                                "birth_year": "1999"})),
    Route("GET", "/participants/{pid}", CLINICAL, 200, get(p()), scoped=True),
    Route("POST", "/participants/{pid}/visits", ("clinician",), 303,
          form_post(p("/visits"), lambda w: {"visit_date": "2024-05-01"}), scoped=True),
    Route("GET", "/participants/{pid}/visits/{vi}/assess/{instrument}", CLINICAL, 200,
          get(p(f"/visits/1/assess/{INSTRUMENT}")), scoped=True),
    Route("POST", "/participants/{pid}/visits/{vi}/assess/{instrument}", ("clinician",), 303,
          form_post(p(f"/visits/1/assess/{INSTRUMENT}"), answers_form), scoped=True),
    Route("GET", "/participants/{pid}/visits/{vi}/criteria", CLINICAL, 200,
          get(p("/visits/1/criteria")), scoped=True),
    Route("POST", "/participants/{pid}/visits/{vi}/criteria", ("clinician",), 303,
          form_post(p("/visits/1/criteria"), lambda w: CRITERIA_FORM), scoped=True),
    Route("POST", "/participants/{pid}/interventions", ("clinician",), 303,
          form_post(p("/interventions"), lambda w: {"kind": "other", "start": _day(w)}), scoped=True),
    Route("POST", "/participants/{pid}/interventions/{iid}/end", ("clinician",), 303, end_intervention,
          scoped=True),
    # analyst pages
    Route("GET", "/labs", ("analyst",), 200, get("/labs")),
    Route("POST", "/labs/preview", ("analyst",), 200, lab_preview),
    Route("POST", "/labs/import", ("analyst",), 200, lab_import),
    Route("GET", "/data", ("analyst",), 200, get("/data?study=clinic")),
    Route("GET", "/data/export.csv", ("analyst",), 200, get("/data/export.csv?study=clinic")),
    Route("GET", "/analyses", VIEWERS, 200, get("/analyses")),
    Route("POST", "/analyses", ("analyst",), 303,
          form_post("/analyses", lambda w: {"study": "clinic", "run.seed": "7"})),
    Route("GET", "/analyses/{job_id}", VIEWERS, 200, get(lambda w, s: f"/analyses/{w.job_id}")),
    Route("GET", "/analyses/{job_id}/progress", VIEWERS, 200,
          get(lambda w, s: f"/analyses/{w.job_id}/progress")),
    Route("GET", "/analyses/{job_id}/report", VIEWERS, 200, get(lambda w, s: f"/analyses/{w.job_id}/report")),
    Route("POST", "/analyses/{job_id}/register", ("analyst",), 303,
          form_post(lambda w, s: f"/analyses/{w.job_id}/register",
                    lambda w: {"kind": "discriminate", "name": w.unique("page-model-")})),
    Route("GET", "/models", VIEWERS, 200, get("/models")),
    Route("GET", "/models/{model_id}/card", ("analyst", "auditor", "clinician"), 200,
          get(lambda w, s: f"/models/{w.model_id}/card")),
    # administration and the audit trail
    Route("GET", "/admin/users", ("admin", "auditor"), 200, get("/admin/users")),
    Route("POST", "/admin/users", ("admin",), 303,
          form_post("/admin/users", lambda w: {"name": w.unique("user"), "role": "analyst", "site": "",
                                               "password": PASSWORD})),
    Route("POST", "/admin/users/{name}/{action}", ("admin",), 303, form_post("/admin/users/docB/unlock")),
    Route("GET", "/admin/studies", ("admin",), 200, get("/admin/studies")),
    Route("POST", "/admin/studies", ("admin",), 303,
          form_post("/admin/studies", lambda w: {"name": w.unique("study-"), "description": "d"})),
    Route("POST", "/admin/sites", ("admin",), 303,
          form_post("/admin/sites", lambda w: {"study": "clinic", "code": w.unique("S"), "name": "n"})),
    Route("GET", "/audit", ("auditor",), 200, get("/audit?verify=1")),
    # the JSON API
    Route("POST", "/api/v1/session", SIGNED_IN, 200, api_login, public=True),
    Route("DELETE", "/api/v1/session", SIGNED_IN, 204, api_logout),
    Route("GET", "/api/v1/me", SIGNED_IN, 200, get("/api/v1/me")),
    Route("GET", "/api/v1/instruments", SIGNED_IN, 200, get("/api/v1/instruments")),
    Route("GET", "/api/v1/instruments/{instrument}", SIGNED_IN, 200,
          get(f"/api/v1/instruments/{INSTRUMENT}")),
    Route("GET", "/api/v1/participants", CLINICAL, 200, get("/api/v1/participants")),
    Route("POST", "/api/v1/participants", ("clinician",), 201,
          api_send("POST", "/api/v1/participants", lambda w: {"study": "clinic", "code": w.unique("API-P")})),
    Route("GET", "/api/v1/participants/{pid}", CLINICAL, 200, get(ap()), scoped=True),
    Route("POST", "/api/v1/participants/{pid}/visits", ("clinician",), 201,
          api_send("POST", ap("/visits"), lambda w: {"visit_date": "2024-06-01"}), scoped=True),
    Route("PUT", "/api/v1/participants/{pid}/visits/{vi}/assessments/{instrument}", ("clinician",), 200,
          api_send("PUT", ap(f"/visits/1/assessments/{INSTRUMENT}"), answers_json), scoped=True),
    Route("PUT", "/api/v1/participants/{pid}/visits/{vi}/criteria", ("clinician",), 200,
          api_send("PUT", ap("/visits/1/criteria"), lambda w: CRITERIA_JSON), scoped=True),
    Route("GET", "/api/v1/studies", SIGNED_IN, 200, get("/api/v1/studies")),
    Route("GET", "/api/v1/studies/{study}/participants", ("analyst",), 200,
          get("/api/v1/studies/clinic/participants")),
    Route("POST", "/api/v1/labs", ("analyst",), 200, api_labs),
    Route("GET", "/api/v1/analyses", VIEWERS, 200, get("/api/v1/analyses")),
    Route("POST", "/api/v1/analyses", ("analyst",), 202,
          api_send("POST", "/api/v1/analyses", lambda w: {"study": "clinic", "options": {"run.seed": 3}})),
    Route("GET", "/api/v1/analyses/{job_id}", VIEWERS, 200, get(lambda w, s: f"/api/v1/analyses/{w.job_id}")),
    Route("GET", "/api/v1/models", VIEWERS, 200, get("/api/v1/models")),
    Route("POST", "/api/v1/models", ("analyst",), 201,
          api_send("POST", "/api/v1/models", lambda w: {"job_id": w.job_id, "kind": "discriminate",
                                                        "name": w.unique("api-model-")})),
    Route("GET", "/api/v1/audit", ("auditor",), 200, get("/api/v1/audit")),
    Route("GET", "/api/v1/audit/verify", ("auditor",), 200, get("/api/v1/audit/verify")),
    Route("GET", "/api/v1/users", ("admin", "auditor"), 200, get("/api/v1/users")),
    Route("POST", "/api/v1/users", ("admin",), 201,
          api_send("POST", "/api/v1/users", lambda w: {"name": w.unique("apiuser"), "role": "clinician",
                                                       "site": "B", "password": PASSWORD})),
    Route("POST", "/api/v1/studies", ("admin",), 201,
          api_send("POST", "/api/v1/studies", lambda w: {"name": w.unique("api-study-")})),
    Route("POST", "/api/v1/sites", ("admin",), 201,
          api_send("POST", "/api/v1/sites", lambda w: {"study": "clinic", "code": w.unique("AS")})),
]
BY_KEY = {(r.method, r.path): r for r in ROUTES}


def app_routes(app: FastAPI) -> set[tuple[str, str]]:
    """(method, path) of every route of the app, including routers' routes and hidden pages."""
    try:  # FastAPI >= 0.16x keeps included routers as one entry each
        from fastapi.routing import iter_route_contexts

        routes: list[Any] = list(iter_route_contexts(app.routes))
    except ImportError:  # pragma: no cover - older FastAPI lists every route flat
        routes = list(app.routes)
    found: set[tuple[str, str]] = set()
    for r in routes:
        original = getattr(r, "original_route", r)
        if isinstance(original, Mount):
            assert r.path == "/static", f"unexpected mount {r.path}: add it to the matrix"
            continue
        if r.path in SKIPPED:
            continue
        methods = set(r.methods or ()) - {"HEAD"}
        assert methods, f"route {r.path} has no methods"
        found |= {(m, r.path) for m in methods}
    return found


def test_every_route_is_in_the_matrix(world: World) -> None:
    routes = app_routes(world.app)
    missing = sorted(routes - set(BY_KEY))
    stale = sorted(set(BY_KEY) - routes)
    assert not missing, f"routes without a rule in the authorization matrix: {missing}"
    assert not stale, f"matrix entries for routes that do not exist: {stale}"
    assert len(BY_KEY) == len(ROUTES), "a route is listed twice"


def _cases() -> Iterator[Any]:
    for r in ROUTES:
        for role in ROLES:
            for site in (("A", "B") if r.scoped else ("A",)):
                where = ("own" if site == "A" else "other") if r.scoped else ""
                suffix = f"-{where}" if where else ""
                yield pytest.param(r, role, site, id=f"{r.method} {r.path} {role}{suffix}")


@pytest.mark.parametrize(("route", "role", "site"), list(_cases()))
def test_matrix(world: World, route: Route, role: str, site: str) -> None:
    want = route.expected(role, site)
    r = route.call(world, world.caller(role), site)
    assert r.status_code == want, (f"{route.method} {route.path} as {role} (site {site}): "
                                   f"{r.status_code} instead of {want}: {r.text[:300]}")
    if role == "anon" and not route.public and not route.api:
        assert r.headers["location"].startswith("/login?next=%2F"), r.headers["location"]
    if want == 303 and role != "anon":
        assert not r.headers["location"].startswith("/login?"), "a signed-in request was sent to sign in"
    if want in (403, 404) and route.api:
        assert "detail" in r.json()


def test_root_and_sign_in_redirect_to_the_role_home(world: World) -> None:
    homes = {"admin": "/admin/users", "clinician": "/participants", "analyst": "/data",
             "auditor": "/participants"}
    for role, home in homes.items():
        c = world.caller(role)
        assert c.client.get("/", follow_redirects=False).headers["location"] == home
        assert form_login(world, c, "A").headers["location"] == home
    assert world.caller("anon").client.get("/", follow_redirects=False).headers["location"] == "/login"


def _count(world: World, model: Any) -> int:
    with world.clinic.store.session() as s:
        return int(s.scalar(select(func.count()).select_from(model)) or 0)


def _unsafe_cases() -> Iterator[Any]:
    for r in ROUTES:
        if r.unsafe and not r.public:
            role = r.allowed[0]
            for mode in ("missing", "wrong"):
                yield pytest.param(r, role, mode, id=f"{r.method} {r.path} {role} {mode}")


@pytest.mark.parametrize(("route", "role", "mode"), list(_unsafe_cases()))
def test_unsafe_request_without_valid_csrf_token_is_refused(world: World, route: Route, role: str,
                                                            mode: str) -> None:
    before = _count(world, schema.AuditEvent)
    r = route.call(world, world.caller(role, mode), "A")
    assert r.status_code == 403, f"{route.method} {route.path} with a {mode} CSRF token: {r.status_code}"
    assert "CSRF" in r.text
    assert _count(world, schema.AuditEvent) == before, "a refused request changed the store"


def test_auditor_refused_every_unsafe_request_without_a_trace(world: World) -> None:
    """Auditors read everything but change nothing: no row and no audit entry appears."""
    tables = (schema.Participant, schema.Visit, schema.Assessment, schema.CriteriaRecord, schema.User,
              schema.Study, schema.Site, schema.AnalysisJob, schema.RegisteredModel, schema.AuditEvent,
              schema.Measurement)
    before = {t.__name__: _count(world, t) for t in tables}
    refused = 0
    for r in ROUTES:
        if not r.unsafe or r.public or r.path in ("/logout", "/api/v1/session"):
            continue
        for site in ("A", "B"):
            resp = r.call(world, world.caller("auditor"), site)
            assert resp.status_code == 403, f"auditor {r.method} {r.path}: {resp.status_code}"
            refused += 1
    assert refused > 20
    assert {t.__name__: _count(world, t) for t in tables} == before


def test_clinician_creates_participants_only_at_their_own_site(world: World) -> None:
    c = world.caller("clinician")
    r = c.client.post("/api/v1/participants", headers=c.headers(),
                      json={"study": "clinic", "code": "SITE-TRY-1", "site": "B"})
    assert r.status_code == 201 and r.json()["site"] == "A"
    r = c.client.post("/participants", data=c.form({"study": "clinic", "code": "SITE-TRY-2", "site": "B"}),
                      follow_redirects=False)
    assert r.status_code == 303
    with world.clinic.store.session() as s:
        sites = dict(s.execute(select(schema.Participant.code, schema.Site.code)
                               .join(schema.Site, schema.Site.id == schema.Participant.site_id)
                               .where(schema.Participant.code.in_(("SITE-TRY-1", "SITE-TRY-2")))).all())
    assert sites == {"SITE-TRY-1": "A", "SITE-TRY-2": "A"}


def test_other_site_is_indistinguishable_from_a_missing_participant(world: World) -> None:
    """A clinician cannot tell a participant of another site from an id that does not exist."""
    c = world.caller("clinician")
    missing = 999_999
    for url in ("/api/v1/participants/{}", "/participants/{}", "/participants/{}/visits/1/criteria"):
        other = c.client.get(url.format(world.pids["B"]), follow_redirects=False)
        none = c.client.get(url.format(missing), follow_redirects=False)
        assert other.status_code == none.status_code == 404
        assert other.text == none.text


# -- no page shows a participant outside the user's scope ---------------------------------------------
#: user -> participant codes that must never appear in what they receive
FORBIDDEN = {"docA": (CODE["B"],), "docB": (CODE["A"],), "ana": (CODE["A"], CODE["B"]),
             "admin1": (CODE["A"], CODE["B"])}
EXTRA_READS = ("/participants?q=ZZ", "/participants?study=clinic&q=SITE", "/api/v1/participants?q=ZZ",
               "/api/v1/participants?study=clinic", "/data", "/api/v1/audit?entity=participant",
               "/audit?entity=participant", "/participants/{A}/visits/1/assess/{inst}",
               "/participants/{B}/visits/1/assess/k6", "/api/v1/participants/{B}")


@pytest.mark.parametrize("user", sorted(FORBIDDEN))
def test_no_response_shows_a_participant_outside_the_scope(world: World, user: str) -> None:
    client, csrf = world.clients[user]
    caller = Caller(client, csrf, user)
    seen = 0
    for r in ROUTES:
        if r.unsafe:
            continue
        for site in ("A", "B"):
            resp = r.call(world, caller, site)
            for code in FORBIDDEN[user]:
                assert code not in resp.text, f"{user} sees {code} on {r.method} {r.path} (site {site})"
            seen += resp.status_code == 200
    for url in EXTRA_READS:
        resp = client.get(url.format(A=world.pids["A"], B=world.pids["B"], inst=INSTRUMENT),
                          follow_redirects=False)
        for code in FORBIDDEN[user]:
            assert code not in resp.text, f"{user} sees {code} on GET {url}"
    assert seen >= 5, "too few pages answered for the check to mean anything"


def test_scope_positive_controls(world: World) -> None:
    """The codes are searchable: each user sees what is in scope (so the check above can fail)."""
    assert all(code in world.clients["aud"][0].get("/participants").text for code in CODE.values())
    assert all(code in world.clients["aud"][0].get("/api/v1/audit?entity=participant").text
               for code in CODE.values())
    assert CODE["A"] in world.clients["docA"][0].get("/participants").text
    assert CODE["B"] in world.clients["docB"][0].get("/participants").text
    assert CODE["B"] in world.clients["docB"][0].get(f"/participants/{world.pids['B']}").text
    data = world.clients["ana"][0].get("/data?study=clinic").text
    assert data.count("PS-") >= 2
    export = world.clients["ana"][0].get("/data/export.csv?study=clinic")
    assert export.status_code == 200 and "PS-" in export.text and "pseudonym" in export.text.splitlines()[0]


def test_redirect_targets_stay_on_site(world: World) -> None:
    for r in ROUTES:
        if r.method != "GET":
            continue
        resp = r.call(world, world.caller("anon"), "A")
        if resp.status_code == 303:
            assert urlsplit(resp.headers["location"]).netloc == ""
