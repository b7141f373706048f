"""Derived markers: curated ratios and sums of catalog analytes (never mined from data).

Each marker is defined from catalog ids and classes and computed only where its
inputs exist in the data; its formula, with the columns actually used, goes
into the feature annotations. A sum is missing for a sample where any of its
inputs is missing (so a sum never mixes complete and incomplete profiles).

| marker | formula | meaning |
|---|---|---|
| ``orn_arg_ratio`` | ornithine / arginine | arginase activity proxy |
| ``arg_bioavailability`` | arginine / (ornithine + citrulline) | global arginine bioavailability ratio |
| ``cit_orn_ratio`` | citrulline / ornithine | ornithine transcarbamylase / urea cycle flux |
| ``kyn_trp_ratio`` | kynurenine / tryptophan | IDO/TDO activity |
| ``ac_short_sum`` | sum of acylcarnitines C2-C5 | short-chain acylcarnitines |
| ``ac_medium_sum`` | sum of acylcarnitines C6-C12 | medium-chain acylcarnitines |
| ``ac_long_sum`` | sum of acylcarnitines C14-C18 | long-chain acylcarnitines |
| ``ac_total`` | sum of all acylcarnitines (C2-C18) | total acylcarnitines |
| ``cpt1_ratio`` | C0 / (C16 + C18) | carnitine palmitoyltransferase 1 proxy |
| ``acyl_free_ratio`` | acylcarnitines total / C0 | acyl to free carnitine |
| ``ce_total`` | sum of cholesterol esters | total cholesterol esters |
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
import pandas as pd

from hikisig.catalog import load_catalog

__all__ = ["MARKERS", "Marker", "derived_markers"]


@dataclass(frozen=True)
class Marker:
    """A curated derived marker."""

    id: str
    name: str
    meaning: str
    kind: str  # "ratio" or "sum"
    numerator: Callable[[list[str]], list[str]]
    denominator: Callable[[list[str]], list[str]] | None = None


def _ids(*ids: str) -> Callable[[list[str]], list[str]]:
    return lambda cols: [i for i in ids if i in cols]


def _all_of(*ids: str) -> Callable[[list[str]], list[str]]:
    return lambda cols: list(ids) if all(i in cols for i in ids) else []


def _class(class_: str, subclass: str | None = None) -> Callable[[list[str]], list[str]]:
    def pick(cols: list[str]) -> list[str]:
        cat = load_catalog()
        out = []
        for c in cols:
            if c in cat:
                a = cat.get(c)
                if a.class_ == class_ and ((subclass is None and a.subclass != "free")
                                           or a.subclass == subclass):
                    out.append(c)
        return out
    return pick


#: The curated markers, in output order.
MARKERS = (
    Marker("orn_arg_ratio", "Ornithine/arginine", "arginase activity proxy", "ratio",
           _all_of("ornithine"), _all_of("arginine")),
    Marker("arg_bioavailability", "Arginine/(ornithine + citrulline)",
           "global arginine bioavailability ratio", "ratio", _all_of("arginine"),
           _all_of("ornithine", "citrulline")),
    Marker("cit_orn_ratio", "Citrulline/ornithine", "urea cycle (OTC) flux", "ratio",
           _all_of("citrulline"), _all_of("ornithine")),
    Marker("kyn_trp_ratio", "Kynurenine/tryptophan", "IDO/TDO activity", "ratio",
           _all_of("kynurenine"), _all_of("tryptophan")),
    Marker("ac_short_sum", "Short-chain acylcarnitines (C2-C5)", "sum", "sum",
           _class("acylcarnitine", "short")),
    Marker("ac_medium_sum", "Medium-chain acylcarnitines (C6-C12)", "sum", "sum",
           _class("acylcarnitine", "medium")),
    Marker("ac_long_sum", "Long-chain acylcarnitines (C14-C18)", "sum", "sum",
           _class("acylcarnitine", "long")),
    Marker("ac_total", "Acylcarnitines (C2-C18)", "sum of acyl (not free) carnitines", "sum",
           _class("acylcarnitine")),
    Marker("cpt1_ratio", "C0/(C16 + C18)", "CPT1 activity proxy", "ratio", _all_of("c0"),
           _all_of("c16", "c18")),
    Marker("acyl_free_ratio", "Acylcarnitines/free carnitine", "acyl to free carnitine", "ratio",
           _class("acylcarnitine"), _all_of("c0")),
    Marker("ce_total", "Total cholesterol esters", "sum", "sum", _class("cholesterol_ester")),
)


def _sum(X: pd.DataFrame, cols: list[str]) -> np.ndarray:
    return X[cols].to_numpy(dtype=np.float64).sum(axis=1)  # NaN if any input is NaN


def derived_markers(X: pd.DataFrame) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Compute every marker whose inputs are columns of ``X`` (named by catalog id).

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
    for m in MARKERS:
        num = m.numerator(cols)
        if not num:
            continue
        if m.kind == "sum":
            out[m.id] = _sum(X, num)
            formula = " + ".join(num)
            inputs = num
        else:
            if m.denominator is None:  # pragma: no cover - definitions always have one
                continue
            den = m.denominator(cols)
            if not den:
                continue
            with np.errstate(divide="ignore", invalid="ignore"):
                d = _sum(X, den)
                out[m.id] = np.where(d > 0, _sum(X, num) / d, np.nan)
            fnum = num[0] if len(num) == 1 else "(" + " + ".join(num) + ")"
            fden = den[0] if len(den) == 1 else "(" + " + ".join(den) + ")"
            formula = f"{fnum} / {fden}"
            inputs = num + den
        notes.append({"marker": m.id, "display_name": m.name, "meaning": m.meaning,
                      "formula": formula, "inputs": ",".join(inputs), "class": "derived"})
    values = pd.DataFrame(out, index=X.index)
    ann = pd.DataFrame(notes, columns=["marker", "display_name", "meaning", "formula", "inputs",
                                       "class"]).set_index("marker")
    return values, ann
