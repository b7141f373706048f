"""Signing in and out."""

from __future__ import annotations

import hmac
import secrets
from typing import Annotated

from fastapi import APIRouter, Depends, Form, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response

from hikisig.cohort.users import LOCK_MINUTES, MAX_FAILURES, precheck, sign_in
from hikisig.web.context import (
    SESSION_COOKIE,
    Ctx,
    NotSignedInError,
    csrf_ok,
    current,
    end_session,
    new_session,
    writing,
)
from hikisig.web.render import home_of, page, safe_next, see_other
from hikisig.web.services import audit

__all__ = ["LOGIN_CSRF_COOKIE", "client_ip", "router", "set_session_cookie"]

router = APIRouter(include_in_schema=False)
LOGIN_CSRF_COOKIE = "hikisig_login_csrf"
FAILED = (f"Sign-in failed: wrong name or password, or the account is locked. After {MAX_FAILURES} "
          f"failures an account is locked for {LOCK_MINUTES} minutes.")


def client_ip(request: Request) -> str:
    """The client's address (as seen by the server)."""
    return request.client.host if request.client else "-"


def set_session_cookie(request: Request, response: Response, token: str) -> None:
    """The session cookie: HttpOnly, SameSite=Lax, Secure over TLS."""
    response.set_cookie(SESSION_COOKIE, token, httponly=True, samesite="lax", path="/",
                        secure=request.url.scheme == "https")


@router.get("/", response_class=HTMLResponse)
def root(request: Request) -> Response:
    try:
        ctx = current(request)
    except NotSignedInError:
        return RedirectResponse("/login", status_code=303)
    return RedirectResponse(home_of(ctx), status_code=303)


@router.get("/login", response_class=HTMLResponse)
def login_form(request: Request, next: str | None = None) -> Response:
    token = request.cookies.get(LOGIN_CSRF_COOKIE) or secrets.token_urlsafe(32)
    resp = page(request, "login.html", None, login_csrf=token, next=safe_next(next, ""), error=None)
    resp.set_cookie(LOGIN_CSRF_COOKIE, token, httponly=True, samesite="strict", path="/login",
                    secure=request.url.scheme == "https")
    return resp


@router.post("/login", response_class=HTMLResponse)
def login(request: Request, username: Annotated[str, Form(max_length=100)],
          password: Annotated[str, Form(max_length=1000)],
          csrf_token: Annotated[str, Form(max_length=200)] = "",
          next: Annotated[str, Form(max_length=2000)] = "") -> Response:
    cookie = request.cookies.get(LOGIN_CSRF_COOKIE, "")
    token = cookie or secrets.token_urlsafe(32)

    def again(message: str, status: int) -> Response:
        resp = page(request, "login.html", None, status_code=status, login_csrf=token,
                    next=safe_next(next, ""), error=message, username=username)
        resp.set_cookie(LOGIN_CSRF_COOKIE, token, httponly=True, samesite="strict", path="/login",
                        secure=request.url.scheme == "https")
        return resp

    if not cookie or not hmac.compare_digest(cookie, csrf_token):
        return again("The form expired: please sign in again.", 403)
    ip = client_ip(request)
    throttle = request.app.state.throttle
    if throttle.blocked(ip):
        return again("Too many failed sign-ins from this address: wait a few minutes.", 429)
    checked = precheck(request.app.state.store, username.strip(), password)
    with writing(request) as s:
        result = sign_in(s, username.strip(), password, ip=ip, checked=checked)
        if result.user is None:
            throttle.failed(ip)
            session = None
        else:
            session = new_session(s, result.user)
            role = result.user.role
    if session is None:
        return again(FAILED, 401)
    resp = see_other(safe_next(next, {"clinician": "/participants", "auditor": "/participants",
                                      "analyst": "/data", "admin": "/admin/users"}[role]))
    set_session_cookie(request, resp, session[0])
    resp.delete_cookie(LOGIN_CSRF_COOKIE, path="/login")
    return resp


@router.post("/logout")
def logout(request: Request, ctx: Annotated[Ctx, Depends(csrf_ok)]) -> Response:
    with writing(request) as s:
        end_session(s, ctx.session_id)
        audit(s, ctx, "logout", "user", ctx.name)
    resp = see_other("/login")
    resp.delete_cookie(SESSION_COOKIE, path="/")
    return resp
