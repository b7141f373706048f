"""Analysts see pseudonyms only, everywhere: an analyst's crawl of every page, report, model
card, export and API GET finds no participant code and no sample code of the store."""

from __future__ import annotations

import re
import time
from collections import deque
from urllib.parse import urljoin, urlsplit

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import select

from hikisig.cohort import schema
from hikisig.cohort.users import add_user
from hikisig.web import WebSettings, create_app
from hikisig.web.jobs import run_job

from .conftest import api_session, synthetic_store_at_sites

PASSWORD = "correct horse battery"
FAST = {"discriminate.permutations": 0, "discriminate.cv_repeats": 1, "discriminate.n_estimators": 30,
        "severity.enabled": True, "severity.permutations": 0, "severity.cv_repeats": 1,
        "stratify.enabled": False}
#: A participant entered in the clinic: a distinctive code at each site (the same code twice).
CLINIC_CODE = "ZZ-LEAK-0042"
#: Pages an analyst must not crawl into: signing out ends the session.
SKIP = ("/logout", "/static/")


@pytest.fixture(scope="module")
def world(tmp_path_factory: pytest.TempPathFactory):
    folder = tmp_path_factory.mktemp("noleaks")
    store, study = synthetic_store_at_sites(folder, seed=7, sites=("A", "B"))
    db = folder / "s.db"
    for name, role, site in (("docA", "clinician", "A"), ("docB", "clinician", "B"),
                             ("ana", "analyst", None)):
        add_user(store, name, role, PASSWORD, site=site)
    app = create_app(str(db), WebSettings(work_dir=folder / "work"))
    app.state.jobs.submit = lambda job_id: run_job(store.url, job_id, str(folder / "work"))
    yield app, store, study
    app.state.jobs.shutdown()
    app.state.store.dispose()
    store.dispose()


def _api(app, name: str) -> tuple[TestClient, dict[str, str]]:
    return api_session(app, name)


def _clinic_data(app, study: str) -> None:
    """Clinicians of both sites enter the same code, a visit, a questionnaire and the criteria."""
    for name in ("docA", "docB"):
        c, h = _api(app, name)
        r = c.post("/api/v1/participants", json={"study": study, "code": CLINIC_CODE, "sex": "F"}, headers=h)
        assert r.status_code in (200, 201), r.text
        pid = r.json()["id"]
        assert c.post(f"/api/v1/participants/{pid}/visits", json={}, headers=h).status_code in (200, 201)
        r = c.put(f"/api/v1/participants/{pid}/visits/1/criteria", headers=h,
                  json={"days_out_per_week": 0, "rarely_leaves_room": True, "months_isolated": 8,
                        "impairment": True, "distress": True})
        assert r.status_code == 200, r.text


def _links(base: str, html: str) -> list[str]:
    out = []
    for href in re.findall(r'(?:href|action|hx-get)="([^"#]+)', html):
        url = urljoin(base, href.replace("&amp;", "&"))
        parts = urlsplit(url)
        if parts.netloc in ("", "testserver") and parts.path.startswith("/") and \
                not parts.path.startswith(SKIP):
            out.append(parts.path + (f"?{parts.query}" if parts.query else ""))
    return out


def test_an_analyst_sees_no_participant_or_sample_code_anywhere(world):
    app, store, study = world
    _clinic_data(app, study)
    ana, h = _api(app, "ana")
    r = ana.post("/api/v1/analyses", json={"study": study, "options": FAST}, headers=h)
    assert r.status_code == 202, r.text
    job_id = r.json()["id"]
    deadline = time.monotonic() + 240
    while (job := ana.get(f"/api/v1/analyses/{job_id}").json())["status"] not in ("done", "failed"):
        assert time.monotonic() < deadline
        time.sleep(0.3)
    assert job["status"] == "done", job["message"]
    for kind in ("discriminate", "severity"):
        r = ana.post("/api/v1/models", json={"job_id": job_id, "kind": kind, "name": f"m-{kind}"}, headers=h)
        assert r.status_code in (200, 201), r.text
    with store.session() as s:
        codes = set(s.scalars(select(schema.Participant.code))) | set(s.scalars(select(schema.Sample.code)))
    assert CLINIC_CODE in codes and len(codes) > 80

    # the crawl: the nav, every same-origin link of every page reached, and the API GETs
    start = ["/", f"/analyses/{job_id}/report", f"/analyses/{job_id}/progress", "/api", "/api/v1/me",
             "/api/v1/instruments", "/api/v1/studies", f"/api/v1/studies/{study}/participants",
             "/api/v1/analyses", f"/api/v1/analyses/{job_id}", "/api/v1/models", "/openapi.json"]
    queue, seen, opened = deque(start), set(start), []
    while queue:
        path = queue.popleft()
        r = ana.get(path, follow_redirects=True)
        if r.status_code in (403, 404, 405, 422):
            continue
        assert r.status_code == 200, (path, r.status_code, r.text[:300])
        opened.append(path)
        body = r.text
        leaked = sorted(c for c in codes if re.search(rf"(?<![\w-]){re.escape(c)}(?![\w-])", body))
        assert not leaked, f"{path} shows participant/sample codes {leaked[:5]}"
        if "html" in r.headers.get("content-type", ""):
            for link in _links("http://testserver" + path, body):
                if link not in seen:
                    seen.add(link)
                    queue.append(link)
    # the crawl did reach what an analyst opens
    must = {"/data", "/labs", "/analyses", "/models", f"/analyses/{job_id}", f"/analyses/{job_id}/report",
            f"/api/v1/studies/{study}/participants"}
    assert must <= set(opened), must - set(opened)
    assert any(p.startswith("/models/") and p.endswith("/card") for p in opened)
    assert any(p.startswith("/data/export.csv") for p in opened)
    # the two clinic participants with one code are two pseudonyms, not one
    pseudonyms = [p["pseudonym"] for p in ana.get(f"/api/v1/studies/{study}/participants").json()]
    assert len(pseudonyms) == len(set(pseudonyms)) == store.row_counts()["participant"]
