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
from hikisig.cohort.readers import FORMATS, ReadOptions, read_measurements
from hikisig.cohort.store import Store
from hikisig.errors import HikisigError, InputError

__all__ = ["Checked", "check_staged", "discard", "stage_upload", "staged_path"]

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


def _read(path: Path, fmt: str) -> Any:
    """Read an uploaded file; a file no reader can parse is the uploader's problem, not a server error."""
    try:
        return read_measurements(path, fmt, ReadOptions())
    except HikisigError:
        raise
    except Exception as exc:  # corrupt parquet/gzip/zip and the like: libraries raise many kinds
        detail = (str(exc) or type(exc).__name__).replace(str(path.parent), "")
        raise HikisigError(f"cannot read {path.name}: {detail[:300]}") from exc


def check_staged(store: Store, path: Path, token: str, *, study: str, fmt: str = "auto",
                 replace: bool = False, commit: bool = False,
                 before_commit: Callable[[Session, ImportResult], None] | None = None) -> Checked:
    """Read and check a staged file against the store; with ``commit``, import it
    (``before_commit`` runs inside the import's transaction: the audit entry)."""
    if fmt not in FORMATS:
        raise HTTPException(422, f"unknown format {fmt!r} (expected {', '.join(FORMATS)})")
    out = Checked(token=token, file=path.name)
    try:
        table = _read(path, fmt)
        out.n_samples, out.n_analytes = table.values.shape
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
    except InputError as exc:
        out.problems = [{"row": p.row, "column": p.column, "value": None if p.value is None else str(p.value),
                         "message": p.message} for p in exc.problems]
    except HikisigError as exc:
        out.problems = [{"row": None, "column": None, "value": None, "message": str(exc)}]
    return out
