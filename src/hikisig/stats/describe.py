"""Descriptive statistics of a cohort: who is in it, how complete the data are, and group
summaries of scores. The report shows these; it computes none of them."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd
from scipy import stats as sps

__all__ = ["CohortSummary", "cohort_summary", "group_summary", "missingness", "nonpositive_counts",
           "site_counts"]


@dataclass
class CohortSummary:
    """Counts and ages by group and sex, with the tests that compare the groups.

    Attributes
    ----------
    table : DataFrame
        ``group``, ``sex`` (``M``, ``F`` and ``all``; only ``all`` without a sex column),
        ``n``, ``age_mean``, ``age_sd``.
    sex_chi2, sex_p : float or None
        Chi-square test (Yates-corrected) of sex by group (None without two sexes).
    age_t, age_p : float or None
        Welch's t test of age, cases vs controls (None without ages).
    """

    table: pd.DataFrame
    sex_chi2: float | None = None
    sex_p: float | None = None
    age_t: float | None = None
    age_p: float | None = None


def cohort_summary(group: pd.Series, case: str, control: str, sex: pd.Series | None = None,
                   age: pd.Series | None = None) -> CohortSummary:
    """Counts and ages by group x sex; sex by group (chi-square) and age (Welch's t).

    Examples
    --------
    >>> g = pd.Series(["case", "case", "control", "control"])
    >>> s = cohort_summary(g, "case", "control", sex=pd.Series(["M", "F", "M", "F"]))
    >>> s.table["n"].tolist()
    [1, 1, 2, 1, 1, 2]
    """
    strata = ("M", "F", "all") if sex is not None else ("all",)
    sex = sex if sex is not None else pd.Series(pd.NA, index=group.index, dtype=object)
    age = (pd.to_numeric(age, errors="coerce") if age is not None
           else pd.Series(np.nan, index=group.index))
    rows = []
    for g in (control, case):
        for s in strata:
            m = group == g
            if s != "all":
                m &= sex == s
            a = age[m.to_numpy()].dropna()
            rows.append({"group": g, "sex": s, "n": int(m.sum()),
                         "age_mean": float(a.mean()) if len(a) > 1 else np.nan,
                         "age_sd": float(a.std(ddof=1)) if len(a) > 1 else np.nan})
    out = CohortSummary(pd.DataFrame(rows))
    keep = group.isin([case, control]) & sex.isin(["M", "F"])
    ct = pd.crosstab(group[keep], sex[keep])
    if ct.shape == (2, 2):
        chi2, p, _, _ = sps.chi2_contingency(ct.to_numpy())
        out.sex_chi2, out.sex_p = float(chi2), float(p)
    a_case = age[(group == case).to_numpy()].dropna()
    a_ctrl = age[(group == control).to_numpy()].dropna()
    if len(a_case) > 1 and len(a_ctrl) > 1:
        t, p = sps.ttest_ind(a_case, a_ctrl, equal_var=False)
        out.age_t, out.age_p = float(t), float(p)
    return out


def site_counts(group: pd.Series, case: str, control: str, site: pd.Series) -> pd.DataFrame:
    """Cases and controls at each site: one row per site (sorted as text; samples without a
    site under ``site = "missing"``, last), columns ``site``, ``n_case``, ``n_control``, ``n``.

    Examples
    --------
    >>> g = pd.Series(["case", "control", "case", "control"])
    >>> site_counts(g, "case", "control", pd.Series(["B", "A", "A", None]))["n_case"].tolist()
    [1, 1, 0]
    """
    known = site.notna().to_numpy()
    text = site.astype(object).where(known, None).map(lambda v: None if v is None else str(v))
    levels = sorted({v for v in text if v is not None})
    if not known.all():
        levels.append("missing")
        text = text.where(known, "missing")
    g = group.to_numpy()
    rows = []
    for lev in levels:
        m = (text == lev).to_numpy()
        n_case, n_control = int((m & (g == case)).sum()), int((m & (g == control)).sum())
        rows.append({"site": lev, "n_case": n_case, "n_control": n_control,
                     "n": n_case + n_control})
    return pd.DataFrame(rows, columns=["site", "n_case", "n_control", "n"])


def group_summary(values: pd.Series, groups: pd.Series, order: list[str]) -> pd.DataFrame:
    """Median, quartiles and n of ``values`` in each group of ``order``.

    Examples
    --------
    >>> group_summary(pd.Series([1.0, 2.0, 3.0]), pd.Series(["a", "a", "b"]), ["a", "b"])["median"].tolist()
    [1.5, 3.0]
    """
    v = pd.to_numeric(values, errors="coerce")
    rows = []
    for g in order:
        t = v[(groups == g).to_numpy()].dropna()
        rows.append({"group": g, "n": len(t),
                     "median": float(t.median()) if len(t) else np.nan,
                     "q1": float(t.quantile(0.25)) if len(t) else np.nan,
                     "q3": float(t.quantile(0.75)) if len(t) else np.nan})
    return pd.DataFrame(rows)


def missingness(X: pd.DataFrame) -> tuple[pd.Series, pd.Series]:
    """Share of missing values per analyte and per sample."""
    miss = X.isna()
    return miss.mean(axis=0), miss.mean(axis=1)


def nonpositive_counts(X: pd.DataFrame) -> pd.Series:
    """Values <= 0 per analyte (below detection on a linear scale), for the analytes that have
    any, most first."""
    counts = (X <= 0).sum(axis=0)
    return counts[counts > 0].sort_values(ascending=False, kind="stable")
