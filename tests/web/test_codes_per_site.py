"""Participant codes are unique per study and site (revision 0005): two sites may each have
``A-001``; imports need the site where a code is shared; analyses name shared codes
``site/code``; the new-participant form proposes the site's next code and never speaks of
another site's participants."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from sqlalchemy import inspect, select, text
from sqlalchemy.exc import IntegrityError

from hikisig.cohort import schema
from hikisig.cohort.dataset import load_dataset
from hikisig.cohort.importer import import_measurements, import_participants
from hikisig.cohort.interventions import import_interventions, interventions_frame
from hikisig.cohort.readers import read_measurements
from hikisig.cohort.store import Store
from hikisig.errors import InputError
from web.conftest import Clinic, session_for


def _write(folder: Path, name: str, content: str) -> Path:
    p = folder / name
    p.write_text(content)
    return p


# -- the store ------------------------------------------------------------------------------------
@pytest.mark.parametrize("old", ["0001", "0004"])  # one revision, or several in one upgrade
def test_upgrade_keeps_participants_and_their_visits_and_allows_a_code_per_site(tmp_path, old):
    from alembic import command

    from hikisig.cohort.store import _alembic_config

    store = Store(tmp_path / "old.db")
    with store.engine.begin() as conn:
        command.upgrade(_alembic_config(conn), old)
    with store.engine.begin() as conn:
        conn.execute(text("INSERT INTO study (id, name, synthetic, created_at) "
                          "VALUES (1, 'kept', 0, '2026-01-01')"))
        conn.execute(text("INSERT INTO site (id, study_id, code) VALUES (1, 1, 'A'), (2, 1, 'B')"))
        conn.execute(text("INSERT INTO participant (id, study_id, site_id, code, attributes, created_at) "
                          "VALUES (1, 1, 1, 'A-001', '{}', '2026-01-01'), "
                          "(2, 1, NULL, 'X-1', '{}', '2026-01-01')"))
        conn.execute(text("INSERT INTO visit (participant_id, visit_index) VALUES (1, 1)"))
    assert store.init() == Store.head_revision()
    uniques = {tuple(u["column_names"]) for u in inspect(store.engine).get_unique_constraints("participant")}
    assert ("study_id", "site_id", "code") in uniques
    with store.session() as s:
        codes = s.scalars(select(schema.Participant.code).order_by(schema.Participant.id)).all()
        assert codes == ["A-001", "X-1"]
        assert s.scalar(select(schema.Visit.participant_id)) == 1
    with store.engine.connect() as conn:
        assert conn.exec_driver_sql("PRAGMA foreign_keys").scalar() == 1
        assert conn.exec_driver_sql("PRAGMA foreign_key_check").fetchall() == []
    with store.session() as s:
        s.add(schema.Participant(study_id=1, site_id=2, code="A-001", attributes={}))  # another site: fine
    with pytest.raises(IntegrityError), store.session() as s:  # the same site: refused
        s.add(schema.Participant(study_id=1, site_id=1, code="A-001", attributes={}))
        s.flush()
    with pytest.raises(IntegrityError), store.session() as s:  # no site: unique within the study
        s.add(schema.Participant(study_id=1, site_id=None, code="X-1", attributes={}))
        s.flush()
    store.dispose()


# -- imports and analyses -----------------------------------------------------------------------------
PEOPLE = ("participant,site,sex,group\nA-001,A,F,case\nA-001,B,M,control\nA-002,A,M,control\n"
          "B-007,B,F,case\n")


def test_imports_take_the_site_where_sites_share_a_code_and_analyses_qualify_shared_codes(
        sqlite_store, tmp_path):
    store = sqlite_store
    res = import_participants(store, _write(tmp_path, "people.csv", PEOPLE), "s")
    assert res.n_participants_new == 4
    # a lab file without a site cannot tell which A-001 it means: one line naming the ambiguity
    lab = _write(tmp_path, "lab.csv", "sample,participant,Orn\nS1,A-001,50\nS2,A-002,60\n")
    with pytest.raises(InputError) as err:
        import_measurements(store, read_measurements(lab), "s")
    lines = [p.message for p in err.value.problems]
    assert lines == ["participant code 'A-001' is used at 2 sites of study 's' (A, B): give the site "
                     "column to say which"]
    assert store.row_counts()["sample"] == 0
    # with the site column each row finds its participant
    lab = _write(tmp_path, "lab2.csv", "sample,participant,site,Orn\nS1,A-001,A,50\nS2,A-001,B,60\n"
                                       "S3,A-002,A,70\nS4,B-007,B,80\n")
    import_measurements(store, read_measurements(lab), "s")
    assert store.row_counts()["participant"] == 4
    ds = load_dataset(store, "s")
    # shared codes are site-qualified; codes of one participant stay as they are
    assert ds.obs["participant"].to_dict() == {"S1": "A/A-001", "S2": "B/A-001", "S3": "A-002", "S4": "B-007"}
    assert ds.obs.loc["S1", "sex"] == "F" and ds.obs.loc["S2", "sex"] == "M"
    # interventions: ambiguous without a site, resolved with it, named like the Dataset
    iv = _write(tmp_path, "iv.csv", "participant,kind,start\nA-001,psychotherapy,2026-01-05\n")
    with pytest.raises(InputError, match=r"used at 2 sites of study 's' \(A, B\)"):
        import_interventions(store, iv, "s")
    iv = _write(tmp_path, "iv2.csv", "participant,site,kind,start\nA-001,B,psychotherapy,2026-01-05\n"
                                     "A-001,A,psychotherapy,2026-01-05\nA-002,,medication,2026-02-01\n")
    assert import_interventions(store, iv, "s").n_new == 3
    assert sorted(interventions_frame(store, "s")["participant"]) == ["A-002", "A/A-001", "B/A-001"]


def test_participants_file_may_repeat_a_code_at_other_sites_only(sqlite_store, tmp_path):
    bad = _write(tmp_path, "p.csv", "participant,site\nA-001,A\nA-001,A\n")
    with pytest.raises(InputError, match=r"duplicate participant code \(first in row 2\)"):
        import_participants(sqlite_store, bad, "s")


def test_criteria_and_questionnaires_name_shared_codes_like_the_dataset(sqlite_store, tmp_path):
    from hikisig.cohort.criteria_records import load_criteria

    store = sqlite_store
    import_participants(store, _write(tmp_path, "people.csv", PEOPLE), "s")
    with store.session() as s:
        for pid in s.scalars(select(schema.Participant.id)):
            v = schema.Visit(participant_id=pid, visit_index=1)
            s.add(v)
            s.flush()
            s.add(schema.CriteriaRecord(visit_id=v.id, days_out_per_week=0, rarely_leaves_room=True,
                                        months_isolated=8, impairment=True, distress=True,
                                        status="hikikomori", severity="severe", reasons=""))
    assert sorted(load_criteria(store, "s")["id"]) == ["A-002", "A/A-001", "B-007", "B/A-001"]


# -- the web app ------------------------------------------------------------------------------------
def _form(c, path: str) -> tuple[str, str]:
    r = c.get(path)
    assert r.status_code == 200, r.text
    study = re.search(r'<option value="([^"]*)" selected>', r.text)
    code = re.search(r'name="code"[^>]*value="([^"]*)"', r.text)
    assert study is not None and code is not None, r.text
    return study.group(1), code.group(1)


def test_new_participant_form_defaults_to_the_users_study_and_proposes_the_sites_next_code(
        clinic: Clinic, web_app):
    with clinic.store.session() as s:  # a synthetic study without the user's site comes first
        other = clinic.store.study(s, "aaa-synthetic", create=True, synthetic=True)
        s.add(schema.Site(study_id=other.id, code="Z"))
    doc, csrf = session_for(web_app, "docB")
    study, code = _form(doc, "/participants/new")
    assert (study, code) == ("clinic", "B-001")  # site B has no numbered code yet
    r = doc.post("/participants", data={"study": "clinic", "code": code, "csrf_token": csrf})
    assert r.status_code == 303, r.text
    assert _form(doc, "/participants/new") == ("clinic", "B-002")
    assert _form(doc, "/participants/new?study=clinic") == ("clinic", "B-002")


def test_a_code_used_at_another_site_is_allowed_and_conflicts_speak_of_the_own_site_only(
        clinic: Clinic, web_app):
    doc_b, csrf_b = session_for(web_app, "docB")
    # PA exists at site A: site B may have its own PA, and nothing says that A has one
    r = doc_b.post("/participants", data={"study": "clinic", "code": "PA", "csrf_token": csrf_b})
    assert r.status_code == 303, r.text
    r = doc_b.post("/participants", data={"study": "clinic", "code": "PA", "csrf_token": csrf_b})
    assert r.status_code == 409
    assert "already used at your site &#39;B&#39;" in r.text or "already used at your site 'B'" in r.text
    assert "'A'" not in r.text and "&#39;A&#39;" not in r.text
    # the same through the API
    r = doc_b.post("/api/v1/participants", json={"study": "clinic", "code": "PA"},
                   headers={"X-CSRF-Token": csrf_b})
    assert r.status_code == 409 and r.json()["detail"] == ("participant code 'PA' is already used at your "
                                                          "site 'B' in study 'clinic'")
    with clinic.store.session() as s:
        rows = s.execute(select(schema.Site.code).join(schema.Participant)
                         .where(schema.Participant.code == "PA").order_by(schema.Site.code)).scalars().all()
    assert rows == ["A", "B"]
    # each clinician sees their own PA only
    doc_a, _ = session_for(web_app, "docA")
    for c, site in ((doc_a, "A"), (doc_b, "B")):
        listed = c.get("/api/v1/participants").json()
        mine = [p for p in listed if p["code"] == "PA"]
        assert len(mine) == 1 and mine[0]["site"] == site
