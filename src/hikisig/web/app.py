"""The clinic web app: FastAPI with server-rendered pages and a JSON API.

Create it with :func:`create_app` (``hikisig serve`` does). Pages are Jinja2
templates; the only scripts are files served by the app itself (htmx and a
small ``app.js``), so the Content-Security-Policy forbids inline scripts and
every other origin. The JSON API lives under ``/api/v1`` and is described by
``/openapi.json`` (browsable at ``/api``).
"""

from __future__ import annotations

import threading
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from importlib import resources
from pathlib import Path
from typing import Annotated, Any

from fastapi import Depends, FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import HTMLResponse, JSONResponse, RedirectResponse, Response
from fastapi.staticfiles import StaticFiles
from fastapi.templating import Jinja2Templates
from starlette.exceptions import HTTPException as StarletteHTTPException

from hikisig.cohort.store import Store
from hikisig.versions import __version__
from hikisig.web.context import Ctx, LoginThrottle, NotSignedInError, current
from hikisig.web.display import instrument_label, job_stage_label, options_text
from hikisig.web.render import page

__all__ = ["CSP", "WebSettings", "create_app"]

#: Content-Security-Policy of every page (reports get a stricter one without any script).
CSP = ("default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
       "object-src 'none'; base-uri 'none'; frame-ancestors 'none'; form-action 'self'")


@dataclass
class WebSettings:
    """Server settings.

    Attributes
    ----------
    idle_minutes : int
        A session ends after this long without a request.
    max_hours : int
        A session ends this long after sign-in, whatever the activity.
    upload_mb : int
        Largest lab file accepted.
    work_dir : Path, optional
        Where uploads and analysis outputs are kept (default: ``hikisig-web``
        next to a SQLite store, else in the working folder).
    job_workers : int
        Analyses run at the same time (each in its own process).
    """

    idle_minutes: int = 30
    max_hours: int = 12
    upload_mb: int = 200
    work_dir: Path | None = None
    job_workers: int = 1
    login_limit: int = 20
    extra: dict[str, Any] = field(default_factory=dict)


def number(value: Any) -> str:
    """A score as people write it: ``50.0`` -> ``50``, ``12.5`` -> ``12.5`` (template filter ``num``).

    Examples
    --------
    >>> number(50.0), number(12.5), number(7), number(None)
    ('50', '12.5', '7', '')
    """
    if value is None:
        return ""
    if isinstance(value, bool) or not isinstance(value, int | float):
        return str(value)
    return f"{value:g}"


def _package_dir(name: str) -> Path:
    return Path(str(resources.files("hikisig.web") / name))


def create_app(db: str | None = None, settings: WebSettings | None = None) -> FastAPI:
    """Build the app on the store ``db`` (path or URL; default ``$HIKISIG_DB`` / ``hikisig.db``).

    Raises
    ------
    StoreError
        The store is missing or not at the newest schema (run ``hikisig init``).
    """
    from hikisig.web import admin, analyses, api, auth, clinic, labs
    from hikisig.web.jobs import JobRunner

    settings = settings or WebSettings()
    store = Store(db)
    store.require_ready()
    if settings.work_dir is None:
        database = store.engine.url.database if store.dialect == "sqlite" else None
        base = Path(database).resolve().parent if database and database != ":memory:" else Path.cwd()
        settings.work_dir = base / "hikisig-web"
    settings.work_dir.mkdir(parents=True, exist_ok=True)
    from hikisig.web.uploads import STAGED_HOURS, sweep_uploads

    # abandoned previews: with SQLite this is the only app process, so none is still in use
    sweep_uploads(settings.work_dir, 0 if store.dialect == "sqlite" else STAGED_HOURS)

    @asynccontextmanager
    async def lifespan(_app: FastAPI) -> AsyncIterator[None]:
        yield
        _app.state.jobs.shutdown()
        store.dispose()

    app = FastAPI(title="hikisig", version=__version__, docs_url=None, redoc_url=None, lifespan=lifespan,
                  description="Clinic and analysis API of hikisig. Sign in with POST /api/v1/session; "
                              "send the returned csrf_token as X-CSRF-Token on every unsafe request.")
    app.state.store = store
    app.state.settings = settings
    app.state.write_lock = threading.Lock() if store.dialect == "sqlite" else None
    app.state.throttle = LoginThrottle(limit=settings.login_limit)
    app.state.jobs = JobRunner(store, settings.work_dir, workers=settings.job_workers)
    templates = Jinja2Templates(directory=str(_package_dir("templates")))
    templates.env.globals["version"] = __version__
    templates.env.filters["num"] = number
    templates.env.filters["stage"] = job_stage_label
    templates.env.filters["options"] = options_text
    templates.env.filters["instrument"] = instrument_label
    app.state.templates = templates
    app.mount("/static", StaticFiles(directory=str(_package_dir("static"))), name="static")
    # added before security_headers, so it runs inside it: its early 401/403/413 get the headers too
    from hikisig.web.limits import BodyLimits

    app.add_middleware(BodyLimits)

    @app.middleware("http")
    async def security_headers(request: Request, call_next: Any) -> Response:
        response: Response = await call_next(request)
        h = response.headers
        h.setdefault("Content-Security-Policy", CSP)
        h["X-Content-Type-Options"] = "nosniff"
        h["X-Frame-Options"] = "DENY"
        h["Referrer-Policy"] = "no-referrer"
        h["Permissions-Policy"] = "camera=(), microphone=(), geolocation=()"
        h["Cross-Origin-Opener-Policy"] = "same-origin"
        if not request.url.path.startswith("/static/"):
            h["Cache-Control"] = "no-store"
        if request.url.scheme == "https":
            h["Strict-Transport-Security"] = "max-age=31536000"
        return response

    def _is_api(request: Request) -> bool:
        return request.url.path.startswith("/api/")

    @app.exception_handler(NotSignedInError)
    async def not_signed_in(request: Request, _exc: NotSignedInError) -> Response:
        if _is_api(request):
            return JSONResponse({"detail": "not signed in"}, status_code=401)
        target = request.url.path
        if request.method == "GET" and request.url.query:
            target += "?" + request.url.query
        from urllib.parse import quote

        return RedirectResponse(f"/login?next={quote(target, safe='')}", status_code=303)

    @app.exception_handler(StarletteHTTPException)
    async def http_error(request: Request, exc: StarletteHTTPException) -> Response:
        if _is_api(request) or request.url.path.startswith("/static/"):
            return JSONResponse({"detail": exc.detail}, status_code=exc.status_code,
                                headers=getattr(exc, "headers", None))
        ctx = getattr(request.state, "ctx", None)
        return templates.TemplateResponse(request, "error.html", {"ctx": ctx, "status": exc.status_code,
                                                                  "detail": exc.detail},
                                          status_code=exc.status_code)

    @app.exception_handler(RequestValidationError)
    async def invalid(request: Request, exc: RequestValidationError) -> Response:
        errors = [{"loc": list(e.get("loc", [])), "msg": str(e.get("msg", "")),
                   "type": str(e.get("type", ""))} for e in exc.errors()]
        if _is_api(request):
            return JSONResponse({"detail": errors}, status_code=422)
        ctx = getattr(request.state, "ctx", None)
        text = "; ".join(f"{'.'.join(str(x) for x in e['loc'][1:])}: {e['msg']}" for e in errors)
        return templates.TemplateResponse(request, "error.html", {"ctx": ctx, "status": 422,
                                                                  "detail": text}, status_code=422)

    for module in (auth, clinic, labs, analyses, admin, api):
        app.include_router(module.router)

    @app.get("/api", include_in_schema=False, response_class=HTMLResponse)
    def api_page(request: Request, ctx: Annotated[Ctx, Depends(current)]) -> Response:
        return page(request, "api.html", ctx, spec=app.openapi())

    @app.get("/healthz", include_in_schema=False)
    def healthz() -> dict[str, str]:
        return {"status": "ok", "version": __version__}

    return app
