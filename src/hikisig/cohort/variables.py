"""Mapping a parsed table's columns onto analytes: catalog ids, units, merged columns.

The one rule shared by the store importer and by :func:`hikisig.cohort.tables.read_table`:
a column whose name (or label) the catalog resolves is stored under the catalog id and
converted to the catalog's default unit when its unit is given; other columns keep their
name. Columns that resolve to the same analyte are merged; a sample with a value in more
than one of them is an error.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

from hikisig.catalog import Catalog, UnknownUnitError, normalize_unit
from hikisig.cohort.readers import ParsedTable
from hikisig.errors import ProblemCollector

__all__ = ["Variable", "analyte_keys", "merge_columns", "resolve_variables"]


@dataclass
class Variable:
    """An analyte of a parsed table: its key (catalog id or column name), annotations, unit,
    and the file columns (with unit conversion factors) its values come from."""

    key: str
    catalog_id: str | None
    display_name: str
    source_name: str
    unit: str | None
    attributes: dict[str, Any]
    columns: list[int]
    factors: list[float]
    #: how the name matched the catalog: ``exact``, ``synonym`` or ``unmatched``
    match: str = "unmatched"
    #: first file row of the analyte (long tables)
    row: int | None = None


def resolve_variables(t: ParsedTable, cat: Catalog, pc: ProblemCollector) -> list[Variable]:
    """Map the file's columns onto catalog analytes (or keep them uncatalogued).

    Two source columns are never merged into one analyte: columns whose names resolve to
    the same catalog analyte are an error naming both (for a long table: both analyte names
    with the first row of each). Only one analyte name given in several units (a long
    table) is one analyte, its values converted to the stored unit.
    """
    by_key: dict[str, Variable] = {}
    order: list[str] = []
    first_row = t.variables["row"].tolist() if "row" in t.variables else None
    long = first_row is not None
    for j, rec in enumerate(t.variables.itertuples(index=False)):
        name, label = str(rec.name), str(rec.label)
        unit = normalize_unit(rec.unit) if isinstance(rec.unit, str) and rec.unit.strip() else None
        a, how = cat.match(label)
        if a is None and name != label:
            a, how = cat.match(name)
        factor = 1.0
        if a is not None:
            key, display, stored_unit = a.id, a.display_name, a.default_unit if unit else None
            if unit:
                try:
                    factor = a.factor(unit)
                except UnknownUnitError as exc:
                    pc.add(str(exc), column=None if long else name, value=rec.unit,
                           row=int(first_row[j]) if first_row is not None else None)
        else:
            key, display, stored_unit = name, label, unit
        attrs = dict(rec.attributes) if isinstance(rec.attributes, dict) else {}
        if key in by_key:
            v = by_key[key]
            if v.source_name != name:
                what = f"catalog analyte {key!r} ({display})" if a is not None else f"analyte {key!r}"
                if first_row is not None:
                    pc.add(f"analyte names {v.source_name!r} (first in row {v.row}) and {name!r} "
                           f"are both {what}: rename one, or keep only one",
                           row=int(first_row[j]), column="analyte", value=name)
                else:
                    pc.add(f"columns {v.source_name!r} and {name!r} are both {what}: rename one, "
                           "or keep only one", row=1, column=name)
                continue
            if v.unit != stored_unit:
                pc.add(f"analyte {key!r} appears twice, with units {v.unit!r} and {stored_unit!r}",
                       column=None if long else name,
                       row=int(first_row[j]) if first_row is not None else None)
            v.columns.append(j)
            v.factors.append(factor)
        else:
            by_key[key] = Variable(key, a.id if a else None, display, name, stored_unit, attrs, [j],
                                   [factor], how if a is not None else "unmatched",
                                   int(first_row[j]) if first_row is not None else None)
            order.append(key)
    return [by_key[k] for k in order]


def merge_columns(t: ParsedTable, variables: list[Variable], pc: ProblemCollector
                   ) -> tuple[np.ndarray, np.ndarray, np.ndarray, list[str], list[str]]:
    """Values (n_samples x n_keys) in stored units, and flags remapped to key columns."""
    n = t.values.shape[0]
    out = np.full((n, len(variables)), np.nan)
    col_to_key = np.empty(t.values.shape[1], dtype=np.int64)
    filled = np.zeros((n, t.values.shape[1]), dtype=bool)
    filled |= ~np.isnan(t.values)
    if len(t.flags):
        filled[t.flag_rows, t.flag_cols] = True
    for k, v in enumerate(variables):
        col_to_key[v.columns] = k
        if len(v.columns) > 1:
            both = filled[:, v.columns].sum(axis=1) > 1
            rows = np.flatnonzero(both)
            room = max(0, pc.limit - len(pc))
            pc.count(len(rows) - min(room, len(rows)))
            for r in rows[:room]:
                names = [str(t.variables["name"].iloc[c]) for c in v.columns]
                pc.add(f"columns {', '.join(map(repr, names))} are all analyte {v.key!r} and "
                       "more than one has a value for this sample", row=int(t.samples["_row"].iloc[r]),
                       column=names[0])
        for c, f in zip(v.columns, v.factors, strict=True):
            col = t.values[:, c] * f if f != 1.0 else t.values[:, c]
            has = ~np.isnan(col)
            out[has, k] = col[has]
    return (out, t.flag_rows.copy(), col_to_key[t.flag_cols] if len(t.flags) else t.flag_cols.copy(),
            list(t.flags), list(t.raws))


def analyte_keys(names: list[str], catalog: Catalog | None = None) -> list[str]:
    """Keys of analyte columns that are read one by one (out of core): the catalog id where
    the name resolves, else the name; a name never takes an id another column already has
    (so no two columns are merged).

    Examples
    --------
    >>> analyte_keys(["Orn", "feature_1"])
    ['ornithine', 'feature_1']
    """
    from hikisig.catalog import load_catalog

    cat = catalog or load_catalog()
    keys: list[str] = []
    for a in names:
        hit = cat.resolve(a)
        keys.append(hit.id if hit is not None and hit.id not in keys and hit.id not in names else a)
    return keys
