"""Administration (users, studies, sites) and the audit trail pages."""

from __future__ import annotations

import datetime as dt
from typing import Annotated, Any
from urllib.parse import urlencode

from fastapi import APIRouter, Depends, HTTPException, Query, Request
from fastapi.responses import HTMLResponse, Response
from sqlalchemy import func, or_, select
from sqlalchemy.orm import Session
from starlette.concurrency import run_in_threadpool

from hikisig.cohort import schema
from hikisig.cohort.audit import verify_chain
from hikisig.cohort.users import add_user, unlock_user
from hikisig.errors import HikisigError
from hikisig.web.context import Ctx, require, writer_turn, writing
from hikisig.web.display import audit_changes, label
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


def _audit_filtered(stmt: Any, *, entity: str | None = None, actor: str | None = None,
                    action: str | None = None, participant_ids: list[int] | None = None,
                    since: dt.date | None = None, until: dt.date | None = None) -> Any:
    E = schema.AuditEvent
    if entity:
        stmt = stmt.where(E.entity == entity)
    if actor:
        stmt = stmt.where(E.actor == actor)
    if action:
        stmt = stmt.where(E.action == action)
    if since:
        stmt = stmt.where(E.at >= dt.datetime.combine(since, dt.time()))
    if until:
        stmt = stmt.where(E.at < dt.datetime.combine(until + dt.timedelta(days=1), dt.time()))
    if participant_ids is not None:
        # entries about the participant itself, or about its visits, questionnaires, criteria and
        # interventions (their canonical JSON names the participant's row id)
        conds: list[Any] = []
        for pid in participant_ids:
            conds.append((E.entity == "participant") & (E.entity_id == str(pid)))
            for col in (E.after, E.before):
                conds.append(col.like(f'%"participant":{pid},%'))
                conds.append(col.like(f'%"participant":{pid}}}%'))
        stmt = stmt.where(or_(*conds)) if conds else stmt.where(E.id < 0)
    return stmt


def audit_rows(s: Session, *, before_id: int | None = None, limit: int = 100,
               entity: str | None = None, actor: str | None = None, action: str | None = None,
               participant_ids: list[int] | None = None, since: dt.date | None = None,
               until: dt.date | None = None, offset: int = 0) -> list[dict[str, Any]]:
    """Audit entries, newest first (filters combine with AND; ``participant_ids`` matches any)."""
    stmt = select(schema.AuditEvent).order_by(schema.AuditEvent.id.desc()).limit(limit)
    if offset:
        stmt = stmt.offset(offset)
    if before_id:
        stmt = stmt.where(schema.AuditEvent.id < before_id)
    stmt = _audit_filtered(stmt, entity=entity, actor=actor, action=action, participant_ids=participant_ids,
                           since=since, until=until)
    return [{"id": e.id, "at": e.at.isoformat(timespec="seconds"), "actor": e.actor, "role": e.role,
             "action": e.action, "entity": e.entity, "entity_id": e.entity_id, "study": e.study,
             "site": e.site, "before": e.before, "after": e.after, "hash": e.hash}
            for e in s.scalars(stmt)]


#: Entries per page of the audit trail.
AUDIT_PAGE = 50


def _audit_date(text: str | None, what: str) -> dt.date | None:
    if not text or not text.strip():
        return None
    try:
        return dt.date.fromisoformat(text.strip()[:10])
    except ValueError as exc:
        raise HTTPException(422, f"{what} {text[:20]!r}: expected YYYY-MM-DD") from exc


@router.get("/audit", response_class=HTMLResponse)
def audit_page(request: Request, ctx: Auditor,
               before: Annotated[int | None, Query(ge=1, le=2**62)] = None, entity: str | None = None,
               actor: str | None = None, verify: int = 0, action: str | None = None,
               participant: Annotated[str | None, Query(max_length=100)] = None,
               date_from: Annotated[str | None, Query(alias="from", max_length=20)] = None,
               date_to: Annotated[str | None, Query(alias="to", max_length=20)] = None,
               page_no: Annotated[int, Query(alias="page", ge=1, le=10**6)] = 1) -> Response:
    """The audit trail: filters (user, participant, action, entity, dates), 50 entries a page,
    each entry's changed fields as a table of field: old -> new."""
    since, until = _audit_date(date_from, "from"), _audit_date(date_to, "to")
    entity, actor, action = (entity or "")[:50], (actor or "")[:100], (action or "")[:20]
    participant = (participant or "").strip()
    with Session(request.app.state.store.engine) as s:
        pids: list[int] | None = None
        if participant:
            q = select(schema.Participant.id).where(schema.Participant.code == participant)
            pids = list(s.scalars(q))
            if participant.isdigit():
                pids.append(int(participant))
        filters: dict[str, Any] = {"entity": entity or None, "actor": actor or None, "action": action or None,
                   "participant_ids": pids, "since": since, "until": until}
        counted = select(func.count()).select_from(schema.AuditEvent)
        if before:
            counted = counted.where(schema.AuditEvent.id < before)
        total = int(s.scalar(_audit_filtered(counted, **filters)) or 0)
        pages = max(1, -(-total // AUDIT_PAGE))
        page_no = min(page_no, pages)
        rows = audit_rows(s, before_id=before, limit=AUDIT_PAGE, offset=(page_no - 1) * AUDIT_PAGE, **filters)
        actions = sorted(s.scalars(select(schema.AuditEvent.action).distinct()))
        actors = sorted(s.scalars(select(schema.AuditEvent.actor).distinct()))
        report = verify_chain(s) if verify else None
    for r in rows:
        r["changes"] = audit_changes(r["before"], r["after"])
        r["what"] = label(r["entity"])
    query = {"actor": actor, "participant": participant, "action": action, "entity": entity,
             "from": date_from or "", "to": date_to or ""}
    if before:
        query["before"] = str(before)
    return page(request, "audit.html", ctx, rows=rows, report=report, entity=entity, actor=actor,
                action=action, participant=participant, date_from=date_from or "", date_to=date_to or "",
                actions=actions, actors=actors, total=total, page_no=page_no, pages=pages,
                per_page=AUDIT_PAGE, qs=urlencode({k: v for k, v in query.items() if v}))
