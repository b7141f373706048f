"""Administration (users, studies, sites) and the audit trail pages."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Depends, HTTPException, Query, Request
from fastapi.responses import HTMLResponse, Response
from sqlalchemy import func, select
from sqlalchemy.orm import Session
from starlette.concurrency import run_in_threadpool

from hikisig.cohort import schema
from hikisig.cohort.audit import verify_chain
from hikisig.cohort.users import add_user, unlock_user
from hikisig.errors import HikisigError
from hikisig.web.context import Ctx, require, writer_turn, writing
from hikisig.web.render import page, see_other
from hikisig.web.services import audit, printable

__all__ = ["audit_rows", "create_site", "create_study", "create_user", "router", "user_dicts"]

router = APIRouter(include_in_schema=False)
Admin = Annotated[Ctx, Depends(require("admin"))]
AdminWrite = Annotated[Ctx, Depends(require("admin", write=True))]
UserViewer = Annotated[Ctx, Depends(require("admin", "auditor"))]
Auditor = Annotated[Ctx, Depends(require("auditor"))]


def user_dicts(s: Session) -> list[dict[str, Any]]:
    """Every user, without password hashes."""
    return [{"id": u.id, "name": u.name, "role": u.role, "site": u.site, "active": u.active,
             "locked_until": u.locked_until.isoformat(timespec="seconds") if u.locked_until else None,
             "last_login": u.last_login.isoformat(timespec="seconds") if u.last_login else None}
            for u in s.scalars(select(schema.User).order_by(schema.User.name))]


def create_user(request: Request, ctx: Ctx, name: str, role: str, site: str | None, password: str) -> None:
    """Create a user from the admin page or the API (422 with the reason on bad input)."""
    try:
        with writer_turn(request):
            add_user(request.app.state.store, name, role, password, site=site or None, actor=ctx.name)
    except HikisigError as exc:
        raise HTTPException(409 if "exists" in str(exc) else 422, str(exc)) from exc


def create_study(request: Request, ctx: Ctx, name: str, description: str | None,
                 synthetic: bool = False) -> int:
    """Create a study (audited); ``synthetic`` marks a study of synthetic data (reports and
    model cards then say so)."""
    name = name.strip()
    if not name or len(name) > 200:
        raise HTTPException(422, "a study name needs 1-200 characters")
    printable(name, "the study name")
    with writing(request) as s:
        if s.scalar(select(func.count()).select_from(schema.Study).where(schema.Study.name == name)):
            raise HTTPException(409, f"study {name!r} exists already")
        st = schema.Study(name=name, description=description or None, synthetic=synthetic)
        s.add(st)
        s.flush()
        audit(s, ctx, "create", "study", st.id, study=name, after={"name": name, "description": description,
                                                                   "synthetic": synthetic})
        return st.id


def create_site(request: Request, ctx: Ctx, study: str, code: str, name: str | None) -> int:
    """Add a site to a study (audited)."""
    code = code.strip()
    if not code or len(code) > 100:
        raise HTTPException(422, "a site code needs 1-100 characters")
    printable(code, "the site code")
    printable(name, "the site name")
    with writing(request) as s:
        st = s.scalar(select(schema.Study).where(schema.Study.name == study))
        if st is None:
            raise HTTPException(422, f"no study named {study!r}")
        if s.scalar(select(func.count()).select_from(schema.Site)
                    .where(schema.Site.study_id == st.id, schema.Site.code == code)):
            raise HTTPException(409, f"site {code!r} is already part of study {study!r}")
        site = schema.Site(study_id=st.id, code=code, name=name or None)
        s.add(site)
        s.flush()
        audit(s, ctx, "create", "site", site.id, study=study, site=code, after={"code": code, "name": name})
        return site.id


def _sites(s: Session) -> list[dict[str, Any]]:
    rows = s.execute(select(schema.Site, schema.Study.name).join(schema.Study)
                     .order_by(schema.Study.name, schema.Site.code)).all()
    return [{"id": site.id, "study": st, "code": site.code, "name": site.name} for site, st in rows]


@router.get("/admin/users", response_class=HTMLResponse)
def users_page(request: Request, ctx: UserViewer) -> Response:
    with Session(request.app.state.store.engine) as s:
        users = user_dicts(s)
    return page(request, "users.html", ctx, users=users, roles=schema.ROLES, error=None)


@router.post("/admin/users", response_class=HTMLResponse)
async def users_create(request: Request, ctx: AdminWrite) -> Response:
    form = await request.form()
    vals = {k: str(form.get(k, ""))[:1000] for k in ("name", "role", "site", "password")}
    try:  # in a worker thread: the password hash and the write lock must not stop the event loop
        await run_in_threadpool(create_user, request, ctx, vals["name"].strip(), vals["role"],
                                vals["site"].strip() or None, vals["password"])
    except HTTPException as exc:
        with Session(request.app.state.store.engine) as s:
            users = user_dicts(s)
        return page(request, "users.html", ctx, status_code=exc.status_code, users=users, roles=schema.ROLES,
                    error=exc.detail)
    return see_other("/admin/users")


@router.post("/admin/users/{name}/{action}")
def users_action(request: Request, name: str, action: str, ctx: AdminWrite) -> Response:
    if action not in ("unlock", "disable", "enable"):
        raise HTTPException(404, "no such action")
    if action == "disable" and name == ctx.name:
        raise HTTPException(422, "you cannot disable your own account")
    try:
        active = {"unlock": None, "disable": False, "enable": True}[action]
        with writer_turn(request):
            unlock_user(request.app.state.store, name, actor=ctx.name, active=active)
    except HikisigError as exc:
        raise HTTPException(404, str(exc)) from exc
    return see_other("/admin/users")


@router.get("/admin/studies", response_class=HTMLResponse)
def studies_page(request: Request, ctx: Admin) -> Response:
    with Session(request.app.state.store.engine) as s:
        studies = list(s.scalars(select(schema.Study).order_by(schema.Study.name)))
        sites = _sites(s)
    return page(request, "studies.html", ctx, studies=studies, sites=sites, error=None)


@router.post("/admin/studies", response_class=HTMLResponse)
async def studies_create(request: Request, ctx: AdminWrite) -> Response:
    form = await request.form()
    await run_in_threadpool(create_study, request, ctx, str(form.get("name", ""))[:300],
                            str(form.get("description", ""))[:2000] or None,
                            str(form.get("synthetic", "")).lower() in ("1", "on", "true", "yes"))
    return see_other("/admin/studies")


@router.post("/admin/sites", response_class=HTMLResponse)
async def sites_create(request: Request, ctx: AdminWrite) -> Response:
    form = await request.form()
    await run_in_threadpool(create_site, request, ctx, str(form.get("study", ""))[:300],
                            str(form.get("code", ""))[:300], str(form.get("name", ""))[:300] or None)
    return see_other("/admin/studies")


def audit_rows(s: Session, *, before_id: int | None = None, limit: int = 100,
               entity: str | None = None, actor: str | None = None) -> list[dict[str, Any]]:
    """Audit entries, newest first."""
    stmt = select(schema.AuditEvent).order_by(schema.AuditEvent.id.desc()).limit(limit)
    if before_id:
        stmt = stmt.where(schema.AuditEvent.id < before_id)
    if entity:
        stmt = stmt.where(schema.AuditEvent.entity == entity)
    if actor:
        stmt = stmt.where(schema.AuditEvent.actor == actor)
    return [{"id": e.id, "at": e.at.isoformat(timespec="seconds"), "actor": e.actor, "role": e.role,
             "action": e.action, "entity": e.entity, "entity_id": e.entity_id, "study": e.study,
             "site": e.site, "before": e.before, "after": e.after, "hash": e.hash}
            for e in s.scalars(stmt)]


@router.get("/audit", response_class=HTMLResponse)
def audit_page(request: Request, ctx: Auditor,
               before: Annotated[int | None, Query(ge=1, le=2**62)] = None, entity: str | None = None,
               actor: str | None = None, verify: int = 0) -> Response:
    with Session(request.app.state.store.engine) as s:
        rows = audit_rows(s, before_id=before, entity=(entity or None), actor=(actor or None))
        report = verify_chain(s) if verify else None
    return page(request, "audit.html", ctx, rows=rows, report=report, entity=entity or "", actor=actor or "")
