"""Derived markers: curated ratios and sums of catalog analytes (never mined from data).

Each marker is defined from catalog ids and classes, and computed only when
every component it requires is a column of the data: a ratio needs every
analyte of both sides, a class sum a documented *core* set of catalog ids. A
sum over a class also adds every further member of the class present in the
data (so a kit that measures more species gives a more complete sum); the
formula in the feature annotations names every column used. A sum is missing
for a sample where any of its inputs is missing (so a sum never mixes complete
and incomplete profiles). :func:`marker_status` lists every marker with the
components used or, for a marker not computed, the required components that are
absent.

Every id in a formula is required; ``+ ...`` marks the further members of the
class that are added when present.

| marker | formula (catalog ids) | meaning |
|---|---|---|
| ``orn_arg_ratio`` | ornithine / arginine | arginase activity proxy |
| ``arg_bioavailability`` | arginine / (ornithine + citrulline) | global arginine bioavailability |
| ``cit_orn_ratio`` | citrulline / ornithine | ornithine transcarbamylase / urea cycle flux |
| ``kyn_trp_ratio`` | kynurenine / tryptophan | IDO/TDO activity |
| ``ac_short_sum`` | c2 + c3 + c4 + c5 + ... (short: C2-C5) | short-chain acylcarnitines |
| ``ac_medium_sum`` | c6 + c8 + c10 + c12 + ... (medium: C6-C12) | medium-chain acylcarnitines |
| ``ac_long_sum`` | c14 + c16 + c18 + ... (long: C14-C18) | long-chain acylcarnitines |
| ``ac_total`` | the three cores above + ... (every acyl species) | total acylcarnitines (C2-C18) |
| ``cpt1_ratio`` | c0 / (c16 + c18) | carnitine palmitoyltransferase 1 proxy |
| ``acyl_free_ratio`` | (``ac_total`` as above) / c0 | acyl to free carnitine |
| ``ce_total`` | ce_16_0 + ce_18_1 + ce_18_2 + ce_20_4 + ... | total cholesterol esters |

Core sets. The acylcarnitine cores are the saturated straight-chain species of
each chain class (catalog subclasses ``short`` C2-C5, ``medium`` C6-C12, ``long``
C14-C18): the species that standard acylcarnitine panels (newborn-screening
MS/MS profiles, the targeted kits) all report, and that name the classes and the
CPT1 ratio C0/(C16 + C18); acetylcarnitine C2 alone is most of the short chains.
A total computed without a whole class (e.g. from C2 alone) would be a
different quantity, so the total, and the acyl/free ratio built on it, require
all three cores. Unsaturated, hydroxy and dicarboxylic species are added when
present. The cholesterol-ester core is the four major plasma species, CE 18:2
(about half of plasma cholesteryl esters), CE 18:1 (about a fifth), CE 16:0
(about a tenth) and CE 20:4 (about 6 %): together close to 90 % of the total,
so the sum of the measured species estimates the total only when all four are
there; the minor species (CE 14:0 ... CE 22:6, each a few per cent or less) are
added when present.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

import numpy as np
import pandas as pd

from hikisig.catalog import load_catalog

__all__ = ["MARKERS", "Marker", "Part", "derived_markers", "marker_status"]


def _in_class(class_: str, subclass: str | None = None) -> Callable[[str], bool]:
    """Whether a column is a catalog analyte of a class (and subclass; for acylcarnitines
    without a subclass: every acyl species, not free carnitine)."""
    def member(column: str) -> bool:
        cat = load_catalog()
        if column not in cat:
            return False
        a = cat.get(column)
        if a.class_ != class_:
            return False
        if subclass is None:
            return class_ != "acylcarnitine" or a.subclass != "free"
        return a.subclass == subclass
    return member


@dataclass(frozen=True)
class Part:
    """One side of a marker: the analytes it adds up.

    Attributes
    ----------
    core : tuple of str
        Catalog ids that must all be columns of the data (in this order for a part
        without ``members``).
    members : callable, optional
        For a class sum: whether a column is a member of the class; every member
        present enters the sum (in the order of the data's columns).
    """

    core: tuple[str, ...]
    members: Callable[[str], bool] | None = field(default=None, compare=False)

    def resolve(self, columns: Sequence[str]) -> tuple[list[str], list[str]]:
        """The columns used and the core ids missing (nothing is used when one is missing)."""
        present = set(columns)
        missing = [c for c in self.core if c not in present]
        if missing:
            return [], missing
        if self.members is None:
            return list(self.core), []
        core = set(self.core)
        return [c for c in columns if c in core or self.members(c)], []


@dataclass(frozen=True)
class Marker:
    """A curated derived marker: a sum (``numerator`` only) or a ratio."""

    id: str
    name: str
    meaning: str
    kind: str  # "ratio" or "sum"
    numerator: Part
    denominator: Part | None = None

    @property
    def required(self) -> tuple[str, ...]:
        """Every component that must be present for the marker to be computed."""
        den = self.denominator.core if self.denominator is not None else ()
        return tuple(dict.fromkeys(self.numerator.core + den))


#: Core ids of the acylcarnitine sums (saturated straight chains of each class).
AC_SHORT = ("c2", "c3", "c4", "c5")
AC_MEDIUM = ("c6", "c8", "c10", "c12")
AC_LONG = ("c14", "c16", "c18")
#: Core ids of the cholesterol-ester total (the four major plasma species).
CE_CORE = ("ce_16_0", "ce_18_1", "ce_18_2", "ce_20_4")

_AC_TOTAL = Part(AC_SHORT + AC_MEDIUM + AC_LONG, _in_class("acylcarnitine"))

#: The curated markers, in output order.
MARKERS = (
    Marker("orn_arg_ratio", "Ornithine/arginine", "arginase activity proxy", "ratio",
           Part(("ornithine",)), Part(("arginine",))),
    Marker("arg_bioavailability", "Arginine/(ornithine + citrulline)",
           "global arginine bioavailability ratio", "ratio", Part(("arginine",)),
           Part(("ornithine", "citrulline"))),
    Marker("cit_orn_ratio", "Citrulline/ornithine", "urea cycle (OTC) flux", "ratio",
           Part(("citrulline",)), Part(("ornithine",))),
    Marker("kyn_trp_ratio", "Kynurenine/tryptophan", "IDO/TDO activity", "ratio",
           Part(("kynurenine",)), Part(("tryptophan",))),
    Marker("ac_short_sum", "Short-chain acylcarnitines (C2-C5)", "sum", "sum",
           Part(AC_SHORT, _in_class("acylcarnitine", "short"))),
    Marker("ac_medium_sum", "Medium-chain acylcarnitines (C6-C12)", "sum", "sum",
           Part(AC_MEDIUM, _in_class("acylcarnitine", "medium"))),
    Marker("ac_long_sum", "Long-chain acylcarnitines (C14-C18)", "sum", "sum",
           Part(AC_LONG, _in_class("acylcarnitine", "long"))),
    Marker("ac_total", "Acylcarnitines (C2-C18)", "sum of acyl (not free) carnitines", "sum",
           _AC_TOTAL),
    Marker("cpt1_ratio", "C0/(C16 + C18)", "CPT1 activity proxy", "ratio", Part(("c0",)),
           Part(("c16", "c18"))),
    Marker("acyl_free_ratio", "Acylcarnitines/free carnitine", "acyl to free carnitine", "ratio",
           _AC_TOTAL, Part(("c0",))),
    Marker("ce_total", "Total cholesterol esters", "sum", "sum",
           Part(CE_CORE, _in_class("cholesterol_ester"))),
)


@dataclass(frozen=True)
class _Resolved:
    marker: Marker
    num: list[str]
    den: list[str]
    missing: list[str]

    @property
    def computed(self) -> bool:
        return not self.missing

    @property
    def inputs(self) -> list[str]:
        return self.num + self.den


def _resolve(columns: Sequence[str]) -> list[_Resolved]:
    """Every marker with the columns it uses and the required components absent."""
    out = []
    for m in MARKERS:
        num, missing = m.numerator.resolve(columns)
        den: list[str] = []
        if m.denominator is not None:
            den, missing_den = m.denominator.resolve(columns)
            missing = missing + [c for c in missing_den if c not in missing]
        if missing:
            num, den = [], []
        out.append(_Resolved(m, num, den, missing))
    return out


def _sum(X: pd.DataFrame, cols: list[str]) -> np.ndarray:
    return X[cols].to_numpy(dtype=np.float64).sum(axis=1)  # NaN if any input is NaN


def _formula(r: _Resolved) -> str:
    if r.marker.kind == "sum":
        return " + ".join(r.num)
    fnum = r.num[0] if len(r.num) == 1 else "(" + " + ".join(r.num) + ")"
    fden = r.den[0] if len(r.den) == 1 else "(" + " + ".join(r.den) + ")"
    return f"{fnum} / {fden}"


def derived_markers(X: pd.DataFrame) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Compute every marker whose required components are all columns of ``X`` (named by
    catalog id).

    A marker with a required component absent is left out (see :func:`marker_status`
    for which ones and why).

    Returns
    -------
    values : DataFrame
        Samples x markers.
    annotations : DataFrame
        Indexed by marker id: ``display_name``, ``meaning``, ``formula`` (with the
        columns used), ``inputs`` (comma-separated), ``class`` = ``derived``.

    Examples
    --------
    >>> X = pd.DataFrame({"ornithine": [60.0, 80.0], "arginine": [90.0, 70.0]})
    >>> vals, ann = derived_markers(X)
    >>> vals["orn_arg_ratio"].round(3).tolist(), ann.loc["orn_arg_ratio", "formula"]
    ([0.667, 1.143], 'ornithine / arginine')
    """
    cols = [str(c) for c in X.columns]
    out: dict[str, np.ndarray] = {}
    notes: list[dict[str, str]] = []
    for r in _resolve(cols):
        if not r.computed:
            continue
        m = r.marker
        if m.kind == "sum":
            out[m.id] = _sum(X, r.num)
        else:
            with np.errstate(divide="ignore", invalid="ignore"):
                d = _sum(X, r.den)
                out[m.id] = np.where(d > 0, _sum(X, r.num) / d, np.nan)
        notes.append({"marker": m.id, "display_name": m.name, "meaning": m.meaning,
                      "formula": _formula(r), "inputs": ",".join(r.inputs), "class": "derived"})
    values = pd.DataFrame(out, index=X.index)
    ann = pd.DataFrame(notes, columns=["marker", "display_name", "meaning", "formula", "inputs",
                                       "class"]).set_index("marker")
    return values, ann


def marker_status(X: pd.DataFrame | Sequence[str]) -> pd.DataFrame:
    """Which curated markers can be computed from the columns of ``X``, and why not.

    Parameters
    ----------
    X : DataFrame or sequence of str
        The data (only its column names, catalog ids, are used) or the column names.

    Returns
    -------
    DataFrame
        One row per curated marker (in :data:`MARKERS` order): ``marker``,
        ``display_name``, ``computed`` (bool), ``components`` (the columns used,
        comma-separated; empty when not computed) and ``missing`` (the required
        components absent, comma-separated; empty when computed).

    Examples
    --------
    >>> s = marker_status(pd.DataFrame(columns=["c0", "c2", "c16", "c18"])).set_index("marker")
    >>> bool(s.loc["cpt1_ratio", "computed"]), s.loc["cpt1_ratio", "components"]
    (True, 'c0,c16,c18')
    >>> s.loc["ac_short_sum", "missing"]
    'c3,c4,c5'
    """
    cols = [str(c) for c in (X.columns if isinstance(X, pd.DataFrame) else X)]
    rows = [{"marker": r.marker.id, "display_name": r.marker.name, "computed": r.computed,
             "components": ",".join(r.inputs), "missing": ",".join(r.missing)}
            for r in _resolve(cols)]
    return pd.DataFrame(rows, columns=["marker", "display_name", "computed", "components",
                                       "missing"]).astype({"computed": bool})
