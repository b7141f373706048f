"""The clinician screens without a browser (TestClient): questionnaire forms with item text or
the licence note and response labels, the participant list (alert, criteria, last visit,
sorting, site scope), blood results per visit, and the audit page (filters, pages, diffs)."""

from __future__ import annotations

import datetime as dt
import re
from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from hikisig.assess.definition import load_instrument
from hikisig.cohort import schema
from hikisig.web.display import audit_changes, criteria_label, label, options_text

from .conftest import Clinic, session_for

PHQ9_ITEM9 = "Thoughts that you would be better off dead or of hurting yourself in some way"


def seed(clinic: Clinic) -> dict[str, int]:
    """PA (site A): visits 1 and 2, PHQ-9 with item 9 = 2 at visit 2, criteria pre-hikikomori at
    visit 2, a blood sample at visit 2 (glucose, creatinine, one uncatalogued value below LOD).
    PC (site A): one visit, criteria 'not'. PB stays bare (site B)."""
    phq9 = load_instrument("phq9")
    answers = {f"item{i}": 1.0 for i in range(1, 10)} | {"item9": 2.0}
    scores = {"total": 10.0, "band": "moderate", "screen_positive": True, "item9_alert": True}
    with clinic.store.session() as s:
        study = s.query(schema.Study).filter_by(name="clinic").one()
        site_a = s.query(schema.Site).filter_by(code="A").one()
        v1 = s.query(schema.Visit).filter_by(participant_id=clinic.pid_a, visit_index=1).one()
        v1.visit_date = dt.date(2026, 1, 10)
        v2 = schema.Visit(participant_id=clinic.pid_a, visit_index=2, visit_date=dt.date(2026, 3, 2))
        pc = schema.Participant(study_id=study.id, site_id=site_a.id, code="PC", sex="M", attributes={})
        s.add_all([v2, pc])
        s.flush()
        vc = schema.Visit(participant_id=pc.id, visit_index=1, visit_date=dt.date(2026, 2, 1))
        s.add(vc)
        s.flush()
        s.add(schema.Assessment(visit_id=v2.id, instrument="phq9", version=phq9.version, answers=answers,
                                scores=scores))
        s.add(schema.CriteriaRecord(visit_id=v2.id, days_out_per_week=1, rarely_leaves_room=False,
                                    months_isolated=4, impairment=True, distress=True,
                                    status="pre-hikikomori", severity="moderate", reasons="test"))
        s.add(schema.CriteriaRecord(visit_id=vc.id, days_out_per_week=5, rarely_leaves_room=False,
                                    months_isolated=0, impairment=False, distress=False,
                                    status="not", severity="", reasons="test"))
        sample = schema.Sample(study_id=study.id, visit_id=v2.id, code="S-PA-2", sample_type="study",
                               attributes={})
        glc = schema.Analyte(study_id=study.id, key="glucose", catalog_id="glucose", display_name="Glucose",
                             unit="mmol/L", attributes={})
        cre = schema.Analyte(study_id=study.id, key="creatinine", catalog_id="creatinine",
                             display_name="Creatinine", unit="umol/L", attributes={})
        m1 = schema.Analyte(study_id=study.id, key="M1", catalog_id=None, display_name="M1", unit=None,
                            attributes={})
        s.add_all([sample, glc, cre, m1])
        s.flush()
        s.add_all([schema.Measurement(sample_id=sample.id, analyte_id=glc.id, value=5.4),
                   schema.Measurement(sample_id=sample.id, analyte_id=cre.id, value=71.0),
                   schema.Measurement(sample_id=sample.id, analyte_id=m1.id, value=None, flag="<LOD",
                                      raw="<LOD")])
        return {"pc": pc.id}


@pytest.fixture
def seeded(clinic: Clinic) -> tuple[Clinic, dict[str, int]]:
    return clinic, seed(clinic)


def _client(web_app, name: str) -> TestClient:
    c, _ = session_for(web_app, name)
    return c


# -- instruments: licence, item text and labels -------------------------------------------------
def test_every_instrument_states_its_licence() -> None:
    from hikisig.assess.definition import instrument_ids

    for iid in instrument_ids():
        inst = load_instrument(iid)
        assert inst.licence is not None and inst.licence.name and inst.licence.source, iid
        if inst.item_texts:
            assert inst.licence.text_allowed, iid
            assert inst.verified["item_text"].verified and inst.verified["item_text"].source, iid
            assert sorted(inst.item_texts) == list(range(1, inst.n_items + 1)), iid
    for iid in ("hq25", "hq25m", "ucla3", "lsns6"):
        assert not load_instrument(iid).licence.text_allowed  # type: ignore[union-attr]
    assert load_instrument("phq9").item_texts[9] == PHQ9_ITEM9


def test_item_text_without_permission_is_rejected(tmp_path: Path) -> None:
    from hikisig.assess.definition import InstrumentError

    text = (Path(__file__).parents[2] / "src/hikisig/assess/instruments/hq25.toml").read_text()
    text = text.replace("text_allowed = false", "text_allowed = false\n", 1)
    text += "\n" + "".join(f'[[items]]\nnumber = {i}\ntext = "x"\n\n' for i in range(1, 26))
    path = tmp_path / "hq25x.toml"
    path.write_text(text)
    with pytest.raises(InstrumentError, match="text_allowed"):
        load_instrument(path)


def test_phq9_form_shows_items_and_labels(web_app, clinic: Clinic) -> None:
    c = _client(web_app, "docA")
    r = c.get(f"/participants/{clinic.pid_a}/visits/1/assess/phq9")
    assert r.status_code == 200
    assert "<h1>PHQ-9 · visit 1</h1>" in r.text
    assert PHQ9_ITEM9 in r.text and "Little interest or pleasure in doing things" in r.text
    assert "Over the last 2 weeks" in r.text
    for lab in ("Not at all", "Several days", "More than half the days", "Nearly every day"):
        assert r.text.count(f'<span class="choice-label">{lab}</span>') == 9
    assert "Item text not reproduced" not in r.text


def test_hq25_form_says_text_not_reproduced(web_app, clinic: Clinic) -> None:
    c = _client(web_app, "docA")
    r = c.get(f"/participants/{clinic.pid_a}/visits/1/assess/hq25")
    assert r.status_code == 200
    assert "<h1>HQ-25 · visit 1</h1>" in r.text
    assert "Item text not reproduced: see the licence." in r.text
    assert "10.1111/pcn.12691" in r.text
    assert 'id="labels-note"' in r.text and "not verified" in r.text
    assert r.text.count('type="radio"') == 25 * 5
    assert 'class="item-text"' not in r.text


def test_invalid_form_keeps_names_and_labels(web_app, clinic: Clinic) -> None:
    c, csrf = session_for(web_app, "docA")
    r = c.post(f"/participants/{clinic.pid_a}/visits/1/assess/phq9", data={"item1": "9", "csrf_token": csrf})
    assert r.status_code == 422
    assert "<h1>PHQ-9 · visit 1</h1>" in r.text and "Nearly every day" in r.text
    assert 'id="form-errors"' in r.text


def test_saved_phq9_shows_alert_in_words(web_app, clinic: Clinic) -> None:
    c, csrf = session_for(web_app, "docA")
    data = {f"item{i}": "0" for i in range(1, 10)} | {"item9": "1", "csrf_token": csrf}
    r = c.post(f"/participants/{clinic.pid_a}/visits/1/assess/phq9", data=data)
    assert r.status_code == 303
    r = c.get(r.headers["location"])
    assert "Alert: Item 9 (self-harm) alert." in r.text
    assert "Screen positive" in r.text and ">screen_positive<" not in r.text
    assert "item9_alert." not in r.text


# -- participant list -----------------------------------------------------------------------------
def _codes(html: str) -> list[str]:
    return re.findall(r'<tr id="participant-\d+"><td><a href="/participants/\d+">([^<]+)</a>', html)


def test_participant_list_columns(web_app, seeded) -> None:
    clinic, _ = seeded
    r = _client(web_app, "docA").get("/participants")
    assert r.status_code == 200
    assert _codes(r.text) == ["PA", "PC"], "site A only, sorted by code"
    row = r.text[r.text.index(f'id="participant-{clinic.pid_a}"'):]
    row = row[:row.index("</tr>")]
    assert "Item 9 (self-harm) alert" in row and "PHQ-9, visit 2" in row
    assert "Pre-hikikomori" in row and "visit 2 · 2026-03-02" in row
    assert 'aria-sort="ascending"' in r.text
    for head in ("Alert", "Criteria (2020)", "Last visit"):
        assert f">{head}" in r.text


@pytest.mark.parametrize(("sort", "order"), [("code", ["PA", "PC"]), ("-code", ["PC", "PA"]),
                                             ("alert", ["PA", "PC"]), ("-alert", ["PC", "PA"]),
                                             ("criteria", ["PA", "PC"]), ("-criteria", ["PC", "PA"]),
                                             ("last_visit", ["PC", "PA"]), ("-last_visit", ["PA", "PC"]),
                                             ("nonsense", ["PA", "PC"])])
def test_participant_list_sorts(web_app, seeded, sort: str, order: list[str]) -> None:
    r = _client(web_app, "docA").get(f"/participants?sort={sort}")
    assert r.status_code == 200
    assert _codes(r.text) == order


def test_participant_list_auditor_sees_all_sites(web_app, seeded) -> None:
    r = _client(web_app, "aud").get("/participants?sort=site")
    assert _codes(r.text) == ["PA", "PC", "PB"]
    r = _client(web_app, "docB").get("/participants")
    assert _codes(r.text) == ["PB"] and "no visit" not in r.text


# -- blood results --------------------------------------------------------------------------------
def test_participant_page_shows_blood_values(web_app, seeded) -> None:
    clinic, _ = seeded
    r = _client(web_app, "docA").get(f"/participants/{clinic.pid_a}")
    assert r.status_code == 200
    block = r.text[r.text.index('id="blood-2"'):]
    block = block[:block.index("</section>")]
    assert "S-PA-2" in block
    assert re.search(r"<td>Glucose</td>\s*<td class=\"num\">5.4</td>\s*<td>mmol/L</td>", block)
    assert re.search(r"<td>Creatinine</td>\s*<td class=\"num\">71</td>\s*<td>umol/L</td>", block)
    assert "&lt;LOD" in block and "unit not given" in block
    assert block.count("no reference range") == 3
    assert 'id="blood-1"' not in r.text, "visit 1 has no sample"
    assert "blood sample(s)" not in r.text
    # display names on the visit cards
    assert ">PHQ-9</a>" in r.text and "Item 9 (self-harm) alert" in r.text and "Pre-hikikomori" in r.text
    # the interventions block is still there
    assert 'id="intervention-list"' in r.text


def test_blood_values_need_a_participant_page(web_app, seeded) -> None:
    clinic, _ = seeded
    assert _client(web_app, "ana").get(f"/participants/{clinic.pid_a}").status_code == 403
    assert _client(web_app, "docB").get(f"/participants/{clinic.pid_a}").status_code == 404
    r = _client(web_app, "aud").get(f"/participants/{clinic.pid_a}")
    assert r.status_code == 200 and "5.4" in r.text


# -- audit page -----------------------------------------------------------------------------------
def test_audit_page_filters_paginates_and_diffs(web_app, seeded) -> None:
    clinic, _ = seeded
    doc = _client(web_app, "docA")
    for _ in range(55):
        assert doc.get(f"/participants/{clinic.pid_a}").status_code == 200
    docb, csrf = session_for(web_app, "docB")
    r = docb.post(f"/participants/{clinic.pid_b}/interventions",
                  data={"kind": "psychotherapy", "start": "2026-01-05", "detail": "CBT", "csrf_token": csrf})
    assert r.status_code == 303
    iid = re.search(r'id="intervention-(\d+)"', docb.get(f"/participants/{clinic.pid_b}").text)
    assert iid is not None
    r = docb.post(f"/participants/{clinic.pid_b}/interventions/{iid.group(1)}/end",
                  data={"end": "2026-02-01", "csrf_token": csrf})
    assert r.status_code == 303

    aud = _client(web_app, "aud")
    r = aud.get("/audit")
    assert r.status_code == 200
    assert r.text.count('<tr id="audit-') == 50
    assert 'id="page-older"' in r.text and 'id="page-newer"' not in r.text
    assert "page 1 of 2" in r.text
    r2 = aud.get("/audit?page=2")
    assert 'id="page-newer"' in r2.text and 'id="page-older"' not in r2.text
    ids1 = set(re.findall(r'<tr id="audit-(\d+)"', r.text))
    ids2 = set(re.findall(r'<tr id="audit-(\d+)"', r2.text))
    assert ids1 and ids2 and not ids1 & ids2

    r = aud.get("/audit?actor=docA&action=view")
    n = len(re.findall(r'<tr id="audit-', r.text))
    assert n == 50 and "55 entries" in r.text
    assert "docB" not in re.sub(r"<select name=\"actor\">.*?</select>", "", r.text, flags=re.S)
    assert 'href="/audit?actor=docA&amp;action=view&amp;page=2"' in r.text

    r = aud.get("/audit?participant=PB")
    rows = re.findall(r'<tr id="audit-(\d+)"', r.text)
    assert len(rows) == 3, "the intervention's create and update and PB's page view"
    assert "<td>Intervention " in r.text
    # the update's diff: end changed from nothing to the date, highlighted; kind unchanged
    assert re.search(r'<tr class="changed"><td>end</td><td class="old">–</td><td aria-hidden="true">→</td>'
                     r'<td class="new">2026-02-01</td></tr>', r.text)
    assert '<tr class="same"><td>kind</td><td class="old">psychotherapy</td>' in r.text
    body = r.text[r.text.index("<main>"):]
    assert "{&#34;" not in body and '{"' not in body, "no raw JSON"

    today = dt.datetime.now(dt.UTC).date()
    assert "No entry matches." in aud.get(f"/audit?to={today - dt.timedelta(days=1)}").text
    r = aud.get(f"/audit?from={today}&to={today}&action=update")
    assert len(re.findall(r'<tr id="audit-', r.text)) == 1
    assert aud.get("/audit?from=yesterday").status_code == 422
    assert aud.get("/audit?page=999").status_code == 200
    assert _client(web_app, "docA").get("/audit").status_code == 403


# -- display names --------------------------------------------------------------------------------
def test_display_words() -> None:
    from hikisig.web.display import instrument_label, job_stage_label

    assert [instrument_label(i) for i in ("hq25", "hq25m", "phq9", "k6", "k10", "ucla3", "lsns6")] == [
        "HQ-25", "HQ-25M", "PHQ-9", "K6", "K10", "UCLA-3", "LSNS-6"]
    from hikisig.assess.definition import instrument_ids

    assert all(load_instrument(i).short_name == instrument_label(i) for i in instrument_ids())
    assert label("item9_alert") == "Item 9 (self-harm) alert"
    assert label("screen_positive") == "Screen positive"
    assert criteria_label("pre-hikikomori") == "Pre-hikikomori" and criteria_label("not") == "Not hikikomori"
    assert job_stage_label("done") == "finished"
    assert options_text({"n_perm": 100, "seed": 7}) == "N perm: 100 · Seed: 7"
    changes = audit_changes(None, '{"a":1,"b":{"c":true}}')
    assert [(c["field"], c["old"], c["new"]) for c in changes] == [("a", "–", "1"), ("b.c", "–", "yes")]
