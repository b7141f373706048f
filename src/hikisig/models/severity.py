"""Severity model: PLS regression of a severity score (e.g. the HQ-25 total) on blood analytes.

The model is a :class:`~sklearn.pipeline.Pipeline`
``MinFractionImputer -> LogTransformer("log2") -> Scaler(scaling) ->
PLSRegression(n_components, scale=False)`` (PLS centres y itself); with
``log=False`` (values on an additive scale, e.g. z-scores)
``SimpleImputer(median) -> Scaler(scaling) -> PLSRegression``. Its steps pass
DataFrames (``set_output(transform="pandas")``), so messages name analytes.

Validation
----------
* **Components.** Repeated K-fold CV (``cv_repeats`` x ``cv_folds``;
  :class:`~sklearn.model_selection.GroupKFold` with shuffling when
  ``groups`` is given, so all samples of a participant stay in one fold).
  Preprocessing is refitted in every training fold. For each repeat and each
  number of components ``a = 1..max_components``, ``Q2 = 1 - PRESS / SS``
  from the out-of-fold predictions. The chosen number is the one with the
  **largest mean Q2** over repeats (the smallest on ties);
  ``tables["q2_by_components"]`` lists all of them.
* **Metrics** of the chosen model: ``q2`` and ``rmsecv`` are means over
  repeats; ``predicted_cv`` is the per-sample mean of the out-of-fold
  predictions over repeats, and ``spearman_r``, ``pearson_r`` and
  ``r2_spearman`` (= ``spearman_r ** 2``, the convention of the Kyushu
  hikikomori studies) compare it with the observed scores. ``r2y`` and
  ``rmsee`` (``sqrt(SSres / (n - A - 1))``, ropls) describe the final fit.
* **Permutation test.** y is permuted ``permutations`` times and Q2 is
  recomputed with the chosen number of components on *the same CV splits*
  (all repeats), so the permuted statistic is exactly comparable with the
  observed mean Q2; ``p = (1 + #{Q2_perm >= Q2}) / (1 + B)``. The number of
  components is not re-selected for each permutation. The preprocessing of each
  training fold does not depend on y, so it is done once per fold; with more
  analytes than training samples the permutation fits run on the fold's
  coordinates in the span of its centred training rows (``Z = (X - mean) Q``, ``Q``
  from the QR decomposition of the centred rows). PLS is unchanged by such a
  rotation (its weights rotate with the data, its scores and predictions do not
  change), so each permuted Q2 is that of the full-width fit up to rounding
  (checked to 1e-12), at a cost that no longer grows with the number of analytes.
  With ``permutations=0`` there is no test: ``permutation_p_q2`` is None.
* **Leave-site-out** (``cv="leave-site-out"``, needs ``sites``): one fold per site
  (``LeaveOneGroupOut``), no repeats. ``q2`` is the Q2 of the pooled out-of-site
  predictions (``1 - PRESS / SS`` about the mean of all scores); the ``per_site`` table
  gives each site's ``n``, ``q2`` (``1 - PRESS_site / SS_site`` about the site's own mean:
  whether the model ranks and scales severity within a site it never saw; NaN with a note
  for fewer than 2 samples or a constant score) and ``rmse``. The permutation test
  permutes the scores within sites.
* **Harmonisation** (``harmonise="combat"``, needs ``sites``): ComBat on the log scale
  right after imputation and log, fitted in each training fold without the scores
  (:class:`hikisig.models.discriminate.SiteComBat`); the final model needs each sample's
  site to predict.
* **Verdict.** The model is ``validated`` when ``Q2 > 0`` (its cross-validated
  predictions beat the mean) and the permutation p of Q2 is below 0.05; ``verdict``
  says which condition failed.

Every resampling loop runs through :class:`hikisig.engine.Engine` with seeds
from :func:`hikisig.engine.spawn_seeds`, so serial, loky and Dask give
identical numbers. Within CV the PLS fits use :func:`hikisig.models.pls.pls1_path`
(the same model as ``PLSRegression(scale=False)``, all component counts in one pass).
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd
from scipy import stats
from sklearn.cross_decomposition import PLSRegression
from sklearn.model_selection import GroupKFold, KFold
from sklearn.pipeline import Pipeline
from threadpoolctl import threadpool_limits

from hikisig.config import SeveritySection
from hikisig.engine import Engine, spawn_seeds
from hikisig.errors import HikisigError
from hikisig.models.discriminate import (
    CV_SCHEMES,
    HARMONISERS,
    _preprocessing_steps,
    check_sites,
    site_splits,
    with_site,
)
from hikisig.models.pls import fit_metrics, pls1_path, vip
from hikisig.models.result import SIGNATURE_COLUMNS, SeverityResult, model_input, training_data

__all__ = ["severity", "severity_pipeline"]

#: Permutations handled by one engine task (fixed, so results do not depend on the backend).
_PERM_BATCH = 25
_S = SeveritySection()


def _preprocessor(scaling: str, log: bool = True, harmonise: bool = False) -> Pipeline:
    """The preprocessing inside CV (arrays in and out; with ``harmonise`` a DataFrame with
    the site column in)."""
    return Pipeline(_preprocessing_steps(log, scaling, harmonise))


def severity_pipeline(n_components: int, scaling: str = _S.scaling, *, log: bool = True,
                      harmonise: bool = False) -> Pipeline:
    """The (unfitted) severity model: impute, log2, scale, PLS; with ``log=False`` (values on
    an additive scale, e.g. z-scores) impute by the training median, scale, PLS. The steps
    pass DataFrames (``set_output(transform="pandas")``).

    Examples
    --------
    >>> [name for name, _ in severity_pipeline(2, log=False).steps]
    ['impute', 'scale', 'pls']
    """
    steps = [*_preprocessing_steps(log, scaling, harmonise),
             ("pls", PLSRegression(n_components=n_components, scale=False))]
    return Pipeline(steps).set_output(transform="pandas")


def _splits(n: int, groups: np.ndarray | None, folds: int, seed: int) -> list[tuple[np.ndarray, np.ndarray]]:
    if groups is None:
        cv: Any = KFold(n_splits=folds, shuffle=True, random_state=seed)
        return [(tr, te) for tr, te in cv.split(np.zeros(n))]
    cv = GroupKFold(n_splits=folds, shuffle=True, random_state=seed)
    return [(tr, te) for tr, te in cv.split(np.zeros(n), groups=groups)]


_Fold = tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]


def _prepared_folds(X: np.ndarray | pd.DataFrame, splits: list[tuple[np.ndarray, np.ndarray]],
                    scaling: str, log: bool = True) -> list[_Fold]:
    out = []
    for tr, te in splits:
        if isinstance(X, pd.DataFrame):  # with the site column: ComBat in the fold
            prep = _preprocessor(scaling, log, True).fit(X.iloc[tr])
            out.append((tr, te, np.asarray(prep.transform(X.iloc[tr]), dtype=np.float64),
                        np.asarray(prep.transform(X.iloc[te]), dtype=np.float64)))
            continue
        prep = _preprocessor(scaling, log).fit(X[tr])
        out.append((tr, te, prep.transform(X[tr]), prep.transform(X[te])))
    return out


def _compact(Xtr: np.ndarray, Xte: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Training and test rows in coordinates of the span of the centred training rows.

    ``Z = (X - mean) Q`` with ``Q`` (p x n) orthonormal from the QR decomposition of the
    centred training rows (transposed). PLS on ``Z`` gives the scores and predictions of
    PLS on ``X`` (up to rounding); nothing changes when there are fewer analytes than
    training samples. One BLAS thread: the result does not depend on the thread count.
    """
    n, p = Xtr.shape
    if p <= n:
        return Xtr, Xte
    mean = Xtr.mean(axis=0)
    with threadpool_limits(limits=1):
        Q = np.linalg.qr((Xtr - mean).T)[0]
        return (Xtr - mean) @ Q, (Xte - mean) @ Q


_Splits = list[tuple[np.ndarray, np.ndarray]]


def _cv_repeat(task: tuple[Any, ...]) -> dict[str, Any]:
    """One CV repeat: out-of-fold predictions for 1..A components, VIPs per fold, and the
    folds' preprocessed data in compact coordinates (for the permutation test). ``X`` is an
    array, or a DataFrame with the site column (ComBat in each fold); fixed ``splits``
    (leave-site-out) replace the shuffled K-fold. ``task``: ``(seed, X, y, groups, folds,
    max_comp, scaling, log[, splits])``."""
    seed, X, y, groups, folds, max_comp, scaling, log = task[:8]
    fixed: _Splits | None = task[8] if len(task) > 8 else None
    splits = fixed if fixed is not None else _splits(len(y), groups, folds, seed)
    pred = np.zeros((len(y), max_comp))
    vips = []
    compact = []
    for tr, te, Xtr, Xte in _prepared_folds(X, splits, scaling, log):
        path = pls1_path(Xtr, y[tr], max_comp)
        pred[te] = path.predict(Xte)
        vips.append(np.stack([path.vip(a) for a in range(1, max_comp + 1)]))  # (A, p)
        compact.append((tr, te, *_compact(Xtr, Xte)))
    return {"splits": splits, "pred": pred, "vip": np.stack(vips), "folds": compact}


def _q2(y: np.ndarray, pred: np.ndarray) -> float:
    ss = float(((y - y.mean()) ** 2).sum())
    return 1.0 - float(((y - pred) ** 2).sum()) / ss


def _perm_batch(task: tuple[Any, ...]) -> list[float]:
    """Mean Q2 over the given CV repeats (their preprocessed folds) for y permuted with each
    seed (within the blocks, e.g. sites, when given). ``task``: ``(seeds, y, prepared,
    n_components[, blocks])``."""
    seeds, y, prepared, n_comp = task[:4]
    blocks: np.ndarray | None = task[4] if len(task) > 4 else None
    out = []
    for s in seeds:
        rng = np.random.default_rng(s)
        if blocks is None:
            yp = y[rng.permutation(len(y))]
        else:
            order = np.arange(len(y))
            for b in np.unique(blocks):
                idx = np.flatnonzero(blocks == b)
                order[idx] = idx[rng.permutation(len(idx))]
            yp = y[order]
        q2s = []
        for folds in prepared:
            pred = np.zeros(len(y))
            for tr, te, Xtr, Xte in folds:
                pred[te] = pls1_path(Xtr, yp[tr], n_comp).predict(Xte, n_comp)
            q2s.append(_q2(yp, pred))
        out.append(float(np.mean(q2s)))
    return out


def severity(X: pd.DataFrame, y: Any, *, groups: Any = None, ids: Any = None,
             max_components: int = _S.max_components, n_components: int | None = None,
             scaling: str = _S.scaling, cv_folds: int = _S.cv_folds, cv_repeats: int = _S.cv_repeats,
             permutations: int = _S.permutations, seed: int = 0, engine: Engine | None = None,
             target: str | None = None, log: bool = True, sites: Any = None,
             cv: str = _S.cv, harmonise: str = "none") -> SeverityResult:
    """Fit and validate a PLS regression of a severity score on analytes.

    Parameters
    ----------
    X : DataFrame (samples x analytes)
        Raw positive concentrations (or, with ``log=False``, values on an additive scale);
        missing values are imputed in-fold.
    y : array-like (n,)
        Severity score (e.g. HQ-25 total); must be complete.
    groups : array-like, optional
        Participant of each sample (group-aware folds for repeated visits).
    ids : array-like, optional
        Sample ids for ``observed_predicted`` (default: ``X.index``).
    max_components : int
        Largest number of components tried in CV.
    n_components : int, optional
        Fix the number of components (CV is still run for the metrics).
    scaling : str
        :class:`hikisig.prep.Scaler` method (``pareto``, ``auto``, ``centre``...).
    cv_folds, cv_repeats : int
        Repeated K-fold CV.
    permutations : int
        Permutations of y for the Q2 permutation test (0 to skip: no p value, and the
        model is not validated).
    seed : int
        Root seed; repeats and permutations get seeds from ``spawn_seeds``.
    engine : Engine, optional
        Backend for the resampling loops (default serial).
    target : str, optional
        Name of the severity score (for reports).
    log : bool
        ``True``: concentrations, imputed by half the training minimum and log2-transformed
        before scaling. ``False``: values on an additive scale that may be negative
        (z-scores, already logged values): no log, missing values take the training median.
    sites : array-like, optional
        Site of each sample (needed by leave-site-out and ComBat; otherwise it adds the
        ``per_site`` table).
    cv : {"stratified", "leave-site-out"}
        ``"leave-site-out"``: one fold per site, no repeats (see the module docstring).
    harmonise : {"none", "combat"}
        ComBat inside each training fold (see the module docstring).

    Returns
    -------
    SeverityResult
        Tables ``q2_by_components``, ``observed_predicted``, ``vip``, ``coefficients``,
        ``signature``; ``validated`` and ``verdict``. See the module docstring.
    """
    engine = engine or Engine("serial")
    X = model_input(X)
    features = list(X.columns)
    Xv = X.to_numpy(dtype=np.float64)
    yv = np.asarray(y, dtype=np.float64).ravel()
    n, p = Xv.shape
    if yv.size != n:
        raise ValueError(f"y has {yv.size} values for {n} samples")
    if not np.isfinite(yv).all():
        raise ValueError("y has missing or non-finite values; drop those samples first")
    if np.ptp(yv) == 0:
        raise ValueError("y is constant")
    g = None if groups is None else np.asarray(groups)
    if g is not None and g.size != n:
        raise ValueError(f"groups has {g.size} values for {n} samples")
    if cv not in CV_SCHEMES:
        raise ValueError(f"unknown cv {cv!r}; valid values: {', '.join(map(repr, CV_SCHEMES))}")
    if harmonise not in HARMONISERS:
        raise ValueError(f"unknown harmonise {harmonise!r}; valid values: "
                         f"{', '.join(map(repr, HARMONISERS))}")
    loso, combat = cv == "leave-site-out", harmonise == "combat"
    if sites is None and (loso or combat):
        raise HikisigError(("leave-site-out validation" if loso else "ComBat harmonisation")
                           + " needs each sample's site (design.site, --site-column)")
    site_v = None if sites is None else check_sites(sites, n, g)
    if combat and len(set(site_v.tolist())) < 2:  # type: ignore[union-attr]
        raise HikisigError("ComBat harmonisation needs at least 2 sites; the samples come from 1")
    fixed: _Splits | None = None
    site_names: list[str] = []
    if loso:
        site_names, fixed = site_splits(site_v)  # type: ignore[arg-type]
        cv_repeats = 1
    Xin: Any = with_site(X, site_v) if combat else Xv
    n_units = n if g is None else len(np.unique(g))
    folds = len(fixed) if fixed is not None else min(int(cv_folds), n_units)
    if folds < 2:
        raise ValueError("need at least 2 samples (groups) for cross-validation")
    smallest_train = (min(len(tr) for tr, _ in fixed) if fixed is not None
                      else n - int(np.ceil(n / folds)))  # approximate for group folds
    cap = max(1, min(p, smallest_train - 1))
    max_comp = max(1, min(int(max_components), cap))
    if n_components is not None:
        if not 1 <= int(n_components) <= min(p, n - 1):
            raise ValueError(f"n_components must be in 1..{min(p, n - 1)}")
        max_comp = max(max_comp, int(n_components))

    # --- repeated CV over 1..max_comp components
    rep_seeds = spawn_seeds(seed, int(cv_repeats))
    reps = engine.map(_cv_repeat, [(s, Xin, yv, g, folds, max_comp, scaling, log, fixed)
                                   for s in rep_seeds])
    q2 = np.array([[_q2(yv, r["pred"][:, a]) for a in range(max_comp)] for r in reps])  # (R, A)
    q2_mean = q2.mean(axis=0)
    q2_sd = q2.std(axis=0, ddof=1) if len(reps) > 1 else np.zeros(max_comp)
    chosen = int(n_components) if n_components is not None else int(np.argmax(q2_mean)) + 1

    # --- final model and fit statistics
    Xfit = Xin if combat else X
    model = severity_pipeline(chosen, scaling, log=log, harmonise=combat).fit(Xfit, yv)
    fitted = np.asarray(model.predict(Xfit), dtype=np.float64).ravel()
    prepped = np.asarray(model[:-1].transform(Xfit), dtype=np.float64)
    full_path = pls1_path(prepped, yv, max_comp)
    r2y_by = [fit_metrics(yv, full_path.predict(prepped, a), None, a)["r2y"] for a in range(1, max_comp + 1)]
    pred_cv = np.mean([r["pred"][:, chosen - 1] for r in reps], axis=0)
    m = fit_metrics(yv, fitted, pred_cv, chosen)
    rmsecv = float(np.mean([np.sqrt(np.mean((yv - r["pred"][:, chosen - 1]) ** 2)) for r in reps]))
    spearman = float(stats.spearmanr(yv, pred_cv).statistic)
    pearson = float(stats.pearsonr(yv, pred_cv).statistic)

    # --- permutation test on the same splits
    p_perm: float | None = None
    if permutations > 0:
        perm_seeds = spawn_seeds(np.random.SeedSequence([seed, 1]), int(permutations))
        prepared = [r["folds"] for r in reps]
        batches = [perm_seeds[i:i + _PERM_BATCH] for i in range(0, len(perm_seeds), _PERM_BATCH)]
        blocks = pd.factorize(pd.Series(site_v, dtype=object))[0] if loso else None
        null = np.concatenate(engine.map(_perm_batch, [(b, yv, prepared, chosen, blocks)
                                                       for b in batches]))
        p_perm = float((1 + np.sum(null >= q2_mean[chosen - 1])) / (1 + len(null)))

    # --- tables
    pls = model.named_steps["pls"]
    v = vip(pls)
    coef = np.asarray(pls.coef_, dtype=np.float64).reshape(-1)
    effect = X.apply(lambda col: stats.spearmanr(col, yv, nan_policy="omit").statistic).to_numpy(float)
    fold_vips = np.concatenate([r["vip"][:, chosen - 1, :] for r in reps])  # (fits, p)
    stability = (fold_vips > 1).mean(axis=0)
    sample_ids = X.index.to_numpy() if ids is None else np.asarray(ids)
    if len(sample_ids) != n:
        raise ValueError(f"ids has {len(sample_ids)} values for {n} samples")
    tables = {
        "q2_by_components": pd.DataFrame({"n_components": np.arange(1, max_comp + 1), "q2_mean": q2_mean,
                                          "q2_sd": q2_sd, "r2y": r2y_by}),
        "observed_predicted": pd.DataFrame({"id": sample_ids, "observed": yv, "predicted_cv": pred_cv,
                                            "fitted": fitted}),
        "vip": pd.DataFrame({"analyte": features, "vip": v, "important": v > 1}),
        "coefficients": pd.DataFrame({"analyte": features, "coefficient": coef}),
    }
    order = np.lexsort((np.arange(p), -v))
    sig = pd.DataFrame({
        "analyte": np.asarray(features)[order],
        "rank": np.arange(1, p + 1),
        "direction": np.where(coef[order] >= 0, "higher with severity", "lower with severity"),
        "effect": effect[order], "importance": v[order], "stability": stability[order]})
    tables["signature"] = sig[SIGNATURE_COLUMNS].reset_index(drop=True)
    if site_v is not None:
        tables["per_site"] = _per_site_q2(site_v, yv, pred_cv)

    n_sites = len(set(site_v.tolist())) if site_v is not None else None
    if loso:
        cv_scheme = (f"leave-site-out CV: one fold per site ({len(site_names)} sites, each "
                     f"predicted by a model trained on the others), no repeats (the folds are "
                     f"fixed); components by max pooled Q2 over 1..{max_comp}")
    else:
        cv_scheme = (f"{cv_repeats}x{folds}-fold {'group ' if g is not None else ''}K-fold CV; "
                     f"components by max mean Q2 over 1..{max_comp}")
    cv_scheme += ((" (fixed)" if n_components is not None else "")
                  + ("; ComBat fitted in each training fold (unseen site: its own location and "
                     "scale, no scores)" if combat else ""))
    params = {"max_components": int(max_components), "n_components": n_components, "scaling": scaling,
              "cv_folds": int(cv_folds), "cv_repeats": int(cv_repeats), "permutations": int(permutations),
              "seed": int(seed), "groups": g is not None, "engine": engine.backend,
              "log": bool(log),
              "pipeline": ("MinFractionImputer -> LogTransformer(log2)"
                           if log else "SimpleImputer(median)")
              + (" -> ComBat(site)" if combat else "") + " -> Scaler -> PLSRegression(scale=False)",
              "cv": cv, "harmonise": harmonise, "n_sites": n_sites}
    if loso:
        params["cv_folds"], params["cv_repeats"] = folds, 1
    return SeverityResult(
        model=model, features=features, tables=tables, params=params, n=int(n), seed=int(seed),
        cv_scheme=cv_scheme, training=training_data(X, yv, ids=sample_ids), n_components=chosen,
        r2y=float(m["r2y"]), q2=float(q2_mean[chosen - 1]), q2_sd=float(q2_sd[chosen - 1]),
        rmsee=float(m["rmsee"]), rmsecv=rmsecv, r2_spearman=spearman ** 2, spearman_r=spearman,
        pearson_r=pearson, permutation_p_q2=p_perm, permutations=int(permutations), scaling=scaling,
        target=target, cv=cv, n_sites=n_sites, harmonise=harmonise).assess()


def _per_site_q2(sites: np.ndarray, y: np.ndarray, pred: np.ndarray) -> pd.DataFrame:
    """Each site's ``n``, ``q2`` (about the site's own mean) and ``rmse`` of the out-of-fold
    predictions."""
    rows = []
    for s in sorted(set(sites.tolist())):
        r = sites == s
        ys, ps = y[r], pred[r]
        rmse = float(np.sqrt(np.mean((ys - ps) ** 2)))
        note, q2 = "", float("nan")
        if len(ys) < 2 or np.ptp(ys) == 0:
            note = "fewer than 2 samples or a constant score at this site: no Q2"
        else:
            q2 = _q2(ys, ps)
        rows.append({"site": s, "n": int(r.sum()), "q2": q2, "rmse": rmse, "note": note})
    return pd.DataFrame(rows, columns=["site", "n", "q2", "rmse", "note"])
