"""The JSON API (``/api/v1``): the operations of the pages, for scripts and other systems.

Sign in with ``POST /api/v1/session``; the session cookie it sets
authenticates later calls, and every unsafe call must send the returned
``csrf_token`` in the ``X-CSRF-Token`` header. Scope rules are those of the
pages (see :mod:`hikisig.web.services`).
"""

from __future__ import annotations

import datetime as dt
from contextlib import nullcontext
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Depends, File, Form, HTTPException, Path, Query, Request, UploadFile
from fastapi.responses import JSONResponse, Response
from pydantic import BaseModel, Field, StringConstraints
from sqlalchemy import select
from sqlalchemy.orm import Session
from starlette.concurrency import run_in_threadpool

from hikisig.assess.definition import instrument_ids, load_instrument
from hikisig.cohort import schema
from hikisig.cohort.audit import verify_chain
from hikisig.cohort.importer import ImportResult
from hikisig.cohort.readers import FORMATS
from hikisig.cohort.users import precheck, sign_in
from hikisig.web import admin as admin_ops
from hikisig.web import analyses as analysis_ops
from hikisig.web.auth import client_ip, set_session_cookie
from hikisig.web.context import (
    SESSION_COOKIE,
    Ctx,
    VisitNo,
    csrf_ok,
    current,
    end_session,
    new_session,
    require,
    writer_turn,
    writing,
)
from hikisig.web.services import (
    add_visit,
    audit,
    create_participant,
    get_visit,
    instrument_or_404,
    list_participants,
    load_participant,
    save_assessment,
    save_criteria,
    timeline,
    validate_answers,
    validate_criteria,
)
from hikisig.web.uploads import check_staged, discard, stage_upload, upload_options

__all__ = ["router"]

router = APIRouter(prefix="/api/v1", tags=["api"])

_PRINTABLE = r"^[^\x00-\x1f\x7f]*$"
Name = Annotated[str, StringConstraints(min_length=1, max_length=100, pattern=_PRINTABLE)]
LongName = Annotated[str, StringConstraints(min_length=1, max_length=200, pattern=_PRINTABLE)]
Id = Annotated[int, Path(ge=1, le=2_147_483_647)]
Reader = Annotated[Ctx, Depends(current)]


def _writer(*roles: str) -> Any:
    return Depends(require(*roles, write=True))


class Credentials(BaseModel):
    """Sign-in request."""

    username: Name
    password: Annotated[str, StringConstraints(min_length=1, max_length=1000)]


class Me(BaseModel):
    """The signed-in user."""

    name: str
    role: str
    site: str | None = None
    csrf_token: str


class ParticipantIn(BaseModel):
    """A new participant (created at the clinician's site)."""

    study: LongName
    code: Name
    sex: Literal["M", "F"] | None = None
    birth_year: int | None = Field(default=None, ge=1900, le=2100)
    group: Annotated[str, StringConstraints(max_length=100, pattern=_PRINTABLE)] | None = None


class Participant(BaseModel):
    """A participant as clinical users see it."""

    id: int
    code: str
    study: str
    site: str | None = None
    sex: str | None = None
    birth_year: int | None = None
    age: float | None = None
    group: str | None = None


class VisitIn(BaseModel):
    """A new visit."""

    visit_date: dt.date | None = None


class Visit(BaseModel):
    """A recorded visit."""

    participant: int
    visit: int
    visit_date: dt.date | None = None


class AnswersIn(BaseModel):
    """Answers by item column (``item1`` ... ``itemN``); null or absent = unanswered."""

    answers: dict[Annotated[str, StringConstraints(max_length=20)], float | None] = Field(max_length=200)


class Scored(BaseModel):
    """A stored questionnaire with its scores."""

    participant: int
    visit: int
    instrument: str
    scores: dict[str, Any]


class CriteriaIn(BaseModel):
    """The 2020 criteria checklist."""

    days_out_per_week: float = Field(ge=0, le=7)
    rarely_leaves_room: bool
    months_isolated: float = Field(ge=0, le=1200)
    impairment: bool
    distress: bool


class CriteriaOut(BaseModel):
    """Status and severity from the criteria."""

    participant: int
    visit: int
    status: str
    severity: str
    reasons: str


class JobIn(BaseModel):
    """A new analysis of a study; options are config keys (``discriminate.permutations`` ...)."""

    study: LongName
    options: dict[Annotated[str, StringConstraints(max_length=50)], int | bool] = Field(
        default_factory=dict, max_length=20)


class ModelIn(BaseModel):
    """Register a model of a finished analysis."""

    job_id: int = Field(ge=1, le=2_147_483_647)
    kind: Literal["discriminate", "severity", "stratify"]
    name: LongName


class UserIn(BaseModel):
    """A new user."""

    name: Name
    role: Literal["admin", "clinician", "analyst", "auditor"]
    site: Name | None = None
    password: Annotated[str, StringConstraints(min_length=1, max_length=1000)]


class StudyIn(BaseModel):
    """A new study."""

    name: LongName
    description: Annotated[str, StringConstraints(max_length=2000)] | None = None
    synthetic: bool = False


class SiteIn(BaseModel):
    """A new site of a study."""

    study: LongName
    code: Name
    name: LongName | None = None


# -- session ---------------------------------------------------------------
@router.post("/session", response_model=Me, responses={401: {"description": "sign-in failed"},
                                                      429: {"description": "too many failures"}})
def api_login(request: Request, body: Credentials) -> Response:
    """Sign in; sets the session cookie and returns the CSRF token."""
    ip = client_ip(request)
    throttle = request.app.state.throttle
    if throttle.blocked(ip):
        raise HTTPException(429, "too many failed sign-ins from this address")
    checked = precheck(request.app.state.store, body.username.strip(), body.password)
    with writing(request) as s:
        result = sign_in(s, body.username.strip(), body.password, ip=ip, checked=checked)
        if result.user is None:
            throttle.failed(ip)
            token = None
        else:
            token, csrf = new_session(s, result.user)
            user = result.user
    if token is None:
        raise HTTPException(401, "sign-in failed (wrong name or password, or the account is locked)")
    resp = JSONResponse(Me(name=user.name, role=user.role, site=user.site, csrf_token=csrf).model_dump())
    set_session_cookie(request, resp, token)
    return resp


@router.delete("/session", status_code=204)
def api_logout(request: Request, ctx: Annotated[Ctx, Depends(csrf_ok)]) -> Response:
    """Sign out."""
    with writing(request) as s:
        end_session(s, ctx.session_id)
        audit(s, ctx, "logout", "user", ctx.name)
    resp = Response(status_code=204)
    resp.delete_cookie(SESSION_COOKIE, path="/")
    return resp


@router.get("/me", response_model=Me)
def api_me(ctx: Reader) -> Me:
    """The signed-in user and the CSRF token."""
    return Me(name=ctx.name, role=ctx.role, site=ctx.site, csrf_token=ctx.csrf)


# -- instruments -----------------------------------------------------------
@router.get("/instruments")
def api_instruments(ctx: Reader) -> list[dict[str, Any]]:
    """The questionnaires hikisig scores."""
    out = []
    for iid in instrument_ids():
        inst = load_instrument(iid)
        out.append({"id": inst.id, "name": inst.name, "n_items": inst.n_items,
                    "response_min": inst.response_min, "response_max": inst.response_max})
    return out


@router.get("/instruments/{instrument}")
def api_instrument(instrument: Annotated[str, Path(max_length=50)], ctx: Reader) -> dict[str, Any]:
    """One instrument definition (items, range, bands, cut-offs, alerts, sources)."""
    return instrument_or_404(instrument).model_dump()


# -- participants ----------------------------------------------------------
@router.get("/participants", response_model=list[Participant])
def api_participants(request: Request, ctx: Reader,
                     study: Annotated[str | None, Query(max_length=200)] = None,
                     q: Annotated[str | None, Query(max_length=100)] = None) -> list[dict[str, Any]]:
    """Participants in the user's scope (clinicians: their site; auditors: all)."""
    with Session(request.app.state.store.engine) as s:
        return list_participants(s, ctx, study=study, q=q)


@router.post("/participants", response_model=Participant, status_code=201)
def api_create_participant(request: Request, body: ParticipantIn,
                           ctx: Annotated[Ctx, _writer("clinician")]) -> dict[str, Any]:
    """Create a participant at the clinician's site."""
    from hikisig.web.services import participant_dict

    with writing(request) as s:
        f = create_participant(s, ctx, study=body.study, code=body.code, sex=body.sex,
                               birth_year=body.birth_year, group=body.group)
        return participant_dict(f)


@router.get("/participants/{pid}")
def api_participant(request: Request, pid: Id, ctx: Reader) -> dict[str, Any]:
    """A participant's timeline: visits, questionnaire scores, criteria, score history."""
    with writing(request) as s:
        f = load_participant(s, ctx, pid)
        tl = timeline(s, f)
        audit(s, ctx, "view", "participant", pid, study=f.study, site=f.site, after={"via": "api"})
    return tl


@router.post("/participants/{pid}/visits", response_model=Visit, status_code=201)
def api_add_visit(request: Request, pid: Id, body: VisitIn,
                  ctx: Annotated[Ctx, _writer("clinician")]) -> Visit:
    """Record the next visit."""
    with writing(request) as s:
        f = load_participant(s, ctx, pid, write=True)
        v = add_visit(s, ctx, f, body.visit_date)
        return Visit(participant=pid, visit=v.visit_index, visit_date=v.visit_date)


@router.put("/participants/{pid}/visits/{vi}/assessments/{instrument}", response_model=Scored)
def api_assess(request: Request, pid: Id, vi: VisitNo, instrument: Annotated[str, Path(max_length=50)],
               body: AnswersIn, ctx: Annotated[Ctx, _writer("clinician")]) -> Scored:
    """Store (or replace) a questionnaire at a visit and return its scores."""
    inst = instrument_or_404(instrument)
    unknown = [k for k in body.answers if k not in inst.item_columns]
    if unknown:
        raise HTTPException(422, f"unknown item(s) {', '.join(unknown[:5])}: {inst.id} has item1..item"
                                 f"{inst.n_items}")
    given = {k: "" if v is None else f"{v:g}" for k, v in body.answers.items()}
    answers, errors = validate_answers(inst, given)
    if errors:
        raise HTTPException(422, [{"item": k, "msg": v} for k, v in errors.items()])
    with writing(request) as s:
        f = load_participant(s, ctx, pid, write=True)
        v = get_visit(s, f, vi)
        _, scores = save_assessment(s, ctx, f, v, inst, answers)
    return Scored(participant=pid, visit=vi, instrument=inst.id, scores=scores)


@router.put("/participants/{pid}/visits/{vi}/criteria", response_model=CriteriaOut)
def api_criteria(request: Request, pid: Id, vi: VisitNo, body: CriteriaIn,
                 ctx: Annotated[Ctx, _writer("clinician")]) -> CriteriaOut:
    """Store (or replace) the criteria checklist at a visit; returns status and severity."""
    inputs, errors = validate_criteria({k: str(v) for k, v in body.model_dump().items()})
    if errors:
        raise HTTPException(422, [{"field": k, "msg": v} for k, v in errors.items()])
    with writing(request) as s:
        f = load_participant(s, ctx, pid, write=True)
        v = get_visit(s, f, vi)
        rec = save_criteria(s, ctx, f, v, inputs)
        return CriteriaOut(participant=pid, visit=vi, status=rec.status, severity=rec.severity,
                           reasons=rec.reasons)


# -- analyst ---------------------------------------------------------------
@router.get("/studies")
def api_studies(request: Request, ctx: Reader) -> list[str]:
    """Study names."""
    return list(request.app.state.store.study_names())


@router.get("/studies/{study}/participants")
def api_pseudonymised(request: Request, study: Annotated[str, Path(max_length=200)],
                      ctx: Annotated[Ctx, Depends(require("analyst"))]) -> list[dict[str, Any]]:
    """Pseudonymised participants of a study (all sites): pseudonym, site, sex, age, group, counts, totals."""
    with writing(request) as s:
        frame = analysis_ops.pseudonymised_summary(s, study)
    return [{k: (None if v != v else v) for k, v in rec.items()} for rec in frame.to_dict("records")]


@router.post("/labs")
async def api_labs(request: Request, ctx: Annotated[Ctx, _writer("analyst")],
                   file: Annotated[UploadFile, File()],
                   study: Annotated[str, Form(min_length=1, max_length=200, pattern=_PRINTABLE)] = "default",
                   format: Annotated[str, Form(max_length=20)] = "auto",
                   replace: Annotated[bool, Form()] = False,
                   dry_run: Annotated[bool, Form()] = True,
                   unit_row: Annotated[bool, Form()] = False,
                   units: Annotated[str, Form(max_length=2000)] = "") -> JSONResponse:
    """Check a lab file against the store (``dry_run``, the default) or import it.

    ``unit_row``: the first row under the header holds the units; ``units``: one unit for every
    analyte column or ``COL=unit`` pairs (as the CLI's ``--unit-row`` / ``--units``). The answer
    lists ``units`` (analyte -> unit or null) and ``units_missing`` (analytes without a unit).
    Answers 422 with every problem (row, column, value, message) and stores nothing
    when the file has any.
    """
    if format not in FORMATS:
        raise HTTPException(422, f"unknown format {format!r} (expected {', '.join(FORMATS)})")
    settings = request.app.state.settings
    token, path = await stage_upload(settings.work_dir, file, settings.upload_mb)

    def log(s: Session, res: ImportResult) -> None:  # inside the import's transaction
        audit(s, ctx, "import", "measurements", res.import_id, study=study,
              after={"file": path.name, "sha256": res.sha256, "values_written": res.n_written,
                     "skipped": res.skipped})

    try:
        def run() -> Any:  # in a worker thread: the write lock must not stop the event loop
            with nullcontext() if dry_run else writer_turn(request):
                return check_staged(request.app.state.store, path, token, study=study, fmt=format,
                                    replace=replace, commit=not dry_run, before_commit=log,
                                    options=upload_options(unit_row, units))

        checked = await run_in_threadpool(run)
    finally:
        discard(settings.work_dir, token)
    res = checked.result
    body: dict[str, Any] = {"file": checked.file, "ok": checked.ok, "problems": checked.problems,
                            "dry_run": dry_run, "samples": checked.n_samples, "analytes": checked.n_analytes,
                            "units": checked.units, "units_missing": checked.missing_units}
    if res is not None:
        body.update({"values": res.n_written, "unchanged": res.n_unchanged, "replaced": res.n_replaced,
                     "skipped": res.skipped, "import_id": res.import_id, "uncatalogued": res.uncatalogued})
    return JSONResponse(body, status_code=200 if checked.ok else 422)


@router.get("/analyses")
def api_analyses(request: Request, ctx: Annotated[Ctx, Depends(require("analyst", "auditor"))]
                 ) -> list[dict[str, Any]]:
    """Analyses, newest first."""
    with Session(request.app.state.store.engine) as s:
        return [analysis_ops.job_dict(j) for j in
                s.scalars(select(schema.AnalysisJob).order_by(schema.AnalysisJob.id.desc()).limit(200))]


@router.post("/analyses", status_code=202)
def api_start(request: Request, body: JobIn, ctx: Annotated[Ctx, _writer("analyst")]) -> dict[str, Any]:
    """Start an analysis in the background; poll ``GET /api/v1/analyses/{id}``."""
    options = analysis_ops.parse_job_options(dict(body.options))
    job_id = analysis_ops.start_job(request, ctx, body.study, options)
    return analysis_ops.job_dict(analysis_ops.get_job(request, job_id))


@router.get("/analyses/{job_id}")
def api_job(request: Request, job_id: Id,
            ctx: Annotated[Ctx, Depends(require("analyst", "auditor"))]) -> dict[str, Any]:
    """Status, stage and progress (0-1) of an analysis; ``report`` once done."""
    return analysis_ops.job_dict(analysis_ops.get_job(request, job_id))


@router.get("/models")
def api_models(request: Request, ctx: Annotated[Ctx, Depends(require("analyst", "auditor"))]
               ) -> list[dict[str, Any]]:
    """Registered models."""
    with Session(request.app.state.store.engine) as s:
        return [{"id": m.id, "name": m.name, "study": m.study, "kind": m.kind,
                 "registered_by": m.registered_by,
                 "registered_at": m.registered_at.isoformat(timespec="seconds"),
                 "card": f"/models/{m.id}/card"}
                for m in s.scalars(select(schema.RegisteredModel).order_by(schema.RegisteredModel.id))]


@router.post("/models", status_code=201)
def api_register(request: Request, body: ModelIn, ctx: Annotated[Ctx, _writer("analyst")]) -> dict[str, Any]:
    """Register a model of a finished analysis for predictions on participant pages."""
    model_id = analysis_ops.register_model(request, ctx, body.job_id, body.kind, body.name)
    return {"id": model_id, "name": body.name, "kind": body.kind}


# -- audit -----------------------------------------------------------------
@router.get("/audit")
def api_audit(request: Request, ctx: Annotated[Ctx, Depends(require("auditor"))],
              before: Annotated[int | None, Query(ge=1, le=2**62)] = None,
              limit: Annotated[int, Query(ge=1, le=1000)] = 100,
              entity: Annotated[str | None, Query(max_length=50)] = None,
              actor: Annotated[str | None, Query(max_length=100)] = None) -> list[dict[str, Any]]:
    """Audit entries, newest first."""
    with Session(request.app.state.store.engine) as s:
        return admin_ops.audit_rows(s, before_id=before, limit=limit, entity=entity, actor=actor)


@router.get("/audit/verify")
def api_audit_verify(request: Request, ctx: Annotated[Ctx, Depends(require("auditor"))]) -> dict[str, Any]:
    """Check the hash chain of the audit trail."""
    with Session(request.app.state.store.engine) as s:
        rep = verify_chain(s)
    return {"ok": rep.ok, "entries": rep.n_entries, "head_id": rep.head_id, "head_hash": rep.head_hash,
            "signed_from": rep.signed_from, "problems": rep.problems}


# -- admin -----------------------------------------------------------------
@router.get("/users")
def api_users(request: Request, ctx: Annotated[Ctx, Depends(require("admin", "auditor"))]
              ) -> list[dict[str, Any]]:
    """Users (no password hashes)."""
    with Session(request.app.state.store.engine) as s:
        return admin_ops.user_dicts(s)


@router.post("/users", status_code=201)
def api_add_user(request: Request, body: UserIn, ctx: Annotated[Ctx, _writer("admin")]) -> dict[str, Any]:
    """Create a user (clinicians need a site)."""
    admin_ops.create_user(request, ctx, body.name, body.role, body.site, body.password)
    return {"name": body.name, "role": body.role, "site": body.site}


@router.post("/studies", status_code=201)
def api_add_study(request: Request, body: StudyIn, ctx: Annotated[Ctx, _writer("admin")]) -> dict[str, Any]:
    """Create a study."""
    return {"id": admin_ops.create_study(request, ctx, body.name, body.description,
                                                 body.synthetic), "name": body.name}


@router.post("/sites", status_code=201)
def api_add_site(request: Request, body: SiteIn, ctx: Annotated[Ctx, _writer("admin")]) -> dict[str, Any]:
    """Add a site to a study."""
    return {"id": admin_ops.create_site(request, ctx, body.study, body.code, body.name), "study": body.study,
            "code": body.code}
