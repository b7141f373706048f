"""Analyst pages: pseudonymised data, exports, background analyses, reports and models."""

from __future__ import annotations

import io
from pathlib import Path
from typing import Annotated, Any

import pandas as pd
from fastapi import APIRouter, Depends, HTTPException, Request
from fastapi.responses import FileResponse, HTMLResponse, PlainTextResponse, Response
from sqlalchemy import func, select
from sqlalchemy.orm import Session
from starlette.concurrency import run_in_threadpool

from hikisig.cohort import schema
from hikisig.web.context import Ctx, RowId, require, writing
from hikisig.web.render import page, see_other
from hikisig.web.services import audit, pseudonym, pseudonym_key

__all__ = ["JOB_OPTIONS", "REPORT_CSP", "export_frame", "parse_job_options", "pseudonymised_summary",
           "register_model", "router", "start_job"]

router = APIRouter(include_in_schema=False)
Analyst = Annotated[Ctx, Depends(require("analyst"))]
AnalystWrite = Annotated[Ctx, Depends(require("analyst", write=True))]
Viewer = Annotated[Ctx, Depends(require("analyst", "auditor"))]
CardViewer = Annotated[Ctx, Depends(require("analyst", "auditor", "clinician"))]

#: The report is one self-contained file: inline styles and data-URI images, no script at all.
REPORT_CSP = "default-src 'none'; style-src 'unsafe-inline'; img-src data:; sandbox"
#: Settings of the study config an analyst may set for a job.
JOB_SETTINGS = ("discriminate.permutations", "discriminate.cv_repeats", "discriminate.n_estimators",
                "severity.permutations", "severity.cv_repeats", "stratify.bootstraps", "run.seed",
                "discriminate.enabled", "severity.enabled", "stratify.enabled")


def _job_options() -> dict[str, tuple[type, float, float]]:
    """Each job setting's type and bounds, from the study config's fields."""
    from hikisig.config import StudyConfig, field_bounds

    out: dict[str, tuple[type, float, float]] = {}
    for key in JOB_SETTINGS:
        section, name = key.split(".")
        cls = StudyConfig.model_fields[section].annotation
        kind = cls.model_fields[name].annotation  # type: ignore[union-attr]
        if kind is bool:
            out[key] = (bool, 0, 1)
            continue
        lo, hi = field_bounds(cls, name)  # type: ignore[arg-type]
        out[key] = (int, 0 if lo is None else lo, 2**31 - 1 if hi is None else hi)
    return out


#: Options an analyst may set for a job: config key -> (type, min, max).
JOB_OPTIONS: dict[str, tuple[type, float, float]] = _job_options()
#: Labels of the settings on the analysis form.
_FORM_LABELS = {"discriminate.permutations": "Permutations (discrimination)",
                "discriminate.cv_repeats": "CV repeats", "discriminate.n_estimators": "Trees",
                "severity.permutations": "Permutations (severity)",
                "stratify.bootstraps": "Bootstraps (strata)", "run.seed": "Seed"}


def form_fields() -> list[dict[str, Any]]:
    """The analysis form's numeric settings with their defaults and bounds (from the config)."""
    from hikisig.config import StudyConfig

    defaults = StudyConfig()
    return [{"key": key, "label": label,
             "default": getattr(getattr(defaults, key.split(".")[0]), key.split(".")[1]),
             "min": int(JOB_OPTIONS[key][1]), "max": int(JOB_OPTIONS[key][2])}
            for key, label in _FORM_LABELS.items()]


def parse_job_options(given: dict[str, Any]) -> dict[str, Any]:
    """Validate job options (422 on an unknown key or a value out of range)."""
    out: dict[str, Any] = {}
    for key, raw in given.items():
        if raw is None or raw == "":
            continue
        if key not in JOB_OPTIONS:
            raise HTTPException(422, f"unknown option {key!r} (expected {', '.join(JOB_OPTIONS)})")
        kind, lo, hi = JOB_OPTIONS[key]
        if kind is bool:
            value: Any = str(raw).lower() in ("1", "true", "yes", "on")
            out[key] = "true" if value else "false"
            continue
        try:
            value = int(str(raw))
        except ValueError as exc:
            raise HTTPException(422, f"{key}: expected a whole number, got {str(raw)[:20]!r}") from exc
        if not lo <= value <= hi:
            raise HTTPException(422, f"{key}: expected {lo:g} to {hi:g}, got {value}")
        out[key] = value
    return out


def pseudonymised_summary(s: Session, study: str) -> pd.DataFrame:
    """One row per participant: pseudonym, site, sex, age, group, visits, samples, latest totals."""
    st = s.scalar(select(schema.Study).where(schema.Study.name == study))
    if st is None:
        raise HTTPException(404, f"no study named {study!r}")
    key = pseudonym_key(s)
    from hikisig.cohort.dataset import participant_label

    # pseudonyms of the analysis ids (the code; ``site/code`` when sites share a code), as in exports
    rows = s.execute(select(schema.Participant, schema.Site.code, participant_label())
                     .outerjoin(schema.Site, schema.Site.id == schema.Participant.site_id)
                     .where(schema.Participant.study_id == st.id).order_by(schema.Participant.id)).all()
    visits = dict(s.execute(select(schema.Visit.participant_id, func.count()).join(schema.Participant)
                            .where(schema.Participant.study_id == st.id)
                            .group_by(schema.Visit.participant_id)).all())
    samples = dict(s.execute(select(schema.Visit.participant_id, func.count(schema.Sample.id))
                             .join(schema.Sample, schema.Sample.visit_id == schema.Visit.id)
                             .join(schema.Participant).where(schema.Participant.study_id == st.id)
                             .group_by(schema.Visit.participant_id)).all())
    scores = s.execute(select(schema.Visit.participant_id, schema.Visit.visit_index,
                              schema.Assessment.instrument,
                              schema.Assessment.scores)
                       .join(schema.Visit, schema.Visit.id == schema.Assessment.visit_id)
                       .join(schema.Participant).where(schema.Participant.study_id == st.id)
                       .order_by(schema.Visit.visit_index)).all()
    latest: dict[int, dict[str, Any]] = {}
    for pid, _vi, inst, sc in scores:
        latest.setdefault(pid, {})[f"{inst}_total"] = (sc or {}).get("total")
    out = [{"pseudonym": pseudonym(key, study, label), "site": site, "sex": p.sex, "age": p.age,
            "group": p.group_label, "visits": int(visits.get(p.id, 0)), "samples": int(samples.get(p.id, 0)),
            **latest.get(p.id, {})} for p, site, label in rows]
    return pd.DataFrame(out)


def export_frame(request: Request, study: str) -> pd.DataFrame:
    """The study's samples x analytes with participant codes replaced by pseudonyms."""
    from hikisig.cohort.dataset import load_dataset

    store = request.app.state.store
    if study not in store.study_names():
        raise HTTPException(404, f"no study named {study!r}")
    ds = load_dataset(store, study)
    with writing(request) as s:
        key = pseudonym_key(s)
    obs = ds.obs
    keep = obs["sample_type"] == "study"
    meta = pd.DataFrame({"pseudonym": [pseudonym(key, study, str(c)) for c in obs.loc[keep, "participant"]],
                         "visit": obs.loc[keep, "visit"].to_numpy(),
                         **{c: obs.loc[keep, c].to_numpy() for c in ("group", "sex", "age") if c in obs}})
    return pd.concat([meta.reset_index(drop=True), ds.X[keep.to_numpy()].reset_index(drop=True)], axis=1)


@router.get("/data", response_class=HTMLResponse)
def data_page(request: Request, ctx: Analyst, study: str | None = None) -> Response:
    studies = request.app.state.store.study_names()
    study = study if study in studies else (studies[0] if studies else None)
    table = None
    if study:
        with writing(request) as s:
            table = pseudonymised_summary(s, study)
    return page(request, "data.html", ctx, studies=studies, study=study,
                table=None if table is None else table.fillna("").to_dict("records"),
                columns=[] if table is None else list(table.columns))


@router.get("/data/export.csv")
def data_export(request: Request, ctx: Analyst, study: str) -> Response:
    frame = export_frame(request, study)
    with writing(request) as s:
        audit(s, ctx, "export", "dataset", study, study=study,
              after={"format": "csv", "rows": len(frame), "columns": frame.shape[1], "pseudonymised": True})
    buf = io.StringIO()
    frame.to_csv(buf, index=False)
    return PlainTextResponse(buf.getvalue(), media_type="text/csv",
                             headers={"Content-Disposition": f'attachment; filename="{_fname(study)}.csv"'})


def _fname(study: str) -> str:
    return "".join(ch if ch.isalnum() or ch in "-_" else "_" for ch in study)[:80] or "study"


def start_job(request: Request, ctx: Ctx, study: str, options: dict[str, Any]) -> int:
    """Create and queue an analysis job (audited); returns its id."""
    if study not in request.app.state.store.study_names():
        raise HTTPException(422, f"no study named {study!r}")
    with writing(request) as s:
        job = schema.AnalysisJob(study=study, status="queued", progress=0.0, options=options,
                                 created_by=ctx.name)
        s.add(job)
        s.flush()
        job_id = job.id
        audit(s, ctx, "run", "analysis", job_id, study=study, after={"options": options})
    request.app.state.jobs.submit(job_id)
    return job_id


def _one_line(message: str | None) -> str | None:
    """A job's failure reason as pages and the API show it: its first line only (jobs of older
    versions stored a traceback after it; tracebacks belong in the server log)."""
    if not message:
        return message
    return next((line.strip() for line in message.splitlines() if line.strip()), "")[:300]


def job_dict(job: schema.AnalysisJob) -> dict[str, Any]:
    """What pages and the API show of a job."""
    return {"id": job.id, "study": job.study, "status": job.status, "stage": job.stage,
            "progress": round(float(job.progress or 0), 3), "message": _one_line(job.message),
            "options": job.options,
            "created_by": job.created_by, "created_at": job.created_at.isoformat(timespec="seconds"),
            "finished_at": job.finished_at.isoformat(timespec="seconds") if job.finished_at else None,
            "report": f"/analyses/{job.id}/report" if job.status == "done" else None}


def get_job(request: Request, job_id: int) -> schema.AnalysisJob:
    """A job by id (404)."""
    with Session(request.app.state.store.engine) as s:
        job = s.get(schema.AnalysisJob, job_id)
    if job is None:
        raise HTTPException(404, "no such analysis")
    return job


@router.get("/analyses", response_class=HTMLResponse)
def analyses_page(request: Request, ctx: Viewer) -> Response:
    with Session(request.app.state.store.engine) as s:
        jobs = [job_dict(j) for j in s.scalars(select(schema.AnalysisJob)
                                                .order_by(schema.AnalysisJob.id.desc())
                                                .limit(100))]
    return page(request, "analyses.html", ctx, jobs=jobs, studies=request.app.state.store.study_names(),
                fields=form_fields())


@router.post("/analyses")
async def new_analysis(request: Request, ctx: AnalystWrite) -> Response:
    form = await request.form()
    study = str(form.get("study", ""))[:200]
    options = parse_job_options({k: str(form.get(k, ""))[:20] for k in JOB_OPTIONS if k in form})
    job_id = await run_in_threadpool(start_job, request, ctx, study, options)  # off the event loop
    return see_other(f"/analyses/{job_id}")


@router.get("/analyses/{job_id}", response_class=HTMLResponse)
def analysis_page(request: Request, job_id: RowId, ctx: Viewer) -> Response:
    return page(request, "analysis.html", ctx, job=job_dict(get_job(request, job_id)))


@router.get("/analyses/{job_id}/progress", response_class=HTMLResponse)
def analysis_progress(request: Request, job_id: RowId, ctx: Viewer) -> Response:
    return page(request, "_job_progress.html", ctx, job=job_dict(get_job(request, job_id)))


def _report_path(request: Request, job_id: int) -> Path:
    job = get_job(request, job_id)
    if job.status != "done" or not job.out_dir:
        raise HTTPException(404, "this analysis has no report (yet)")
    path = Path(job.out_dir) / "report.html"
    if not path.is_file():
        raise HTTPException(404, "the report file is gone")
    return path


@router.get("/analyses/{job_id}/report")
def analysis_report(request: Request, job_id: RowId, ctx: Viewer) -> Response:
    path = _report_path(request, job_id)
    with writing(request) as s:
        audit(s, ctx, "view", "report", job_id)
    resp = FileResponse(path, media_type="text/html")
    resp.headers["Content-Security-Policy"] = REPORT_CSP
    return resp


def register_model(request: Request, ctx: Ctx, job_id: int, kind: str, name: str) -> int:
    """Register a model of a finished job for predictions on participant pages (audited)."""
    if kind not in ("discriminate", "severity", "stratify"):
        raise HTTPException(422, "kind must be discriminate, severity or stratify")
    name = name.strip()[:200] or f"job{job_id}-{kind}"
    job = get_job(request, job_id)
    folder = Path(job.out_dir or "") / "models" / kind
    if job.status != "done" or not (folder / "model_card.json").is_file():
        raise HTTPException(422, f"analysis {job_id} has no {kind} model")
    with writing(request) as s:
        if s.scalar(select(func.count()).select_from(schema.RegisteredModel)
                    .where(schema.RegisteredModel.name == name)):
            raise HTTPException(409, f"a model named {name!r} is registered already")
        m = schema.RegisteredModel(name=name, study=job.study, kind=kind, path=str(folder),
                                   registered_by=ctx.name)
        s.add(m)
        s.flush()
        audit(s, ctx, "create", "model", m.id, study=job.study, after={"name": name, "kind": kind,
                                                                       "job": job_id})
        return m.id


@router.post("/analyses/{job_id}/register")
async def register(request: Request, job_id: RowId, ctx: AnalystWrite) -> Response:
    form = await request.form()
    await run_in_threadpool(register_model, request, ctx, job_id, str(form.get("kind", ""))[:20],
                            str(form.get("name", ""))[:200])
    return see_other("/models")


@router.get("/models", response_class=HTMLResponse)
def models_page(request: Request, ctx: Viewer) -> Response:
    with Session(request.app.state.store.engine) as s:
        models = list(s.scalars(select(schema.RegisteredModel).order_by(schema.RegisteredModel.id.desc())))
    return page(request, "models.html", ctx, models=models)


@router.get("/models/{model_id}/card", response_class=HTMLResponse)
def model_card(request: Request, model_id: RowId, ctx: CardViewer) -> Response:
    with Session(request.app.state.store.engine) as s:
        m = s.get(schema.RegisteredModel, model_id)
    if m is None:
        raise HTTPException(404, "no such model")
    card = Path(m.path) / "model_card.md"
    text = card.read_text(encoding="utf-8") if card.is_file() else "(the model card file is missing)"
    return page(request, "model_card.html", ctx, model=m, card=text)
