"""Screening accuracy of a score against a diagnosis, in the sample and at a population prevalence.

Sensitivity, specificity, PPV and NPV with Wilson intervals; ROC AUC with a
DeLong interval; PPV and NPV recomputed at a given prevalence by Bayes' rule
(default 1.57%, the 2015 Japanese Cabinet Office estimate for ages 15-39), with
intervals obtained by carrying the sensitivity and specificity interval ends
through the formula (PPV rises with both; NPV likewise).
"""

from __future__ import annotations

import numpy as np
import pandas as pd
from statsmodels.stats.proportion import proportion_confint

from hikisig.config import DEFAULT_PREVALENCE
from hikisig.stats.roc import auc_delong

__all__ = ["DEFAULT_PREVALENCE", "predictive_values", "screening_accuracy"]


def predictive_values(sensitivity: float, specificity: float, prevalence: float
                      ) -> tuple[float, float]:
    """PPV and NPV at a prevalence (Bayes' rule).

    Examples
    --------
    >>> ppv, npv = predictive_values(0.94, 0.61, DEFAULT_PREVALENCE)
    >>> round(ppv, 4), round(npv, 4)
    (0.037, 0.9984)
    """
    p = prevalence
    tp = sensitivity * p
    fp = (1 - specificity) * (1 - p)
    tn = specificity * (1 - p)
    fn = (1 - sensitivity) * p
    ppv = tp / (tp + fp) if tp + fp > 0 else float("nan")
    npv = tn / (tn + fn) if tn + fn > 0 else float("nan")
    return float(ppv), float(npv)


def _wilson(k: int, n: int, ci: float) -> tuple[float, float]:
    if n == 0:
        return float("nan"), float("nan")
    lo, hi = proportion_confint(k, n, alpha=1 - ci, method="wilson")
    return float(lo), float(hi)


def screening_accuracy(score: np.ndarray | pd.Series, diagnosis: np.ndarray | pd.Series,
                       cutoff: float, *, direction: str = ">=",
                       prevalence: float = DEFAULT_PREVALENCE, ci: float = 0.95) -> pd.DataFrame:
    """Accuracy of ``score`` (positive when ``score >= cutoff``) against ``diagnosis``.

    Rows with a missing score or diagnosis are left out.

    Returns
    -------
    DataFrame
        One row per metric: ``metric``, ``estimate``, ``lower``, ``upper``, ``n``
        (the denominator). Metrics: sensitivity, specificity, ppv, npv (sample),
        ppv_at_prevalence, npv_at_prevalence, auc, and the counts tp, fp, tn, fn.

    Examples
    --------
    >>> s = np.array([10, 20, 30, 40, 50, 60]); d = np.array([0, 0, 1, 0, 1, 1])
    >>> t = screening_accuracy(s, d, 30).set_index("metric")
    >>> float(t.loc["sensitivity", "estimate"]), float(t.loc["specificity", "estimate"])
    (1.0, 0.6666666666666666)
    """
    s = pd.to_numeric(pd.Series(np.asarray(score)), errors="coerce").to_numpy(dtype=float)
    d_raw = pd.Series(np.asarray(diagnosis, dtype=object))
    keep = ~np.isnan(s) & d_raw.notna().to_numpy()
    s, d = s[keep], d_raw[keep].astype(bool).to_numpy()
    if not 0 < prevalence < 1:
        raise ValueError("prevalence must be between 0 and 1")
    higher = direction in (">=", ">")
    pos = {">=": s >= cutoff, ">": s > cutoff, "<": s < cutoff, "<=": s <= cutoff}[direction]
    tp, fp = int((pos & d).sum()), int((pos & ~d).sum())
    tn, fn = int((~pos & ~d).sum()), int((~pos & d).sum())
    rows: list[tuple[str, float, float, float, int]] = []

    def add(name: str, k: int, n: int) -> tuple[float, float, float]:
        est = k / n if n else float("nan")
        lo, hi = _wilson(k, n, ci)
        rows.append((name, est, lo, hi, n))
        return est, lo, hi

    se, se_lo, se_hi = add("sensitivity", tp, tp + fn)
    sp, sp_lo, sp_hi = add("specificity", tn, tn + fp)
    add("ppv", tp, tp + fp)
    add("npv", tn, tn + fn)
    ppv, npv = predictive_values(se, sp, prevalence)
    ppv_lo, npv_lo = predictive_values(se_lo, sp_lo, prevalence)
    ppv_hi, npv_hi = predictive_values(se_hi, sp_hi, prevalence)
    rows.append(("ppv_at_prevalence", ppv, ppv_lo, ppv_hi, len(s)))
    rows.append(("npv_at_prevalence", npv, npv_lo, npv_hi, len(s)))
    if d.any() and (~d).any():
        r = auc_delong(d, s if higher else -s, ci)
        rows.append(("auc", r["auc"], r["lower"], r["upper"], len(s)))
    for name, k in (("tp", tp), ("fp", fp), ("tn", tn), ("fn", fn)):
        rows.append((name, float(k), float("nan"), float("nan"), len(s)))
    out = pd.DataFrame(rows, columns=["metric", "estimate", "lower", "upper", "n"])
    out.attrs.update({"cutoff": cutoff, "direction": direction, "prevalence": prevalence, "ci": ci})
    return out
