"""Vectorised two-group statistics for every analyte at once.

All functions take a samples x analytes float matrix (NaN = missing; each
analyte uses its own non-missing values) and a boolean case indicator, and
compute the statistic for all analytes in a few array operations: no Python
loop per analyte. Checked against R (``t.test``, ``wilcox.test``, ``lm``,
``cor.test``, ``p.adjust``; tests/reference/).

Conventions
-----------
- Differences are case minus control.
- Mann-Whitney U is the U of the cases; ``method="asymptotic"`` uses the
  normal approximation with tie and continuity correction (R
  ``wilcox.test(exact = FALSE, correct = TRUE)``); ``method="exact"`` uses the
  exact distribution (scipy; only without ties). The method is always stated.
- Hedges' g with the Hedges & Olkin (1985) large-sample variance
  ``(n1 + n2) / (n1 n2) + g^2 / (2 (n1 + n2))``.
- Cliff's delta = 2 AUC - 1 with a CI from DeLong's variance of the AUC,
  clipped to [-1, 1].
- Fold change is the ratio of geometric means (cases / controls), with a 95%
  CI from Welch's t on the log values. On a linear scale a value <= 0 is below
  detection: log-scale quantities (geometric means, fold changes, the linear
  model on ``log2(value)``) leave such values out, like missing values, while the
  tests on the values as given (t-tests, Mann-Whitney, correlations) use them.
- On an additive scale (values that may be negative: z-scores, centred or
  already-logged data) no log is taken: :func:`mean_difference` gives the
  difference of means with its Welch or pooled CI, and :func:`normal_equations`
  with ``log=False`` fits the values themselves.
"""

from __future__ import annotations

import warnings
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd
from scipy import stats as sps

from hikisig.stats.ranked import SortedBlock, SubsetRanks

__all__ = [
    "Moments",
    "NormalEquations",
    "adjust",
    "correlate",
    "describe",
    "describe_gmean",
    "fold_change",
    "grouped_moments",
    "hedges_from",
    "hedges_g",
    "interaction_design",
    "interaction_model",
    "mann_whitney",
    "mean_difference",
    "moment_sums",
    "mwu_stats",
    "nan_ranks",
    "normal_equations",
    "ratio_from_logs",
    "solve_interaction",
    "t_tests",
    "welch_student",
]


def _split(x: np.ndarray, case: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    x = np.asarray(x, dtype=np.float64)
    if x.ndim == 1:
        x = x[:, None]
    case = np.asarray(case, dtype=bool)
    return x[case], x[~case]


def _moments(a: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Count, mean and variance (ddof=1) per column, NaN ignored."""
    n = np.sum(~np.isnan(a), axis=0).astype(np.float64)
    with np.errstate(invalid="ignore", divide="ignore"):
        mean = np.nansum(a, axis=0) / n
        var = np.nansum((a - mean) ** 2, axis=0) / (n - 1)
    return n, mean, var


@dataclass
class Moments:
    """Count, mean and sum of squared deviations (``m2``) of every column within each group.

    Mergeable: the moments of two sets of rows combine exactly (Chan, Golub & LeVeque
    1979), so a data set can be summarised chunk by chunk in one pass without the
    cancellation of raw sums of squares.

    Attributes
    ----------
    n, mean, m2 : ndarray (g, p)
        Non-missing count, mean (NaN where ``n`` is 0) and sum of squared deviations
        from the mean.
    """

    n: np.ndarray
    mean: np.ndarray
    m2: np.ndarray

    @property
    def var(self) -> np.ndarray:
        """Variance (ddof=1)."""
        with np.errstate(invalid="ignore", divide="ignore"):
            out: np.ndarray = self.m2 / (self.n - 1)
        return out

    def merge(self, other: Moments) -> Moments:
        """The moments of both sets of rows (pairwise update of Chan et al.).

        Examples
        --------
        >>> x = np.arange(10.0)[:, None]; m = np.ones((10, 1), bool)
        >>> both = moment_sums(x[:4], m[:4]).merge(moment_sums(x[4:], m[4:]))
        >>> float(both.mean[0, 0]), float(both.var[0, 0]) == float(np.var(x, ddof=1))
        (4.5, True)
        """
        na, nb = self.n, other.n
        n = na + nb
        with np.errstate(invalid="ignore", divide="ignore"):
            delta = other.mean - self.mean
            mean = self.mean + delta * (nb / n)
            m2 = self.m2 + other.m2 + delta * delta * (na * nb / n)
        mean = np.where(na == 0, other.mean, np.where(nb == 0, self.mean, mean))
        m2 = np.where(na == 0, other.m2, np.where(nb == 0, self.m2, m2))
        return Moments(n, mean, m2)

    def take(self, cols: slice | np.ndarray) -> Moments:
        """The moments of some columns."""
        return Moments(self.n[:, cols], self.mean[:, cols], self.m2[:, cols])

    @staticmethod
    def concat(parts: list[Moments]) -> Moments:
        """The moments of consecutive ranges of columns, side by side."""
        return Moments(*(np.concatenate(a, axis=1) for a in
                         zip(*((m.n, m.mean, m.m2) for m in parts), strict=True)))


def moment_sums(x: np.ndarray, masks: np.ndarray) -> Moments:
    """Mergeable moments of every column within each group of rows (NaN ignored).

    One matrix product per moment (BLAS) on values centred by the column mean, so
    the sums stay accurate.

    Parameters
    ----------
    x : ndarray (n, p)
    masks : ndarray of bool (n, g)
        Group membership of each row.
    """
    ok = ~np.isnan(x)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)
        shift = np.nan_to_num(np.nanmean(x, axis=0)) if x.shape[0] else np.zeros(x.shape[1])
    xc = np.where(ok, x - shift, 0.0)
    m = masks.astype(np.float64)
    n = m.T @ ok.astype(np.float64)
    s1 = m.T @ xc
    s2 = m.T @ (xc * xc)
    with np.errstate(invalid="ignore", divide="ignore"):
        mean = s1 / n
        m2 = np.maximum(s2 - s1 * mean, 0.0)
    return Moments(n, mean + shift, m2)


def grouped_moments(x: np.ndarray, masks: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Count, mean and variance (ddof=1) of every column within each group of rows.

    See :func:`moment_sums`; NaN are ignored.

    Parameters
    ----------
    x : ndarray (n, p)
    masks : ndarray of bool (n, g)
        Group membership of each row.

    Returns
    -------
    n, mean, var : ndarray (g, p)
    """
    m = moment_sums(x, masks)
    return m.n, m.mean, m.var


def welch_student(n1: np.ndarray, m1: np.ndarray, v1: np.ndarray, n2: np.ndarray, m2: np.ndarray,
                  v2: np.ndarray) -> dict[str, dict[str, np.ndarray]]:
    """Welch and Student t from group counts, means and variances."""
    with np.errstate(invalid="ignore", divide="ignore"):
        se_w = np.sqrt(v1 / n1 + v2 / n2)
        t_w = (m1 - m2) / se_w
        df_w = (v1 / n1 + v2 / n2) ** 2 / ((v1 / n1) ** 2 / (n1 - 1) + (v2 / n2) ** 2 / (n2 - 1))
        df_s = n1 + n2 - 2
        sp2 = ((n1 - 1) * v1 + (n2 - 1) * v2) / df_s
        t_s = (m1 - m2) / np.sqrt(sp2 * (1 / n1 + 1 / n2))
    return {
        "welch": {"statistic": t_w, "df": df_w, "p": 2 * sps.t.sf(np.abs(t_w), df_w)},
        "student": {"statistic": t_s, "df": df_s, "p": 2 * sps.t.sf(np.abs(t_s), df_s)},
    }


def hedges_from(n1: np.ndarray, m1: np.ndarray, v1: np.ndarray, n2: np.ndarray, m2: np.ndarray,
                v2: np.ndarray, ci: float = 0.95) -> dict[str, np.ndarray]:
    """Hedges' g and its CI from group counts, means and variances."""
    with np.errstate(invalid="ignore", divide="ignore"):
        sp = np.sqrt(((n1 - 1) * v1 + (n2 - 1) * v2) / (n1 + n2 - 2))
        g = (1 - 3 / (4 * (n1 + n2) - 9)) * (m1 - m2) / sp
        se = np.sqrt((n1 + n2) / (n1 * n2) + g**2 / (2 * (n1 + n2)))
    z = sps.norm.ppf(0.5 + ci / 2)
    return {"effect": g, "low": g - z * se, "high": g + z * se}


def mean_difference(n1: np.ndarray, m1: np.ndarray, v1: np.ndarray, n2: np.ndarray,
                    m2: np.ndarray, v2: np.ndarray, ci: float = 0.95
                    ) -> dict[str, dict[str, np.ndarray]]:
    """Difference of means (group 1 - group 2) with its CI, from group counts, means and
    variances.

    Returns
    -------
    dict
        ``{"welch": {...}, "student": {...}}``, each with ``effect`` (the difference),
        ``low`` and ``high``: the Welch interval (Welch-Satterthwaite df) and the pooled
        interval (``n1 + n2 - 2`` df), as ``scipy.stats.ttest_ind(...).confidence_interval()``
        with ``equal_var=False`` and ``True``.

    Examples
    --------
    >>> r = mean_difference(*(np.array([v]) for v in (5, 3.0, 2.5, 4, 1.0, 1.0)))
    >>> round(float(r["student"]["low"][0]), 4), round(float(r["welch"]["low"][0]), 4)
    (-0.1617, -0.0633)
    """
    diff = m1 - m2
    with np.errstate(invalid="ignore", divide="ignore"):
        se_w = np.sqrt(v1 / n1 + v2 / n2)
        df_w = (v1 / n1 + v2 / n2) ** 2 / ((v1 / n1) ** 2 / (n1 - 1) + (v2 / n2) ** 2 / (n2 - 1))
        df_s = n1 + n2 - 2
        se_s = np.sqrt(((n1 - 1) * v1 + (n2 - 1) * v2) / df_s * (1 / n1 + 1 / n2))
        q_w = sps.t.ppf(0.5 + ci / 2, df_w)
        q_s = sps.t.ppf(0.5 + ci / 2, df_s)
        return {"welch": {"effect": diff, "low": diff - q_w * se_w, "high": diff + q_w * se_w},
                "student": {"effect": diff, "low": diff - q_s * se_s, "high": diff + q_s * se_s}}


def ratio_from_logs(n1: np.ndarray, m1: np.ndarray, v1: np.ndarray, n2: np.ndarray,
                    m2: np.ndarray, v2: np.ndarray, ci: float = 0.95) -> dict[str, np.ndarray]:
    """Ratio of geometric means with a Welch CI, from the moments of the log values
    (of the positive values: values <= 0 are left out of them)."""
    with np.errstate(invalid="ignore", divide="ignore"):
        se = np.sqrt(v1 / n1 + v2 / n2)
        df = (v1 / n1 + v2 / n2) ** 2 / ((v1 / n1) ** 2 / (n1 - 1) + (v2 / n2) ** 2 / (n2 - 1))
        q = sps.t.ppf(0.5 + ci / 2, df)
        diff = m1 - m2
        return {"fold_change": np.exp(diff), "low": np.exp(diff - q * se),
                "high": np.exp(diff + q * se)}


def describe(x: np.ndarray) -> dict[str, np.ndarray]:
    """n, mean, SD, median, quartiles and geometric mean per column (NaN ignored).

    The geometric mean is that of the positive values (values <= 0 are left out of it).
    """
    n, mean, var = _moments(x)
    with np.errstate(invalid="ignore", divide="ignore"), warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)
        q1, med, q3 = np.nanpercentile(x, [25, 50, 75], axis=0) if x.shape[0] else (
            np.full(x.shape[1], np.nan),) * 3
        gmean = np.exp(np.nanmean(np.log(np.where(x > 0, x, np.nan)), axis=0))
    return {"n": n, "mean": mean, "sd": np.sqrt(var), "median": med, "q1": q1, "q3": q3,
            "gmean": gmean}


def describe_gmean(x: np.ndarray) -> np.ndarray:
    """Geometric mean of the positive values of each column (NaN and values <= 0 left out;
    NaN for a column without a positive value)."""
    with np.errstate(invalid="ignore", divide="ignore"), warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)
        g: np.ndarray = (np.exp(np.nanmean(np.log(np.where(x > 0, x, np.nan)), axis=0))
                         if x.shape[0] else np.full(x.shape[1], np.nan))
    return g


def t_tests(x: np.ndarray, case: np.ndarray) -> dict[str, dict[str, np.ndarray]]:
    """Welch and Student t-tests (two-sided) for every column.

    Returns
    -------
    dict
        ``{"welch": {...}, "student": {...}}``, each with ``statistic``, ``df``, ``p``.

    Examples
    --------
    >>> x = np.array([[1.0], [2.0], [3.0], [4.0], [6.0]]); case = np.array([1, 1, 0, 0, 0], bool)
    >>> round(float(t_tests(x, case)["student"]["statistic"][0]), 4)
    -2.3651
    """
    a, b = _split(x, case)
    return welch_student(*_moments(a), *_moments(b))


def hedges_g(x: np.ndarray, case: np.ndarray, ci: float = 0.95) -> dict[str, np.ndarray]:
    """Hedges' g (bias-corrected standardised mean difference) with a normal CI."""
    a, b = _split(x, case)
    return hedges_from(*_moments(a), *_moments(b), ci=ci)


def nan_ranks(x: np.ndarray) -> np.ndarray:
    """Average ranks within each column, NaN kept as NaN (one sort per column)."""
    x = np.asarray(x, dtype=np.float64)
    if x.ndim == 1:
        return nan_ranks(x[:, None])[:, 0]
    block = SortedBlock(x)
    sub = block.subset(np.ones(x.shape[0], dtype=bool))
    return block.unsort(np.where(sub.member, sub.rank, np.nan).astype(np.float64))


def mwu_stats(r: SubsetRanks, c: SubsetRanks, k: SubsetRanks, ci: float = 0.95
              ) -> dict[str, np.ndarray]:
    """Asymptotic Mann-Whitney test and Cliff's delta from the ranks of a stratum (``r``),
    its cases (``c``) and its controls (``k``), all from one :class:`SortedBlock`."""
    n1, n2 = c.n.astype(float), k.n.astype(float)
    n = n1 + n2
    r1 = np.where(c.member, r.rank, 0.0).sum(axis=1)
    u1 = r1 - n1 * (n1 + 1) / 2
    with np.errstate(invalid="ignore", divide="ignore"):
        mu = n1 * n2 / 2
        sigma = np.sqrt(n1 * n2 / 12 * ((n + 1) - r.ties / (n * (n - 1))))
        z = (np.abs(u1 - mu) - 0.5) / sigma
        p = np.minimum(1.0, 2 * sps.norm.sf(z))
        auc = u1 / (n1 * n2)
        v10 = np.where(c.member, (r.rank - c.rank) / n2[:, None], 0.0)
        v01 = np.where(k.member, 1.0 - (r.rank - k.rank) / n1[:, None], 0.0)
        s10 = ((v10**2).sum(axis=1) - v10.sum(axis=1) ** 2 / n1) / (n1 - 1)
        s01 = ((v01**2).sum(axis=1) - v01.sum(axis=1) ** 2 / n2) / (n2 - 1)
        se_auc = np.sqrt(s10 / n1 + s01 / n2)
    delta = 2 * auc - 1
    zq = sps.norm.ppf(0.5 + ci / 2)
    return {"statistic": u1, "p": p, "effect": delta,
            "low": np.clip(delta - 2 * zq * se_auc, -1, 1),
            "high": np.clip(delta + 2 * zq * se_auc, -1, 1), "auc": auc}


def mann_whitney(x: np.ndarray, case: np.ndarray, method: str = "asymptotic",
                 ci: float = 0.95) -> dict[str, np.ndarray]:
    """Mann-Whitney U of the cases, its p-value, and Cliff's delta with a DeLong CI.

    Parameters
    ----------
    method : {"asymptotic", "exact"}
        ``asymptotic``: normal approximation with tie and continuity correction;
        ``exact``: exact distribution (scipy), for small samples without ties.
    """
    if method not in ("asymptotic", "exact"):
        raise ValueError("method must be 'asymptotic' or 'exact'")
    x = np.asarray(x, dtype=np.float64)
    if x.ndim == 1:
        x = x[:, None]
    case = np.asarray(case, dtype=bool)
    block = SortedBlock(x)
    res = mwu_stats(block.subset(np.ones(len(case), dtype=bool)), block.subset(case),
                    block.subset(~case), ci)
    if method == "exact":
        ex = sps.mannwhitneyu(x[case], x[~case], axis=0, method="exact", nan_policy="omit")
        res["p"] = np.asarray(ex.pvalue, dtype=float)
    return res


def fold_change(x: np.ndarray, case: np.ndarray, ci: float = 0.95) -> dict[str, np.ndarray]:
    """Ratio of geometric means (cases / controls) with a Welch CI on the log scale.

    Values <= 0 (below detection on a linear scale) are left out, like missing values.
    """
    x = np.asarray(x, dtype=np.float64)
    if x.ndim == 1:
        x = x[:, None]
    with np.errstate(invalid="ignore", divide="ignore"):
        logx = np.log(np.where(x > 0, x, np.nan))
    a, b = _split(logx, case)
    return ratio_from_logs(*_moments(a), *_moments(b), ci=ci)


def adjust(p: np.ndarray, method: str = "fdr_bh") -> np.ndarray:
    """Multiple-testing adjustment, NaN p-values left out.

    ``fdr_bh``: Benjamini-Hochberg (``scipy.stats.false_discovery_control``);
    ``holm``: Holm's step-down. Both equal R's ``p.adjust`` (tests/reference/).

    Examples
    --------
    >>> adjust(np.array([0.01, 0.04, 0.03, np.nan]), "holm").round(3).tolist()
    [0.03, 0.06, 0.06, nan]
    """
    p = np.asarray(p, dtype=np.float64)
    out = np.full_like(p, np.nan)
    ok = ~np.isnan(p)
    if not ok.any():
        return out
    q = p[ok]
    if method == "fdr_bh":
        out[ok] = sps.false_discovery_control(q, method="bh")
    elif method == "holm":
        m = q.size
        order = np.argsort(q, kind="stable")
        stepped = np.maximum.accumulate((m - np.arange(m)) * q[order])
        res = np.empty(m)
        res[order] = np.minimum(stepped, 1.0)
        out[ok] = res
    else:
        raise ValueError("method must be 'fdr_bh' or 'holm'")
    return out


def correlate(x: np.ndarray, y: np.ndarray, ci: float = 0.95) -> dict[str, dict[str, np.ndarray]]:
    """Pearson and Spearman correlation of every column of ``x`` with ``y`` (complete pairs).

    p-values from the t distribution with n - 2 df (as R ``cor.test`` for Pearson
    and scipy ``spearmanr``); the Pearson CI uses Fisher's z (as R).
    """
    x = np.asarray(x, dtype=np.float64)
    if x.ndim == 1:
        x = x[:, None]
    y = np.asarray(y, dtype=np.float64)
    keep = ~np.isnan(y)
    x, y = x[keep], y[keep]
    yy = np.where(np.isnan(x), np.nan, y[:, None])
    out: dict[str, dict[str, np.ndarray]] = {}
    for name, (a, b) in {"pearson": (x, yy), "spearman": (nan_ranks(x), nan_ranks(yy))}.items():
        n = np.sum(~np.isnan(a), axis=0).astype(float)
        with np.errstate(invalid="ignore", divide="ignore"), warnings.catch_warnings():
            warnings.simplefilter("ignore", RuntimeWarning)  # an analyte without values: NaN
            am = a - np.nanmean(a, axis=0)
            bm = b - np.nanmean(b, axis=0)
            r = np.nansum(am * bm, axis=0) / np.sqrt(np.nansum(am**2, axis=0) * np.nansum(bm**2, axis=0))
            r = np.clip(r, -1, 1)
            t = r * np.sqrt((n - 2) / (1 - r**2))
            p = 2 * sps.t.sf(np.abs(t), n - 2)
            zq = sps.norm.ppf(0.5 + ci / 2)
            zr = np.arctanh(r)
            se = 1 / np.sqrt(n - 3)
        out[name] = {"statistic": t, "p": p, "effect": r, "low": np.tanh(zr - zq * se),
                     "high": np.tanh(zr + zq * se), "n": n}
    return out


@dataclass
class NormalEquations:
    """Per-column normal equations of an OLS fit on ``log2(value)`` (or on the value
    itself, for an additive scale); mergeable.

    For each column j (analyte) with usable rows W_j (a usable value: positive on the
    log scale, any non-missing value on an additive scale; and a complete design row):
    ``xtx[j] = X' W_j X``, ``xty[j] = X' W_j (y_j - shift_j)``,
    ``yty[j] = (y_j - shift_j)' W_j (y_j - shift_j)`` and ``n[j]`` rows. ``y`` is
    shifted by a per-column reference value so that the residual sum of squares
    ``yty - beta' xty`` does not lose precision; the first design column must be the
    intercept (shifting ``y`` then only moves the intercept).
    """

    xtx: np.ndarray
    xty: np.ndarray
    yty: np.ndarray
    n: np.ndarray
    shift: np.ndarray

    def _shifted(self, shift: np.ndarray) -> NormalEquations:
        d = self.shift - shift
        xty = self.xty + d[:, None] * self.xtx[:, :, 0]
        yty = self.yty + 2 * d * self.xty[:, 0] + d * d * self.n
        return NormalEquations(self.xtx, xty, yty, self.n, shift)

    def merge(self, other: NormalEquations) -> NormalEquations:
        """The normal equations of both sets of rows."""
        shift = np.where(self.n > 0, self.shift, other.shift)
        a, b = self._shifted(shift), other._shifted(shift)
        return NormalEquations(a.xtx + b.xtx, a.xty + b.xty, a.yty + b.yty, a.n + b.n, shift)

    def take(self, cols: slice | np.ndarray) -> NormalEquations:
        """The normal equations of some columns."""
        return NormalEquations(self.xtx[cols], self.xty[cols], self.yty[cols], self.n[cols],
                               self.shift[cols])

    @staticmethod
    def concat(parts: list[NormalEquations]) -> NormalEquations:
        """The normal equations of consecutive ranges of columns."""
        return NormalEquations(*(np.concatenate(a, axis=0) for a in zip(
            *((e.xtx, e.xty, e.yty, e.n, e.shift) for e in parts), strict=True)))


def interaction_design(case: np.ndarray, male: np.ndarray, covariates: np.ndarray | None = None
                       ) -> np.ndarray:
    """Design matrix of ``group * sex + covariates``: intercept, case, male, case x male, covariates.

    Rows with a missing covariate hold NaN (they are left out of the fit). A categorical
    covariate enters as its 0/1 dummy columns (:func:`treatment_dummies`).
    """
    g = np.asarray(case, dtype=float)
    m = np.asarray(male, dtype=float)
    cols = [np.ones_like(g), g, m, g * m]
    if covariates is not None and np.size(covariates):
        cov = np.asarray(covariates, dtype=float)
        cols += list(cov.reshape(len(g), -1).T)
    return np.column_stack(cols)


def treatment_dummies(labels: Any) -> tuple[np.ndarray, list[str]]:
    """Treatment coding of a categorical variable: one 0/1 column per level but the first.

    Levels are the distinct non-missing values as text, sorted; the first is the reference
    (its effect is in the intercept). Rows with a missing value hold NaN (left out of a
    fit). Returns the columns (rows x levels - 1) and the sorted levels.

    Examples
    --------
    >>> d, levels = treatment_dummies(["b", "a", None, "c"])
    >>> levels
    ['a', 'b', 'c']
    >>> d.tolist()[0], d.tolist()[1]
    ([1.0, 0.0], [0.0, 0.0])
    """
    values = np.asarray(labels, dtype=object).ravel()
    known = ~np.asarray(pd.isna(values), dtype=bool)
    text = np.array([str(v) if k else "" for v, k in zip(values, known, strict=True)],
                    dtype=object)
    levels = sorted(set(text[known].tolist()))
    out = np.column_stack([(text == lev).astype(float) for lev in levels[1:]]) if len(
        levels) > 1 else np.zeros((len(values), 0))
    out[~known] = np.nan
    return out, levels


def normal_equations(y: np.ndarray, design: np.ndarray, log: bool = True) -> NormalEquations:
    """:class:`NormalEquations` of ``log2(y) ~ design`` (``log=False``: ``y ~ design``)
    for every column of ``y``.

    Each column uses its rows with a usable value (positive for ``log2``: values <= 0
    are left out like missing values; any non-missing value with ``log=False``) and a
    complete design row. The per-column ``X' W_j X`` come from one matrix product
    (row-wise outer products times the usable-row mask), not a loop over analytes.
    """
    y = np.asarray(y, dtype=np.float64)
    if y.ndim == 1:
        y = y[:, None]
    row_ok = ~np.isnan(design).any(axis=1)
    if log:
        with np.errstate(invalid="ignore", divide="ignore"):
            ly = np.log2(np.where(y > 0, y, np.nan))
    else:
        ly = y
    mask = (~np.isnan(ly)) & row_ok[:, None]
    xd = np.where(row_ok[:, None], design, 0.0)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)
        shift = (np.nan_to_num(np.nanmean(np.where(mask, ly, np.nan), axis=0)) if len(y)
                 else np.zeros(y.shape[1]))
    yz = np.where(mask, ly - shift, 0.0)
    w = mask.astype(float)
    k = design.shape[1]
    outer = (xd[:, :, None] * xd[:, None, :]).reshape(len(xd), k * k)
    xtx = (outer.T @ w).T.reshape(-1, k, k)
    xty = (xd.T @ yz).T
    yty = np.einsum("ij,ij->j", yz, yz)
    return NormalEquations(xtx, xty, yty, w.sum(axis=0), shift)


def solve_interaction(ne: NormalEquations, ci: float = 0.95,
                      optional: np.ndarray | None = None) -> dict[str, dict[str, np.ndarray]]:
    """Group effects of ``log2(value) ~ group * sex + covariates`` (or ``value ~ ...``)
    from its normal equations.

    The per-analyte systems are solved in batch. Returns the same dictionary as
    :func:`interaction_model`. ``optional`` marks design columns that may be absent for
    an analyte (the dummies of a categorical covariate: a level with no usable value of
    that analyte): such a column is left out of that analyte's fit (and of its degrees of
    freedom) instead of making the system singular.
    """
    xtx, xty = ne.xtx, ne.xty
    k = xtx.shape[1]
    df = ne.n - k
    if optional is not None and np.any(optional) and len(xtx):
        diag = np.diagonal(xtx, axis1=1, axis2=2)
        absent = np.asarray(optional, dtype=bool)[None, :] & (diag == 0)
        if absent.any():
            keep = ~absent
            both = keep[:, :, None] & keep[:, None, :]
            xtx = np.where(both, xtx, 0.0) + absent[:, :, None] * np.eye(k)
            xty = np.where(keep, xty, 0.0)
            df = ne.n - keep.sum(axis=1)
    # singular designs (e.g. a sex with no cases for this analyte) give NaN, not an error
    det_ok = (np.linalg.matrix_rank(xtx) == k) if len(xtx) else np.zeros(0, dtype=bool)
    safe = np.where(det_ok[:, None, None], xtx, np.eye(k))
    inv = np.linalg.inv(safe)
    beta = np.einsum("pkl,pl->pk", inv, xty)
    rss = np.maximum(ne.yty - np.einsum("pk,pk->p", beta, xty), 0.0)
    with np.errstate(invalid="ignore", divide="ignore"):
        sigma2 = rss / df
    # a numerically exact fit (e.g. a constant analyte) has no residual variance to test
    # against: its t would be rounding error over rounding error (a spurious p = 0)
    exact = rss <= 1e-13 * np.abs(ne.yty)
    cov_b = inv * sigma2[:, None, None]
    contrasts = {"F": np.eye(k)[1], "M": np.eye(k)[1] + np.eye(k)[3], "interaction": np.eye(k)[3]}
    out: dict[str, dict[str, np.ndarray]] = {}
    for name, c in contrasts.items():
        est = beta @ c
        with np.errstate(invalid="ignore", divide="ignore"):
            se = np.sqrt(np.einsum("k,pkl,l->p", c, cov_b, c))
            t = est / se
            p = 2 * sps.t.sf(np.abs(t), df)
            q = sps.t.ppf(0.5 + ci / 2, df)
        bad = ~det_ok | (df <= 0) | exact
        res = {"estimate": est, "se": se, "statistic": t, "df": df, "p": p,
               "low": est - q * se, "high": est + q * se}
        out[name] = {key: np.where(bad, np.nan, val) for key, val in res.items()}
    return out


def interaction_model(y: np.ndarray, case: np.ndarray, male: np.ndarray,
                      covariates: np.ndarray | None = None, ci: float = 0.95, log: bool = True
                      ) -> dict[str, dict[str, np.ndarray]]:
    """``log2(value) ~ group * sex + covariates`` (``log=False``: ``value ~ ...``) for
    every column, by OLS.

    Each analyte uses its complete rows; the per-analyte normal equations are
    built with one matrix product and solved in batch (:func:`normal_equations`,
    :func:`solve_interaction`), so there is no loop per analyte. Women are the
    reference sex, so the group effect in women is the group coefficient and in
    men the group plus interaction coefficients.

    Parameters
    ----------
    y : ndarray (n, p)
        Positive values (log2 is taken here; non-positive values count as missing), or
        with ``log=False`` values on an additive scale (used as given).
    case, male : ndarray of bool (n,)
    covariates : ndarray (n, k), optional
        Numeric covariates (rows with a missing covariate are dropped).
    ci : float
        Confidence level.
    log : bool
        Fit ``log2(y)`` (default) or ``y`` itself.

    Returns
    -------
    dict
        ``{"F": ..., "M": ..., "interaction": ...}``, each with ``estimate``
        (log2 fold change; with ``log=False`` the difference of means), ``se``,
        ``statistic`` (t), ``df``, ``p``, ``low``, ``high``.
    """
    design = interaction_design(case, male, covariates)
    return solve_interaction(normal_equations(y, design, log=log), ci)
