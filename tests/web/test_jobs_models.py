"""Background analyses, reports in the app, model registration and predictions on participant pages."""

from __future__ import annotations

import re
import time
from pathlib import Path

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import select
from sqlalchemy.orm import Session

from hikisig.cohort import schema
from hikisig.cohort.store import Store
from hikisig.cohort.users import add_user
from hikisig.synth import SynthConfig, SyntheticStudy, write_store
from hikisig.web import WebSettings, create_app
from hikisig.web.analyses import parse_job_options
from hikisig.web.jobs import job_config

PASSWORD = "correct horse battery"
FAST = {"discriminate.permutations": 0, "discriminate.cv_repeats": 1, "discriminate.n_estimators": 50,
        "severity.enabled": False, "stratify.enabled": False}


@pytest.fixture(scope="module")
def synthetic_app(tmp_path_factory: pytest.TempPathFactory):
    folder = tmp_path_factory.mktemp("synthweb")
    db = folder / "s.db"
    write_store(SyntheticStudy(SynthConfig(n_cases=30, n_controls=30, n_analytes=40, seed=5)), str(db))
    store = Store(db)
    add_user(store, "ana", "analyst", PASSWORD)
    add_user(store, "aud", "auditor", PASSWORD)
    app = create_app(str(db), WebSettings(work_dir=folder / "work"))
    yield app, store
    app.state.jobs.shutdown()
    app.state.store.dispose()


def _api(app, name: str) -> tuple[TestClient, dict[str, str]]:
    c = TestClient(app)
    r = c.post("/api/v1/session", json={"username": name, "password": PASSWORD})
    assert r.status_code == 200, r.text
    return c, {"X-CSRF-Token": r.json()["csrf_token"]}


def test_job_options_are_validated():
    assert parse_job_options({"discriminate.permutations": "200", "severity.enabled": "false"}) == {
        "discriminate.permutations": 200, "severity.enabled": "false"}
    with pytest.raises(Exception, match="unknown option"):
        parse_job_options({"discriminate.permutation": 5})
    with pytest.raises(Exception, match="expected 0 to 10000"):
        parse_job_options({"discriminate.permutations": 20000})
    config = job_config("sqlite:///x.db", 'we"ird', {"run.seed": 3, "severity.enabled": "false"})
    assert config.source.db == "sqlite:///x.db" and config.source.study == 'we"ird'
    assert config.run.seed == 3 and config.severity.enabled is False
    assert config.discriminate.permutations == 1000  # every other setting: the config's default
    with pytest.raises(Exception, match=r"unknown key 'run\.sed'"):
        job_config("sqlite:///x.db", "s", {"run.sed": 3})


def test_analysis_runs_in_background_and_its_model_predicts_on_the_participant_page(synthetic_app):
    app, store = synthetic_app
    study = store.study_names()[0]
    ana, h = _api(app, "ana")
    r = ana.post("/api/v1/analyses", json={"study": study, "options": FAST}, headers=h)
    assert r.status_code == 202, r.text
    job_id = r.json()["id"]
    assert r.json()["status"] == "queued"
    seen = set()
    deadline = time.monotonic() + 240
    while time.monotonic() < deadline:
        job = ana.get(f"/api/v1/analyses/{job_id}").json()
        seen.add(job["stage"])
        if job["status"] in ("done", "failed"):
            break
        time.sleep(0.5)
    assert job["status"] == "done", job["message"]
    assert job["progress"] == 1.0 and job["report"] == f"/analyses/{job_id}/report"
    # the progress fragment polls while running and links the report when done
    frag = ana.get(f"/analyses/{job_id}/progress")
    assert 'id="open-report"' in frag.text and "hx-trigger" not in frag.text
    rep = ana.get(f"/analyses/{job_id}/report")
    assert rep.status_code == 200 and "<html" in rep.text.lower()
    assert "script" not in rep.headers["content-security-policy"]
    assert "sandbox" in rep.headers["content-security-policy"]
    # analysts see pseudonyms only: neither the report nor the model card holds a participant
    # or sample code
    with Session(store.engine) as s:
        codes = set(s.scalars(select(schema.Participant.code)))
        codes |= {str(c) for c in s.scalars(select(schema.Sample.code))}
    assert len(codes) >= 60
    leaked = [c for c in codes if re.search(rf"\b{re.escape(c)}\b", rep.text)]
    assert leaked == []
    # register the discrimination model, then a participant page shows its prediction
    r = ana.post("/api/v1/models", json={"job_id": job_id, "kind": "discriminate", "name": "rf-web"},
                 headers=h)
    assert r.status_code == 201, r.text
    r = ana.post("/api/v1/models", json={"job_id": job_id, "kind": "severity", "name": "none"}, headers=h)
    assert r.status_code == 422  # severity was disabled: no such model
    aud, _ = _api(app, "aud")
    people = aud.get("/api/v1/participants", params={"study": study}).json()
    page = aud.get(f"/participants/{people[0]['id']}")
    assert page.status_code == 200
    assert "Latest model prediction: rf-web" in page.text
    prob = re.search(r"probability of the case profile <strong>([0-9.]+)</strong>", page.text)
    assert prob is not None and 0.0 <= float(prob.group(1)) <= 1.0
    # the model was trained on this very sample: the page says so
    assert "this sample was used to train the model" in page.text
    card = aud.get(re.search(r'href="(/models/\d+/card)"', page.text).group(1))
    assert card.status_code == 200 and "rf-web" in card.text
    assert [c for c in codes if re.search(rf"\b{re.escape(c)}\b", card.text)] == []


def test_unknown_study_or_option_is_refused(synthetic_app):
    app, _ = synthetic_app
    ana, h = _api(app, "ana")
    assert ana.post("/api/v1/analyses", json={"study": "nope"}, headers=h).status_code == 422
    r = ana.post("/api/v1/analyses", json={"study": "x", "options": {"run.sed": 1}}, headers=h)
    assert r.status_code == 422 and "unknown option" in r.text
    assert ana.get("/api/v1/analyses/999999").status_code == 404
    assert ana.get("/analyses/999999/report").status_code == 404


def test_lab_upload_checks_everything_and_stores_nothing_on_error(synthetic_app, tmp_path: Path):
    app, store = synthetic_app
    ana, h = _api(app, "ana")
    before = store.row_counts()
    bad = b"sample_id,participant,visit,Orn,Arg\nS1,X1,1,10,abc\nS2,X2,1,11,12\nS3,X3,1,zz,12\n"
    r = ana.post("/api/v1/labs", files={"file": ("bad.csv", bad, "text/csv")},
                 data={"study": "labs", "dry_run": "false"}, headers=h)
    assert r.status_code == 422
    probs = r.json()["problems"]
    assert {(p["row"], p["column"], p["value"]) for p in probs} == {(2, "Arg", "abc"), (4, "Orn", "zz")}
    after = store.row_counts()
    assert {k: v for k, v in after.items() if k != "audit_event"} == \
        {k: v for k, v in before.items() if k != "audit_event"}
    good = b"sample_id,participant,visit,Orn,Arg\nS1,X1,1,10,9\nS2,X2,1,11,12\n"
    r = ana.post("/api/v1/labs", files={"file": ("good.csv", good, "text/csv")},
                 data={"study": "labs"}, headers=h)
    assert r.status_code == 200 and r.json()["dry_run"] and r.json()["values"] == 4
    assert "labs" not in store.study_names()  # a dry run leaves nothing, not even the study
    r = ana.post("/api/v1/labs", files={"file": ("good.csv", good, "text/csv")},
                 data={"study": "labs", "dry_run": "false"}, headers=h)
    assert r.status_code == 200 and r.json()["import_id"] is not None
    assert store.row_counts()["measurement"] == before["measurement"] + 4
    # a conflicting value for a stored sample is found by the preview, against the store
    clash = b"sample_id,participant,visit,Orn,Arg\nS1,X1,1,99,9\n"
    r = ana.post("/api/v1/labs", files={"file": ("clash.csv", clash, "text/csv")},
                 data={"study": "labs"}, headers=h)
    assert r.status_code == 422 and "already has" in r.json()["problems"][0]["message"]
    # the page flow: preview, then import with the staged token
    more = b"sample_id,participant,visit,Orn,Arg\nS9,X9,1,1,2\n"
    r = ana.post("/labs/preview", files={"file": ("more.csv", more, "text/csv")},
                 data={"study": "labs", "format": "auto", "csrf_token": h["X-CSRF-Token"]})
    assert r.status_code == 200 and 'id="upload-ok"' in r.text
    token = re.search(r'name="token" value="([^"]+)"', r.text).group(1)
    r = ana.post("/labs/import", data={"token": token, "study": "labs", "format": "auto",
                                       "csrf_token": h["X-CSRF-Token"]})
    assert r.status_code == 200 and "2 values written" in r.text
    r = ana.post("/labs/import", data={"token": token, "study": "labs", "format": "auto",
                                       "csrf_token": h["X-CSRF-Token"]})
    assert r.status_code == 404  # a staged file is imported once
    # each import has its audit entry, written in the import's own transaction
    with Session(store.engine) as s:
        logged = s.execute(select(schema.AuditEvent.entity_id, schema.AuditEvent.actor)
                           .where(schema.AuditEvent.action == "import",
                                  schema.AuditEvent.entity == "measurements")).all()
        imports = s.scalars(select(schema.ImportLog.id).join(schema.Study)
                            .where(schema.Study.name == "labs")).all()
    assert sorted(int(i) for i, _ in logged if i is not None) == sorted(imports) and len(imports) == 2
    assert {a for _, a in logged} == {"ana"}
