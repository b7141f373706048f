"""Lab uploads: stage a file, check it completely against the store, then import it.

Nothing is stored until the file passes every check: the preview runs the
whole import (reading, units, conflicts with stored values) inside a
transaction that is rolled back, and the import repeats it for real.
"""

from __future__ import annotations

import re
import secrets
import shutil
import warnings
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from fastapi import HTTPException
from sqlalchemy.orm import Session
from starlette.datastructures import UploadFile

from hikisig.cohort.importer import ImportResult, import_measurements
from hikisig.cohort.readers import FORMATS, ReadOptions, parse_units, read_measurements
from hikisig.cohort.store import Store
from hikisig.cohort.xlsx_guard import check_xlsx
from hikisig.errors import HikisigError, InputError

__all__ = ["STAGED_HOURS", "Checked", "check_staged", "discard", "read_isolated", "stage_upload",
           "staged_path", "sweep_uploads", "upload_options"]

#: A staged upload (a preview not imported nor discarded) is deleted after this many hours.
STAGED_HOURS = 24.0

_TOKEN = re.compile(r"^[A-Za-z0-9_-]{16,64}$")
_SAFE_NAME = re.compile(r"[^A-Za-z0-9._-]+")


@dataclass
class Checked:
    """Outcome of a check: problems (row, column, value, message) or a preview."""

    token: str
    file: str
    problems: list[dict[str, Any]] = field(default_factory=list)
    result: ImportResult | None = None
    columns: list[str] = field(default_factory=list)
    rows: list[list[str]] = field(default_factory=list)
    n_samples: int = 0
    n_analytes: int = 0
    #: analytes of the file without a unit (shown as "unit missing")
    missing_units: list[str] = field(default_factory=list)
    #: of those, the ones not yet stored without a unit in the study: the analyst must confirm them
    unconfirmed_units: list[str] = field(default_factory=list)
    #: True when an import was asked for and refused only for want of that confirmation
    needs_confirmation: bool = False
    #: units of the analytes as read (name -> unit or None), for the preview
    units: dict[str, str | None] = field(default_factory=dict)

    @property
    def ok(self) -> bool:
        """True when the file can be imported."""
        return not self.problems


def _uploads(work_dir: Path) -> Path:
    d = work_dir / "uploads"
    d.mkdir(parents=True, exist_ok=True)
    return d


async def stage_upload(work_dir: Path, upload: UploadFile, limit_mb: int) -> tuple[str, Path]:
    """Save an uploaded file under a random token; 413 when larger than ``limit_mb``."""
    name = _SAFE_NAME.sub("_", Path(upload.filename or "upload.csv").name)[:120] or "upload.csv"
    token = secrets.token_urlsafe(18)
    folder = _uploads(work_dir) / token
    folder.mkdir()
    path = folder / name
    size, limit = 0, limit_mb * 1024 * 1024
    with path.open("wb") as fh:
        while chunk := await upload.read(1 << 20):
            size += len(chunk)
            if size > limit:
                fh.close()
                shutil.rmtree(folder, ignore_errors=True)
                raise HTTPException(413, f"the file is larger than {limit_mb} MB")
            fh.write(chunk)
    if size == 0:
        shutil.rmtree(folder, ignore_errors=True)
        raise HTTPException(422, "the file is empty")
    return token, path


def sweep_uploads(work_dir: Path, max_age_hours: float = STAGED_HOURS) -> int:
    """Delete staged uploads older than ``max_age_hours`` (0: all); returns how many.

    Abandoned previews (a file checked and never imported or discarded) would otherwise stay
    on disk: the app sweeps at start-up and then now and then while uploads come in."""
    import time

    folder = work_dir / "uploads"
    if not folder.is_dir():
        return 0
    cutoff = time.time() - max_age_hours * 3600
    n = 0
    for d in folder.iterdir():
        try:
            old = d.stat().st_mtime <= cutoff
        except OSError:
            continue
        if old and _TOKEN.match(d.name):
            shutil.rmtree(d, ignore_errors=True) if d.is_dir() else d.unlink(missing_ok=True)
            n += 1
    return n


def upload_options(unit_row: bool = False, units: str | None = None) -> ReadOptions:
    """The read options an upload may set: a unit row under the header, or units per column
    (``umol/L`` for every analyte column, or ``Orn=umol/L, UA=mg/dL``), as the CLI's
    ``--unit-row`` / ``--units``."""
    return ReadOptions(unit_row=unit_row, units=parse_units((units or "").strip()[:2000] or None))


def staged_path(work_dir: Path, token: str) -> Path:
    """The staged file of ``token`` (404 if none)."""
    if not _TOKEN.match(token or ""):
        raise HTTPException(404, "no such upload")
    folder = _uploads(work_dir) / token
    files = sorted(folder.iterdir()) if folder.is_dir() else []
    if not files:
        raise HTTPException(404, "no such upload (it was imported or discarded)")
    return files[0]


def discard(work_dir: Path, token: str) -> None:
    """Delete a staged upload."""
    if _TOKEN.match(token or ""):
        shutil.rmtree(_uploads(work_dir) / token, ignore_errors=True)


#: Memory (address space beyond what the worker holds after start-up) and wall time allowed to the
#: worker process that parses an Excel upload.
PARSE_MEMORY_MB = 1024
PARSE_SECONDS = 60.0


def _parse_worker(conn: Any, path: str, fmt: str, options: ReadOptions, memory: int, seconds: float) -> None:
    """In a fresh process: limit memory and CPU time, read the file, send back the table or the error."""
    import pickle
    import resource

    try:
        with open("/proc/self/statm") as fh:
            now = int(fh.read().split()[0]) * resource.getpagesize()
    except OSError:
        now = 0
    resource.setrlimit(resource.RLIMIT_AS, (now + memory, now + memory))
    cpu = int(seconds) + 1
    resource.setrlimit(resource.RLIMIT_CPU, (cpu, cpu + 1))
    try:
        out: tuple[str, Any] = ("ok", read_measurements(Path(path), fmt, options))
    except BaseException as exc:
        cause: BaseException | None = exc
        while cause is not None and not isinstance(cause, MemoryError | SystemError):
            cause = cause.__cause__ or cause.__context__
        if cause is not None:  # out of the allowed memory (C extensions may say SystemError)
            out = ("error", f"cannot read {Path(path).name}: it needs more than "
                            f"{memory // (1024 * 1024)} MB of memory")
        elif isinstance(exc, InputError):
            out = ("problems", exc.problems)
        else:
            out = ("error", str(exc) or type(exc).__name__)
    try:
        conn.send(out)
    except (pickle.PicklingError, TypeError, AttributeError) as exc:
        conn.send(("error", f"cannot read {Path(path).name}: {exc}"))
    conn.close()


def read_isolated(path: Path, fmt: str, options: ReadOptions | None = None, *,
                  memory_mb: int | None = None, seconds: float | None = None) -> Any:
    """:func:`read_measurements` in a worker process with a memory (``RLIMIT_AS``) and time limit,
    so a workbook that expands beyond them costs the server nothing (the worker is killed)."""
    import multiprocessing

    memory = (memory_mb or PARSE_MEMORY_MB) * 1024 * 1024
    limit = seconds or PARSE_SECONDS
    ctx = multiprocessing.get_context("spawn")
    receiver, sender = ctx.Pipe(duplex=False)
    args = (sender, str(path), fmt, options or ReadOptions(), memory, limit)
    proc = ctx.Process(target=_parse_worker, args=args, daemon=True, name="hikisig-read-upload")
    proc.start()
    sender.close()
    try:
        if not receiver.poll(limit):
            raise HikisigError(f"reading {path.name} took longer than {limit:g} s: refused")
        try:
            status, payload = receiver.recv()
        except EOFError:
            raise HikisigError(f"cannot read {path.name}: the reader stopped (it needs more than "
                               f"{memory // (1024 * 1024)} MB of memory or {limit:g} s)") from None
    finally:
        receiver.close()
        proc.join(2)
        if proc.is_alive():
            proc.kill()
            proc.join(5)
    if status == "ok":
        return payload
    if status == "problems":
        raise InputError(payload)
    raise HikisigError(str(payload))


def _read(path: Path, fmt: str, options: ReadOptions | None = None) -> Any:
    """Read an uploaded file; a file no reader can parse is the uploader's problem, not a server error.

    Excel workbooks are checked first (:func:`~hikisig.cohort.xlsx_guard.check_xlsx`: no zip bombs)
    and parsed in a worker process with memory and time limits (:func:`read_isolated`)."""
    try:
        if path.suffix.lower() in {".xlsx", ".xlsm", ".xls"}:
            check_xlsx(path, file=path.name)
            return read_isolated(path, fmt, options or ReadOptions())
        return read_measurements(path, fmt, options or ReadOptions())
    except HikisigError:
        raise
    except Exception as exc:  # corrupt parquet/gzip/zip and the like: libraries raise many kinds
        detail = (str(exc) or type(exc).__name__).replace(str(path.parent), "")
        raise HikisigError(f"cannot read {path.name}: {detail[:300]}") from exc


def _stored_without_unit(store: Store, study: str, names: list[str]) -> set[str]:
    """Of ``names`` (columns of a file), those the study already stores without a unit."""
    from sqlalchemy import select

    from hikisig.cohort import schema

    if not names:
        return set()
    with Session(store.engine) as s:
        rows = s.scalars(select(schema.Analyte.source_name).join(schema.Study)
                         .where(schema.Study.name == study, schema.Analyte.unit.is_(None),
                                schema.Analyte.source_name.in_(names[:5000])))
        return {str(r) for r in rows}


def check_staged(store: Store, path: Path, token: str, *, study: str, fmt: str = "auto",
                 replace: bool = False, commit: bool = False,
                 before_commit: Callable[[Session, ImportResult], None] | None = None,
                 options: ReadOptions | None = None, units_confirmed: bool = True) -> Checked:
    """Read and check a staged file against the store; with ``commit``, import it
    (``before_commit`` runs inside the import's transaction: the audit entry).

    ``options`` carry the unit row / per-column units. Analytes without a unit that the study
    does not yet store without one are listed in ``unconfirmed_units``; with ``commit`` and
    ``units_confirmed`` False such a file is not imported (a problem says why)."""
    if fmt not in FORMATS:
        raise HTTPException(422, f"unknown format {fmt!r} (expected {', '.join(FORMATS)})")
    out = Checked(token=token, file=path.name)
    try:
        table = _read(path, fmt, options)
        out.n_samples, out.n_analytes = table.values.shape
        all_names = [str(n) for n in table.variables["name"].tolist()]
        units = [u.strip() if isinstance(u, str) and u.strip() else None for u in table.variables["unit"]]
        out.units = dict(zip(all_names, units, strict=False))
        out.missing_units = [n for n, u in out.units.items() if u is None]
        known = _stored_without_unit(store, study, out.missing_units)
        out.unconfirmed_units = [n for n in out.missing_units if n not in known]
        unconfirmed = commit and bool(out.unconfirmed_units) and not units_confirmed
        commit = commit and not unconfirmed  # not confirmed: check only, as a preview
        names = [str(n) for n in table.variables["name"].tolist()[:8]]
        out.columns = ["sample", *names]
        for i in range(min(10, len(table.samples))):
            vals = table.values[i, :len(names)]
            out.rows.append([str(table.samples["sample"].iat[i]),
                             *["" if v != v else f"{v:g}" for v in vals]])
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            out.result = import_measurements(store, table, study, replace=replace, dry_run=not commit,
                                             options={"format": fmt, "via": "web"},
                                             before_commit=before_commit)
        if unconfirmed:
            out.needs_confirmation = True
            more = " ..." if len(out.unconfirmed_units) > 20 else ""
            shown = ", ".join(out.unconfirmed_units[:20]) + more
            out.problems = [{"row": None, "column": None, "value": None, "message":
                             f"unit missing for {len(out.unconfirmed_units)} analyte(s) ({shown}): give the "
                             "units (a unit row or units per column) or confirm that they are stored "
                             "without a unit"}]
    except InputError as exc:
        out.problems = [{"row": p.row, "column": p.column, "value": None if p.value is None else str(p.value),
                         "message": p.message} for p in exc.problems]
    except HikisigError as exc:
        out.problems = [{"row": None, "column": None, "value": None, "message": str(exc)}]
    return out
