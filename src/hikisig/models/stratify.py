"""Unsupervised subgroups of cases from their blood analytes.

:func:`stratify` clusters samples (meant for cases only) after the usual
preprocessing (half-minimum imputation, log2, autoscaling; with ``log=False``,
for values on an additive scale such as z-scores: median imputation and
autoscaling, no log), chooses the number
of clusters, measures how stable the clusters are under bootstrap resampling,
and describes them: per-analyte profiles, a ranked signature and, optionally,
clinical differences.

The clustering space
--------------------
Subgroup signals in metabolomics often live in a few analytes (for example one
lipid class and uric acid out of ~130 analytes). Clustering all autoscaled
analytes lets the many null analytes drown such a signal: a full-covariance
mixture in 127 dimensions has far too many parameters, and distance-based
methods see mostly noise. The leading principal components are no better: they
follow the strong within-class correlations of the analytes (acylcarnitines,
amino acids, ...), which are unimodal.

The default space (``n_components_pca=None``) is therefore the *direction of
minimum kurtosis* (Peña & Prieto 2001, "Cluster identification using
projections", JASA 96:1433): the autoscaled data are reduced by PCA to the
components explaining 30 % of the variance, rotated by independent component
analysis (FastICA, seeded) and the one component with the smallest excess
kurtosis is kept. A balanced mixture of two groups is platykurtic (negative
excess kurtosis) along the axis that separates them, whereas correlated but
unimodal structure is Gaussian and unbalanced splits (such as sex, 3:1 in the
study) are much less platykurtic. The choice uses no labels. Only the leading
components are rotated: a subgroup shift shared by many analytes lies in them,
while every further dimension lets ICA find spurious platykurtic directions in
noise (with 600 synthetic cases, 30 % kept the same direction across bootstrap
resamples where 50 % did not). It suits a split
into two subgroups (as in the published study); for more subgroups give
``n_components_pca`` (an int: that many principal components; a float in
(0, 1): the components explaining that share of variance; ``"none"``: all
autoscaled analytes).

Choice of k
-----------
``k`` is chosen by the criterion (smallest BIC, or largest silhouette) among the k
whose clusters all hold at least :func:`~hikisig.models.result.min_cluster_size`
samples (``max(5, 10%)``, rounded up): a k is never chosen for a cluster too small to
describe. When no k in the range meets that rule, the criterion's best k is kept, but
the stratification cannot be validated and its verdict says why. ``k_bic`` and
``k_silhouette`` record the k each criterion prefers under the same rule, so that a
report can show both when they disagree.

Stability
---------
``bootstraps`` resamples of the rows are clustered again with the chosen ``k``
(the whole pipeline, including the projection, is refitted), every original
row is assigned by the refitted model (Ward clusters by their nearest
centroid), and the adjusted Rand index (ARI) with the full-data clusters is
recorded. Each resample has its own seed from :func:`hikisig.engine.spawn_seeds`
and runs through an :class:`~hikisig.engine.Engine`, so serial, loky and Dask
runs give identical results. The stratification is ``validated`` when the mean ARI
is at least 0.6 and every cluster holds at least ``min_cluster_size`` samples.

Signature importance
--------------------
The permutation importance of the signature re-scores, for each permuted copy
of the held-out half, only the trees of the forest whose path for a row splits
on the permuted analyte (the others give that row the vote they give the intact
row); the votes are added in the forest's order, so the predictions are those
of ``RandomForestClassifier.predict`` on the permuted copies, to the last bit
(see :class:`hikisig.models.discriminate._ForestCopies`).
"""

from __future__ import annotations

import warnings
from collections.abc import Sequence
from typing import Any

import numpy as np
import pandas as pd
from scipy import stats as sps
from sklearn.base import BaseEstimator, ClusterMixin, TransformerMixin
from sklearn.cluster import AgglomerativeClustering, KMeans
from sklearn.decomposition import PCA, FastICA
from sklearn.ensemble import RandomForestClassifier
from sklearn.exceptions import ConvergenceWarning
from sklearn.metrics import adjusted_rand_score, silhouette_score
from sklearn.mixture import GaussianMixture
from sklearn.model_selection import StratifiedKFold
from sklearn.neighbors import NearestCentroid
from sklearn.pipeline import Pipeline
from sklearn.utils.validation import check_is_fitted
from threadpoolctl import threadpool_limits

from hikisig.config import CLUSTER_METHODS, StratifySection
from hikisig.engine import Engine, spawn_seeds
from hikisig.models.discriminate import _IMPORTANCE_CELLS, _ForestCopies, _preprocessing_steps
from hikisig.models.result import (
    SIGNATURE_COLUMNS,
    StratificationResult,
    min_cluster_size,
    model_input,
    training_data,
)
from hikisig.stats.univariate import adjust, grouped_moments, hedges_from, welch_student

__all__ = ["METHODS", "ClusterSpace", "SizeOrderedClusterer", "stratify"]

#: Clustering methods of :func:`stratify`.
METHODS = CLUSTER_METHODS
_C = StratifySection()
#: Share of variance kept by PCA before the minimum-kurtosis rotation.
AUTO_VARIANCE = 0.3
#: Number of analytes counted as "top" in the signature's bootstrap stability.
TOP_N = 10


# -- pipeline steps ------------------------------------------------------------------------------


class ClusterSpace(TransformerMixin, BaseEstimator):
    """The space the clusters are sought in (see the module docstring).

    Parameters
    ----------
    n_components : None, int, float or "none"
        None: the minimum-kurtosis independent component of the principal
        components explaining :data:`AUTO_VARIANCE` of the variance; int:
        that many principal components; float in (0, 1): the principal
        components explaining that share of the variance; ``"none"``: the
        input unchanged.
    random_state : int
        Seed of PCA (randomised solvers) and FastICA.
    """

    def __init__(self, n_components: int | float | str | None = None, random_state: int = 0) -> None:
        self.n_components = n_components
        self.random_state = random_state

    def fit(self, X: Any, y: Any = None) -> ClusterSpace:
        Xv = np.asarray(X, dtype=np.float64)
        nc = self.n_components
        self.pca_: PCA | None = None
        self.ica_: FastICA | None = None
        self.keep_: np.ndarray | None = None
        self.kurtosis_: np.ndarray | None = None
        if isinstance(nc, str):
            if nc != "none":
                raise ValueError(f"n_components_pca must be None, a number or 'none'; got {nc!r}")
        elif nc is None:
            self.pca_ = PCA(AUTO_VARIANCE, svd_solver="full").fit(Xv)
            scores = self.pca_.transform(Xv)
            if scores.shape[1] == 1:
                self.keep_ = np.array([0])
                self.kurtosis_ = np.atleast_1d(sps.kurtosis(scores[:, 0]))
            else:
                with warnings.catch_warnings():
                    warnings.simplefilter("ignore", ConvergenceWarning)
                    self.ica_ = FastICA(whiten="unit-variance", random_state=self.random_state,
                                        max_iter=400, tol=1e-3).fit(scores)
                kurt = np.asarray(sps.kurtosis(self.ica_.transform(scores), axis=0))
                self.kurtosis_ = kurt
                self.keep_ = np.array([int(np.argmin(kurt))])
        else:
            if isinstance(nc, bool) or not (
                (isinstance(nc, int | np.integer) and nc >= 1) or (isinstance(nc, float) and 0 < nc < 1)
            ):
                raise ValueError(f"n_components_pca must be an int >= 1 or a float in (0, 1); got {nc!r}")
            n = int(min(nc, *Xv.shape)) if isinstance(nc, int | np.integer) else nc
            self.pca_ = PCA(n, svd_solver="full").fit(Xv)
        self.n_features_in_ = Xv.shape[1]
        return self

    def transform(self, X: Any) -> np.ndarray:
        check_is_fitted(self, "n_features_in_")
        Xv = np.asarray(X, dtype=np.float64)
        if self.pca_ is None:
            return Xv
        out: np.ndarray = self.pca_.transform(Xv)
        if self.ica_ is not None:
            out = self.ica_.transform(out)
        if self.keep_ is not None:
            out = out[:, self.keep_]
        return out


class SizeOrderedClusterer(ClusterMixin, BaseEstimator):
    """A clusterer whose clusters are numbered 1..k by decreasing training size.

    Parameters
    ----------
    method : {"gmm", "kmeans", "ward"}
        ``gmm``: :class:`~sklearn.mixture.GaussianMixture` (``n_init=5``);
        ``kmeans``: :class:`~sklearn.cluster.KMeans` (``n_init=10``);
        ``ward``: Ward agglomerative clustering, with a
        :class:`~sklearn.neighbors.NearestCentroid` fitted on its clusters to
        assign new samples.
    k : int
    covariance_type : str
        Of the Gaussian mixture (``full`` or ``diag``).
    random_state : int

    Attributes
    ----------
    estimator_ : the fitted clusterer
    mapping_ : ndarray
        ``mapping_[raw_label]`` is the cluster number (1 = largest).
    labels_ : ndarray
        Training cluster numbers.
    """

    def __init__(self, method: str = "gmm", k: int = 2, covariance_type: str = "full",
                 random_state: int = 0) -> None:
        self.method = method
        self.k = k
        self.covariance_type = covariance_type
        self.random_state = random_state

    def fit(self, X: Any, y: Any = None) -> SizeOrderedClusterer:
        Xv = np.asarray(X, dtype=np.float64)
        raw = _raw_fit(Xv, self.method, self.k, self.covariance_type, self.random_state)
        self.estimator_ = raw[0]
        labels = raw[1]
        self.mapping_ = _size_order(labels, self.k)
        self.labels_ = self.mapping_[labels]
        self.centroid_: NearestCentroid | None = None
        if self.method == "ward":
            self.centroid_ = NearestCentroid().fit(Xv, self.labels_)
        self.bic_ = float(self.estimator_.bic(Xv)) if self.method == "gmm" else float("nan")
        return self

    def predict(self, X: Any) -> np.ndarray:
        check_is_fitted(self, "mapping_")
        Xv = np.asarray(X, dtype=np.float64)
        if self.centroid_ is not None:
            return np.asarray(self.centroid_.predict(Xv), dtype=np.int64)
        out: np.ndarray = self.mapping_[self.estimator_.predict(Xv)]
        return out

    def predict_proba(self, X: Any) -> np.ndarray:
        """Posterior probabilities of clusters 1..k (Gaussian mixture only)."""
        if self.method != "gmm":
            raise AttributeError("predict_proba is available for method='gmm' only")
        check_is_fitted(self, "mapping_")
        raw = self.estimator_.predict_proba(np.asarray(X, dtype=np.float64))
        out = np.empty_like(raw)
        out[:, self.mapping_ - 1] = raw
        return out


def _raw_fit(Xv: np.ndarray, method: str, k: int, covariance_type: str, seed: int) -> tuple[Any, np.ndarray]:
    """Fit one clusterer; return it and its raw training labels (consistent with ``predict``)."""
    if method == "gmm":
        gmm = GaussianMixture(k, covariance_type=covariance_type, n_init=5, random_state=seed,
                              reg_covar=1e-6).fit(Xv)
        return gmm, np.asarray(gmm.predict(Xv))
    if method == "kmeans":
        km = KMeans(k, n_init=10, random_state=seed).fit(Xv)
        return km, np.asarray(km.predict(Xv))
    if method == "ward":
        ward = AgglomerativeClustering(n_clusters=k, linkage="ward").fit(Xv)
        return ward, np.asarray(ward.labels_)
    raise ValueError(f"unknown method {method!r} (expected {', '.join(METHODS)})")


def _size_order(labels: np.ndarray, k: int) -> np.ndarray:
    """Map raw labels 0..k-1 to 1..k by decreasing size (ties: smaller raw label first)."""
    sizes = np.bincount(labels, minlength=k)
    order = np.lexsort((np.arange(k), -sizes))
    mapping = np.empty(k, dtype=np.int64)
    mapping[order] = np.arange(1, k + 1)
    return mapping


def _pipeline(method: str, k: int, n_components_pca: Any, scaling: str, covariance_type: str,
              seed: int, log: bool = True, frames: bool = False) -> Pipeline:
    """Preprocessing (:func:`~hikisig.models.discriminate._preprocessing_steps`), space,
    clusterer; with ``frames`` the preprocessing steps pass DataFrames (column names)."""
    steps = _preprocessing_steps(log, scaling)
    if frames:
        for _, step in steps:
            step.set_output(transform="pandas")
    return Pipeline([
        *steps,
        ("space", ClusterSpace(n_components_pca, random_state=seed)),
        ("cluster", SizeOrderedClusterer(method, k, covariance_type, random_state=seed)),
    ])


# -- statistics ----------------------------------------------------------------------------------


def _cluster_effects(logx: np.ndarray, labels: np.ndarray, k: int
                     ) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Counts, means, variances (k, p) and Hedges g (k, p) of each cluster vs the rest."""
    masks = labels[:, None] == np.arange(1, k + 1)[None, :]
    n, mean, var = grouped_moments(logx, masks)
    n_r, mean_r, var_r = grouped_moments(logx, ~masks)
    g = hedges_from(n, mean, var, n_r, mean_r, var_r)["effect"]
    return n, mean, var, g


def _top_by_effect(logx: np.ndarray, labels: np.ndarray, k: int) -> np.ndarray:
    _, _, _, g = _cluster_effects(logx, labels, k)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)
        best = np.nan_to_num(np.nanmax(np.abs(g), axis=0), nan=-1.0)
    return np.argsort(-best, kind="stable")[:TOP_N]


def _bootstrap_task(task: tuple[np.ndarray, np.ndarray, np.ndarray, dict[str, Any], int]
                    ) -> tuple[float, list[int]]:
    """One bootstrap: refit on resampled rows, assign every row, ARI and top analytes."""
    with threadpool_limits(limits=1):
        return _bootstrap(*task)


def _bootstrap(values: np.ndarray, logx: np.ndarray, labels: np.ndarray, cfg: dict[str, Any],
               seed: int) -> tuple[float, list[int]]:
    rng = np.random.default_rng(seed)
    rows = rng.integers(0, values.shape[0], size=values.shape[0])
    pipe = _pipeline(cfg["method"], cfg["k"], cfg["n_components_pca"], cfg["scaling"],
                     cfg["covariance_type"], seed, cfg["log"])
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        pipe.fit(values[rows])
    pred = np.asarray(pipe.predict(values))
    ari = float(adjusted_rand_score(labels, pred))
    return ari, _top_by_effect(logx, pred, cfg["k"]).tolist()


def _profiles(logx: np.ndarray, raw: np.ndarray, labels: np.ndarray, k: int,
              analytes: Sequence[str], log: bool = True) -> tuple[pd.DataFrame, np.ndarray]:
    n, mean, var, g = _cluster_effects(logx, labels, k)
    p_count = logx.shape[1]
    if k == 2:
        p = welch_student(n[0], mean[0], var[0], n[1], mean[1], var[1])["welch"]["p"]
    else:
        # Kruskal-Wallis: one scipy call per analyte (a loop over ~130 analytes is cheap)
        p = np.full(p_count, np.nan)
        for j in range(p_count):
            groups = [col[~np.isnan(col)] for col in (logx[labels == c, j] for c in range(1, k + 1))]
            if all(gr.size > 0 for gr in groups) and np.ptp(np.concatenate(groups)) > 0:
                p[j] = float(sps.kruskal(*groups).pvalue)
    q = adjust(np.asarray(p, dtype=float), "fdr_bh")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)
        med = np.vstack([np.nanmedian(raw[labels == c], axis=0) if np.any(labels == c)
                         else np.full(p_count, np.nan) for c in range(1, k + 1)])
    rows = pd.DataFrame({
        "analyte": np.tile(np.asarray(analytes, dtype=object), k),
        "cluster": np.repeat(np.arange(1, k + 1), p_count),
        "n": n.ravel().astype(np.int64),
        "mean_log2" if log else "mean": mean.ravel(),
        "median": med.ravel(),
        "effect": g.ravel(),
        "p": np.tile(p, k),
        "q": np.tile(q, k),
    })
    rows = rows.sort_values(["analyte", "cluster"], kind="stable").reset_index(drop=True)
    return rows, g


def _permutation_importance(x: np.ndarray, labels: np.ndarray, seed: int, repeats: int = 10,
                            max_cells: int = _IMPORTANCE_CELLS) -> np.ndarray:
    """Mean decrease in held-out accuracy of a random forest when one analyte is permuted.

    Two-fold (stratified, seeded): a forest (100 trees) is trained on one half
    and the analytes are permuted ``repeats`` times in the other half (analyte
    ``j``, repeat ``r``: the ``(j * repeats + r)``-th permutation drawn from
    ``default_rng(seed)``, continuing over the folds); the decreases are averaged
    over repeats and folds. Training-set importances of a fully grown forest are
    close to zero, hence the held-out half. The permuted copies are scored in
    chunks of at most ``max_cells`` rows x analytes, only by the trees they can
    change (:class:`~hikisig.models.discriminate._ForestCopies`; the forest's
    ``predict`` itself if its predictions of the intact rows are not reproduced).
    """
    p = x.shape[1]
    rng = np.random.default_rng(seed)
    total = np.zeros(p)
    folds = StratifiedKFold(2, shuffle=True, random_state=seed).split(x, labels)
    for train, test in folds:
        rf = RandomForestClassifier(n_estimators=100, random_state=seed, n_jobs=1)
        rf.fit(x[train], labels[train])
        xt, yt = x[test], labels[test]
        base = float(np.mean(rf.predict(xt) == yt))
        m = len(test)
        copies = _ForestCopies(rf, np.asarray(xt, dtype=np.float32), list(range(len(rf.classes_))))
        forest = copies if copies.exact and np.array_equal(
            copies.proba(np.zeros(1, dtype=np.intp), np.arange(m)[None, :])[0],
            rf.predict_proba(xt)) else None
        per_chunk = max(1, max_cells // (repeats * m * (1 if forest is not None else p)))
        for start in range(0, p, per_chunk):
            cols = np.arange(start, min(p, start + per_chunk))
            perms = np.stack([rng.permutation(m) for _ in cols for _ in range(repeats)])
            if forest is not None:
                proba = forest.proba(np.repeat(cols, repeats), perms)
                pred = rf.classes_.take(np.argmax(proba, axis=-1), axis=0)
            else:
                stack = np.tile(xt, (len(cols) * repeats, 1))
                for c, (j, perm) in enumerate(zip(np.repeat(cols, repeats), perms, strict=True)):
                    stack[c * m:(c + 1) * m, j] = xt[perm, j]
                pred = rf.predict(stack)
            pred = pred.reshape(len(cols), repeats, m)
            total[cols] += base - np.mean(pred == yt[None, None, :], axis=(1, 2))
    out: np.ndarray = total / 2
    return out


def _signature(logx: np.ndarray, labels: np.ndarray, g: np.ndarray, k: int, analytes: Sequence[str],
               top_counts: np.ndarray, n_boot: int, seed: int) -> pd.DataFrame:
    filled = np.where(np.isnan(logx), np.nanmin(logx, axis=0), logx)
    imp = _permutation_importance(filled, labels, seed)
    if k == 2:
        effect = g[1]  # the smaller cluster (2) vs the larger
        direction = np.where(effect >= 0, "higher in cluster 2", "lower in cluster 2")
    else:
        pick = np.nanargmax(np.nan_to_num(np.abs(g), nan=-1.0), axis=0)
        effect = g[pick, np.arange(g.shape[1])]
        n_mean = np.nanargmax(np.nan_to_num(g, nan=-np.inf), axis=0)
        direction = np.array([f"highest in cluster {c + 1}" for c in n_mean], dtype=object)
    stability = top_counts / n_boot if n_boot else np.full(len(analytes), np.nan)
    sig = pd.DataFrame({"analyte": list(analytes), "direction": direction, "effect": effect,
                        "importance": imp, "stability": stability})
    order = np.lexsort((-np.abs(np.nan_to_num(effect)), -imp))
    sig = sig.iloc[order].reset_index(drop=True)
    sig.insert(1, "rank", np.arange(1, len(sig) + 1))
    return sig[SIGNATURE_COLUMNS]


def _clinical(clinical: pd.DataFrame, labels: np.ndarray, k: int) -> pd.DataFrame:
    rows: list[dict[str, Any]] = []
    for var in clinical.columns:
        col = clinical[var]
        if pd.api.types.is_numeric_dtype(col) and not pd.api.types.is_bool_dtype(col):
            v = col.to_numpy(dtype=float)
            groups = [v[(labels == c) & ~np.isnan(v)] for c in range(1, k + 1)]
            p = np.nan
            with warnings.catch_warnings():
                warnings.simplefilter("ignore", RuntimeWarning)
                if all(gr.size > 1 for gr in groups):
                    if k == 2:
                        p = float(sps.ttest_ind(groups[0], groups[1], equal_var=False).pvalue)
                    elif np.ptp(np.concatenate(groups)) > 0:
                        p = float(sps.kruskal(*groups).pvalue)
            test = "welch" if k == 2 else "kruskal"
            for c, gr in enumerate(groups, start=1):
                rows.append({"variable": var, "type": "numeric", "cluster": c, "level": None,
                             "n": int(gr.size), "mean": float(np.mean(gr)) if gr.size else np.nan,
                             "sd": float(np.std(gr, ddof=1)) if gr.size > 1 else np.nan,
                             "count": np.nan, "test": test, "p": p})
        else:
            ok = col.notna().to_numpy()
            table = pd.crosstab(col[ok].astype(str).to_numpy(), labels[ok])
            table = table.reindex(columns=range(1, k + 1), fill_value=0)
            p = np.nan
            if table.shape[0] > 1 and (table.sum(axis=0) > 0).sum() > 1:
                nonempty = table.loc[:, table.sum(axis=0) > 0]
                p = float(sps.chi2_contingency(nonempty.to_numpy()).pvalue)
            for c in range(1, k + 1):
                for level in table.index:
                    rows.append({"variable": var, "type": "categorical", "cluster": c,
                                 "level": str(level), "n": int(table[c].sum()), "mean": np.nan,
                                 "sd": np.nan, "count": int(table.loc[level, c]), "test": "chi2",
                                 "p": p})
    return pd.DataFrame(rows, columns=["variable", "type", "cluster", "level", "n", "mean", "sd",
                                       "count", "test", "p"])


# -- main entry point ----------------------------------------------------------------------------


def stratify(X: pd.DataFrame, *, ids: Sequence[Any] | None = None, method: str = _C.method,
             k: int | None = _C.k, k_range: tuple[int, int] = (2, 6), criterion: str | None = None,
             n_components_pca: int | float | str | None = None, scaling: str = "auto",
             bootstraps: int = _C.bootstraps, clinical: pd.DataFrame | None = None, seed: int = 0,
             engine: Engine | None = None, covariance_type: str = "full",
             log: bool = True) -> StratificationResult:
    """Cluster samples (cases) into subgroups and describe the subgroups.

    Parameters
    ----------
    X : DataFrame
        Samples x analytes, positive concentrations (NaN = missing, imputed by
        half the training minimum), or with ``log=False`` values on an additive
        scale (NaN imputed by the training median).
    ids : sequence, optional
        Sample ids (default: ``X.index``).
    method : {"gmm", "kmeans", "ward"}
    k : int, optional
        Number of clusters; None chooses it over ``k_range`` (inclusive), among the k
        whose clusters all hold at least ``max(5, 10%)`` of the samples (see the module
        docstring).
    criterion : {"bic", "silhouette"}, optional
        How ``k`` is chosen: smallest BIC (default for ``gmm``; only ``gmm``)
        or largest silhouette (default for ``kmeans`` and ``ward``).
    n_components_pca : None, int, float or "none"
        The clustering space; None is the minimum-kurtosis projection (see the
        module docstring), an int or float is PCA, ``"none"`` all analytes.
    scaling : str
        :class:`~hikisig.prep.Scaler` method after log2.
    bootstraps : int
        Resamples for the stability of the clusters and of the signature (0: none).
    clinical : DataFrame, optional
        Clinical variables indexed like ``X``; numeric columns are compared by
        Welch's t (k = 2) or Kruskal-Wallis, the others by chi-square.
    seed : int
    engine : Engine, optional
        Executor of the bootstraps (default serial).
    covariance_type : {"full", "diag"}
        Of the Gaussian mixture.
    log : bool
        ``True``: concentrations, half-minimum imputed and log2-transformed before
        scaling. ``False``: values on an additive scale that may be negative (z-scores,
        already logged values): median imputation, no log; ``profiles`` then has ``mean``
        (of the values as given) instead of ``mean_log2``, and every effect is computed on
        the values as given.

    Returns
    -------
    StratificationResult
        ``model`` is a fitted Pipeline whose ``predict``
        gives cluster numbers 1..k (1 = largest cluster); ``k_bic`` and
        ``k_silhouette`` (the k each criterion prefers), ``min_cluster_size``,
        ``validated`` and ``verdict``; tables ``k_selection`` (``k, silhouette, bic,
        smallest_cluster, size_ok``), ``assignments``, ``profiles``, ``signature`` and
        ``clinical`` (when given).

    Notes
    -----
    ``profiles`` has one row per analyte and cluster: ``n``, ``mean_log2``
    (``mean`` with ``log=False``), ``median`` (on the original scale, missing
    values ignored), ``effect`` (Hedges' g of the cluster vs the rest on the
    imputed log2 values; with ``log=False`` on the imputed values as given) and the
    analyte's ``p`` (Welch for two clusters, Kruskal-Wallis otherwise) and
    ``q`` (Benjamini-Hochberg over analytes). The ``signature`` ranks analytes
    by the permutation importance (mean decrease in held-out accuracy, two
    folds, 10 repeats) of a seeded random forest predicting the clusters; ``effect`` is, for two
    clusters, Hedges' g of cluster 2 (the smaller) vs cluster 1, otherwise the
    cluster-vs-rest g of largest magnitude; ``stability`` is the share of
    bootstraps in which the analyte is among the :data:`TOP_N` by largest
    |g|.
    """
    if method not in METHODS:
        raise ValueError(f"unknown method {method!r} (expected {', '.join(METHODS)})")
    if criterion is None:
        criterion = "bic" if method == "gmm" else "silhouette"
    if criterion not in ("bic", "silhouette"):
        raise ValueError("criterion must be 'bic' or 'silhouette'")
    if criterion == "bic" and method != "gmm":
        raise ValueError("criterion='bic' needs method='gmm'")
    if covariance_type not in ("full", "diag"):
        raise ValueError("covariance_type must be 'full' or 'diag'")
    if bootstraps < 0:
        raise ValueError("bootstraps must be >= 0")
    X = model_input(X)
    n = X.shape[0]
    ids_list = list(X.index) if ids is None else list(ids)
    if len(ids_list) != n:
        raise ValueError(f"ids has {len(ids_list)} entries for {n} samples")
    features = [str(c) for c in X.columns]
    values = X.to_numpy(dtype=np.float64)
    if k is not None:
        ks = [int(k)]
    else:
        lo, hi = int(k_range[0]), int(k_range[1])
        if lo < 2 or hi < lo:
            raise ValueError(f"k_range must satisfy 2 <= low <= high; got {k_range!r}")
        ks = list(range(lo, hi + 1))
    if min(ks) < 2 or max(ks) >= n:
        raise ValueError(f"k must be in [2, n_samples - 1]; got {ks}")
    engine = engine or Engine("serial")
    # the matrices are small: one BLAS/OpenMP thread avoids oversubscription (bootstraps may run
    # in parallel processes) and makes the results independent of the thread count
    with threadpool_limits(limits=1):
        return _stratify(X, values, ids_list, features, method=method, ks=ks, k=k,
                         k_range=k_range, criterion=criterion, n_components_pca=n_components_pca,
                         scaling=scaling, bootstraps=bootstraps, clinical=clinical, seed=seed,
                         engine=engine, covariance_type=covariance_type, log=log)


def _stratify(X: pd.DataFrame, values: np.ndarray, ids_list: list[Any], features: list[str], *,
              method: str, ks: list[int], k: int | None, k_range: tuple[int, int], criterion: str,
              n_components_pca: Any, scaling: str, bootstraps: int, clinical: pd.DataFrame | None,
              seed: int, engine: Engine, covariance_type: str, log: bool) -> StratificationResult:
    n, index = values.shape[0], X.index
    pre = _pipeline(method, ks[0], n_components_pca, scaling, covariance_type, seed, log,
                    frames=True)[:-1]
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        Z = np.asarray(pre.fit_transform(X))
    # imputed (and log2) values: the preprocessing before the scaling
    logx = np.asarray(pre[:[name for name, _ in pre.steps].index("scale")].transform(X),
                      dtype=np.float64)

    # choose k among the k whose clusters are all large enough
    need = min_cluster_size(n)
    fits: dict[int, SizeOrderedClusterer] = {}
    sel_rows = []
    for kk in ks:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", ConvergenceWarning)
            est = SizeOrderedClusterer(method, kk, covariance_type, random_state=seed).fit(Z)
        fits[kk] = est
        n_lab = np.unique(est.labels_).size
        sil = float(silhouette_score(Z, est.labels_)) if 1 < n_lab < n else float("nan")
        smallest = int(np.bincount(np.asarray(est.predict(Z)), minlength=kk + 1)[1:].min())
        sel_rows.append({"k": kk, "silhouette": sil, "bic": est.bic_, "smallest_cluster": smallest,
                         "size_ok": smallest >= need})
    k_sel = pd.DataFrame(sel_rows, columns=["k", "silhouette", "bic", "smallest_cluster", "size_ok"])
    allowed = k_sel[k_sel["size_ok"]] if k_sel["size_ok"].any() else k_sel
    k_bic = _best_k(allowed, "bic") if method == "gmm" else None
    k_silhouette = _best_k(allowed, "silhouette")
    preferred = k_bic if criterion == "bic" else k_silhouette
    k_best = int(allowed["k"].iloc[0]) if preferred is None else preferred

    # the final model: the preprocessing fitted above plus the chosen clusterer
    model = Pipeline([*pre.steps, ("cluster", fits[k_best])])
    labels = np.asarray(model.predict(X), dtype=np.int64)
    if method == "gmm":
        proba = model.predict_proba(X)
        prob = proba[np.arange(n), labels - 1]
    else:
        prob = np.full(n, np.nan)
    assignments = pd.DataFrame({"id": ids_list, "cluster": labels, "probability": prob})
    sizes = np.bincount(labels, minlength=k_best + 1)[1:].tolist()

    # bootstrap stability
    cfg = {"method": method, "k": k_best, "n_components_pca": n_components_pca, "scaling": scaling,
           "covariance_type": covariance_type, "log": log}
    seeds = spawn_seeds(seed, bootstraps)
    results = engine.map(_bootstrap_task, [(values, logx, labels, cfg, s) for s in seeds])
    aris = np.array([r[0] for r in results], dtype=float)
    top_counts = np.zeros(len(features))
    for _, top in results:
        top_counts[top] += 1

    profiles, g = _profiles(logx, values, labels, k_best, features, log)
    signature = _signature(logx, labels, g, k_best, features, top_counts, bootstraps, seed)
    tables = {"k_selection": k_sel, "assignments": assignments, "profiles": profiles,
              "signature": signature}
    if clinical is not None:
        clin = pd.DataFrame(clinical)
        if not clin.index.equals(index):
            if not set(index) <= set(clin.index):
                raise ValueError("clinical must be indexed like X (some samples are missing)")
            clin = clin.loc[index]
        tables["clinical"] = _clinical(clin, labels, k_best)

    chosen = k_sel.loc[k_sel["k"] == k_best].iloc[0]

    def _num(v: float) -> float | None:
        return float(v) if np.isfinite(v) else None

    space = model.named_steps["space"]
    params: dict[str, Any] = {
        "method": method, "k": k, "k_range": list(k_range), "criterion": criterion,
        "n_components_pca": n_components_pca, "scaling": scaling, "bootstraps": bootstraps,
        "seed": seed, "covariance_type": covariance_type, "engine": repr(engine), "log": bool(log),
        "space_dimensions": int(Z.shape[1]),
        "space_pca_components": int(space.pca_.n_components_) if space.pca_ is not None else None,
    }
    return StratificationResult(
        model=model, features=features, tables=tables, params=params, n=int(n), seed=int(seed),
        training=training_data(X, ids=ids_list), method=method, k=k_best, criterion=criterion,
        k_bic=k_bic, k_silhouette=k_silhouette, min_cluster_size=need,
        silhouette=_num(float(chosen["silhouette"])), bic=_num(float(chosen["bic"])),
        stability_ari_mean=_num(float(aris.mean())) if aris.size else None,
        stability_ari_sd=_num(float(aris.std(ddof=1))) if aris.size > 1 else None,
        cluster_sizes=[int(s) for s in sizes]).assess()


def _best_k(sel: pd.DataFrame, criterion: str) -> int | None:
    """The k of ``sel`` (rows of ``k_selection``) with the smallest BIC or the largest
    silhouette (None when the criterion has no finite value)."""
    v = sel[criterion].to_numpy(dtype=np.float64)
    if not np.isfinite(v).any():
        return None
    return int(sel["k"].iloc[int(np.nanargmin(v) if criterion == "bic" else np.nanargmax(v))])
