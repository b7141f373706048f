"""What the pages and the JSON API both do: scoped reads and audited writes.

Scope rules (the same for every route):

- clinician: participants whose site code is the clinician's site; others do
  not exist for them (404). Create, visits, questionnaires, criteria.
- auditor: every participant, read-only; the audit trail.
- analyst: no participant pages (403); the pseudonymised data of all sites,
  lab uploads, analyses, reports and models.
- admin: users, sites and studies; no participant data (403).

Every create, update and delete, every view of a participant and every export
is written to the audit trail in the same transaction as the change.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import hmac
import re
import secrets
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd
from fastapi import HTTPException
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from hikisig.assess.criteria import classify, read_criteria_frame
from hikisig.assess.definition import Instrument, load_instrument
from hikisig.cohort import schema
from hikisig.cohort.assessments import _scores_dicts, definition_sha256
from hikisig.cohort.audit import append_event
from hikisig.errors import InputError
from hikisig.web.context import Ctx

__all__ = ["CLINICAL_READ", "CLINICAL_WRITE", "Found", "add_visit", "audit", "clinician_studies",
           "create_participant", "get_visit", "list_participants", "load_participant", "next_code",
           "participant_dict", "printable", "pseudonym", "pseudonym_key", "save_assessment", "save_criteria",
           "timeline", "validate_answers",
           "validate_criteria"]

CLINICAL_READ = ("clinician", "auditor")
CLINICAL_WRITE = ("clinician",)
CRITERIA_FIELDS = ("days_out_per_week", "rarely_leaves_room", "months_isolated", "impairment",
                   "distress")


def printable(value: str | None, what: str) -> None:
    """422 when a name or code has control characters (the API's schemas refuse them; so do the forms)."""
    if value and any(ord(ch) < 0x20 or 0x7F <= ord(ch) < 0xA0 for ch in value):
        raise HTTPException(422, f"{what} contains control characters (tabs, line breaks, ...)")


def audit(s: Session, ctx: Ctx, action: str, entity: str, entity_id: Any = None, *,
          study: str | None = None, site: str | None = None, before: Any = None,
          after: Any = None) -> None:
    """Append an audit entry for the signed-in user."""
    append_event(s, actor=ctx.name, role=ctx.role, action=action, entity=entity,
                 entity_id=entity_id, study=study, site=site, before=before, after=after)


@dataclass
class Found:
    """A participant within the user's scope, with its study and site."""

    participant: schema.Participant
    study: str
    site: str | None


def _scoped(ctx: Ctx) -> Any:
    stmt = (select(schema.Participant, schema.Study.name, schema.Site.code)
            .join(schema.Study, schema.Study.id == schema.Participant.study_id)
            .outerjoin(schema.Site, schema.Site.id == schema.Participant.site_id))
    if ctx.role == "clinician":
        stmt = stmt.where(schema.Site.code == ctx.site)
    return stmt


def load_participant(s: Session, ctx: Ctx, pid: int, *, write: bool = False) -> Found:
    """A participant the user may see (404 outside a clinician's site; 403 for other roles)."""
    allowed = CLINICAL_WRITE if write else CLINICAL_READ
    if ctx.role not in allowed:
        raise HTTPException(403, f"a {ctx.role} cannot {'change' if write else 'open'} participant records")
    row = s.execute(_scoped(ctx).where(schema.Participant.id == pid)).first()
    if row is None:
        raise HTTPException(404, "no such participant")
    return Found(row[0], row[1], row[2])


def participant_dict(f: Found) -> dict[str, Any]:
    """The fields of a participant shown to clinical users."""
    p = f.participant
    return {"id": p.id, "code": p.code, "study": f.study, "site": f.site, "sex": p.sex,
            "birth_year": p.birth_year, "age": p.age, "group": p.group_label}


def list_participants(s: Session, ctx: Ctx, *, study: str | None = None, q: str | None = None,
                      limit: int = 500) -> list[dict[str, Any]]:
    """Participants within scope (clinical roles only), newest first."""
    if ctx.role not in CLINICAL_READ:
        raise HTTPException(403, f"a {ctx.role} cannot list participant records")
    stmt = _scoped(ctx).order_by(schema.Participant.id.desc()).limit(limit)
    if study:
        stmt = stmt.where(schema.Study.name == study)
    if q:
        stmt = stmt.where(schema.Participant.code.contains(q, autoescape=True))
    return [participant_dict(Found(p, st, site)) for p, st, site in s.execute(stmt).all()]


def _study(s: Session, name: str) -> schema.Study:
    st = s.scalar(select(schema.Study).where(schema.Study.name == name))
    if st is None:
        raise HTTPException(422, f"no study named {name!r}")
    return st


def create_participant(s: Session, ctx: Ctx, *, study: str, code: str, sex: str | None = None,
                       birth_year: int | None = None, group: str | None = None,
                       site: str | None = None) -> Found:
    """Create a participant at the clinician's site (audited)."""
    if ctx.role not in CLINICAL_WRITE:
        raise HTTPException(403, f"a {ctx.role} cannot create participants")
    site = ctx.site
    st = _study(s, study)
    code = code.strip()
    if not code:
        raise HTTPException(422, "the participant code is empty")
    printable(code, "the participant code")
    printable(group, "the group")
    site_row = s.scalar(select(schema.Site).where(schema.Site.study_id == st.id,
                                                  schema.Site.code == site))
    if site_row is None:
        raise HTTPException(422, f"site {site!r} is not part of study {study!r}: ask an admin to add it")
    if sex not in (None, "", *schema.SEXES):
        raise HTTPException(422, f"sex must be one of {', '.join(schema.SEXES)} or empty")
    # Codes are unique per study and site: only the user's own site is looked at (and named),
    # so the answer never tells whether another site has a participant with this code.
    taken = s.scalar(select(func.count()).select_from(schema.Participant)
                     .where(schema.Participant.study_id == st.id, schema.Participant.site_id == site_row.id,
                            schema.Participant.code == code))
    if taken:
        raise HTTPException(409, f"participant code {code!r} is already used at your site {site_row.code!r} "
                                 f"in study {study!r}")
    p = schema.Participant(study_id=st.id, site_id=site_row.id, code=code, sex=sex or None,
                           birth_year=birth_year, group_label=group or None, attributes={})
    s.add(p)
    s.flush()
    found = Found(p, st.name, site_row.code)
    audit(s, ctx, "create", "participant", p.id, study=st.name, site=site_row.code,
          after=participant_dict(found))
    return found


def clinician_studies(s: Session, ctx: Ctx) -> list[str]:
    """The studies that have the user's site (a clinician's site code is matched in every study)."""
    if not ctx.site:
        return []
    return list(s.scalars(select(schema.Study.name).join(schema.Site, schema.Site.study_id == schema.Study.id)
                          .where(schema.Site.code == ctx.site).order_by(schema.Study.id)))


_CODE_NUMBER = re.compile(r"^(.*?)(\d+)$")


def next_code(s: Session, ctx: Ctx, study: str) -> str | None:
    """The code proposed for a new participant at the user's site of ``study``.

    The site's own codes only (no other site is looked at): the most used prefix of its codes
    ending in a number, with the next number at the same width (``A-007`` after ``A-006``);
    a site without such codes starts at ``SITE-001``. None when the study lacks the site.
    """
    site_id = s.scalar(select(schema.Site.id).join(schema.Study, schema.Study.id == schema.Site.study_id)
                       .where(schema.Study.name == study, schema.Site.code == ctx.site))
    if site_id is None or ctx.site is None:
        return None
    codes = list(s.scalars(select(schema.Participant.code).where(schema.Participant.site_id == site_id)))
    numbered: dict[str, list[tuple[int, int]]] = {}
    for c in codes:
        m = _CODE_NUMBER.match(c)
        if m:
            numbered.setdefault(m.group(1), []).append((int(m.group(2)), len(m.group(2))))
    if not numbered:
        prefix, number, width = f"{ctx.site.upper()}-", 1, 3
    else:
        prefix = max(numbered, key=lambda k: (len(numbered[k]), k))
        number = max(n for n, _ in numbered[prefix]) + 1
        width = max(w for _, w in numbered[prefix])
    taken = set(codes)
    while f"{prefix}{number:0{width}d}" in taken:
        number += 1
    return f"{prefix}{number:0{width}d}"


def get_visit(s: Session, f: Found, visit_index: int) -> schema.Visit:
    """Visit ``visit_index`` of a participant (404 if absent)."""
    v = s.scalar(select(schema.Visit).where(schema.Visit.participant_id == f.participant.id,
                                            schema.Visit.visit_index == visit_index))
    if v is None:
        raise HTTPException(404, f"participant has no visit {visit_index}")
    return v


def add_visit(s: Session, ctx: Ctx, f: Found, visit_date: dt.date | None) -> schema.Visit:
    """Record the next visit of a participant (audited)."""
    last = s.scalar(select(func.max(schema.Visit.visit_index))
                    .where(schema.Visit.participant_id == f.participant.id)) or 0
    v = schema.Visit(participant_id=f.participant.id, visit_index=int(last) + 1, visit_date=visit_date)
    s.add(v)
    s.flush()
    audit(s, ctx, "create", "visit", v.id, study=f.study, site=f.site,
          after={"participant": f.participant.id, "visit": v.visit_index, "date": visit_date})
    return v


def validate_answers(inst: Instrument, given: dict[str, Any]) -> tuple[dict[str, float | None],
                                                                      dict[str, str]]:
    """Check the answers of one questionnaire; returns (answers, errors by item column)."""
    frame = pd.DataFrame({"id": ["-"], **{c: [given.get(c, "")] for c in inst.item_columns}})
    frame = frame.astype(object).where(frame.notna(), "")
    from hikisig.assess.answers import check_answers

    try:
        checked = check_answers(frame, inst, file="form")
    except InputError as exc:
        errors = {}
        for p in exc.problems:
            col = p.column or "form"
            errors[str(col)] = (f"expected a whole number from {inst.response_min} to "
                                f"{inst.response_max} (or empty if unanswered)" if p.column else p.message)
        return {}, errors
    answers = {c: (None if np.isnan(v) else float(v)) for c, v in
               zip(inst.item_columns, checked.iloc[0][inst.item_columns].to_numpy(float), strict=True)}
    return answers, {}


def save_assessment(s: Session, ctx: Ctx, f: Found, visit: schema.Visit, inst: Instrument,
                    answers: dict[str, float | None]) -> tuple[schema.Assessment, dict[str, Any]]:
    """Score and store a questionnaire at a visit, replacing an earlier entry (audited)."""
    frame = pd.DataFrame({"id": [f.participant.code],
                          **{c: [np.nan if answers.get(c) is None else answers[c]]
                             for c in inst.item_columns}})
    scores = _scores_dicts(frame.astype({c: float for c in inst.item_columns}), inst)[0]
    old = s.scalar(select(schema.Assessment).where(schema.Assessment.visit_id == visit.id,
                                                   schema.Assessment.instrument == inst.id))
    before = None
    if old is not None:
        before = {"answers": old.answers, "scores": old.scores}
        old.answers, old.scores, old.version = dict(answers), scores, inst.version
        old.definition_sha256 = definition_sha256(inst)
        old.recorded_at = dt.datetime.now(dt.UTC).replace(tzinfo=None)
        a = old
    else:
        a = schema.Assessment(visit_id=visit.id, instrument=inst.id, version=inst.version,
                              answers=dict(answers), scores=scores,
                              definition_sha256=definition_sha256(inst))
        s.add(a)
    s.flush()
    audit(s, ctx, "update" if before else "create", "assessment", a.id, study=f.study, site=f.site,
          before=before, after={"participant": f.participant.id, "visit": visit.visit_index,
                                "instrument": inst.id, "answers": answers, "scores": scores})
    return a, scores


def validate_criteria(given: dict[str, Any]) -> tuple[dict[str, Any], dict[str, str]]:
    """Check the criteria checklist; returns (typed inputs, errors by field)."""
    frame = pd.DataFrame({"id": ["-"], **{k: [given.get(k, "")] for k in CRITERIA_FIELDS}})
    frame = frame.astype(object).where(frame.notna(), "")
    try:
        x = read_criteria_frame(frame, file="form")
    except InputError as exc:
        return {}, {str(p.column or "form"): p.message.split(": ", 1)[-1] for p in exc.problems}
    rec = x.iloc[0]
    return {"days_out_per_week": float(rec["days_out_per_week"]),
            "rarely_leaves_room": bool(rec["rarely_leaves_room"]),
            "months_isolated": float(rec["months_isolated"]),
            "impairment": bool(rec["impairment"]), "distress": bool(rec["distress"])}, {}


def save_criteria(s: Session, ctx: Ctx, f: Found, visit: schema.Visit,
                  inputs: dict[str, Any]) -> schema.CriteriaRecord:
    """Classify and store the criteria at a visit, replacing an earlier entry (audited)."""
    status, severity, reasons = classify(inputs["days_out_per_week"], inputs["rarely_leaves_room"],
                                         inputs["months_isolated"], inputs["impairment"],
                                         inputs["distress"])
    old = s.scalar(select(schema.CriteriaRecord).where(schema.CriteriaRecord.visit_id == visit.id))
    before = None
    if old is not None:
        before = _criteria_dict(old)
        rec = old
    else:
        rec = schema.CriteriaRecord(visit_id=visit.id)
        s.add(rec)
    for k, v in inputs.items():
        setattr(rec, k, v)
    rec.status, rec.severity, rec.reasons = status, severity, reasons
    rec.recorded_at = dt.datetime.now(dt.UTC).replace(tzinfo=None)
    s.flush()
    audit(s, ctx, "update" if before else "create", "criteria", rec.id, study=f.study, site=f.site,
          before=before, after={"participant": f.participant.id, "visit": visit.visit_index,
                                **_criteria_dict(rec)})
    return rec


def _criteria_dict(r: schema.CriteriaRecord) -> dict[str, Any]:
    return {k: getattr(r, k) for k in (*CRITERIA_FIELDS, "status", "severity", "reasons")}


def timeline(s: Session, f: Found) -> dict[str, Any]:
    """A participant's visits with questionnaire scores and criteria, oldest first."""
    visits = list(s.scalars(select(schema.Visit).where(schema.Visit.participant_id == f.participant.id)
                            .order_by(schema.Visit.visit_index)))
    ids = [v.id for v in visits]
    assess = list(s.scalars(select(schema.Assessment).where(schema.Assessment.visit_id.in_(ids))
                            .order_by(schema.Assessment.instrument))) if ids else []
    crit = {c.visit_id: c for c in s.scalars(select(schema.CriteriaRecord)
                                            .where(schema.CriteriaRecord.visit_id.in_(ids)))} if ids else {}
    samples = dict(s.execute(select(schema.Sample.visit_id, func.count())
                             .where(schema.Sample.visit_id.in_(ids))
                             .group_by(schema.Sample.visit_id)).all()) if ids else {}
    out: list[dict[str, Any]] = []
    for v in visits:
        items = [a for a in assess if a.visit_id == v.id]
        c = crit.get(v.id)
        out.append({
            "visit": v.visit_index, "date": v.visit_date.isoformat() if v.visit_date else None,
            "assessments": [{"instrument": a.instrument, "scores": a.scores,
                             "recorded_at": a.recorded_at.isoformat(timespec="seconds")} for a in items],
            "criteria": _criteria_dict(c) if c else None,
            "n_samples": int(samples.get(v.id, 0)),
        })
    history: dict[str, list[dict[str, Any]]] = {}
    for row in out:
        for a in row["assessments"]:
            history.setdefault(a["instrument"], []).append(
                {"visit": row["visit"], "date": row["date"], "total": a["scores"].get("total"),
                 "band": a["scores"].get("band")})
    return {"participant": participant_dict(f), "visits": out, "history": history}


def instrument_or_404(instrument: str) -> Instrument:
    """A shipped instrument, or 404."""
    from hikisig.assess.definition import instrument_ids

    if instrument not in instrument_ids():
        raise HTTPException(404, f"no instrument {instrument!r}")
    return load_instrument(instrument)


def pseudonym_key(s: Session) -> bytes:
    """The server's pseudonymisation key (created on first use, kept in the store)."""
    row = s.get(schema.AppSetting, "pseudonym_key")
    if row is None:
        row = schema.AppSetting(key="pseudonym_key", value=secrets.token_hex(32))
        s.add(row)
        s.flush()
    return bytes.fromhex(row.value)


def pseudonym(key: bytes, study: str, code: str) -> str:
    """A stable pseudonym of a participant: keyed HMAC-SHA256 of study and code.

    Examples
    --------
    >>> pseudonym(b"k", "s", "P1") == pseudonym(b"k", "s", "P1") != pseudonym(b"k", "s", "P2")
    True
    """
    digest = hmac.new(key, f"{study}\x1f{code}".encode(), hashlib.sha256).hexdigest()
    return f"PS-{digest[:12].upper()}"
