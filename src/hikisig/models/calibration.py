"""Calibration of predicted probabilities: reliability table, slope and intercept, Brier score.

The calibration slope and intercept come from one logistic regression (no
penalty) of the outcome on ``logit(p)``: ``logit P(y=1) = a + b * logit(p)``.
A well calibrated model has ``a = 0`` and ``b = 1``; ``b < 1`` means
predictions that are too extreme (overfitting), ``b > 1`` too timid.
Probabilities are clipped to ``[1e-6, 1 - 1e-6]`` before the logit.

Examples
--------
>>> rng = np.random.default_rng(0)
>>> p = rng.uniform(0.05, 0.95, 2000)
>>> y = (rng.uniform(size=2000) < p).astype(int)
>>> s = calibration_slope_intercept(y, p)
>>> 0.8 < s["slope"] < 1.2 and abs(s["intercept"]) < 0.2
True
>>> reliability_table(y, p, n_bins=10).shape
(10, 4)
"""

from __future__ import annotations

import warnings

import numpy as np
import pandas as pd

__all__ = ["brier_score", "calibration_slope_intercept", "reliability_table"]

_EPS = 1e-6


def brier_score(y: np.ndarray, p: np.ndarray) -> float:
    """Mean squared difference between the 0/1 outcome and the probability."""
    y = np.asarray(y, dtype=np.float64)
    p = np.asarray(p, dtype=np.float64)
    return float(np.mean((p - y) ** 2))


def calibration_slope_intercept(y: np.ndarray, p: np.ndarray) -> dict[str, float]:
    """Logistic recalibration ``logit P(y=1) = intercept + slope * logit(p)`` (unpenalised).

    Returns ``{"slope": nan, "intercept": nan}`` when the fit is undefined
    (one class only, constant predictions or perfect separation).
    """
    import statsmodels.api as sm

    y = np.asarray(y, dtype=np.float64)
    p = np.clip(np.asarray(p, dtype=np.float64), _EPS, 1 - _EPS)
    nan = {"slope": float("nan"), "intercept": float("nan")}
    if y.min() == y.max() or np.ptp(p) == 0:
        return nan
    lp = np.log(p / (1 - p))
    design = np.column_stack([np.ones_like(lp), lp])
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            fit = sm.GLM(y, design, family=sm.families.Binomial()).fit()
    except Exception:  # perfect separation and other numerical failures
        return nan
    a, b = (float(v) for v in fit.params)
    if not (np.isfinite(a) and np.isfinite(b)):
        return nan
    return {"slope": b, "intercept": a}


def reliability_table(y: np.ndarray, p: np.ndarray, n_bins: int = 10) -> pd.DataFrame:
    """Reliability curve on quantile bins of the predicted probability.

    Samples are sorted by ``p`` (stable order) and cut into ``n_bins`` groups
    of (nearly) equal size, so tied probabilities may fall in adjacent bins.

    Returns
    -------
    DataFrame
        ``bin`` (1 = lowest predictions), ``mean_predicted``,
        ``fraction_positive``, ``n``.
    """
    y = np.asarray(y, dtype=np.float64)
    p = np.asarray(p, dtype=np.float64)
    order = np.argsort(p, kind="stable")
    rows = []
    for k, idx in enumerate(np.array_split(order, min(n_bins, len(p))), start=1):
        rows.append({"bin": k, "mean_predicted": float(p[idx].mean()),
                     "fraction_positive": float(y[idx].mean()), "n": len(idx)})
    return pd.DataFrame(rows, columns=["bin", "mean_predicted", "fraction_positive", "n"])
