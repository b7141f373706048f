"""Limits before work: bodies are refused before they are read, against a real server.

A raw socket client streams the body the way a browser does (it reads the answer as
soon as one comes, while still sending), so the time to refuse and the bytes the
server took in are measured, not hidden by a client that first sends everything.
"""

from __future__ import annotations

import select
import socket
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import httpx
import pytest
import starlette.formparsers
from fastapi.testclient import TestClient

from hikisig.web import WebSettings
from hikisig.web.context import SESSION_COOKIE, new_session

from .conftest import Clinic, make_clinic
from .live import ThreadServer

GB = 1024 ** 3
BOUNDARY = "----hikisiglimits"


class Spools:
    """Counts the multipart parser's spooled temporary files and whether they were closed."""

    def __init__(self) -> None:
        self.files: list[Any] = []
        real = starlette.formparsers.SpooledTemporaryFile

        def make(*a: Any, **k: Any) -> Any:
            f = real(*a, **k)
            self.files.append(f)
            return f

        self.make = make

    @property
    def open(self) -> int:
        return sum(not f.closed for f in self.files)


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Clinic, ThreadServer]]:
    clinic = make_clinic(tmp_path_factory.mktemp("limits"))
    with ThreadServer(clinic.db, settings=WebSettings(work_dir=clinic.work_dir, upload_mb=5)) as srv:
        yield clinic, srv
    clinic.store.dispose()


@pytest.fixture
def spools(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> Spools:
    sp = Spools()
    monkeypatch.setattr(starlette.formparsers, "SpooledTemporaryFile", sp.make)
    monkeypatch.setattr("tempfile.tempdir", str(tmp_path))  # the server runs in this process
    return sp


def _cookie(clinic: Clinic, name: str) -> str:
    from sqlalchemy import select

    from hikisig.cohort import schema

    with clinic.store.session() as s:
        user = s.scalar(select(schema.User).where(schema.User.name == name))
        assert user is not None
        return new_session(s, user)[0]


def _stream(url: str, path: str, total: int, *, cookie: str | None = None, content_length: bool = False,
            timeout: float = 20.0) -> tuple[int, float, int]:
    """POST a multipart body of ``total`` bytes from a generator (chunked, or with a Content-Length);
    stop sending once the server answers. Returns (status, seconds, bytes sent)."""
    host, port = urlsplit(url).hostname, urlsplit(url).port
    head = (f"--{BOUNDARY}\r\nContent-Disposition: form-data; name=\"file\"; filename=\"big.csv\"\r\n"
            f"Content-Type: text/csv\r\n\r\n").encode()
    chunk = b"sample,a\n" + b"x" * (64 * 1024 - 9)
    lines = [f"POST {path} HTTP/1.1", f"Host: {host}:{port}",
             f"Content-Type: multipart/form-data; boundary={BOUNDARY}"]
    lines.append(f"Content-Length: {total}" if content_length else "Transfer-Encoding: chunked")
    if cookie:
        lines.append(f"Cookie: {SESSION_COOKIE}={cookie}")

    def pieces() -> Iterator[bytes]:
        yield head
        sent = len(head)
        while sent < total:
            piece = chunk[:total - sent]
            sent += len(piece)
            yield piece

    sock = socket.create_connection((host, port))
    sock.setblocking(False)
    t0 = time.monotonic()
    sent, reply = 0, b""
    try:
        pending = ("\r\n".join(lines) + "\r\n\r\n").encode()
        gen = pieces()
        while time.monotonic() - t0 < timeout:
            readable, writable, _ = select.select([sock], [sock] if pending is not None else [], [], 0.5)
            if readable:
                data = sock.recv(65536)
                reply += data
                if b"\r\n" in reply or not data:
                    break
                continue
            if writable and pending is not None:
                try:
                    n = sock.send(pending)
                except (BrokenPipeError, ConnectionResetError):
                    pending = None
                    continue
                sent += n
                pending = pending[n:]
                if not pending:
                    piece = next(gen, None)
                    if piece is None:
                        pending = None if content_length else b"0\r\n\r\n"
                        gen = iter(())
                    else:
                        pending = piece if content_length else b"%x\r\n%s\r\n" % (len(piece), piece)
        elapsed = time.monotonic() - t0
    finally:
        sock.close()
    assert reply.startswith(b"HTTP/1.1 "), reply[:200]
    return int(reply.split()[1]), elapsed, sent


def _left(clinic: Clinic) -> list[Path]:
    uploads = clinic.work_dir / "uploads"
    return sorted(p for p in uploads.rglob("*") if p.is_file()) if uploads.exists() else []


@pytest.mark.parametrize("path", ["/api/v1/labs", "/labs/preview", "/login", "/api/v1/session"])
@pytest.mark.parametrize("content_length", [False, True])
def test_1gb_without_a_session_is_refused_at_once(server: tuple[Clinic, ThreadServer], spools: Spools,
                                                   tmp_path: Path, path: str, content_length: bool) -> None:
    clinic, srv = server
    status, seconds, sent = _stream(srv.url, path, GB, content_length=content_length)
    assert status in {401, 303, 413}, status  # upload routes: not signed in; sign-in: too large
    if path in {"/login", "/api/v1/session"}:
        assert status == 413
    assert seconds < 1.0, seconds
    assert sent < 64 * 1024 * 1024, sent  # the server stopped taking the body (socket buffers aside)
    if path in {"/login", "/api/v1/session"}:  # at most 64 kB parsed, in memory, and closed
        assert spools.open == 0 and not any(f._rolled for f in spools.files)
    else:
        assert spools.files == []  # the body was never parsed
    assert list(tmp_path.iterdir()) == [] and _left(clinic) == []


@pytest.mark.parametrize("user,status", [("docA", 403), ("aud", 403)])
def test_other_roles_are_refused_before_the_body(server: tuple[Clinic, ThreadServer], spools: Spools,
                                                 user: str, status: int) -> None:
    clinic, srv = server
    got, seconds, _ = _stream(srv.url, "/api/v1/labs", GB, cookie=_cookie(clinic, user))
    assert got == status and seconds < 1.0
    assert spools.files == []


@pytest.mark.parametrize("content_length", [False, True])
def test_oversized_upload_of_an_analyst_is_413_while_streaming(server: tuple[Clinic, ThreadServer],
                                                                spools: Spools, tmp_path: Path,
                                                                content_length: bool) -> None:
    clinic, srv = server  # upload limit 5 MB
    status, seconds, sent = _stream(srv.url, "/api/v1/labs", 250 * 1024 * 1024,
                                    cookie=_cookie(clinic, "ana"), content_length=content_length)
    assert status == 413 and seconds < 2.0, (status, seconds)
    assert sent < 40 * 1024 * 1024, sent  # not the 250 MB
    assert spools.open == 0 and list(tmp_path.iterdir()) == [] and _left(clinic) == []
    if content_length:
        assert spools.files == []  # refused from the header: the parser never ran


def test_small_requests_still_work(server: tuple[Clinic, ThreadServer]) -> None:
    clinic, srv = server
    with httpx.Client(base_url=srv.url, timeout=10) as c:
        c.cookies.set(SESSION_COOKIE, _cookie(clinic, "ana"))
        csrf = c.get("/api/v1/me").json()["csrf_token"]
        r = c.post("/api/v1/labs", headers={"X-CSRF-Token": csrf}, data={"study": "clinic"},
                   files={"file": ("lab.csv", b"sample,participant,glucose\nS1,PA,5.1\n", "text/csv")})
        assert r.status_code in {200, 422}, r.text
        assert "X-Frame-Options".lower() in {k.lower() for k in r.headers}
        big = c.post("/api/v1/participants", headers={"X-CSRF-Token": csrf}, json={"code": "x" * 100_000})
        assert big.status_code == 413 and big.headers["x-frame-options"] == "DENY"


# -- proxies ----------------------------------------------------------------------------------
def test_forwarded_for_from_an_untrusted_address_cannot_dodge_the_throttle(clinic: Clinic) -> None:
    """Behind ``serve --proxy-headers`` (uvicorn's ProxyHeadersMiddleware, trusting 127.0.0.1 only),
    a client that is not the proxy gets its own address, whatever X-Forwarded-For says."""
    from uvicorn.middleware.proxy_headers import ProxyHeadersMiddleware

    from hikisig.web import create_app

    app = create_app(str(clinic.db), WebSettings(work_dir=clinic.work_dir, login_limit=3))
    proxied = ProxyHeadersMiddleware(app, trusted_hosts="127.0.0.1")
    wrong = {"username": "docA", "password": "not the password at all"}
    try:
        direct = TestClient(proxied, client=("203.0.113.9", 40000))
        codes = [direct.post("/api/v1/session", json=wrong, headers={"X-Forwarded-For": f"198.51.100.{i}"})
                 .status_code for i in range(5)]
        assert codes == [401, 401, 401, 429, 429]
        # through the trusted proxy, each forwarded client has its own count ...
        proxy = TestClient(proxied, client=("127.0.0.1", 40001))
        other = proxy.post("/api/v1/session", json=wrong, headers={"X-Forwarded-For": "198.51.100.7"})
        assert other.status_code == 401
        # ... and the blocked address stays blocked when it comes through the proxy
        same = proxy.post("/api/v1/session", json=wrong, headers={"X-Forwarded-For": "203.0.113.9"})
        assert same.status_code == 429
    finally:
        app.state.jobs.shutdown()
        app.state.store.dispose()


def test_serve_passes_the_trusted_proxies_to_uvicorn(clinic: Clinic, monkeypatch: pytest.MonkeyPatch) -> None:
    import uvicorn

    from .conftest import run_cli

    seen: list[dict[str, Any]] = []
    monkeypatch.setattr(uvicorn, "run", lambda app, **kw: seen.append(kw))
    base = ("--db", str(clinic.db), "serve", "--work-dir", str(clinic.work_dir))
    assert run_cli(*base, "--proxy-headers").code == 0
    assert seen[-1]["proxy_headers"] is True and seen[-1]["forwarded_allow_ips"] == "127.0.0.1"
    assert run_cli(*base, "--proxy-headers", "--forwarded-allow-ips", "10.0.0.2, 10.1.0.0/16").code == 0
    assert seen[-1]["forwarded_allow_ips"] == "10.0.0.2,10.1.0.0/16"
    assert run_cli(*base).code == 0 and seen[-1]["proxy_headers"] is False
    bad = run_cli(*base, "--proxy-headers", "--forwarded-allow-ips", "*")
    assert bad.code == 2 and "any client" in bad.err
