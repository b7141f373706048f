"""Interventions on the participant page: record, end, scope, roles, audit and the timeline bands."""

from __future__ import annotations

import base64
import datetime as dt
import json
import re
from collections.abc import Iterator
from typing import Any

import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient
from sqlalchemy import select
from sqlalchemy.orm import Session

from hikisig.cohort import schema
from hikisig.web.plots import history_plot, intervention_bands, interventions_plot
from web.conftest import Clinic, session_for


@pytest.fixture(scope="module")
def users(module_app: FastAPI) -> Iterator[dict[str, tuple[TestClient, str]]]:
    out = {}
    for name in ("docA", "docB", "ana", "aud"):
        client, csrf = session_for(module_app, name)
        client.follow_redirects = False
        out[name] = (client, csrf)
    yield out


def _interventions(clinic: Clinic, pid: int) -> list[schema.Intervention]:
    with Session(clinic.store.engine) as s:
        return list(s.scalars(select(schema.Intervention).where(schema.Intervention.participant_id == pid)
                              .order_by(schema.Intervention.id)))


def _events(clinic: Clinic) -> list[schema.AuditEvent]:
    with Session(clinic.store.engine) as s:
        return list(s.scalars(select(schema.AuditEvent).where(schema.AuditEvent.entity == "intervention")
                              .order_by(schema.AuditEvent.id)))


def _post(client: TestClient, url: str, csrf: str, data: dict[str, Any]) -> Any:
    return client.post(url, data={**data, "csrf_token": csrf})


def test_clinician_records_and_ends_an_intervention(module_clinic: Clinic, users: Any) -> None:
    doc, csrf = users["docA"]
    pa = module_clinic.pid_a
    r = _post(doc, f"/participants/{pa}/interventions", csrf,
              {"kind": "social_robot", "start": "2024-02-01", "detail": "robot at home"})
    assert r.status_code == 303 and r.headers["location"] == f"/participants/{pa}#interventions"
    [rec] = _interventions(module_clinic, pa)
    assert (rec.kind, rec.start, rec.end, rec.detail) == ("social_robot", dt.date(2024, 2, 1), None,
                                                         "robot at home")
    create = _events(module_clinic)[-1]
    assert (create.action, create.actor, create.role, create.entity_id, create.site) == (
        "create", "docA", "clinician", str(rec.id), "A")
    assert json.loads(create.after or "{}")["kind"] == "social_robot"

    page = doc.get(f"/participants/{pa}")
    assert page.status_code == 200
    assert "Social robot" in page.text and "ongoing" in page.text and "robot at home" in page.text
    assert f'action="/participants/{pa}/interventions/{rec.id}/end"' in page.text
    assert '<option value="family_support">Family support</option>' in page.text

    r = _post(doc, f"/participants/{pa}/interventions/{rec.id}/end", csrf, {"end": "2024-04-30"})
    assert r.status_code == 303
    [rec] = _interventions(module_clinic, pa)
    assert rec.end == dt.date(2024, 4, 30)
    update = _events(module_clinic)[-1]
    assert update.action == "update" and json.loads(update.before or "{}")["end"] is None
    assert json.loads(update.after or "{}")["end"] == "2024-04-30"
    page = doc.get(f"/participants/{pa}")
    assert "2024-04-30" in page.text and f"/interventions/{rec.id}/end" not in page.text


def test_invalid_input_is_refused_with_a_message(module_clinic: Clinic, users: Any) -> None:
    doc, csrf = users["docA"]
    pa = module_clinic.pid_a
    n = len(_interventions(module_clinic, pa))
    r = _post(doc, f"/participants/{pa}/interventions", csrf, {"kind": "yoga", "start": "2024-01-01"})
    assert r.status_code == 422 and "expected one of psychotherapy" in r.text
    r = _post(doc, f"/participants/{pa}/interventions", csrf, {"kind": "other", "start": "yesterday"})
    assert r.status_code == 422 and "expected a date YYYY-MM-DD" in r.text
    assert len(_interventions(module_clinic, pa)) == n
    r = _post(doc, f"/participants/{pa}/interventions", csrf, {"kind": "medication", "start": "2024-05-01"})
    assert r.status_code == 303
    rec = _interventions(module_clinic, pa)[-1]
    r = _post(doc, f"/participants/{pa}/interventions/{rec.id}/end", csrf, {"end": "2024-04-01"})
    assert r.status_code == 422 and "before the start 2024-05-01" in r.text
    assert _interventions(module_clinic, pa)[-1].end is None


def test_other_site_clinician_is_refused(module_clinic: Clinic, users: Any) -> None:
    doc_a, csrf_a = users["docA"]
    doc_b, csrf_b = users["docB"]
    pa = module_clinic.pid_a
    r = _post(doc_b, f"/participants/{pa}/interventions", csrf_b, {"kind": "other", "start": "2024-01-01"})
    assert r.status_code == 404
    # an intervention of site A cannot be ended through a site-B participant either
    assert _post(doc_a, f"/participants/{pa}/interventions", csrf_a,
                 {"kind": "psychotherapy", "start": "2024-03-03"}).status_code == 303
    rec = _interventions(module_clinic, pa)[-1]
    r = _post(doc_b, f"/participants/{module_clinic.pid_b}/interventions/{rec.id}/end", csrf_b,
              {"end": "2024-04-01"})
    assert r.status_code == 404
    r = _post(doc_b, f"/participants/{pa}/interventions/{rec.id}/end", csrf_b, {"end": "2024-04-01"})
    assert r.status_code == 404
    assert _interventions(module_clinic, pa)[-1].end is None


def test_analyst_and_auditor_cannot_edit(module_clinic: Clinic, users: Any) -> None:
    pa = module_clinic.pid_a
    n = len(_interventions(module_clinic, pa))
    for name in ("ana", "aud"):
        client, csrf = users[name]
        r = _post(client, f"/participants/{pa}/interventions", csrf, {"kind": "other", "start": "2024-01-01"})
        assert r.status_code == 403
    assert len(_interventions(module_clinic, pa)) == n
    aud, _ = users["aud"]
    page = aud.get(f"/participants/{pa}")
    assert page.status_code == 200 and 'id="intervention-list"' in page.text
    assert "Record an intervention" not in page.text and "/end\"" not in page.text
    ana, _ = users["ana"]
    assert ana.get(f"/participants/{pa}").status_code == 403  # analysts see no participant pages


def test_request_without_csrf_token_is_refused(module_clinic: Clinic, users: Any) -> None:
    doc, _ = users["docA"]
    r = doc.post(f"/participants/{module_clinic.pid_a}/interventions",
                 data={"kind": "other", "start": "2024-01-01"})
    assert r.status_code == 403


def _png(uri: str) -> bytes:
    assert uri.startswith("data:image/png;base64,")
    return base64.b64decode(uri.split(",", 1)[1])


def test_timeline_draws_bands() -> None:
    today = dt.date(2024, 6, 1)
    ivs = [{"label": "Medication", "start": "2024-03-01", "end": None},
           {"label": "Psychotherapy", "start": "2024-01-10", "end": "2024-02-20"}]
    bands = intervention_bands(ivs, today)
    assert [(b.label, b.start, b.end, b.ongoing) for b in bands] == [
        ("Psychotherapy", dt.date(2024, 1, 10), dt.date(2024, 2, 20), False),
        ("Medication", dt.date(2024, 3, 1), today, True)]
    points = [{"visit": 1, "date": "2024-01-01", "total": 12.0},
              {"visit": 2, "date": "2024-04-01", "total": 8.0}]
    plain = _png(history_plot("phq9", points))
    banded = _png(history_plot("phq9", points, ivs, today))
    undated = _png(history_plot("phq9", [{"visit": 1, "date": None, "total": 3.0}], ivs, today))
    alone = _png(interventions_plot(ivs, today))
    assert all(b.startswith(b"\x89PNG") for b in (plain, banded, undated, alone))
    assert plain != banded


def test_page_shows_the_banded_timeline(module_clinic: Clinic, users: Any) -> None:
    doc, _ = users["docA"]
    pb_doc, _ = users["docB"]
    r = pb_doc.get(f"/participants/{module_clinic.pid_b}")
    assert r.status_code == 200 and "No intervention recorded." in r.text
    page = doc.get(f"/participants/{module_clinic.pid_a}")
    assert page.status_code == 200
    assert re.search(r'<img src="data:image/png;base64,[^"]+" alt="interventions by date">', page.text)


def test_page_bands_under_the_score_history(module_clinic: Clinic, users: Any) -> None:
    from hikisig.assess.definition import load_instrument

    doc, csrf = users["docA"]
    pa = module_clinic.pid_a
    inst = load_instrument("phq9")
    r = _post(doc, f"/participants/{pa}/visits/1/assess/phq9", csrf,
              {c: str(inst.response_min) for c in inst.item_columns})
    assert r.status_code == 303
    # an intervention of its own, so the test does not depend on the others' order
    r = _post(doc, f"/participants/{pa}/interventions", csrf,
              {"kind": "family_support", "start": "2024-03-01", "detail": "parents' group"})
    assert r.status_code == 303
    page = doc.get(f"/participants/{pa}")
    assert page.status_code == 200, page.status_code
    assert 'alt="PHQ-9 total by visit with interventions"' in page.text, re.findall(r'alt="[^"]*"', page.text)
