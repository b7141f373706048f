"""Inverse-variance meta-analysis of per-site summaries, vectorised across analytes x strata.

Every (analyte, stratum) is one meta-analysis of its sites' estimates ``y_i`` with
sampling variances ``v_i = se_i^2``. Sites are laid out in a padded matrix (rows:
analyte x stratum, columns: sites), so each step below is one array operation for all
analytes at once.

- fixed effect: ``w_i = 1 / v_i``, ``mu = sum w y / sum w``, ``se = 1 / sqrt(sum w)``;
- random effects: ``w_i = 1 / (v_i + tau2)`` with ``tau2`` by DerSimonian-Laird (1986)
  or REML (Viechtbauer 2005), the latter by Fisher scoring with step halving as in
  metafor's ``rma(method = "REML")``;
- Cochran's ``Q = sum w_i (y_i - mu_FE)^2`` (fixed-effect weights) on ``k - 1`` df, and
  ``I2`` in percent: ``(Q - df) / Q`` for the fixed-effect model, ``tau2 / (tau2 + s2)``
  with metafor's typical within-site variance ``s2 = (k - 1) / (sum w - sum w^2 / sum w)``
  for random effects;
- Wald z interval and p-value; ``q`` is Benjamini-Hochberg within each stratum.

Agreement with R metafor is tested to 1e-6 (tests/reference/meta_metafor.R).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Literal

import numpy as np
import pandas as pd
import scipy.stats as sps

from hikisig.errors import HikisigError
from hikisig.stats.univariate import adjust

__all__ = ["META_COLUMNS", "WEIGHT_COLUMNS", "check_meta_options", "dl_tau2", "meta_analysis",
           "meta_tables", "pool", "reml_tau2", "site_intervals"]

#: Columns of the meta-analysis table, in order.
META_COLUMNS = ("analyte", "stratum", "k", "estimate", "se", "ci_low", "ci_high", "p", "q", "tau2",
                "i2", "q_stat", "q_p")
#: Columns of the per-site weights table (weights in percent of the analyte x stratum).
WEIGHT_COLUMNS = ("analyte", "stratum", "site", "weight")

ESTIMATES = {"effect": "effect_se", "log2fc": "log2fc_se"}


def dl_tau2(y: np.ndarray, v: np.ndarray, ok: np.ndarray) -> np.ndarray:
    """DerSimonian-Laird tau2 of each row of padded ``y``, ``v`` (``ok`` marks real sites)."""
    w = np.where(ok, 1.0 / np.where(ok, v, 1.0), 0.0)
    sw = w.sum(axis=1)
    mu = (w * np.where(ok, y, 0.0)).sum(axis=1) / sw
    q = (w * np.where(ok, y - mu[:, None], 0.0) ** 2).sum(axis=1)
    df = ok.sum(axis=1) - 1
    c = sw - (w**2).sum(axis=1) / sw
    with np.errstate(invalid="ignore", divide="ignore"):
        tau2 = np.maximum(0.0, (q - df) / c)
    return np.where(df > 0, tau2, 0.0)


def reml_tau2(y: np.ndarray, v: np.ndarray, ok: np.ndarray, *, tol: float = 1e-12,
              max_iter: int = 1000) -> tuple[np.ndarray, np.ndarray]:
    """REML tau2 of each row by Fisher scoring (metafor's iteration), all rows at once.

    ``tau2 <- tau2 + (Y'PPY - tr P) / tr(PP)`` with ``P = W - w w' / sum w`` and
    ``W = diag(1 / (v + tau2))``; a step that would make ``tau2`` negative is halved
    until it does not. Starts from the Hedges (method of moments) estimate
    ``max(0, var(y) - mean(v))`` as metafor does; stops when every change is below ``tol``.

    Returns
    -------
    tau2, converged : ndarray
    """
    k = ok.sum(axis=1)
    y0 = np.where(ok, y, 0.0)
    ybar = y0.sum(axis=1) / np.maximum(k, 1)
    with np.errstate(invalid="ignore", divide="ignore"):
        he = (np.where(ok, y - ybar[:, None], 0.0) ** 2).sum(axis=1) / (k - 1) \
            - np.where(ok, v, 0.0).sum(axis=1) / k
    tau2 = np.where(k > 1, np.maximum(0.0, np.nan_to_num(he)), 0.0)
    active = k > 1
    converged = ~active
    for _ in range(max_iter):
        if not active.any():
            break
        t = tau2[active]
        o = ok[active]
        w = np.where(o, 1.0 / (np.where(o, v[active], 1.0) + t[:, None]), 0.0)
        sw = w.sum(axis=1)
        s2 = (w**2).sum(axis=1)
        s3 = (w**3).sum(axis=1)
        mu = (w * y0[active]).sum(axis=1) / sw
        py = w * np.where(o, y[active] - mu[:, None], 0.0)  # P y
        ypppy = (py**2).sum(axis=1)
        tr_p = sw - s2 / sw
        tr_pp = s2 - 2 * s3 / sw + (s2 / sw) ** 2
        adj = (ypppy - tr_p) / tr_pp
        for _h in range(200):  # step halving: tau2 stays >= 0
            neg = t + adj < 0
            if not neg.any():
                break
            adj = np.where(neg, adj / 2, adj)
        new = t + adj
        done = np.abs(new - t) < tol
        idx = np.flatnonzero(active)
        tau2[idx] = np.maximum(0.0, new)
        converged[idx[done]] = True
        active[idx[done]] = False
    return tau2, converged


def pool(y: np.ndarray, v: np.ndarray, ok: np.ndarray, *, method: str = "fixed",
         tau2: str = "reml", ci: float = 0.95) -> dict[str, np.ndarray]:
    """Pool each row of padded ``y`` / ``v`` (rows: analyte x stratum, columns: sites).

    Returns a dict of arrays: ``k, estimate, se, ci_low, ci_high, p, tau2, i2, q_stat, q_p``
    and ``weight`` (same shape as ``y``, percent of each row; 0 where ``ok`` is False).
    """
    k = ok.sum(axis=1)
    y0 = np.where(ok, y, 0.0)
    w_fe = np.where(ok, 1.0 / np.where(ok, v, 1.0), 0.0)
    sw = w_fe.sum(axis=1)
    with np.errstate(invalid="ignore", divide="ignore"):
        mu_fe = (w_fe * y0).sum(axis=1) / sw
        q = (w_fe * np.where(ok, y - mu_fe[:, None], 0.0) ** 2).sum(axis=1)
    df = k - 1
    if method == "fixed":
        t2 = np.zeros(len(k))
    elif tau2 == "dl":
        t2 = dl_tau2(y, v, ok)
    elif tau2 == "reml":
        t2, _ = reml_tau2(y, v, ok)
    else:
        raise HikisigError(f"tau2 must be reml or dl, not {tau2!r}")
    w = np.where(ok, 1.0 / (np.where(ok, v, 1.0) + t2[:, None]), 0.0)
    sw_re = w.sum(axis=1)
    with np.errstate(invalid="ignore", divide="ignore"):
        est = (w * y0).sum(axis=1) / sw_re
        se = 1.0 / np.sqrt(sw_re)
        z = est / se
        q_p = np.where(df > 0, sps.chi2.sf(q, np.maximum(df, 1)), np.nan)
        if method == "fixed":
            i2 = np.where(df > 0, 100 * np.maximum(0.0, (q - df) / q), np.nan)
        else:
            s2 = df / (sw - (w_fe**2).sum(axis=1) / sw)
            i2 = np.where(df > 0, 100 * t2 / (t2 + s2), np.nan)
        weight = 100 * w / sw_re[:, None]
    crit = sps.norm.ppf(0.5 + ci / 2)
    return {"k": k, "estimate": est, "se": se, "ci_low": est - crit * se,
            "ci_high": est + crit * se, "p": 2 * sps.norm.sf(np.abs(z)), "tau2": t2, "i2": i2,
            "q_stat": np.where(df > 0, q, np.nan), "q_p": q_p, "weight": weight}


def meta_analysis(summaries: pd.DataFrame, *,
                  estimate: Literal["effect", "log2fc"] | str = "effect",
                  method: Literal["fixed", "random"] | str = "fixed",
                  tau2: Literal["reml", "dl"] | str = "reml", ci: float = 0.95,
                  strata: Sequence[str] | None = None) -> pd.DataFrame:
    """Inverse-variance meta-analysis of site summaries, every analyte x stratum at once.

    Parameters
    ----------
    summaries : DataFrame
        Site tables (:func:`hikisig.analysis.summary.site_summary`) stacked: at least
        ``analyte, stratum, site`` and the estimate with its SE (``effect``/``effect_se``
        or ``log2fc``/``log2fc_se``). Rows with a missing estimate or a non-positive SE
        are left out.
    estimate : {"effect", "log2fc"}
        Hedges' g or the log2 fold change.
    method : {"fixed", "random"}
    tau2 : {"reml", "dl"}
        Between-site variance estimator of the random-effects model.
    ci : float
        Confidence level of the Wald interval.
    strata : sequence of str, optional
        Only these strata.

    Returns
    -------
    DataFrame
        Columns :data:`META_COLUMNS` (``i2`` in percent; ``tau2`` 0 for the fixed-effect
        model; ``q`` Benjamini-Hochberg within each stratum), ordered by stratum and
        analyte as first seen. :func:`meta_tables` gives the per-site weights too.

    Examples
    --------
    >>> s = pd.DataFrame({"analyte": "a", "stratum": "all", "site": ["x", "y"],
    ...                   "log2fc": [0.5, 1.0], "log2fc_se": [0.1, 0.1]})
    >>> float(meta_analysis(s, estimate="log2fc")["estimate"].iloc[0])
    0.75
    """
    return meta_tables(summaries, estimate=estimate, method=method, tau2=tau2, ci=ci,
                       strata=strata)[0]


def check_meta_options(*, estimate: str, method: str, tau2: str) -> None:
    """Refuse an unknown estimate, pooling method or tau2 estimator (one line each)."""
    if estimate not in ESTIMATES:
        raise HikisigError(f"estimate must be effect or log2fc, not {estimate!r}")
    if method not in ("fixed", "random"):
        raise HikisigError(f"method must be fixed or random, not {method!r}")
    if tau2 not in ("reml", "dl"):
        raise HikisigError(f"tau2 must be reml or dl, not {tau2!r}")


def meta_tables(summaries: pd.DataFrame, *, estimate: str = "effect", method: str = "fixed",
                tau2: str = "reml", ci: float = 0.95, strata: Sequence[str] | None = None
                ) -> tuple[pd.DataFrame, pd.DataFrame]:
    """:func:`meta_analysis` and the per-site weights (:data:`WEIGHT_COLUMNS`: each site's
    share of the pooled estimate's weight, percent of its analyte x stratum)."""
    check_meta_options(estimate=estimate, method=method, tau2=tau2)
    se_col = ESTIMATES[estimate]
    need = ["analyte", "stratum", "site", estimate, se_col]
    missing = [c for c in need if c not in summaries.columns]
    if missing:
        raise HikisigError(f"the summaries have no column(s) {', '.join(missing)}")
    d = summaries[need].copy()
    d["analyte"], d["stratum"], d["site"] = (d[c].astype(str) for c in ("analyte", "stratum", "site"))
    if strata is not None:
        d = d[d["stratum"].isin(list(strata))]
    yv = pd.to_numeric(d[estimate], errors="coerce").to_numpy(float)
    se = pd.to_numeric(d[se_col], errors="coerce").to_numpy(float)
    d = d[np.isfinite(yv) & np.isfinite(se) & (se > 0)]
    dup = d.duplicated(["analyte", "stratum", "site"])
    if dup.any():
        r = d[dup].iloc[0]
        raise HikisigError(f"site {r['site']!r} has two rows for {r['analyte']!r} in stratum "
                           f"{r['stratum']!r} (the same file given twice?)")
    keys = d[["stratum", "analyte"]].drop_duplicates()
    if keys.empty:
        weights = pd.DataFrame({c: pd.Series(dtype=object) for c in WEIGHT_COLUMNS})
        return pd.DataFrame({c: pd.Series(dtype=object) for c in META_COLUMNS}), weights
    row = pd.MultiIndex.from_frame(keys).get_indexer(pd.MultiIndex.from_frame(d[["stratum", "analyte"]]))
    pos = d.groupby(["stratum", "analyte"], sort=False).cumcount().to_numpy()
    n_rows, width = len(keys), int(pos.max()) + 1
    y = np.zeros((n_rows, width))
    v = np.ones((n_rows, width))
    ok = np.zeros((n_rows, width), dtype=bool)
    y[row, pos] = d[estimate].to_numpy(float)
    v[row, pos] = d[se_col].to_numpy(float) ** 2
    ok[row, pos] = True
    res = pool(y, v, ok, method=method, tau2=tau2, ci=ci)
    out = pd.DataFrame({"analyte": keys["analyte"].to_numpy(), "stratum": keys["stratum"].to_numpy(),
                        **{c: res[c] for c in META_COLUMNS[2:] if c != "q"}})
    out["k"] = out["k"].astype(np.int64)
    out["q"] = np.nan
    for _, idx in out.groupby("stratum", sort=False).groups.items():
        out.loc[idx, "q"] = adjust(out.loc[idx, "p"].to_numpy(float))
    out = out[list(META_COLUMNS)].reset_index(drop=True)
    weights = pd.DataFrame({"analyte": d["analyte"].to_numpy(), "stratum": d["stratum"].to_numpy(),
                            "site": d["site"].to_numpy(), "weight": res["weight"][row, pos]})
    return out, weights


def site_intervals(summaries: pd.DataFrame, *, estimate: str = "effect",
                   ci: float = 0.95) -> pd.DataFrame:
    """Each site's estimate with its Wald interval (``analyte, stratum, site, estimate,
    ci_low, ci_high``): the rows of a forest plot."""
    if estimate not in ESTIMATES:
        raise HikisigError(f"estimate must be effect or log2fc, not {estimate!r}")
    se = pd.to_numeric(summaries[ESTIMATES[estimate]], errors="coerce").to_numpy(float)
    y = pd.to_numeric(summaries[estimate], errors="coerce").to_numpy(float)
    crit = sps.norm.ppf(0.5 + ci / 2)
    return pd.DataFrame({"analyte": summaries["analyte"].astype(str).to_numpy(),
                         "stratum": summaries["stratum"].astype(str).to_numpy(),
                         "site": summaries["site"].astype(str).to_numpy(), "estimate": y,
                         "ci_low": y - crit * se, "ci_high": y + crit * se})
