"""Property-based tests of the JSON API from its OpenAPI description (schemathesis): no 5xx, ever.

Every operation of ``/openapi.json`` is fuzzed while signed in as the role that
may use it (so the calls get past the role check into the code that handles
the input), with the session cookie and the CSRF token sent on every call:
valid inputs, invalid inputs, and valid inputs on objects that exist (a
participant of the clinician's site, visit 1, study ``clinic``, a finished
analysis). ``FUZZ_AS`` must list every operation, so a new one is fuzzed too.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

import pytest
import schemathesis
from fastapi import FastAPI
from fastapi.testclient import TestClient
from hypothesis import HealthCheck, Phase, given, settings
from schemathesis import GenerationMode
from schemathesis.checks import not_a_server_error
from sqlalchemy import select

from hikisig.cohort import schema
from hikisig.web.context import SESSION_COOKIE
from web.conftest import Clinic, login, session_for

#: operation -> the user it is fuzzed as (None: no session; "fresh:" a new session for every call)
FUZZ_AS: dict[str, str | None] = {
    "POST /api/v1/session": None,
    "DELETE /api/v1/session": "fresh:aud",
    "GET /api/v1/me": "docA",
    "GET /api/v1/instruments": "docA",
    "GET /api/v1/instruments/{instrument}": "docA",
    "GET /api/v1/participants": "docA",
    "POST /api/v1/participants": "docA",
    "GET /api/v1/participants/{pid}": "docA",
    "POST /api/v1/participants/{pid}/visits": "docA",
    "PUT /api/v1/participants/{pid}/visits/{vi}/assessments/{instrument}": "docA",
    "PUT /api/v1/participants/{pid}/visits/{vi}/criteria": "docA",
    "GET /api/v1/studies": "docA",
    "GET /api/v1/studies/{study}/participants": "ana",
    "POST /api/v1/labs": "ana",
    "GET /api/v1/analyses": "ana",
    "POST /api/v1/analyses": "ana",
    "GET /api/v1/analyses/{job_id}": "ana",
    "GET /api/v1/models": "ana",
    "POST /api/v1/models": "ana",
    "GET /api/v1/audit": "aud",
    "GET /api/v1/audit/verify": "aud",
    "GET /api/v1/users": "admin1",
    "POST /api/v1/users": "admin1",
    "POST /api/v1/studies": "admin1",
    "POST /api/v1/sites": "admin1",
}
EXAMPLES = {GenerationMode.POSITIVE: 12, GenerationMode.NEGATIVE: 10}
FEW = 6  # sign-in attempts hash a password each: fewer examples


@dataclass
class Fuzz:
    app: FastAPI
    clinic: Clinic
    schema: Any
    sessions: dict[str, tuple[str, str]]  # user -> (cookie, csrf)
    known: dict[str, Any]  # path parameter -> an object that exists
    statuses: Counter[int] = field(default_factory=Counter)


@pytest.fixture(scope="module")
def fuzz(module_app: FastAPI, module_clinic: Clinic) -> Iterator[Fuzz]:
    out = module_clinic.db.parent / "job"
    (out / "models" / "discriminate").mkdir(parents=True)
    (out / "models" / "discriminate" / "model_card.json").write_text("{}")
    (out / "report.html").write_text("<p>report</p>")
    with module_clinic.store.session() as s:
        job = schema.AnalysisJob(study="clinic", status="done", progress=1.0, options={}, out_dir=str(out),
                                 created_by="ana")
        s.add(job)
        s.flush()
        job_id = job.id
    sessions = {}
    for user in sorted({u for u in FUZZ_AS.values() if u and not u.startswith("fresh:")}):
        client, csrf = login(module_app, user)
        sessions[user] = (client.cookies[SESSION_COOKIE], csrf)
    api = schemathesis.openapi.from_asgi("/openapi.json", module_app)
    known = {"pid": module_clinic.pid_a, "vi": 1, "instrument": "phq9", "study": "clinic", "job_id": job_id}
    yield Fuzz(module_app, module_clinic, api, sessions, known)


def test_every_operation_is_fuzzed(fuzz: Fuzz) -> None:
    labels = set()
    for result in fuzz.schema.get_all_operations():
        labels.add(result.ok().label)
    assert labels == set(FUZZ_AS), (sorted(labels - set(FUZZ_AS)), sorted(set(FUZZ_AS) - labels))


def _has_inputs(op: Any) -> bool:
    return any(len(x) for x in (op.path_parameters, op.query, op.headers, op.cookies)) or bool(
        list(op.body))


@pytest.mark.parametrize("label", list(FUZZ_AS))
def test_no_server_error(fuzz: Fuzz, label: str) -> None:
    op = fuzz.schema.find_operation_by_label(label)
    assert op is not None, label
    user = FUZZ_AS[label]

    def credentials() -> tuple[dict[str, str], dict[str, str]]:
        if user is None:
            return {}, {}
        if user.startswith("fresh:"):
            client, csrf = session_for(fuzz.app, user.split(":", 1)[1])
            return {"X-CSRF-Token": csrf}, {SESSION_COOKIE: client.cookies[SESSION_COOKIE]}
        cookie, csrf = fuzz.sessions[user]
        return {"X-CSRF-Token": csrf}, {SESSION_COOKIE: cookie}

    statuses: Counter[int] = Counter()
    names = {p.name for p in op.path_parameters}
    fixed = {k: v for k, v in fuzz.known.items() if k in names}
    runs: list[tuple[GenerationMode, dict[str, Any] | None]] = [(GenerationMode.POSITIVE, None)]
    if _has_inputs(op):
        runs.append((GenerationMode.NEGATIVE, None))
    if fixed:
        runs.append((GenerationMode.POSITIVE, fixed))
    for mode, path_parameters in runs:
        examples = FEW if user is None else EXAMPLES[mode]

        @settings(max_examples=examples, deadline=None, derandomize=True, database=None,
                  suppress_health_check=list(HealthCheck),
                  phases=[Phase.explicit, Phase.generate, Phase.shrink])
        @given(case=op.as_strategy(generation_mode=mode, path_parameters=path_parameters))
        def run(case: Any) -> None:
            headers, cookies = credentials()
            response = case.call(headers=headers, cookies=cookies)
            statuses[response.status_code] += 1
            case.validate_response(response, checks=[not_a_server_error])

        run()
    assert sum(statuses.values()) >= (5 if _has_inputs(op) else 1), statuses
    assert all(code < 500 for code in statuses), statuses
    if user is not None:
        # the calls were made signed in (not refused as anonymous), and the session survived them
        assert statuses[401] < sum(statuses.values()), statuses
        if not user.startswith("fresh:"):
            cookie, _ = fuzz.sessions[user]
            check = TestClient(fuzz.app, cookies={SESSION_COOKIE: cookie})
            assert check.get("/api/v1/me").status_code == 200
    if user is not None and not user.startswith("fresh:") and fixed:
        assert any(200 <= code < 300 for code in statuses), f"no call reached a success: {statuses}"


# -- inputs the OpenAPI description does not cover: pages, uploaded files ----------------------------
BIG = "9" * 25  # larger than any database integer
PAGE_URLS = ["/participants/{big}", "/participants/{pid}/visits/{big}/criteria",
             "/participants/{pid}/visits/{big}/assess/phq9", "/participants/{big}/visits/1/criteria",
             "/analyses/{big}", "/analyses/{big}/progress", "/analyses/{big}/report", "/models/{big}/card",
             "/audit?before={big}", "/participants/-1", "/analyses/0"]
PAGE_POSTS = ["/participants/{big}/visits", "/participants/{pid}/visits/{big}/criteria",
              "/participants/{pid}/visits/{big}/assess/phq9", "/analyses/{big}/register"]


@pytest.mark.parametrize("url", PAGE_URLS)
def test_page_ids_out_of_range_are_refused_not_a_crash(fuzz: Fuzz, url: str) -> None:
    user = "aud" if "/audit" in url or "/participants" in url else "ana"
    cookie, _ = fuzz.sessions[user]
    client = TestClient(fuzz.app, cookies={SESSION_COOKIE: cookie}, raise_server_exceptions=False)
    r = client.get(url.format(big=BIG, pid=fuzz.clinic.pid_a), follow_redirects=False)
    assert r.status_code in (404, 422), (r.status_code, r.text[:300])


@pytest.mark.parametrize("url", PAGE_POSTS)
def test_page_posts_with_ids_out_of_range_are_refused(fuzz: Fuzz, url: str) -> None:
    user = "ana" if url.startswith("/analyses") else "docA"
    cookie, csrf = fuzz.sessions[user]
    client = TestClient(fuzz.app, cookies={SESSION_COOKIE: cookie}, raise_server_exceptions=False)
    r = client.post(url.format(big=BIG, pid=fuzz.clinic.pid_a), follow_redirects=False,
                    data={"csrf_token": csrf, "kind": "discriminate", "name": "x", "days_out_per_week": "1",
                          "rarely_leaves_room": "no", "months_isolated": "1", "impairment": "no",
                          "distress": "no"})
    assert r.status_code in (404, 422), (r.status_code, r.text[:300])


UNREADABLE = {"corrupt.parquet": b"PAR1 not really parquet PAR1", "table.csv.gz": b"sample,Orn\nS1,1\n",
              "archive.zip": b"PK\x03\x04 broken", "binary.csv": bytes(range(256)) * 4,
              "sheet.xlsx": b"sample,Orn\nS1,1\n", "data.h5ad": b"\x89HDF\r\n\x1a\n broken"}


@pytest.mark.parametrize("name", sorted(UNREADABLE))
def test_unreadable_lab_files_are_the_uploaders_problem(fuzz: Fuzz, name: str) -> None:
    """A file no reader can parse gets a 422 with the reason, on the API and on the preview page."""
    cookie, csrf = fuzz.sessions["ana"]
    client = TestClient(fuzz.app, cookies={SESSION_COOKIE: cookie}, raise_server_exceptions=False)
    r = client.post("/api/v1/labs", headers={"X-CSRF-Token": csrf},
                    data={"study": "clinic", "dry_run": "false"}, files={"file": (name, UNREADABLE[name])})
    assert r.status_code == 422, (r.status_code, r.text[:300])
    body = r.json()
    assert body["ok"] is False and body["problems"] and body["problems"][0]["message"]
    assert str(fuzz.clinic.work_dir) not in r.text, "the server's folders are not shown"
    page = client.post("/labs/preview", data={"csrf_token": csrf, "study": "clinic"},
                       files={"file": (name, UNREADABLE[name])})
    assert page.status_code == 422 and "<!doctype html>" in page.text.lower()


def test_control_characters_are_refused_on_pages_as_on_the_api(fuzz: Fuzz) -> None:
    cookie, csrf = fuzz.sessions["docA"]
    doc = TestClient(fuzz.app, cookies={SESSION_COOKIE: cookie}, follow_redirects=False)
    for code in ("BAD\x00CODE", "BAD\tCODE", "BAD\nCODE"):
        r = doc.post("/participants", data={"csrf_token": csrf, "study": "clinic", "code": code})
        assert r.status_code == 422 and "control characters" in r.text
        r = doc.post("/api/v1/participants", headers={"X-CSRF-Token": csrf},
                     json={"study": "clinic", "code": code})
        assert r.status_code == 422
    r = doc.post("/participants", data={"csrf_token": csrf, "study": "clinic", "code": "OK-1",
                                        "group": "a\x07"})
    assert r.status_code == 422
    cookie, csrf = fuzz.sessions["admin1"]
    admin = TestClient(fuzz.app, cookies={SESSION_COOKIE: cookie}, follow_redirects=False)
    assert admin.post("/admin/studies", data={"csrf_token": csrf, "name": "bad\x00study"}).status_code == 422
    assert admin.post("/admin/sites", data={"csrf_token": csrf, "study": "clinic",
                                            "code": "S\r\n1"}).status_code == 422
    with fuzz.clinic.store.session() as s:
        codes = list(s.scalars(select(schema.Participant.code)))
        studies = list(s.scalars(select(schema.Study.name)))
    assert not [c for c in codes + studies if any(ord(ch) < 32 for ch in c)]
    assert "OK-1" not in codes


def test_visit_0_is_reachable_through_the_api_as_on_the_pages(fuzz: Fuzz) -> None:
    """Imported data may start at visit 0 (baseline): the API must address it like the pages do."""
    with fuzz.clinic.store.session() as s:
        s.add(schema.Visit(participant_id=fuzz.clinic.pid_a, visit_index=0))
    cookie, csrf = fuzz.sessions["docA"]
    doc = TestClient(fuzz.app, cookies={SESSION_COOKIE: cookie}, follow_redirects=False)
    crit = {"days_out_per_week": 1, "rarely_leaves_room": False, "months_isolated": 7, "impairment": True,
            "distress": True}
    r = doc.put(f"/api/v1/participants/{fuzz.clinic.pid_a}/visits/0/criteria", json=crit,
                headers={"X-CSRF-Token": csrf})
    assert r.status_code == 200, r.text
    assert r.json()["visit"] == 0
    assert doc.get(f"/participants/{fuzz.clinic.pid_a}/visits/0/criteria").status_code == 200
    assert doc.put(f"/api/v1/participants/{fuzz.clinic.pid_a}/visits/-1/criteria", json=crit,
                   headers={"X-CSRF-Token": csrf}).status_code == 422
