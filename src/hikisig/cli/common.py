"""What every command shares: the global options (in Typer's context), consoles, progress
bars, warnings, and options whose defaults and bounds come from the study config."""

from __future__ import annotations

import sys
import warnings
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import typer
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

from hikisig.errors import HikisigError

if TYPE_CHECKING:
    import pandas as pd
    from pydantic import BaseModel

    from hikisig.cohort.store import Store

__all__ = [
    "GlobalOptions",
    "err",
    "open_store",
    "options",
    "out",
    "print_warnings",
    "progress_bar",
    "reported_warnings",
    "setting",
    "study_for_read",
    "write_table",
]

err = Console(stderr=True, highlight=False, soft_wrap=True)
out = Console(highlight=False, soft_wrap=True)

#: Warnings about library code, not about the user's data: not shown.
_LIBRARY_WARNINGS = (DeprecationWarning, PendingDeprecationWarning, FutureWarning)


@dataclass(frozen=True)
class GlobalOptions:
    """Options given before the command (``--db``, ``--study``, ``--quiet``)."""

    db: str | None = None
    study: str | None = None
    quiet: bool = False


def options(ctx: typer.Context) -> GlobalOptions:
    """The global options of this invocation."""
    obj = ctx.find_root().obj
    return obj if isinstance(obj, GlobalOptions) else GlobalOptions()


def open_store(ctx: typer.Context, db: str | None = None) -> Store:
    """The store named by ``db``, else by ``--db`` / ``HIKISIG_DB`` (default hikisig.db)."""
    from hikisig.cohort.store import Store

    return Store(db or options(ctx).db)


def study_for_read(ctx: typer.Context, store: Store) -> str:
    """The study to read: ``--study``, or the only study in the store."""
    return options(ctx).study or store.only_study()


def progress_bar(ctx: typer.Context) -> Progress:
    """A Rich progress bar on stderr (hidden with ``--quiet``)."""
    return Progress(TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(),
                    TimeElapsedColumn(), console=err, transient=True, disable=options(ctx).quiet)


def print_warnings(caught: list[warnings.WarningMessage]) -> None:
    """Print caught warnings as one line each on stderr (each message once)."""
    seen: set[str] = set()
    for w in caught:
        text = str(w.message)
        if issubclass(w.category, _LIBRARY_WARNINGS) or "openpyxl" in str(w.filename) or text in seen:
            continue
        seen.add(text)
        err.print(f"warning: {text}", markup=False)


@contextmanager
def reported_warnings() -> Iterator[None]:
    """Collect the warnings of a block and print them on stderr when it ends (also on error)."""
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        try:
            yield
        finally:
            print_warnings(caught)


def setting(section: type[BaseModel], name: str, help: str, *flags: str) -> Any:
    """A ``typer.Option`` for a study-config setting: its bounds come from the config field
    (the default is given in the signature as ``Section().name``)."""
    lo, hi = _bounds(section, name)
    return typer.Option(*flags, help=help, min=lo, max=hi)


def _bounds(section: type[BaseModel], name: str) -> tuple[float | None, float | None]:
    from hikisig.config import field_bounds

    return field_bounds(section, name)


def write_table(frame: pd.DataFrame, out_path: Path | None) -> None:
    """Write a result table as CSV (or Parquet for a .parquet path) to a file (atomically) or
    as CSV to stdout."""
    if out_path is None:
        sys.stdout.write(frame.to_csv(index=False, lineterminator="\n"))
        return
    tmp = out_path.with_name(f".{out_path.name}.tmp")
    if out_path.suffix.lower() == ".parquet":
        frame.to_parquet(tmp, index=False)
    else:
        tmp.write_text(frame.to_csv(index=False, lineterminator="\n"))
    tmp.replace(out_path)
    err.print(f"wrote {out_path}", markup=False)


def read_result_table(path: Path) -> pd.DataFrame:
    """A results table written by hikisig (CSV, TSV or Parquet), with a one-line error."""
    import pandas as pd

    if not path.exists():
        raise HikisigError(f"{path}: no such file")
    try:
        if path.suffix.lower() == ".parquet":
            return pd.read_parquet(path)
        return pd.read_csv(path, sep=None if path.suffix.lower() in (".tsv", ".txt") else ",",
                           engine="python")
    except (ValueError, OSError, pd.errors.ParserError) as exc:
        raise HikisigError(f"{path}: cannot read the table ({str(exc).splitlines()[0]})") from None
