"""Lab upload pages (analysts): preview with row-by-row errors, then import.

Units come from a unit row under the header or per-column units (the CLI's ``--unit-row``
and ``--units``); analytes without a unit are shown as "unit missing" and are imported only
once the analyst ticks the confirmation (unless the study already stores them without one).
"""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, Request
from fastapi.responses import HTMLResponse, Response
from sqlalchemy.orm import Session
from starlette.concurrency import run_in_threadpool

# request.form() yields Starlette's UploadFile (FastAPI's is a subclass that forms never produce)
from starlette.datastructures import FormData, UploadFile

from hikisig.cohort.importer import ImportResult
from hikisig.cohort.readers import FORMATS
from hikisig.web.context import Ctx, require, writer_turn
from hikisig.web.render import page
from hikisig.web.services import audit
from hikisig.web.uploads import (
    check_staged,
    discard,
    stage_upload,
    staged_path,
    sweep_uploads,
    upload_options,
)

__all__ = ["router"]

router = APIRouter(include_in_schema=False)
Analyst = Annotated[Ctx, Depends(require("analyst"))]
AnalystWrite = Annotated[Ctx, Depends(require("analyst", write=True))]


#: Seconds between sweeps of abandoned previews while the app runs.
SWEEP_EVERY = 600.0


def _sweep(request: Request) -> None:
    """Delete previews older than a day, at most every :data:`SWEEP_EVERY` seconds."""
    import time

    state = request.app.state
    if time.monotonic() - getattr(state, "uploads_swept", 0.0) > SWEEP_EVERY:
        state.uploads_swept = time.monotonic()
        sweep_uploads(state.settings.work_dir)


def _units(form: FormData) -> tuple[bool, str]:
    """The unit options of a form: a unit row under the header, units per column."""
    return form.get("unit_row") == "yes", str(form.get("units", "") or "")[:2000]


@router.get("/labs", response_class=HTMLResponse)
def upload_form(request: Request, ctx: Analyst) -> Response:
    return page(request, "labs.html", ctx, studies=request.app.state.store.study_names(), formats=FORMATS)


@router.post("/labs/preview", response_class=HTMLResponse)
async def preview(request: Request, ctx: AnalystWrite) -> Response:
    form = await request.form()
    upload = form.get("file")
    study = str(form.get("study", "")).strip()[:200] or "default"
    fmt = str(form.get("format", "auto"))[:20]
    replace = form.get("replace") == "yes"
    unit_row, units = _units(form)
    settings = request.app.state.settings
    _sweep(request)
    if not isinstance(upload, UploadFile) or not upload.filename:
        return page(request, "labs.html", ctx, status_code=422, studies=request.app.state.store.study_names(),
                    formats=FORMATS, error="choose a file to upload")
    token, path = await stage_upload(settings.work_dir, upload, settings.upload_mb)
    checked = await run_in_threadpool(check_staged, request.app.state.store, path, token, study=study,
                                      fmt=fmt, replace=replace, options=upload_options(unit_row, units))
    if not checked.ok:
        discard(settings.work_dir, token)
    return page(request, "labs_preview.html", ctx, status_code=200 if checked.ok else 422, checked=checked,
                study=study, fmt=fmt, replace=replace, unit_row=unit_row, units=units)


@router.post("/labs/import", response_class=HTMLResponse)
async def do_import(request: Request, ctx: AnalystWrite) -> Response:
    form = await request.form()
    token = str(form.get("token", ""))[:100]
    study = str(form.get("study", "")).strip()[:200] or "default"
    fmt = str(form.get("format", "auto"))[:20]
    replace = form.get("replace") == "yes"
    unit_row, units = _units(form)
    units_ok = form.get("units_ok") == "yes"
    settings = request.app.state.settings
    path = staged_path(settings.work_dir, token)

    def log(s: Session, res: ImportResult) -> None:  # inside the import's transaction
        audit(s, ctx, "import", "measurements", res.import_id, study=study,
              after={"file": path.name, "sha256": res.sha256, "samples": res.n_samples,
                     "analytes": res.n_analytes, "values_written": res.n_written,
                     "skipped": res.skipped})

    def run() -> object:  # in a worker thread: the write lock must not stop the event loop
        with writer_turn(request):
            return check_staged(request.app.state.store, path, token, study=study, fmt=fmt, replace=replace,
                                commit=True, before_commit=log, options=upload_options(unit_row, units),
                                units_confirmed=units_ok)

    checked = await run_in_threadpool(run)
    if getattr(checked, "needs_confirmation", False):
        # not confirmed: nothing imported; the staged file stays for the confirmation form
        return page(request, "labs_done.html", ctx, status_code=422, checked=checked, study=study, fmt=fmt,
                    replace=replace, unit_row=unit_row, units=units, confirm_needed=True)
    discard(settings.work_dir, token)
    return page(request, "labs_done.html", ctx, status_code=200 if getattr(checked, "ok", False) else 422,
                checked=checked, study=study)

