"""Clinic pages: participants, visits, questionnaires, criteria, interventions and the timeline."""

from __future__ import annotations

import datetime as dt
from typing import Annotated, Any

from fastapi import APIRouter, Depends, HTTPException, Request
from fastapi.responses import HTMLResponse, Response
from sqlalchemy import select
from sqlalchemy.orm import Session
from starlette.concurrency import run_in_threadpool

from hikisig.cohort import schema
from hikisig.cohort.interventions import (
    KIND_LABELS,
    InterventionError,
    add_intervention,
    end_intervention,
    intervention_dict,
    participant_interventions,
)
from hikisig.web.context import Ctx, RowId, VisitNo, current, require, writing
from hikisig.web.display import criteria_label, instrument_label, label
from hikisig.web.plots import history_plot, interventions_plot
from hikisig.web.predictions import latest_predictions
from hikisig.web.render import page, see_other
from hikisig.web.services import (
    Found,
    add_visit,
    audit,
    clinician_studies,
    create_participant,
    get_visit,
    instrument_or_404,
    list_participants,
    load_participant,
    next_code,
    save_assessment,
    save_criteria,
    timeline,
    validate_answers,
    validate_criteria,
)

__all__ = ["parse_date", "router"]

# The form handlers below are ``async`` (they read the form); their store work (the SQLite write
# lock, queries, scoring) runs in a worker thread: done on the event loop, a submission waiting for
# the lock would stop the whole server until the current writer (say, a lab import) finishes.

router = APIRouter(include_in_schema=False)
Reader = Annotated[Ctx, Depends(current)]
Clinician = Annotated[Ctx, Depends(require("clinician", write=True))]


def parse_date(text: str | None) -> dt.date | None:
    """``YYYY-MM-DD`` or empty; 422 otherwise."""
    if not text or not text.strip():
        return None
    try:
        return dt.date.fromisoformat(text.strip())
    except ValueError as exc:
        raise HTTPException(422, f"visit date {text!r}: expected YYYY-MM-DD") from exc


def _studies(request: Request) -> list[str]:
    return list(request.app.state.store.study_names())


_CRITERIA_ORDER: dict[str, int] = {"hikikomori": 0, "pre-hikikomori": 1, "not": 2}

#: Sortable columns of the participant list: query value -> (header, sort key of a row).
SORTS: dict[str, tuple[str, Any]] = {
    "code": ("Code", lambda r: (r["code"] or "").casefold()),
    "study": ("Study", lambda r: ((r["study"] or "").casefold(), (r["code"] or "").casefold())),
    "site": ("Site", lambda r: ((r["site"] or "").casefold(), (r["code"] or "").casefold())),
    "alert": ("Alert", lambda r: (0 if r["alert"] else 1, (r["code"] or "").casefold())),
    "criteria": ("Criteria (2020)", lambda r: (_CRITERIA_ORDER.get(r["criteria"] or "", 3),
                                              (r["code"] or "").casefold())),
    "last_visit": ("Last visit", lambda r: (r["last_visit_date"] or "", r["last_visit"] or 0)),
}


def _participant_summaries(s: Session, pids: list[int]) -> dict[int, dict[str, Any]]:
    """Per participant: the last visit (number, date), the item alerts raised by the latest
    assessment of each instrument, and the status of the latest criteria record."""
    out: dict[int, dict[str, Any]] = {p: {"last_visit": None, "last_visit_date": None, "alert": [],
                                         "criteria": None, "criteria_visit": None} for p in pids}
    if not pids:
        return out
    visits = s.execute(select(schema.Visit.id, schema.Visit.participant_id, schema.Visit.visit_index,
                              schema.Visit.visit_date)
                       .where(schema.Visit.participant_id.in_(pids))).all()
    vinfo = {vid: (pid, idx) for vid, pid, idx, _ in visits}
    for _vid, pid, idx, date in visits:
        o = out[pid]
        if o["last_visit"] is None or idx > o["last_visit"]:
            o["last_visit"], o["last_visit_date"] = idx, date.isoformat() if date else None
    if not vinfo:
        return out
    latest: dict[tuple[int, str], tuple[int, dict[str, Any]]] = {}
    for vid, inst, scores in s.execute(select(schema.Assessment.visit_id, schema.Assessment.instrument,
                                              schema.Assessment.scores)
                                       .where(schema.Assessment.visit_id.in_(list(vinfo)))).all():
        pid, idx = vinfo[vid]
        if (pid, inst) not in latest or idx > latest[(pid, inst)][0]:
            latest[(pid, inst)] = (idx, scores or {})
    for (pid, inst), (idx, scores) in sorted(latest.items()):
        for k, v in scores.items():
            if k.endswith("_alert") and v is True:
                out[pid]["alert"].append({"id": k, "label": label(k), "instrument": instrument_label(inst),
                                          "visit": idx})
    for vid, status in s.execute(select(schema.CriteriaRecord.visit_id, schema.CriteriaRecord.status)
                                 .where(schema.CriteriaRecord.visit_id.in_(list(vinfo)))).all():
        pid, idx = vinfo[vid]
        o = out[pid]
        if o["criteria_visit"] is None or idx > o["criteria_visit"]:
            o["criteria"], o["criteria_visit"] = status, idx
    return out


@router.get("/participants", response_class=HTMLResponse)
def participants(request: Request, ctx: Reader, study: str | None = None, q: str | None = None,
                 sort: str | None = None) -> Response:
    """The participant list (clinicians: their site only), sortable by ``?sort=COLUMN`` or ``-COLUMN``."""
    sort = (sort or "code")[:20]
    descending = sort.startswith("-")
    key = sort.lstrip("-")
    if key not in SORTS:
        key, descending = "code", False
    with Session(request.app.state.store.engine) as s:
        rows = list_participants(s, ctx, study=study or None, q=(q or "")[:100] or None)
        summary = _participant_summaries(s, [r["id"] for r in rows])
    for r in rows:
        r.update(summary[r["id"]])
        r["criteria_label"] = criteria_label(r["criteria"]) if r["criteria"] else "not checked"
    rows.sort(key=SORTS[key][1], reverse=descending)
    columns = [(k, head) for k, (head, _) in SORTS.items()]
    return page(request, "participants.html", ctx, rows=rows, studies=_studies(request), study=study,
                q=q or "", sort=key, descending=descending, columns=columns)


def _new_form(request: Request, ctx: Ctx, values: dict[str, str], *, status_code: int = 200,
              error: str | None = None) -> Response:
    """The new-participant form: the studies of the user's site, the chosen one (default: the
    first), and the next code of the site in that study proposed when no code was typed."""
    with Session(request.app.state.store.engine) as s:
        studies = clinician_studies(s, ctx) or _studies(request)
        values = dict(values)
        if values.get("study") not in studies:
            values["study"] = studies[0] if studies else ""
        proposed = next_code(s, ctx, values["study"]) if values["study"] else None
    if not values.get("code") and proposed:
        values["code"] = proposed
    return page(request, "participant_new.html", ctx, status_code=status_code, studies=studies,
                error=error, values=values, proposed=proposed)


@router.get("/participants/new", response_class=HTMLResponse)
def new_participant_form(request: Request, ctx: Annotated[Ctx, Depends(require("clinician"))],
                         study: str | None = None) -> Response:
    return _new_form(request, ctx, {"study": (study or "")[:200]})


@router.post("/participants", response_class=HTMLResponse)
async def new_participant(request: Request, ctx: Clinician) -> Response:
    form = await request.form()
    values = {k: str(form.get(k, "")).strip()[:100] for k in ("study", "code", "sex", "birth_year", "group")}
    try:
        by = int(values["birth_year"]) if values["birth_year"] else None
        if by is not None and not 1900 <= by <= dt.date.today().year:
            raise ValueError
    except ValueError:
        return _new_form(request, ctx, values, status_code=422,
                         error=f"birth year {values['birth_year']!r}: expected a year such as 1998")

    def create() -> int:
        with writing(request) as s:
            f = create_participant(s, ctx, study=values["study"], code=values["code"],
                                   sex=values["sex"] or None, birth_year=by, group=values["group"] or None)
            return f.participant.id

    try:
        pid = await run_in_threadpool(create)
    except HTTPException as exc:
        if exc.status_code == 403:
            raise
        return _new_form(request, ctx, values, status_code=exc.status_code, error=exc.detail)
    return see_other(f"/participants/{pid}")


@router.get("/participants/{pid}", response_class=HTMLResponse)
def participant_page(request: Request, pid: RowId, ctx: Reader) -> Response:
    return _participant_view(request, ctx, pid)


def _reference_range(catalog_id: str | None, unit: str | None) -> dict[str, Any] | None:
    """The catalog's reference range of an analyte in ``unit``, or None when none is known.

    The shipped catalog has no reference ranges yet: a catalog entry carrying ``ref_low``,
    ``ref_high`` and ``ref_unit`` (with ``ref_source``) would be used here.
    """
    if not catalog_id:
        return None
    from hikisig.catalog import load_catalog

    try:
        entry = load_catalog().get(catalog_id)
    except (KeyError, ValueError):
        return None
    low, high = getattr(entry, "ref_low", None), getattr(entry, "ref_high", None)
    ref_unit = getattr(entry, "ref_unit", None)
    if (low is None and high is None) or (ref_unit and unit and ref_unit != unit):
        return None
    return {"low": low, "high": high, "unit": ref_unit or unit, "source": getattr(entry, "ref_source", "")}


def _blood_results(s: Session, participant_id: int) -> dict[int, list[dict[str, Any]]]:
    """Blood values per visit number: analyte, value, unit, the lab's flag, and an out-of-range
    flag where the catalog has a reference range."""
    rows = s.execute(
        select(schema.Visit.visit_index, schema.Sample.code, schema.Analyte.display_name,
               schema.Analyte.catalog_id, schema.Analyte.unit, schema.Measurement.value,
               schema.Measurement.flag, schema.Measurement.raw)
        .join(schema.Sample, schema.Sample.visit_id == schema.Visit.id)
        .join(schema.Measurement, schema.Measurement.sample_id == schema.Sample.id)
        .join(schema.Analyte, schema.Analyte.id == schema.Measurement.analyte_id)
        .where(schema.Visit.participant_id == participant_id, schema.Sample.sample_type == "study")
        .order_by(schema.Visit.visit_index, schema.Analyte.display_name)).all()
    out: dict[int, list[dict[str, Any]]] = {}
    for vi, sample, name, cat, unit, value, flag, raw in rows:
        ref = _reference_range(cat, unit)
        status = None
        if ref is not None and value is not None:
            if ref["low"] is not None and value < ref["low"]:
                status = "low"
            elif ref["high"] is not None and value > ref["high"]:
                status = "high"
            else:
                status = "normal"
        out.setdefault(vi, []).append({
            "sample": sample, "analyte": name, "unit": unit or "", "flag": flag, "raw": raw,
            "value": None if value is None else f"{value:.4g}", "ref": ref, "status": status})
    return out


def _participant_view(request: Request, ctx: Ctx, pid: int, *, status_code: int = 200,
                      intervention_error: str | None = None,
                      values: dict[str, str] | None = None) -> Response:
    """The participant page (audited as a view); with an error of the intervention forms when given."""
    with writing(request) as s:
        f = load_participant(s, ctx, pid)
        tl = timeline(s, f)
        ivs = [intervention_dict(iv) for iv in participant_interventions(s, f.participant.id)]
        blood = _blood_results(s, f.participant.id)
        audit(s, ctx, "view", "participant", pid, study=f.study, site=f.site)
    today = dt.date.today()
    plots = {inst: history_plot(inst, points, ivs, today) for inst, points in tl["history"].items()}
    if ivs and not plots:
        plots = {"interventions": interventions_plot(ivs, today)}
    preds = latest_predictions(request, f)
    from hikisig.assess.definition import instrument_ids

    return page(request, "participant.html", ctx, status_code=status_code, tl=tl, p=tl["participant"],
                plots=plots, predictions=preds, instruments=instrument_ids(), interventions=ivs,
                kind_labels=KIND_LABELS, intervention_error=intervention_error, values=values or {},
                today=today.isoformat(), blood=blood, label=label, instrument_label=instrument_label,
                criteria_label=criteria_label)


@router.post("/participants/{pid}/visits")
async def new_visit(request: Request, pid: RowId, ctx: Clinician) -> Response:
    form = await request.form()
    date = parse_date(str(form.get("visit_date", ""))[:20])

    def add() -> None:
        with writing(request) as s:
            f = load_participant(s, ctx, pid, write=True)
            add_visit(s, ctx, f, date)

    await run_in_threadpool(add)
    return see_other(f"/participants/{pid}")


def _answers_of(s: Session, visit: schema.Visit, instrument: str) -> dict[str, Any]:
    a = s.scalar(select(schema.Assessment).where(schema.Assessment.visit_id == visit.id,
                                                 schema.Assessment.instrument == instrument))
    return {} if a is None else {"answers": a.answers, "scores": a.scores}


@router.get("/participants/{pid}/visits/{vi}/assess/{instrument}", response_class=HTMLResponse)
def assess_form(request: Request, pid: RowId, vi: VisitNo, instrument: str, ctx: Reader,
                saved: int = 0) -> Response:
    inst = instrument_or_404(instrument)
    with writing(request) as s:
        f = load_participant(s, ctx, pid)
        v = get_visit(s, f, vi)
        stored = _answers_of(s, v, inst.id)
        audit(s, ctx, "view", "participant", pid, study=f.study, site=f.site,
              after={"page": f"visit {vi} {inst.id}"})
    answers = {k: ("" if val is None else f"{val:g}") for k, val in stored.get("answers", {}).items()}
    return page(request, "assess.html", ctx, inst=inst, p={"id": pid, "code": f.participant.code}, visit=vi,
                answers=answers, errors={}, scores=stored.get("scores"), saved=bool(saved),
                readonly=ctx.role != "clinician", label=label, instrument_label=instrument_label)


@router.post("/participants/{pid}/visits/{vi}/assess/{instrument}", response_class=HTMLResponse)
async def assess_save(request: Request, pid: RowId, vi: VisitNo, instrument: str, ctx: Clinician) -> Response:
    inst = instrument_or_404(instrument)
    form = await request.form()
    given = {c: str(form.get(c, ""))[:20] for c in inst.item_columns}

    def save() -> tuple[Found, dict[str, str]]:
        answers, errors = validate_answers(inst, given)
        with writing(request) as s:
            f = load_participant(s, ctx, pid, write=True)
            v = get_visit(s, f, vi)
            if not errors:
                save_assessment(s, ctx, f, v, inst, answers)
        return f, errors

    f, errors = await run_in_threadpool(save)
    if errors:
        return page(request, "assess.html", ctx, status_code=422, inst=inst,
                    p={"id": pid, "code": f.participant.code}, visit=vi, answers=given, errors=errors,
                    scores=None, saved=False, readonly=False)
    return see_other(f"/participants/{pid}/visits/{vi}/assess/{inst.id}?saved=1")


@router.get("/participants/{pid}/visits/{vi}/criteria", response_class=HTMLResponse)
def criteria_form(request: Request, pid: RowId, vi: VisitNo, ctx: Reader, saved: int = 0) -> Response:
    with writing(request) as s:
        f = load_participant(s, ctx, pid)
        v = get_visit(s, f, vi)
        rec = s.scalar(select(schema.CriteriaRecord).where(schema.CriteriaRecord.visit_id == v.id))
        audit(s, ctx, "view", "participant", pid, study=f.study, site=f.site,
              after={"page": f"visit {vi} criteria"})
    values: dict[str, Any] = {}
    result = None
    if rec is not None:
        values = {"days_out_per_week": f"{rec.days_out_per_week:g}",
                  "months_isolated": f"{rec.months_isolated:g}",
                  "rarely_leaves_room": "yes" if rec.rarely_leaves_room else "no",
                  "impairment": "yes" if rec.impairment else "no",
                  "distress": "yes" if rec.distress else "no"}
        result = {"status": rec.status, "severity": rec.severity, "reasons": rec.reasons}
    return page(request, "criteria.html", ctx, p={"id": pid, "code": f.participant.code}, visit=vi,
                values=values, errors={}, result=result, saved=bool(saved), readonly=ctx.role != "clinician")


@router.post("/participants/{pid}/visits/{vi}/criteria", response_class=HTMLResponse)
async def criteria_save(request: Request, pid: RowId, vi: VisitNo, ctx: Clinician) -> Response:
    form = await request.form()
    given = {k: str(form.get(k, ""))[:20] for k in ("days_out_per_week", "rarely_leaves_room",
                                                      "months_isolated", "impairment", "distress")}

    def save() -> tuple[Found, dict[str, str]]:
        inputs, errors = validate_criteria(given)
        with writing(request) as s:
            f = load_participant(s, ctx, pid, write=True)
            v = get_visit(s, f, vi)
            if not errors:
                save_criteria(s, ctx, f, v, inputs)
        return f, errors

    f, errors = await run_in_threadpool(save)
    if errors:
        return page(request, "criteria.html", ctx, status_code=422, p={"id": pid, "code": f.participant.code},
                    visit=vi, values=given, errors=errors, result=None, saved=False, readonly=False)
    return see_other(f"/participants/{pid}/visits/{vi}/criteria?saved=1")


@router.post("/participants/{pid}/interventions", response_class=HTMLResponse)
async def new_intervention(request: Request, pid: RowId, ctx: Clinician) -> Response:
    form = await request.form()
    values = {"kind": str(form.get("kind", ""))[:40].strip(),
              "start": str(form.get("start", ""))[:20].strip(),
              "detail": str(form.get("detail", ""))[:2000].strip()}

    def add() -> None:
        with writing(request) as s:
            f = load_participant(s, ctx, pid, write=True)
            rec = add_intervention(s, f.participant, values["kind"], values["start"],
                                   values["detail"] or None)
            audit(s, ctx, "create", "intervention", rec.id, study=f.study, site=f.site,
                  after=intervention_dict(rec))

    try:
        await run_in_threadpool(add)
    except InterventionError as exc:
        return _participant_view(request, ctx, pid, status_code=422, intervention_error=str(exc),
                                 values=values)
    return see_other(f"/participants/{pid}#interventions")


@router.post("/participants/{pid}/interventions/{iid}/end", response_class=HTMLResponse)
async def finish_intervention(request: Request, pid: RowId, iid: RowId, ctx: Clinician) -> Response:
    form = await request.form()
    end = str(form.get("end", ""))[:20].strip()

    def finish() -> None:
        with writing(request) as s:
            f = load_participant(s, ctx, pid, write=True)
            rec = s.get(schema.Intervention, iid)
            if rec is None or rec.participant_id != f.participant.id:
                raise HTTPException(404, "no such intervention")
            before = intervention_dict(rec)
            end_intervention(s, iid, end)
            audit(s, ctx, "update", "intervention", iid, study=f.study, site=f.site, before=before,
                  after=intervention_dict(rec))

    try:
        await run_in_threadpool(finish)
    except InterventionError as exc:
        return _participant_view(request, ctx, pid, status_code=422, intervention_error=str(exc))
    return see_other(f"/participants/{pid}#interventions")
