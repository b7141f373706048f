"""The analyte panel of a synthetic study: which analytes, at what level, in which unit.

The default panel (``synth/data/panel.csv``) holds 127 catalog analytes with a
typical geometric mean (in the catalog's default unit), a log-scale SD, a
male/female log ratio and a limit-of-detection quantile. A smaller
``n_analytes`` keeps the planted analytes and drops null ones from the end; a
larger one adds the remaining catalog analytes (at class-typical levels) and
then uncatalogued ``syn_feature_NNNNN`` columns.
"""

from __future__ import annotations

from importlib import resources

import numpy as np
import pandas as pd

from hikisig.catalog import load_catalog

__all__ = ["MALE_EFFECTS", "build_panel", "default_panel"]

#: Analytes with a planted male-only case effect and its sign (docs/science.md s1).
MALE_EFFECTS = {"ornithine": 1.0, "arginase": 1.0, "arginine": -1.0, "total_bilirubin": -1.0}
#: Level used for catalog analytes outside the default panel, by class.
_CLASS_LEVEL = {"amino_acid": (50.0, 0.3), "biogenic_amine": (1.0, 0.4),
                "acylcarnitine": (0.05, 0.4), "cholesterol_ester": (30.0, 0.35),
                "lysophosphatidylcholine": (3.0, 0.35), "phosphatidylcholine": (10.0, 0.35),
                "sphingomyelin": (10.0, 0.3), "organic_acid": (50.0, 0.4),
                "bile_acid": (0.5, 0.8), "steroid": (10.0, 0.4), "hexose": (5000.0, 0.1)}


def default_panel() -> pd.DataFrame:
    """The shipped 127-analyte panel."""
    path = resources.files("hikisig.synth") / "data" / "panel.csv"
    with path.open("r", encoding="utf-8") as fh:
        return pd.read_csv(fh)


def build_panel(n_analytes: int, keep: set[str]) -> pd.DataFrame:
    """The panel for ``n_analytes`` analytes.

    Returns
    -------
    DataFrame
        ``id``, ``geo_mean``, ``log_sd``, ``male_log_ratio``, ``lod_quantile``,
        ``unit``, ``class``, ``subclass``, ``catalogued``.
    """
    cat = load_catalog()
    base = default_panel()
    if n_analytes <= len(base):
        planted = base["id"].isin(keep) | base["id"].map(
            lambda i: (cat.get(i).class_ == "acylcarnitine" and cat.get(i).subclass == "long")
            or cat.get(i).class_ == "cholesterol_ester")
        order = list(base.index[planted]) + list(base.index[~planted])
        chosen = sorted(order[:n_analytes])
        panel = base.loc[chosen].reset_index(drop=True)
    else:
        extra_ids = [a.id for a in cat if a.id not in set(base["id"]) and a.class_ in _CLASS_LEVEL]
        extra = pd.DataFrame({
            "id": extra_ids,
            "geo_mean": [_CLASS_LEVEL[cat.get(i).class_][0] for i in extra_ids],
            "log_sd": [_CLASS_LEVEL[cat.get(i).class_][1] for i in extra_ids],
            "male_log_ratio": 0.0, "lod_quantile": 0.0,
            "source": "class-typical level (orientation only)"})
        panel = pd.concat([base, extra], ignore_index=True).head(n_analytes)
        n_more = n_analytes - len(panel)
        if n_more > 0:
            rng = np.random.default_rng(12345)  # fixed: feature levels are part of the panel
            width = max(5, len(str(n_more)))
            feats = pd.DataFrame({
                "id": [f"syn_feature_{k:0{width}d}" for k in range(1, n_more + 1)],
                "geo_mean": np.round(np.exp(rng.uniform(np.log(0.1), np.log(1000), n_more)), 4),
                "log_sd": np.round(rng.uniform(0.15, 0.5, n_more), 3),
                "male_log_ratio": 0.0, "lod_quantile": 0.0,
                "source": "uncatalogued synthetic feature"})
            panel = pd.concat([panel, feats], ignore_index=True)
    catalogued = panel["id"].map(lambda i: i in cat)
    panel["catalogued"] = catalogued
    panel["unit"] = [cat.get(i).default_unit if c else None for i, c in zip(panel["id"], catalogued,
                                                                             strict=True)]
    panel["class"] = [cat.get(i).class_ if c else "synthetic" for i, c in zip(panel["id"], catalogued,
                                                                              strict=True)]
    panel["subclass"] = [cat.get(i).subclass if c else None for i, c in zip(panel["id"], catalogued,
                                                                            strict=True)]
    return panel
