"""Options several commands share, and turning options into the core's settings.

An option the user did not give stays unset, so the study config's default applies with
its rule (see :func:`hikisig.analysis.design.resolve_design`).
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any

import typer

from hikisig.cli.common import options, setting
from hikisig.config import Design, Preprocessing, RunSection, Source

__all__ = ["EngineOpt", "InputScaleOpt", "MaxMissingOpt", "NaValuesOpt", "SchedulerOpt", "SeedOpt",
           "WorkersOpt", "design_from", "preprocessing_from", "source_from", "split_codes"]

EngineOpt = Annotated[str, typer.Option("--engine", help="serial|loky|dask (same results).")]
SchedulerOpt = Annotated[str | None, typer.Option(
    help="Address of an existing Dask scheduler, e.g. tcp://host:8786 (with --engine dask).")]
WorkersOpt = Annotated[int | None, setting(
    RunSection, "workers", "Worker processes: loky, or the local Dask cluster started when no "
    "--scheduler is given (default: one per CPU).")]
SeedOpt = Annotated[int, setting(RunSection, "seed", "Seed of every random step.")]
MaxMissingOpt = Annotated[float, setting(
    Preprocessing, "max_missing", "Leave out analytes missing in more than this share of the "
    "cases and controls.")]
InputScaleOpt = Annotated[str, typer.Option(
    help="Scale of the values: linear; log10/log2/ln when already logged (brought back to the "
         "linear scale); z for values on an additive scale that may be negative (z-scores).")]
NaValuesOpt = Annotated[str | None, typer.Option(
    help="Comma-separated missing-value codes of the file, added to the default ones (NA, ND, "
         "...), e.g. '-9,-99'.")]


def _none(text: str) -> bool:
    return text.strip().casefold() in ("", "none")


def design_from(**given: Any) -> Design:
    """A :class:`Design` holding only the options given (``'none'`` clears a column; the
    covariates are comma-separated)."""
    fields: dict[str, Any] = {}
    for key, value in given.items():
        if value is None:
            continue
        if key == "covariates":
            fields[key] = [] if _none(value) else [c.strip() for c in value.split(",") if c.strip()]
        elif key in ("sex", "severity", "participant") and isinstance(value, str) and _none(value):
            fields[key] = None
        else:
            fields[key] = value
    return Design(**fields)


def preprocessing_from(max_missing: float, input_scale: str) -> Preprocessing:
    """The preprocessing settings of a command (validated like the config's)."""
    from pydantic import ValidationError

    from hikisig.errors import HikisigError

    try:
        return Preprocessing(max_missing=max_missing, input_scale=input_scale)  # type: ignore[arg-type]
    except ValidationError as exc:
        raise HikisigError("; ".join(f"--{'-'.join(str(e['loc'][0]).split('_'))}: {e['msg']}"
                                     for e in exc.errors())) from exc


def source_from(ctx: typer.Context, file: Path | None, db: str | None = None,
                id_column: str | None = None, na_values: str | None = None) -> Source:
    """Where a command reads: a table, else the store (``--db``, ``--study``)."""
    g = options(ctx)
    return Source(file=None if file is None else str(file), db=db or g.db, study=g.study,
                  id_column=id_column, na_values=split_codes(na_values))


def split_codes(text: str | None) -> list[str]:
    """The codes of a comma-separated ``--na-values``."""
    return [c.strip() for c in (text or "").split(",") if c.strip()]
