"""What every command shares: global options, consoles, progress bars."""

from __future__ import annotations

import sys
import warnings
from pathlib import Path
from typing import TYPE_CHECKING, Any

from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

from hikisig.errors import HikisigError

if TYPE_CHECKING:
    import pandas as pd

__all__ = [
    "State",
    "err",
    "open_store",
    "out",
    "print_warnings",
    "progress_bar",
    "state",
    "study_for_read",
    "write_table",
]

err = Console(stderr=True, highlight=False, soft_wrap=True)
out = Console(highlight=False, soft_wrap=True)


class State:
    """Global options given before the command."""

    db: str | None = None
    study: str | None = None
    quiet: bool = False


state = State()


def open_store() -> Any:
    """The store named by ``--db`` / ``HIKISIG_DB``."""
    from hikisig.cohort.store import Store

    return Store(state.db)


def study_for_read(st: Any) -> str:
    """The study to read: ``--study``, or the only study in the store."""
    if state.study:
        return state.study
    names = st.study_names()
    if len(names) == 1:
        return str(names[0])
    if not names:
        raise HikisigError(f"the store {st.display_url} holds no study yet: import data first")
    raise HikisigError(f"the store holds several studies ({', '.join(names)}): choose one with --study")


def progress_bar() -> Progress:
    """A Rich progress bar on stderr (hidden with ``--quiet``)."""
    return Progress(TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(),
                    TimeElapsedColumn(), console=err, transient=True, disable=state.quiet)


def print_warnings(caught: list[warnings.WarningMessage]) -> None:
    """Print caught warnings as one line each on stderr."""
    for w in caught:
        err.print(f"warning: {w.message}", markup=False)


def write_table(frame: pd.DataFrame, out_path: Path | None) -> None:
    """Write a result table as CSV to a file (atomically) or to stdout."""
    text = frame.to_csv(index=False, lineterminator="\n")
    if out_path is None:
        sys.stdout.write(text)
        return
    tmp = out_path.with_name(f".{out_path.name}.tmp")
    tmp.write_text(text)
    tmp.replace(out_path)
    err.print(f"wrote {out_path}")
