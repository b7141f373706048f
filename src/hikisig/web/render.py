"""Rendering pages: the template set, the signed-in user and the CSRF token."""

from __future__ import annotations

from typing import Any

from fastapi import Request
from fastapi.responses import HTMLResponse, RedirectResponse

from hikisig.web.context import Ctx

__all__ = ["HOME", "home_of", "page", "safe_next", "see_other"]

#: The first page of each role.
HOME = {"clinician": "/participants", "auditor": "/participants", "analyst": "/data",
        "admin": "/admin/users"}


def home_of(ctx: Ctx) -> str:
    """The first page of the user's role."""
    return HOME.get(ctx.role, "/login")


def page(request: Request, template: str, ctx: Ctx | None, status_code: int = 200,
         **values: Any) -> HTMLResponse:
    """Render a template with ``ctx`` (user, role, CSRF token) and ``values``."""
    templates = request.app.state.templates
    return templates.TemplateResponse(request, template, {"ctx": ctx, **values},
                                      status_code=status_code)


def see_other(url: str) -> RedirectResponse:
    """Redirect after a POST (303)."""
    return RedirectResponse(url, status_code=303)


def safe_next(target: str | None, default: str) -> str:
    """A redirect target that stays on this site (a path, not ``//host`` or a URL).

    Browsers read ``\\`` as ``/`` and drop tabs and newlines, so ``/\\evil.example``
    and ``/<TAB>/evil.example`` are refused too.

    Examples
    --------
    >>> safe_next("//evil.example/x", "/"), safe_next("/participants/3", "/")
    ('/', '/participants/3')
    >>> safe_next("/\\\\evil.example", "/"), safe_next("/\\t/evil.example", "/")
    ('/', '/')
    """
    if (not target or not target.startswith("/") or target.startswith("//") or "\\" in target
            or any(ord(ch) < 0x20 or ord(ch) == 0x7F for ch in target)):
        return default
    return target
