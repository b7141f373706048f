"""Reading a lab or tool table for analysis: the readers of ``hikisig import measurements``,
their checks and one-line errors, and the catalog rules of the store, into a
:class:`~hikisig.cohort.dataset.Dataset` (nothing is written anywhere).
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from hikisig.catalog import load_catalog
from hikisig.cohort.cells import parse_na_values
from hikisig.cohort.dataset import OBS_COLUMNS, Dataset, _maybe_numeric, _var
from hikisig.cohort.readers import ParsedTable, ReadOptions, parse_units, read_measurements
from hikisig.cohort.variables import merge_columns, resolve_variables
from hikisig.errors import ProblemCollector

__all__ = ["dataset_from_table", "read_table"]


def read_table(path: str | Path, *, id_column: str | None = None, meta_columns: Sequence[str] = (),
               na_values: Sequence[str] | str | None = (), sheet: str | None = None,
               format: str = "auto", decimal_comma: bool = False, unit_row: bool = False,
               units: dict[str, str] | str | None = None, study: str | None = None,
               optional_meta_columns: Sequence[str] = ()) -> Dataset:
    """Read a table of measurements for analysis.

    The same readers, checks and messages as ``hikisig import measurements``: wide
    CSV/TSV/XLSX/Parquet, long, W4M, CIMCB and AnnData files; every unreadable cell is
    reported with its file, row, column and value; column names are matched against the
    analyte catalog (``Orn`` -> ``ornithine``) and values converted to the catalog's unit
    when their unit is given. In a wide table, columns named like metadata (sex, age,
    group, visit, batch, ...), the ``meta_columns`` and columns of labels (not one
    number, such as a study name) go to ``obs``; every other column is an analyte.

    Parameters
    ----------
    path : str or Path
        The file (W4M: one of its three files, or their folder).
    id_column : str, optional
        Sample id column (wide; default: a column named like a sample or participant id,
        else the first column).
    meta_columns : sequence of str
        Further metadata columns (wide); each must exist.
    na_values : sequence of str, str or None
        Missing-value codes (``"-9,-99"`` or a list), added to the default ones (``NA``,
        ``ND``, ``n.d.``, ...). A column holding an undeclared usual code (-9, -99, -999,
        999, 9999) more than once gets a warning.
    sheet : str, optional
        Excel sheet (wide).
    format : {"auto", "wide", "long", "w4m", "cimcb", "anndata"}
    decimal_comma, unit_row, units
        As the options of ``hikisig import measurements``.
    study : str, optional
        Study name of the result (default: the file's stem).
    optional_meta_columns : sequence of str
        Metadata columns taken when the file has them (no error when it does not).

    Returns
    -------
    Dataset

    Raises
    ------
    InputError
        Every problem of the file, one per line.

    Examples
    --------
    >>> ds = read_table("examples/data/lab_wide.csv", unit_row=True)  # doctest: +SKIP
    >>> ds.var.loc["ornithine", ["source_name", "unit"]].tolist()     # doctest: +SKIP
    ['Orn', 'umol/L']
    """
    codes = parse_na_values(na_values if na_values else None)
    opts = ReadOptions(id_column=id_column, meta_columns=list(meta_columns), na_values=codes,
                       decimal_comma=decimal_comma, sheet=sheet, unit_row=unit_row,
                       units=parse_units(units) if isinstance(units, str) or units is None
                       else dict(units),
                       optional_meta_columns=list(optional_meta_columns), text_as_metadata=True)
    table = read_measurements(path, format, opts)
    return dataset_from_table(table, study=study or Path(path).stem)


def dataset_from_table(table: ParsedTable, *, study: str = "default") -> Dataset:
    """A parsed table as a Dataset: analytes resolved against the catalog and merged as the
    store importer does, values in stored units, metadata in ``obs``."""
    pc = ProblemCollector(table.file)
    variables = resolve_variables(table, load_catalog(), pc)
    values, flag_r, flag_c, flags, raws = merge_columns(table, variables, pc)
    pc.raise_if_any()
    index = pd.Index(table.samples["sample"].astype(str), name="sample")
    keys = [v.key for v in variables]
    columns = pd.Index(keys, name="analyte")
    an = pd.DataFrame({"key": keys, "catalog_id": [v.catalog_id for v in variables],
                       "display_name": [v.display_name for v in variables],
                       "source_name": [v.source_name for v in variables],
                       "unit": [v.unit for v in variables],
                       "match": [v.match for v in variables],
                       "attributes": [v.attributes for v in variables]})
    flag_frame = pd.DataFrame({"sample": index.to_numpy()[flag_r] if len(flags) else [],
                               "analyte": np.asarray(keys, dtype=object)[flag_c] if len(flags) else [],
                               "flag": flags, "raw": raws})
    return Dataset(pd.DataFrame(values, index=index, columns=columns), _obs(table.samples, index),
                   _var(an, columns), flag_frame, study, table.synthetic, table.file,
                   dict(table.meta_columns))


def _obs(samples: pd.DataFrame, index: pd.Index) -> pd.DataFrame:
    """Standard fields first (those the file has, plus participant, visit, sample type), then
    the file's other metadata columns."""
    obs = pd.DataFrame(index=index)
    for col in OBS_COLUMNS:
        if col in samples.columns:
            obs[col] = _typed(col, samples[col].to_numpy(dtype=object))
    attrs = samples["attributes"].tolist() if "attributes" in samples else []
    extra = pd.DataFrame.from_records([dict(a or {}) for a in attrs], index=index) if attrs else None
    if extra is not None:
        for col in extra.columns:
            if col not in obs.columns:
                obs[col] = _maybe_numeric(extra[col])
    return obs


def _typed(col: str, values: np.ndarray) -> Any:
    if col in ("visit", "injection_order", "birth_year"):
        return pd.array([None if v is None else int(v) for v in values], dtype="Int64")
    if col == "age":
        return pd.to_numeric(pd.Series(values), errors="coerce").to_numpy(dtype=float)
    return values
