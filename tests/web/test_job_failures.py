"""Analyses in the app: a failed job shows one line, the traceback goes to the server log; a
job's report uses the criteria recorded at visits."""

from __future__ import annotations

import logging
import re
import time

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import select

from hikisig.cohort import schema
from hikisig.cohort.users import add_user
from hikisig.web import WebSettings, create_app
from hikisig.web.jobs import failure_reason, job_config, run_job

from .conftest import api_session, synthetic_store_at_sites

PASSWORD = "correct horse battery"
FAST = {"discriminate.permutations": 0, "discriminate.cv_repeats": 1, "discriminate.n_estimators": 30,
        "severity.enabled": False, "stratify.enabled": False}
CRITERIA = {"days_out_per_week": 0, "rarely_leaves_room": True, "months_isolated": 8, "impairment": True,
            "distress": True}


@pytest.fixture(scope="module")
def synth(tmp_path_factory: pytest.TempPathFactory):
    """A synthetic study whose participants are at site A, a clinician there, an analyst, an auditor."""
    folder = tmp_path_factory.mktemp("jobfail")
    store, study = synthetic_store_at_sites(folder, seed=5)
    db = folder / "s.db"
    with store.session() as s:
        empty = store.study(s, "empty", create=True)
        s.add(schema.Site(study_id=empty.id, code="A"))
    for name, role, site_code in (("docA", "clinician", "A"), ("ana", "analyst", None),
                                  ("aud", "auditor", None)):
        add_user(store, name, role, PASSWORD, site=site_code)
    app = create_app(str(db), WebSettings(work_dir=folder / "work"))
    yield app, store, study, folder
    app.state.jobs.shutdown()
    app.state.store.dispose()
    store.dispose()


def _api(app, name: str) -> tuple[TestClient, dict[str, str]]:
    return api_session(app, name)


def _wait(client: TestClient, job_id: int) -> dict:
    deadline = time.monotonic() + 240
    while time.monotonic() < deadline:
        job = client.get(f"/api/v1/analyses/{job_id}").json()
        if job["status"] in ("done", "failed"):
            return job
        time.sleep(0.5)
    raise AssertionError(f"job {job_id} did not finish: {job}")


def test_failure_reason_is_one_line_without_codes():
    from hikisig.errors import HikisigError

    msg = failure_reason(KeyError("SYN00001"), "statistics", 7, {"SYN00001", "S-1"})
    assert msg == ("internal error (KeyError) in the statistics stage; the details are in the server "
                   "log (job 7)")
    msg = failure_reason(HikisigError("participant SYN00001 has too few samples\nmore detail"), "data", 3,
                         {"SYN00001"})
    assert msg == "participant [code] has too few samples (stage data)"
    assert "\n" not in msg


def test_internal_error_shows_one_line_to_analysts_and_auditors_and_logs_the_traceback(
        synth, monkeypatch, caplog):
    app, store, study, folder = synth
    with store.session() as s:
        job = schema.AnalysisJob(study=study, status="queued", progress=0.0, options=FAST, created_by="ana")
        s.add(job)
        s.flush()
        job_id = job.id
        code = s.scalars(select(schema.Participant.code)).first()

    def broken(*args, **kwargs):
        raise RuntimeError(f"internal state broken near participant {code}")

    monkeypatch.setattr("hikisig.pipeline.run.execute", broken)
    with caplog.at_level(logging.ERROR, logger="hikisig.web.jobs"):
        run_job(store.url, job_id, str(folder / "work"))  # the worker's body, in this process
    assert "Traceback" in caplog.text and "internal state broken" in caplog.text  # the server log
    for name in ("ana", "aud"):
        c, _ = _api(app, name)
        job = c.get(f"/api/v1/analyses/{job_id}").json()
        assert job["status"] == "failed"
        assert job["message"] == ("internal error (RuntimeError) in the data stage; the details are in "
                                  f"the server log (job {job_id})")
        html = c.get(f"/analyses/{job_id}").text
        reason = re.search(r'id="job-failure"[^>]*>([^<]*)<', html)
        assert reason is not None and "internal error (RuntimeError)" in reason.group(1)
        for text in (html, c.get(f"/analyses/{job_id}/progress").text, c.get("/analyses").text):
            assert "Traceback" not in text and "internal state broken" not in text and code not in text


def test_old_job_messages_show_their_first_line_only(synth):
    app, store, study, _ = synth
    with store.session() as s:
        job = schema.AnalysisJob(study=study, status="failed", progress=0.2, options={}, created_by="ana",
                                 message='boom\n\nTraceback (most recent call last):\n  File "x.py"')
        s.add(job)
        s.flush()
        job_id = job.id
    c, _ = _api(app, "aud")
    assert c.get(f"/api/v1/analyses/{job_id}").json()["message"] == "boom"
    assert "Traceback" not in c.get(f"/analyses/{job_id}").text


def test_a_job_that_fails_in_the_worker_process_says_why_in_one_line(synth):
    app, _, _, _ = synth
    ana, h = _api(app, "ana")
    r = ana.post("/api/v1/analyses", json={"study": "empty", "options": FAST}, headers=h)
    assert r.status_code == 202, r.text
    job = _wait(ana, r.json()["id"])
    assert job["status"] == "failed"
    assert job["message"] and "\n" not in job["message"] and "Traceback" not in job["message"]
    assert len(job["message"]) <= 300


def test_job_report_uses_the_criteria_recorded_at_visits(synth):
    app, store, study, _ = synth
    with store.session() as s:
        pids = list(s.scalars(select(schema.Participant.id).order_by(schema.Participant.id).limit(6)))
    assert job_config(store.url, study, FAST).source.criteria is None  # the store's records are read
    doc, h = _api(app, "docA")
    for pid in pids:
        r = doc.put(f"/api/v1/participants/{pid}/visits/1/criteria", json=CRITERIA, headers=h)
        assert r.status_code == 200, r.text
    ana, h = _api(app, "ana")
    r = ana.post("/api/v1/analyses", json={"study": study, "options": FAST}, headers=h)
    assert r.status_code == 202, r.text
    job = _wait(ana, r.json()["id"])
    assert job["status"] == "done", job["message"]
    report = ana.get(job["report"]).text
    assert "Criteria were not run" not in report
    assert "Criteria status by group" in report
    text = re.sub(r"<[^>]+>", " ", report)
    counts = re.search(r"Criteria status by group \(counts\)\.\s+status\s+control\s+case\s+hikikomori\s+"
                       r"(\d+)\s+(\d+)", text)
    assert counts is not None and int(counts.group(1)) + int(counts.group(2)) == len(pids)
