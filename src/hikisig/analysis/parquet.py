"""Case-control statistics of a Parquet file or folder, out of core.

Only the row metadata (the design's columns, from the file or from a participants table
joined on the id column) is loaded; the analytes are read in blocks
(:func:`hikisig.stats.outofcore.case_control_parquet`). The design, the case and control
labels and the missingness filter follow the same rules as in memory
(:mod:`hikisig.analysis.study`), so the table equals the in-memory one.
"""

from __future__ import annotations

import warnings
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

from hikisig.analysis.design import MIN_PER_GROUP_STATS, case_mask, numeric_column, resolve_design
from hikisig.analysis.study import ColumnsNotAnalysedWarning, MissingAnalytesWarning
from hikisig.cohort.dataset import Dataset
from hikisig.cohort.metadata import canonical_field
from hikisig.cohort.variables import analyte_keys
from hikisig.config import Design, Preprocessing, StatsSection
from hikisig.engine import Engine
from hikisig.errors import HikisigError, InputError, Problem
from hikisig.prep.markers import derived_markers
from hikisig.stats.outofcore import ParquetSource, case_control_parquet

__all__ = ["PARQUET_SUFFIXES", "ParquetStatistics", "is_parquet", "parquet_statistics"]

#: Suffixes read as Parquet (out of core); a folder is read as a Parquet dataset.
PARQUET_SUFFIXES = (".parquet", ".pq", ".parq")


def is_parquet(path: Path) -> bool:
    """Whether a path is analysed out of core (a Parquet file, or a folder of them)."""
    return path.is_dir() or path.suffix.lower() in PARQUET_SUFFIXES


@dataclass
class ParquetStatistics:
    """The table and what went into it."""

    table: pd.DataFrame
    n_case: int
    n_control: int
    n_rows: int
    n_files: int
    analytes: list[str]
    markers: list[str]
    dropped: list[str]
    mapping: pd.DataFrame


def read_participants(path: Path, id_column: str | None) -> pd.DataFrame:
    """A participants table (CSV/TSV or Parquet) indexed by its id column, as text."""
    if not path.exists():
        raise InputError([Problem(str(path), "file not found")])
    if path.suffix.lower() in PARQUET_SUFFIXES:
        table = pd.read_parquet(path)
    else:
        sep = "\t" if path.suffix.lower() in (".tsv", ".tab") else ","
        table = pd.read_csv(path, sep=sep, dtype=str, keep_default_na=False, encoding="utf-8-sig")
    cols = [str(c) for c in table.columns]
    key = id_column if id_column in cols else ("id" if "id" in cols else cols[0])
    ids = table[key].astype(str).str.strip()
    dup = ids[ids.duplicated()]
    if len(dup):
        raise InputError([Problem(str(path), "duplicate id", row=int(k) + 2, column=key,
                                  value=ids[k]) for k in dup.index[:10]])
    return table.set_axis(pd.Index(ids, name="id"), axis=0)


def _metadata(src: ParquetSource, id_col: str, participants: Path | None, design: Design
              ) -> Dataset:
    """The rows' metadata as a Dataset without analytes (its ``obs``: the design's columns)."""
    wanted = [c for c in dict.fromkeys([design.group, design.sex, *design.covariates,
                                        design.severity, design.participant]) if c]
    if participants is None:
        present = [c for c in wanted if c in src.columns]
        obs = src.read_frame(list(dict.fromkeys([id_col, *present])))
        where = src.files[0]
        ids = obs[id_col].astype(str).str.strip()
        obs = obs[present]
    else:
        table = read_participants(participants, id_col)
        present = [c for c in wanted if c in table.columns]
        src.require([id_col])
        ids = src.read_frame([id_col])[id_col].astype(str).str.strip()
        unknown = ~ids.isin(table.index)
        if unknown.any():
            raise HikisigError(f"{int(unknown.sum())} id(s) in column {id_col!r} of {src.path} "
                               f"are not in {participants} (e.g. "
                               f"{', '.join(ids[unknown].head(3))})")
        obs = table.loc[ids.to_numpy(), present].reset_index(drop=True)
        where = str(participants)
    index = pd.RangeIndex(len(obs))
    obs = obs.set_axis(index, axis=0).replace("", None)
    return Dataset(pd.DataFrame(index=index), obs, source=where)


def parquet_statistics(path: Path, *, design: Design | None = None,
                       stats: StatsSection | None = None,
                       preprocessing: Preprocessing | None = None,
                       participants: Path | None = None, id_column: str | None = None,
                       markers: bool = True, quantiles: bool = True, block_size: int = 4_000_000,
                       engine: Engine | None = None, na_values: Sequence[str] = ()
                       ) -> ParquetStatistics:
    """Case-control statistics of a Parquet file or folder, reading the analytes in blocks.

    Every numeric column other than the id, the design's columns and columns named like
    metadata is an analyte. Analytes missing in more than ``preprocessing.max_missing`` of
    the cases and controls are left out, as in memory (their share is known after one
    pass; when some are left out, the table is computed again without them). ``na_values``
    are numbers that mean "missing" in the analyte columns (Parquet holds typed values, so
    text codes do not apply).
    """
    design, s = design or Design(), stats or StatsSection()
    pre = preprocessing or Preprocessing()
    if pre.input_scale not in ("linear", "z"):
        raise HikisigError("Parquet files are analysed out of core on the linear or an additive "
                           "scale (input_scale = \"linear\" or \"z\"); convert logged values first")
    additive = pre.input_scale == "z"
    markers = markers and not additive
    src = ParquetSource(path, na_codes=_numeric_codes(na_values))
    id_col = id_column or ("id" if "id" in src.columns else src.columns[0])
    src.require([id_col])
    meta = _metadata(src, id_col, participants, design)
    d = resolve_design(meta, design)
    is_case, _, _ = case_mask(meta.column(d.group), d.case, d.control, column=d.group,
                              minimum=MIN_PER_GROUP_STATS)
    cov = pd.DataFrame({c: numeric_column(meta, c) for c in d.covariates}) if d.covariates else None
    sev = numeric_column(meta, d.severity) if d.severity else None
    used = {id_col, *d.columns}
    analytes = [c for c in src.columns
                if c not in used and src.is_numeric(c) and canonical_field(c) is None]
    skipped = [c for c in src.columns if c not in used and c not in analytes]
    if skipped:
        warnings.warn(f"column(s) not analysed (metadata or not numbers): {', '.join(skipped[:10])}"
                      f"{', ...' if len(skipped) > 10 else ''}", ColumnsNotAnalysedWarning,
                      stacklevel=2)
    if not analytes:
        raise HikisigError(f"{path}: no analyte column (numeric columns other than the id and "
                           "metadata)")
    names = analyte_keys(analytes)
    mapping = _mapping(analytes, names)

    def compute(columns: list[str], keys: list[str]) -> tuple[pd.DataFrame, dict[str, str]]:
        extra, formulas = (_markers(src, columns, keys, block_size) if markers else (None, {}))
        t = case_control_parquet(
            src, columns, is_case, by=meta.column(d.sex) if d.sex else None, covariates=cov,
            severity=sev, names=keys, extra=extra, tests=s.tests, mwu_method=s.mwu_method,
            block_cells=block_size, quantiles=quantiles, engine=engine, additive=additive)
        t["formula"] = t["analyte"].map(formulas).fillna("")
        return t, formulas

    table, formulas = compute(analytes, names)
    n = int(is_case.notna().sum())
    first = table[(table["stratum"] == "all")].drop_duplicates("analyte").set_index("analyte")
    present = (first["n_case"] + first["n_control"]).reindex(names).to_numpy(dtype=float)
    dropped = [k for k, m in zip(names, present, strict=True) if 1 - m / n > pre.max_missing]
    if dropped:
        warnings.warn(f"{len(dropped)} analyte(s) missing in more than {pre.max_missing:.0%} of the "
                      f"cases and controls left out: {', '.join(dropped[:10])}"
                      f"{', ...' if len(dropped) > 10 else ''}", MissingAnalytesWarning, stacklevel=2)
        keep = [k not in set(dropped) for k in names]
        analytes = [a for a, k in zip(analytes, keep, strict=True) if k]
        names = [a for a, k in zip(names, keep, strict=True) if k]
        table, formulas = compute(analytes, names)
    n_case = int((is_case == True).sum())  # noqa: E712
    return ParquetStatistics(table, n_case, n - n_case, src.n_rows, len(src.files), names,
                             list(formulas), dropped, mapping)


def _mapping(columns: list[str], keys: list[str]) -> pd.DataFrame:
    """``analyte_mapping.csv`` of a Parquet source (see :meth:`Dataset.analyte_mapping`)."""
    from hikisig.catalog import load_catalog
    from hikisig.cohort.dataset import MAPPING_COLUMNS

    cat = load_catalog()
    rows = []
    for col, key in zip(columns, keys, strict=True):
        a, how = cat.match(col)
        hit = a is not None and a.id == key
        rows.append((col, key if hit else None, a.display_name if hit and a else col,
                     a.class_ if hit and a else None, how if hit else "unmatched"))
    return pd.DataFrame(rows, columns=list(MAPPING_COLUMNS))


def _numeric_codes(na_values: Sequence[str]) -> tuple[float, ...]:
    codes = []
    for text in na_values:
        try:
            codes.append(float(text))
        except ValueError:
            raise HikisigError(f"--na-values {text!r}: a Parquet file holds typed values, so only "
                               "numeric codes (such as -9) apply") from None
    return tuple(codes)


def _markers(src: ParquetSource, columns: list[str], names: list[str], block: int
             ) -> tuple[pd.DataFrame | None, dict[str, str]]:
    """Derived markers of a Parquet source, computed row group by row group (they are
    row-wise sums and ratios), reading only their input columns."""
    _, ann = derived_markers(pd.DataFrame(np.empty((0, len(names))), columns=names))
    if not len(ann):
        return None, {}
    wanted = {i for inputs in ann["inputs"] for i in str(inputs).split(",")}
    pos = [k for k, n in enumerate(names) if n in wanted]  # file order: same sums as in memory
    parts = []
    for _, vals in src.iter_values([columns[k] for k in pos], max_cells=block):
        v, _ = derived_markers(pd.DataFrame(vals, columns=[names[k] for k in pos]))
        parts.append(v)
    values = pd.concat(parts, ignore_index=True)
    return values, ann["formula"].to_dict()
