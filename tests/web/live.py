"""Run the web app in a real HTTP server on a free loopback port (for browser and load tests).

Two ways, same interface (``url``, ``start()``, ``stop()``, context manager):

- :class:`ThreadServer`: :class:`uvicorn.Server` in a background thread of this
  process, listening on a socket bound here first (no port race);
- :class:`ProcessServer`: ``python -m hikisig --db DB serve`` in a subprocess,
  the way a clinic runs it.

Both wait until ``/healthz`` answers before returning from ``start()`` and
stop cleanly (uvicorn's graceful shutdown, which runs the app's lifespan end).

Example
-------
>>> with ThreadServer(db, work_dir=tmp / "work") as srv:    # doctest: +SKIP
...     httpx.get(srv.url + "/healthz")
"""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import threading
import time
from pathlib import Path
from types import TracebackType
from typing import Any

import httpx

__all__ = ["ProcessServer", "ThreadServer", "free_port", "wait_healthy"]

HOST = "127.0.0.1"


def free_port() -> int:
    """A TCP port on 127.0.0.1 that is free right now."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind((HOST, 0))
        return int(s.getsockname()[1])


def wait_healthy(url: str, timeout: float = 30.0, alive: Any = None) -> None:
    """Poll ``url``/healthz until it answers 200; ``alive()`` False (the server died) fails early."""
    deadline = time.monotonic() + timeout
    last: object = None
    while time.monotonic() < deadline:
        if alive is not None and not alive():
            raise RuntimeError(f"the server at {url} stopped before answering /healthz ({last})")
        try:
            r = httpx.get(url + "/healthz", timeout=2.0)
            if r.status_code == 200 and r.json().get("status") == "ok":
                return
            last = f"HTTP {r.status_code}"
        except httpx.HTTPError as exc:
            last = exc
        time.sleep(0.05)
    raise TimeoutError(f"the server at {url} did not answer /healthz within {timeout:.0f} s ({last})")


class _Base:
    url: str

    def start(self) -> _Base:  # pragma: no cover - overridden
        raise NotImplementedError

    def stop(self) -> None:  # pragma: no cover - overridden
        raise NotImplementedError

    def __enter__(self) -> Any:
        return self.start()

    def __exit__(self, et: type[BaseException] | None, ev: BaseException | None,
                 tb: TracebackType | None) -> None:
        self.stop()


class ThreadServer(_Base):
    """The app on store ``db`` served by uvicorn in a daemon thread of this process.

    ``settings`` are passed to :func:`hikisig.web.create_app` (``work_dir`` is a
    shortcut). The app object is available as ``app`` once started.
    """

    def __init__(self, db: str | Path, *, work_dir: Path | None = None, settings: Any = None,
                 log_level: str = "warning") -> None:
        from hikisig.web import WebSettings

        self.db = str(db)
        self.settings = settings or WebSettings(work_dir=work_dir)
        self.log_level = log_level
        self.url = ""
        self.app: Any = None
        self._server: Any = None
        self._thread: threading.Thread | None = None
        self._sock: socket.socket | None = None
        self._error: BaseException | None = None

    def start(self) -> ThreadServer:
        import uvicorn

        from hikisig.web import create_app

        self.app = create_app(self.db, self.settings)
        sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind((HOST, 0))
        self._sock = sock
        port = sock.getsockname()[1]
        self.url = f"http://{HOST}:{port}"
        config = uvicorn.Config(self.app, log_level=self.log_level, server_header=False, lifespan="on",
                                access_log=False)
        self._server = uvicorn.Server(config)

        def run() -> None:
            try:
                self._server.run(sockets=[sock])
            except BaseException as exc:  # reported by start() or stop()
                self._error = exc

        self._thread = threading.Thread(target=run, name="hikisig-live-server", daemon=True)
        self._thread.start()
        try:
            wait_healthy(self.url, alive=self._thread.is_alive)
        except BaseException:
            self.stop()
            raise
        return self

    def stop(self) -> None:
        if self._server is not None:
            self._server.should_exit = True
        if self._thread is not None:
            self._thread.join(timeout=15)
            if self._thread.is_alive():
                raise RuntimeError("the live server did not stop within 15 s")
            self._thread = None
        if self._sock is not None:
            self._sock.close()
            self._sock = None
        if self._error is not None:
            err, self._error = self._error, None
            raise RuntimeError(f"the live server failed: {err!r}") from err


class ProcessServer(_Base):
    """``python -m hikisig --db DB serve`` in a subprocess on a free loopback port.

    Its standard error (uvicorn's log) goes to ``log`` (a file path) or is discarded.
    """

    def __init__(self, db: str | Path, *, work_dir: Path | None = None, log: Path | None = None,
                 extra_args: tuple[str, ...] = (), env: dict[str, str] | None = None) -> None:
        self.db = str(db)
        self.work_dir = work_dir
        self.log = log
        self.extra_args = extra_args
        self.env = env
        self.url = ""
        self.proc: subprocess.Popen[bytes] | None = None
        self.exit_code: int | None = None
        self._log_fh: Any = None

    def start(self, timeout: float = 60.0) -> ProcessServer:
        port = free_port()
        self.url = f"http://{HOST}:{port}"
        cmd = [sys.executable, "-m", "hikisig", "--db", self.db, "-q", "serve", "--host", HOST,
               "--port", str(port), *self.extra_args]
        if self.work_dir is not None:
            cmd += ["--work-dir", str(self.work_dir)]
        self._log_fh = open(self.log, "wb") if self.log else subprocess.DEVNULL  # noqa: SIM115
        self.proc = subprocess.Popen(cmd, stdin=subprocess.DEVNULL, stdout=self._log_fh,
                                     stderr=self._log_fh, env={**os.environ, **(self.env or {})})
        proc = self.proc
        try:
            wait_healthy(self.url, timeout=timeout, alive=lambda: proc.poll() is None)
        except BaseException:
            self.stop()
            raise
        return self

    def stop(self, timeout: float = 20.0) -> None:
        proc, self.proc = self.proc, None
        if proc is not None and proc.poll() is None:
            proc.send_signal(signal.SIGINT)  # uvicorn's graceful shutdown
            try:
                proc.wait(timeout=timeout)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait(timeout=10)
        if proc is not None:
            self.exit_code = proc.returncode
        if self._log_fh not in (None, subprocess.DEVNULL):
            self._log_fh.close()
        self._log_fh = None
