"""Case-control discrimination from blood metabolite profiles, validated by repeated cross-validation.

:func:`discriminate` fits ``MinFractionImputer -> LogTransformer(log2) ->
Scaler(auto) -> classifier`` (with ``log=False``, for values on an additive scale
such as z-scores: ``SimpleImputer(median) -> Scaler(auto) -> classifier``) and
estimates how well it separates cases from controls with out-of-fold (OOF)
predictions of repeated stratified k-fold cross-validation. Every preprocessing
statistic is learned on training folds only. The pipeline's steps pass
DataFrames (``set_output(transform="pandas")``), so messages name analytes.
All resampling (CV folds, bootstraps, permutations) runs through a
:class:`hikisig.engine.Engine`, each task with its own seed from
:func:`hikisig.engine.spawn_seeds`, so results do not depend on the backend.

Permutation importance (per CV fold, :data:`_IMPORTANCE_REPEATS` repeats, the
definition of ``sklearn.inspection.permutation_importance`` with ROC AUC) is
computed in chunks of permuted copies of bounded size; the preprocessing, which
works column by column, is applied once to the test rows; and a random forest
re-scores a permuted copy only with the trees whose path for a row splits on the
permuted analyte. The numbers are those of scoring every permuted copy with the
whole model (tested).

Headline AUC
------------
``auc`` is the mean over CV repeats of each repeat's out-of-fold AUC (the
``per_repeat`` table); its 95% interval is the percentile interval of that same
statistic over :data:`_N_BOOT` bootstrap resamples of participants (samples when
there are no groups), stratified by class: each resample scores every repeat's
out-of-fold probabilities of the resampled units and averages the repeats' AUCs.
``auc_pooled`` is the AUC of the probabilities averaged over repeats (a smoother
ranking, so usually higher than any single repeat's), with a DeLong interval; the
ROC curve, its band and the calibration describe those pooled probabilities.

Leave-site-out validation
-------------------------
With ``cv="leave-site-out"`` each site is predicted by a model trained on the other
sites (one fold per site, no repeats). ``auc`` is the within-site AUC of those
out-of-site predictions (case-control pairs of the same site; the per-site AUCs weighted
by their pairs), bootstrapped by site and class and tested by permuting labels within
sites: a site effect that goes with a site's case share can neither raise nor test it.
``auc_pooled`` pools all out-of-site predictions (pairs across sites too). ComBat
(``harmonise="combat"``) runs inside the training folds: see :class:`SiteComBat`.

Decision thresholds
-------------------
Thresholds are chosen inside each training fold and scored on its held-out fold,
never on the predictions they are judged by. For every outer fold the Youden and
target-sensitivity thresholds are chosen on honest predictions of that fold's
training samples: the random forest's out-of-bag probabilities (no extra fits);
for the other models (and a recalibrated forest) an inner stratified 3-fold CV
(group-aware with groups) within the training fold, refitting the fold's model
(with the hyper-parameters the fold's grid search chose). The thresholds are
applied to the held-out fold; sensitivity, specificity, PPV and NPV come from the
held-out decisions pooled over folds and repeats (Wilson intervals on the number of
cases or controls, not cases x repeats). The ``threshold`` that :func:`predict
<hikisig.models.predict.predict>` uses is chosen the same way for the final model
on all samples. Each threshold is the midpoint between the lowest score called
positive and the next lower score.

Classifiers (``model``):

* ``"rf"``: ``RandomForestClassifier(n_estimators=200, n_jobs=1, oob_score=True)``
  seeded per task (inner CV tunes ``max_features`` in {sqrt, 0.3}).
* ``"logistic"``: L2-penalised logistic regression, ``C=1`` (inner CV tunes
  ``C`` in {0.01, 0.1, 1, 10}).
* ``"plsda"``: :class:`PLSDAClassifier` (inner CV tunes ``n_components`` in
  {1, 2, 3}).

Examples
--------
>>> rng = np.random.default_rng(0)
>>> y = np.repeat([1, 0], 20)
>>> X = pd.DataFrame(rng.lognormal(size=(40, 5)), columns=list("abcde"))
>>> X["a"] *= np.where(y == 1, 3.0, 1.0)
>>> res = discriminate(X, y, model="logistic", cv_repeats=2, permutations=50)
>>> res.auc > 0.7, list(res.tables["oof_predictions"].columns)
(True, ['id', 'y_true', 'y_prob'])
"""

from __future__ import annotations

import math
import warnings
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd
from scipy import stats as sps
from scipy.special import expit
from sklearn.base import BaseEstimator, ClassifierMixin, TransformerMixin, clone
from sklearn.calibration import CalibratedClassifierCV
from sklearn.cross_decomposition import PLSRegression
from sklearn.ensemble import RandomForestClassifier
from sklearn.linear_model import LogisticRegression
from sklearn.metrics import roc_auc_score, roc_curve
from sklearn.model_selection import GridSearchCV, StratifiedGroupKFold, StratifiedKFold, train_test_split
from sklearn.pipeline import Pipeline
from sklearn.utils.multiclass import check_classification_targets, type_of_target
from sklearn.utils.validation import check_is_fitted, validate_data
from statsmodels.stats.proportion import proportion_confint

from hikisig.config import MODELS, PERMUTATION_SCHEMES, DiscriminateSection, Screening
from hikisig.engine import Engine, spawn_seeds
from hikisig.errors import HikisigError
from hikisig.models.calibration import brier_score, calibration_slope_intercept, reliability_table
from hikisig.models.result import (
    SIGNATURE_COLUMNS,
    DiscriminationResult,
    HeldOut,
    model_input,
    training_data,
)
from hikisig.prep import LogTransformer, MinFractionImputer, Scaler, SimpleImputer, make_imputer
from hikisig.stats.roc import auc_delong
from hikisig.stats.screening import predictive_values
from hikisig.stats.univariate import hedges_g

__all__ = [
    "CV_SCHEMES",
    "HARMONISERS",
    "MODELS",
    "PERMUTATION_SCHEMES",
    "SITE_COLUMN",
    "PLSDAClassifier",
    "SiteComBat",
    "SitePassthrough",
    "case_column",
    "check_sites",
    "cv_splits",
    "discriminate",
    "encode_labels",
    "make_pipeline",
    "site_splits",
    "with_site",
]

_D = DiscriminateSection()
#: Validation schemes (``cv``).
CV_SCHEMES = ("stratified", "leave-site-out")
#: Site harmonisations inside the model pipelines (``harmonise``).
HARMONISERS = ("none", "combat")
#: The column that carries each sample's site into a harmonising pipeline (ComBat consumes
#: and drops it; no other step, importance or feature list sees it).
SITE_COLUMN = "__site__"
#: Samples an unseen site needs for its own location and scale (see :class:`SiteComBat`).
MIN_UNSEEN_SITE = 2
#: Points of the false positive rate at which the ROC band is given.
ROC_GRID = np.linspace(0.0, 1.0, 101)

#: Hyper-parameter grids searched with ``inner_cv=True`` (keys are names in the ``clf`` step).
PARAM_GRIDS: dict[str, dict[str, list[Any]]] = {
    "rf": {"max_features": ["sqrt", 0.3]},
    "logistic": {"C": [0.01, 0.1, 1.0, 10.0]},
    "plsda": {"n_components": [1, 2, 3]},
}

_N_BOOT = 1000
_BLOCK = 100  # bootstrap / OOF-permutation resamples per engine task
_IMPORTANCE_REPEATS = 5
_INNER_FOLDS = 3
#: Values (rows x columns) of the permuted copies held at once by the permutation importance.
_IMPORTANCE_CELLS = 4_000_000


# -- PLS-DA -------------------------------------------------------------------------------------


class PLSDAClassifier(ClassifierMixin, BaseEstimator):
    """Binary PLS discriminant analysis with probabilities.

    :class:`~sklearn.cross_decomposition.PLSRegression` is fitted on the 0/1
    label (1 = ``classes_[1]``). Its prediction ``yhat`` is turned into a
    probability by a logistic link ``p = expit(a + b * yhat)`` whose ``a`` and
    ``b`` are fitted on the training predictions (Platt scaling, lightly
    penalised: ``LogisticRegression(C=1)``). The link is monotone, so the
    ranking (and the AUC) is that of the PLS prediction.

    Parameters
    ----------
    n_components : int, default=2
        PLS components, capped at ``min(n_features, n_samples - 1)``.
    scale : bool, default=True
        Passed to ``PLSRegression`` (unit variance of X inside the PLS).
    max_iter : int, default=500
        Passed to ``PLSRegression``.

    Attributes
    ----------
    classes_ : ndarray of shape (2,)
    pls_ : PLSRegression
    link_ : tuple of float
        Intercept and slope of the logistic link.
    n_iter_ : int
        Largest number of NIPALS iterations over the components.
    n_features_in_ : int

    Examples
    --------
    >>> X = np.array([[0.0, 1.0], [0.2, 0.8], [1.0, 0.1], [0.9, 0.0]])
    >>> clf = PLSDAClassifier(n_components=1).fit(X, ["a", "a", "b", "b"])
    >>> clf.predict(X).tolist()
    ['a', 'a', 'b', 'b']
    """

    def __init__(self, n_components: int = 2, scale: bool = True, max_iter: int = 500) -> None:
        self.n_components = n_components
        self.scale = scale
        self.max_iter = max_iter

    def fit(self, X: Any, y: Any) -> PLSDAClassifier:
        """Fit the PLS regression on the 0/1 label and the logistic link."""
        X, y = validate_data(self, X, y, dtype=np.float64)
        check_classification_targets(y)
        y_type = type_of_target(y, input_name="y", raise_unknown=True)
        if y_type not in ("binary", "multiclass"):  # pragma: no cover - rejected above
            raise ValueError(f"Only binary classification is supported. The type of the target is {y_type}.")
        self.classes_, yi = np.unique(y, return_inverse=True)
        if len(self.classes_) > 2:
            raise ValueError("Only binary classification is supported (PLSDAClassifier needs 2 classes). "
                             f"The type of the target is {y_type}.")
        if len(self.classes_) < 2:
            raise ValueError(f"PLSDAClassifier needs 2 classes; got 1 class: {self.classes_[0]!r}")
        if X.shape[0] < 3:
            raise ValueError("PLSDAClassifier needs at least 3 samples")
        k = int(max(1, min(self.n_components, X.shape[1], X.shape[0] - 1)))
        self.pls_ = PLSRegression(n_components=k, scale=self.scale, max_iter=self.max_iter)
        self.pls_.fit(X, yi.astype(np.float64))
        self.n_iter_ = int(max(np.atleast_1d(getattr(self.pls_, "n_iter_", [1])), default=1))
        yhat = self._yhat(X)
        if np.ptp(yhat) > 0:
            lr = LogisticRegression(C=1.0).fit(yhat[:, None], yi)
            self.link_ = (float(lr.intercept_[0]), float(lr.coef_[0, 0]))
        else:  # no signal at all: constant probability = training prevalence
            prev = float(np.clip(yi.mean(), 1e-6, 1 - 1e-6))
            self.link_ = (math.log(prev / (1 - prev)), 0.0)
        return self

    def _yhat(self, X: np.ndarray) -> np.ndarray:
        return np.asarray(self.pls_.predict(X), dtype=np.float64).reshape(X.shape[0], -1)[:, 0]

    def decision_function(self, X: Any) -> np.ndarray:
        """Log-odds of ``classes_[1]``."""
        check_is_fitted(self, "pls_")
        X = validate_data(self, X, dtype=np.float64, reset=False)
        a, b = self.link_
        out: np.ndarray = a + b * self._yhat(X)
        return out

    def predict_proba(self, X: Any) -> np.ndarray:
        """Probabilities of ``classes_[0]`` and ``classes_[1]``."""
        p1 = expit(self.decision_function(X))
        return np.column_stack([1 - p1, p1])

    def predict(self, X: Any) -> np.ndarray:
        """The class with the larger probability."""
        positive = self.decision_function(X) > 0
        out: np.ndarray = self.classes_[positive.astype(int)]
        return out

    def __sklearn_tags__(self) -> Any:
        tags = super().__sklearn_tags__()
        tags.classifier_tags.multi_class = False
        return tags


# -- site harmonisation (ComBat inside the pipeline) -------------------------------------------


def with_site(X: pd.DataFrame, sites: Any) -> pd.DataFrame:
    """``X`` with each sample's site appended as :data:`SITE_COLUMN` (text), the input of a
    harmonising pipeline."""
    out = X.copy()
    out[SITE_COLUMN] = np.asarray(sites, dtype=object).astype(str)
    return out


def _split_site(X: Any, site_column: str) -> tuple[pd.DataFrame, np.ndarray]:
    if not isinstance(X, pd.DataFrame) or site_column not in X.columns:
        raise HikisigError("this model harmonises sites (ComBat): each sample's site is needed "
                           "(the site column, e.g. --site-column / site=)")
    site = X[site_column].astype(str).to_numpy()
    return X.drop(columns=[site_column]), site


class SitePassthrough(TransformerMixin, BaseEstimator):
    """Apply ``transformer`` to the analytes and pass the site column through unchanged (so
    that the site reaches :class:`SiteComBat` after imputation and log)."""

    def __init__(self, transformer: Any = None, site_column: str = SITE_COLUMN) -> None:
        self.transformer = transformer
        self.site_column = site_column

    def fit(self, X: pd.DataFrame, y: Any = None) -> SitePassthrough:
        """Fit ``transformer`` on the analytes (never on the labels' behalf: ``y`` is passed
        on as scikit-learn does, and the imputers and log ignore it)."""
        feats, _ = _split_site(X, self.site_column)
        self.columns_ = [str(c) for c in feats.columns]
        self.transformer_ = clone(self.transformer).fit(feats)
        return self

    def transform(self, X: pd.DataFrame) -> pd.DataFrame:
        """The transformed analytes, then the site column."""
        check_is_fitted(self, "transformer_")
        feats, site = _split_site(X, self.site_column)
        values = np.asarray(self.transformer_.transform(feats[self.columns_]), dtype=np.float64)
        out = pd.DataFrame(values, index=X.index, columns=self.columns_)
        out[self.site_column] = site
        return out

    def get_feature_names_out(self, input_features: Any = None) -> np.ndarray:
        """The analytes and the site column."""
        check_is_fitted(self, "columns_")
        return np.asarray([*self.columns_, self.site_column], dtype=object)


class SiteComBat(TransformerMixin, BaseEstimator):
    """ComBat (:class:`hikisig.prep.combat.ComBat`) on the log-scale analytes, the site taken
    from the site column, which it drops: its output is the harmonised analytes only.

    ``fit`` learns each site's location and scale from the training rows alone, without
    the labels (``y`` is ignored and no covariate is given: a covariate of the label would
    be needed again to transform held-out rows, i.e. their labels). Rows of a site seen in
    ``fit`` are harmonised with that site's parameters. A site not seen in ``fit`` (the
    held-out site of leave-site-out validation, or a new clinic at prediction time) is
    brought to the training sites' harmonised scale by its own location and scale,
    estimated from its own rows without labels: per analyte ``(x - mean_site) / sd_site *
    sd_train + mean_train`` (population SDs; ``sd_train`` the pooled within-site SD of the
    harmonised training rows). That needs at least :data:`MIN_UNSEEN_SITE` rows of the
    site, transformed together, and makes a new site's predictions depend on the batch of
    its samples given together (as ComBat's do for a seen site's training rows).
    """

    def __init__(self, site_column: str = SITE_COLUMN) -> None:
        self.site_column = site_column

    def fit(self, X: pd.DataFrame, y: Any = None) -> SiteComBat:
        """Learn the sites' parameters from the rows of ``X`` (labels are never used)."""
        from hikisig.prep.combat import ComBat

        feats, site = _split_site(X, self.site_column)
        self.columns_ = [str(c) for c in feats.columns]
        self.sites_ = sorted(set(site.tolist()))
        if len(self.sites_) < 2:
            raise HikisigError(f"ComBat needs at least 2 sites in the training samples; they "
                               f"come from 1 ({self.sites_[0]!r})")
        frame = feats.copy()
        frame[self.site_column] = site
        self.combat_ = ComBat(batch_column=self.site_column).fit(frame)  # no covariates, no y
        out = np.asarray(self.combat_.transform(frame), dtype=np.float64)
        self.mean_ = out.mean(axis=0)
        resid = out.copy()
        for s in self.sites_:
            rows = site == s
            resid[rows] -= out[rows].mean(axis=0)
        sd = np.sqrt((resid ** 2).mean(axis=0))
        self.scale_ = np.where(sd > 0, sd, 1.0)
        return self

    def transform(self, X: pd.DataFrame) -> pd.DataFrame:
        """Harmonised analytes (same index); see the class docstring for unseen sites."""
        check_is_fitted(self, "combat_")
        feats, site = _split_site(X, self.site_column)
        feats = feats[self.columns_]
        out = np.empty(feats.shape, dtype=np.float64)
        seen = np.isin(site, self.sites_)
        if seen.any():
            frame = feats[seen].copy()
            frame[self.site_column] = site[seen]
            out[seen] = np.asarray(self.combat_.transform(frame), dtype=np.float64)
        values = feats.to_numpy(dtype=np.float64)
        for s in sorted(set(site[~seen].tolist())):
            rows = site == s
            if rows.sum() < MIN_UNSEEN_SITE:
                raise HikisigError(
                    f"site {s!r} was not among the training sites and has {int(rows.sum())} "
                    f"sample(s): ComBat harmonises an unseen site by its own location and scale, "
                    f"which needs at least {MIN_UNSEEN_SITE} of its samples given together")
            v = values[rows]
            mu = v.mean(axis=0)
            sd = v.std(axis=0)
            sd = np.where(sd > 0, sd, self.scale_)
            out[rows] = (v - mu) / sd * self.scale_ + self.mean_
        return pd.DataFrame(out, index=X.index, columns=self.columns_)

    def get_feature_names_out(self, input_features: Any = None) -> np.ndarray:
        """The analytes (the site column is dropped)."""
        check_is_fitted(self, "columns_")
        return np.asarray(self.columns_, dtype=object)


def check_sites(sites: Any, n: int, groups: np.ndarray | None = None) -> np.ndarray:
    """Each sample's site as text; missing sites and participants at several sites are
    errors."""
    arr = pd.Series(np.asarray(sites, dtype=object))
    if len(arr) != n:
        raise ValueError(f"sites has {len(arr)} values for {n} samples")
    if arr.isna().any() or (arr.astype(str).str.strip() == "").any():
        raise HikisigError(f"{int((arr.isna() | (arr.astype(str).str.strip() == '')).sum())} "
                           "sample(s) have no site: give every sample a site")
    out = arr.astype(str).to_numpy(dtype=object)
    if groups is not None:
        per = pd.Series(out).groupby(pd.Series(np.asarray(groups, dtype=object))).nunique()
        if (per > 1).any():
            raise HikisigError(f"participant {per.index[per > 1][0]!r} has samples at several "
                               "sites: a participant must belong to one site")
    return out


def site_splits(sites: np.ndarray, y: np.ndarray | None = None
                ) -> tuple[list[str], list[tuple[np.ndarray, np.ndarray]]]:
    """Leave-one-site-out folds (``LeaveOneGroupOut`` on the site, in the order of the sorted
    site names): ``(sites, [(train, test), ...])``. With 0/1 labels ``y``, a training fold
    without cases or without controls is an error naming the site.

    Examples
    --------
    >>> names, folds = site_splits(np.array(["b", "a", "b", "a"]))
    >>> names, [te.tolist() for _, te in folds]
    (['a', 'b'], [[1, 3], [0, 2]])
    """
    names = sorted(set(np.asarray(sites).tolist()))
    if len(names) < 2:
        raise HikisigError(f"leave-site-out validation needs at least 2 sites; the samples come "
                           f"from {len(names)}" + (f" ({names[0]!r})" if names else ""))
    folds = []
    for s in names:
        te = np.flatnonzero(sites == s)
        tr = np.flatnonzero(sites != s)
        if y is not None and np.asarray(y)[tr].min() == np.asarray(y)[tr].max():
            lacking = "controls" if np.asarray(y)[tr].min() == 1 else "cases"
            raise HikisigError(f"leave-site-out: without site {s!r} the other sites have no "
                               f"{lacking} to train on")
        folds.append((tr, te))
    return names, folds


# -- building blocks ----------------------------------------------------------------------------


def _estimator(model: str, seed: int, n_estimators: int, oob_score: bool = True) -> BaseEstimator:
    if model == "rf":  # out-of-bag probabilities: honest scores of the training samples
        return RandomForestClassifier(n_estimators=n_estimators, random_state=seed, n_jobs=1,
                                      oob_score=oob_score)
    if model == "logistic":
        return LogisticRegression(C=1.0, max_iter=5000)
    if model == "plsda":
        return PLSDAClassifier(n_components=2)
    raise ValueError(f"unknown model {model!r}; valid values: {', '.join(map(repr, MODELS))}")


def _preprocessing_steps(log: bool = True, scaling: str = "auto", harmonise: bool = False
                         ) -> list[tuple[str, BaseEstimator]]:
    """The preprocessing of the models (learned on training samples only).

    ``log=True`` (raw positive concentrations): ``MinFractionImputer`` (half the
    training minimum), ``LogTransformer(log2)``, ``Scaler(scaling)``. ``log=False``
    (values on an additive scale that may be negative, e.g. z-scores): the training
    median (``SimpleImputer(strategy="median", keep_empty_features=True)``: an
    analyte without any training value is filled with 0), no log, ``Scaler(scaling)``.
    ``harmonise=True``: the input carries :data:`SITE_COLUMN`; imputation and log pass it
    through (:class:`SitePassthrough`) and :class:`SiteComBat` (ComBat on the log scale)
    consumes it right before scaling.
    """
    if log:
        steps: list[tuple[str, BaseEstimator]] = [
            ("impute", MinFractionImputer()), ("log", LogTransformer(base="log2"))]
    else:
        steps = [("impute", make_imputer("median", keep_empty_features=True))]
    if harmonise:
        steps = [(name, SitePassthrough(step)) for name, step in steps]
        steps.append(("combat", SiteComBat()))
    return [*steps, ("scale", Scaler(method=scaling))]


def _preprocessing_names(log: bool = True, scaling: str = "auto", harmonise: bool = False
                         ) -> list[str]:
    """:func:`_preprocessing_steps` as text (for params and model cards)."""
    names = (["MinFractionImputer(fraction=0.5)", "LogTransformer(base='log2')"] if log
             else ["SimpleImputer(strategy='median', keep_empty_features=True)"])
    if harmonise:
        names.append("ComBat(site; fitted in training folds, no label covariate)")
    return [*names, f"Scaler(method={scaling!r})"]


def make_pipeline(model: str = _D.model, *, seed: int = 0, inner_cv: bool = _D.inner_cv,
                  recalibrate: bool = _D.recalibrate, n_estimators: int = _D.n_estimators,
                  log: bool = True, oob_score: bool = True, harmonise: bool = False
                  ) -> BaseEstimator:
    """The (unfitted) model of :func:`discriminate`.

    ``MinFractionImputer -> LogTransformer(log2) -> Scaler(auto) -> clf``; with
    ``log=False`` (additive values, e.g. z-scores) ``SimpleImputer(median) ->
    Scaler(auto) -> clf``: no log, and missing values take the training median (an
    analyte without any training value: 0). The steps pass
    DataFrames (``set_output(transform="pandas")``), so the classifier and every
    message know the analytes by name. With ``recalibrate`` the classifier is
    wrapped in ``CalibratedClassifierCV(method="sigmoid", cv=3)``; with
    ``inner_cv`` the whole pipeline is wrapped in a ``GridSearchCV`` (3-fold
    stratified, shuffled with ``seed``, scoring ROC AUC) over :data:`PARAM_GRIDS`.
    ``oob_score`` (random forest only) keeps the out-of-bag probabilities of the
    training samples (``oob_decision_function_``), on which thresholds are chosen.
    ``harmonise`` adds ComBat after the log (the input then carries :data:`SITE_COLUMN`,
    see :func:`_preprocessing_steps`).

    Examples
    --------
    >>> make_pipeline("logistic").steps[-1][0]
    'clf'
    >>> [name for name, _ in make_pipeline("logistic", log=False).steps]
    ['impute', 'scale', 'clf']
    """
    est = _estimator(model, seed, n_estimators, oob_score)
    prefix = "clf__"
    if recalibrate:
        est = CalibratedClassifierCV(est, method="sigmoid", cv=3)
        prefix = "clf__estimator__"
    pipe = Pipeline([*_preprocessing_steps(log, harmonise=harmonise), ("clf", est)]
                    ).set_output(transform="pandas")
    if not inner_cv:
        return pipe
    grid = {prefix + k: v for k, v in PARAM_GRIDS[model].items()}
    return GridSearchCV(pipe, grid, scoring="roc_auc", refit=True, n_jobs=1,
                        cv=StratifiedKFold(_INNER_FOLDS, shuffle=True, random_state=seed % (2**32)))


def _fit(model: BaseEstimator, X: pd.DataFrame, y: np.ndarray, groups: np.ndarray | None) -> BaseEstimator:
    with warnings.catch_warnings():  # a small forest leaves a few samples without OOB trees
        warnings.filterwarnings("ignore", "Some inputs do not have OOB scores", UserWarning)
        if isinstance(model, GridSearchCV) and groups is not None:
            model.cv = StratifiedGroupKFold(_INNER_FOLDS, shuffle=True,
                                            random_state=model.cv.random_state)
            return model.fit(X, y, groups=groups)
        return model.fit(X, y)


def cv_splits(y: Any, *, groups: Any = None, n_splits: int = 5, seed: int = 0
              ) -> list[tuple[np.ndarray, np.ndarray]]:
    """Stratified k-fold (train, test) index pairs; group-aware when ``groups`` is given.

    Without groups: ``StratifiedKFold(shuffle=True, random_state=seed)``; with
    groups (e.g. participant ids): ``StratifiedGroupKFold(shuffle=True,
    random_state=seed)``, so all samples of a group fall in the same fold.

    Examples
    --------
    >>> g = np.repeat(np.arange(10), 2)
    >>> folds = cv_splits(np.repeat([0, 1], 10), groups=g, n_splits=5)
    >>> all(not set(g[tr]) & set(g[te]) for tr, te in folds)
    True
    """
    y = np.asarray(y)
    dummy = np.zeros((len(y), 1))
    if groups is None:
        return list(StratifiedKFold(n_splits, shuffle=True, random_state=seed).split(dummy, y))
    g = np.asarray(groups)
    return list(StratifiedGroupKFold(n_splits, shuffle=True, random_state=seed).split(dummy, y, g))


def _auc_from_ranks(ranks: np.ndarray, pos: np.ndarray) -> float:
    """Mann-Whitney AUC of the positives ``pos`` (bool) given midranks of the scores."""
    m = int(pos.sum())
    n = len(pos) - m
    return float((ranks[pos].sum() - m * (m + 1) / 2) / (m * n))


#: Preprocessing steps that work value by value within each column (a column permuted before
#: them is that column permuted after them): the permutation importance permutes their output.
_COLUMNWISE = (MinFractionImputer, SimpleImputer, LogTransformer, Scaler)


def _columnwise_split(model: BaseEstimator) -> tuple[Pipeline | None, BaseEstimator]:
    """``(preprocessing, classifier)`` of a fitted pipeline whose steps before the classifier
    all work column by column; ``(None, model)`` otherwise."""
    est = model.best_estimator_ if isinstance(model, GridSearchCV) else model
    if isinstance(est, Pipeline) and len(est.steps) > 1 and all(
            isinstance(step, _COLUMNWISE) for _, step in est.steps[:-1]):
        return est[:-1], est.steps[-1][1]
    return None, model


@dataclass
class _Tree:
    """One fitted tree, ready to re-evaluate rows of ``X`` with one column changed."""

    feature: np.ndarray
    threshold: np.ndarray
    left: np.ndarray
    right: np.ndarray
    value: np.ndarray  # (nodes, classes): the tree's class probabilities at each node
    base: np.ndarray  # (n, classes): the tree's probabilities of the intact rows
    path_feature: np.ndarray  # (row, feature) pairs with the feature split on along the row's
    path_row: np.ndarray  # path, sorted by feature


class _ForestCopies:
    """Class probabilities of a fitted random forest for copies of ``X`` (float32, no missing
    values), each with one column permuted.

    A tree's probability for a row changes only if the row's path in the tree splits on the
    permuted column, so only those (copy, row) pairs are sent down the tree again; the others
    keep the tree's probability of the intact row. The trees' probabilities are added in the
    forest's order and divided by the number of trees, as
    :meth:`~sklearn.ensemble.RandomForestClassifier.predict_proba` does, so the result is equal
    to ``predict_proba`` of the permuted copies. ``exact`` is False (and the caller scores
    the copies with the forest) if the trees' own predictions of the intact rows are not
    reproduced to the last bit.
    """

    def __init__(self, forest: RandomForestClassifier, X: np.ndarray, classes: list[int]) -> None:
        self.X = X
        self.trees: list[_Tree] = []
        self.exact = bool(np.isfinite(X).all())
        n = X.shape[0]
        for est in forest.estimators_ if self.exact else []:
            t = est.tree_
            leaves = np.asarray(t.apply(X))
            value = np.asarray(t.value, dtype=np.float64)[:, 0, :forest.n_classes_][:, classes]
            ind = t.decision_path(X).tocsr()
            rows = np.repeat(np.arange(n), np.diff(ind.indptr))
            feats = np.asarray(t.feature)[ind.indices]
            inner = feats >= 0
            key = np.unique(feats[inner].astype(np.int64) * n + rows[inner])
            tree = _Tree(np.asarray(t.feature), np.asarray(t.threshold), np.asarray(t.children_left),
                         np.asarray(t.children_right), value, value[leaves], key // n, key % n)
            reached = (self._descend(tree, np.arange(n), np.full(n, -1), X[:, 0])
                       if tree.left[0] != -1 else np.zeros(n, dtype=np.intp))
            if not (np.array_equal(reached, leaves) and np.array_equal(
                    tree.base, est.predict_proba(X, check_input=False)[:, classes])):
                self.exact = False
                break
            self.trees.append(tree)

    def _descend(self, tree: _Tree, rows: np.ndarray, col: np.ndarray, val: np.ndarray) -> np.ndarray:
        """Leaves reached by rows ``rows`` of ``X`` whose column ``col`` holds ``val``."""
        node = np.zeros(len(rows), dtype=np.intp)
        todo = np.arange(len(rows))
        while todo.size:
            nd = node[todo]
            f = tree.feature[nd]
            x = np.where(f == col[todo], val[todo], self.X[rows[todo], f])
            nxt = np.where(x <= tree.threshold[nd], tree.left[nd], tree.right[nd])
            node[todo] = nxt
            todo = todo[tree.left[nxt] != -1]
        return node

    def proba(self, cols: np.ndarray, perms: np.ndarray) -> np.ndarray:
        """Probabilities (copies, rows, classes) of the copies of ``X`` whose column ``cols[q]``
        is permuted by ``perms[q]``."""
        n_copies, n = perms.shape
        acc = np.zeros((n_copies, n, self.trees[0].value.shape[1] if self.trees else 1))
        for tree in self.trees:
            lo = np.searchsorted(tree.path_feature, cols, "left")
            counts = np.searchsorted(tree.path_feature, cols, "right") - lo
            k = int(counts.sum())
            if not k:
                acc += tree.base
                continue
            q = np.repeat(np.arange(n_copies), counts)
            pos = np.arange(k) + np.repeat(lo - (np.cumsum(counts) - counts), counts)
            i = tree.path_row[pos]
            j = cols[q]
            leaves = self._descend(tree, i, j, self.X[perms[q, i], j])
            before = acc[q, i]
            acc += tree.base
            acc[q, i] = before + tree.value[leaves]
        acc /= len(self.trees)
        return acc


def _batched_permutation_importance(model: BaseEstimator, X: pd.DataFrame, y: np.ndarray,
                                    n_repeats: int, seed: int,
                                    max_cells: int = _IMPORTANCE_CELLS) -> np.ndarray:
    """Mean drop of ROC AUC when each column of ``X`` is permuted (``n_repeats`` times).

    The definition of ``sklearn.inspection.permutation_importance(scoring="roc_auc")``:
    repeat ``r`` permutes column ``j`` of the rows by the ``(r * p + j)``-th permutation
    drawn from ``default_rng(seed)``; the importance is the AUC of the intact rows minus
    that of the permuted rows, averaged over repeats. How it is computed keeps memory
    bounded and skips work whose result is known:

    * preprocessing that works column by column (imputation, log, scaling) is applied to
      the rows once, and its output columns are permuted (the same values as preprocessing
      the permuted rows);
    * the permuted copies are scored in chunks of at most ``max_cells`` values;
    * for a random forest, only the trees whose path for a row splits on the permuted
      column score that row again (:class:`_ForestCopies`; equal to the forest's
      ``predict_proba``); other models score the chunk with ``predict_proba``.
    """
    rng = np.random.default_rng(seed)
    site: np.ndarray | None = None
    full = X
    if SITE_COLUMN in X.columns:  # the site is an input of ComBat, never permuted
        X, site = X.drop(columns=[SITE_COLUMN]), X[SITE_COLUMN].to_numpy()
    n, p = X.shape
    pos = np.asarray(y) == 1
    m = int(pos.sum())
    base = _auc_from_ranks(sps.rankdata(model.predict_proba(full)[:, 1]), pos)
    pre, clf = _columnwise_split(model)
    values = X.to_numpy(dtype=np.float64)
    if pre is not None:
        values = np.asarray(pre.transform(X), dtype=np.float64)
        if values.shape != X.shape:  # a step dropped columns: score through the whole model
            pre, clf, values = None, model, X.to_numpy(dtype=np.float64)
    named = pre is None or hasattr(clf, "feature_names_in_")
    scorer = clf if pre is not None else model

    def frame(rows: np.ndarray) -> Any:
        if site is not None:
            out = pd.DataFrame(rows, columns=X.columns, copy=False)
            out[SITE_COLUMN] = np.tile(site, len(rows) // n)
            return out
        return pd.DataFrame(rows, columns=X.columns, copy=False) if named else rows

    forest = None
    if isinstance(clf, RandomForestClassifier):
        forest = _ForestCopies(clf, np.asarray(values, dtype=np.float32), [1])
        if not (forest.exact and np.array_equal(
                forest.proba(np.zeros(1, dtype=np.intp), np.arange(n)[None, :])[0, :, 0],
                scorer.predict_proba(frame(values))[:, 1])):
            forest = None
    per_chunk = max(1, max_cells // n if forest is not None else max_cells // (n * p))
    scores = np.empty(n_repeats * p)
    for start in range(0, n_repeats * p, per_chunk):
        q = np.arange(start, min(n_repeats * p, start + per_chunk))
        cols = q % p
        perms = np.stack([rng.permutation(n) for _ in q])
        if forest is not None:
            prob = forest.proba(cols, perms)[..., 0]
        else:
            big = np.tile(values, (len(q), 1))
            for c, (j, perm) in enumerate(zip(cols, perms, strict=True)):
                big[c * n:(c + 1) * n, j] = values[perm, j]
            prob = np.asarray(scorer.predict_proba(frame(big))[:, 1],
                              dtype=np.float64).reshape(len(q), n)
        ranks = sps.rankdata(prob, axis=-1)
        scores[q] = (ranks[..., pos].sum(axis=-1) - m * (m + 1) / 2) / (m * (n - m))
    out: np.ndarray = (base - scores.reshape(n_repeats, p)).mean(axis=0)
    return out


def _impurity_importance(model: BaseEstimator) -> np.ndarray | None:
    est = model.best_estimator_ if isinstance(model, GridSearchCV) else model
    clf = est.steps[-1][1] if isinstance(est, Pipeline) else est
    if isinstance(clf, CalibratedClassifierCV):
        parts = [getattr(c.estimator, "feature_importances_", None) for c in clf.calibrated_classifiers_]
        found = [np.asarray(v, dtype=np.float64) for v in parts if v is not None]
        if len(found) != len(parts):
            return None
        return np.asarray(np.mean(found, axis=0), dtype=np.float64)
    fi = getattr(clf, "feature_importances_", None)
    return None if fi is None else np.asarray(fi, dtype=np.float64)


# -- engine tasks (module level: picklable) -------------------------------------------------------


@dataclass
class _Settings:
    model: str
    inner_cv: bool
    recalibrate: bool
    n_estimators: int
    cv_folds: int
    n_top: int
    log: bool = True
    sensitivity_target: float = _D.sensitivity_target
    harmonise: bool = False


@dataclass
class _FoldTask:
    X: pd.DataFrame
    y: np.ndarray
    groups: np.ndarray | None
    train: np.ndarray
    test: np.ndarray
    settings: _Settings
    seed: int
    importance: bool = True
    thresholds: bool = True


@dataclass
class _FoldResult:
    test: np.ndarray
    prob: np.ndarray
    perm_importance: np.ndarray | None = None
    impurity: np.ndarray | None = None
    params: dict[str, Any] = field(default_factory=dict)
    #: (youden, sensitivity target) chosen on honest scores of the training samples
    thresholds: tuple[float, float] | None = None
    #: how those scores were obtained (:func:`_honest_scores`)
    threshold_source: str = ""


def _fit_fold(task: _FoldTask) -> _FoldResult:
    s = task.settings
    model = make_pipeline(s.model, seed=task.seed, inner_cv=s.inner_cv, recalibrate=s.recalibrate,
                          n_estimators=s.n_estimators, log=s.log, oob_score=task.thresholds,
                          harmonise=s.harmonise)
    g_tr = None if task.groups is None else task.groups[task.train]
    _fit(model, task.X.iloc[task.train], task.y[task.train], g_tr)
    Xte = task.X.iloc[task.test]
    prob = np.asarray(model.predict_proba(Xte)[:, 1], dtype=np.float64)
    out = _FoldResult(test=task.test, prob=prob)
    if isinstance(model, GridSearchCV):
        out.params = {k: v for k, v in model.best_params_.items()}
    if task.thresholds:
        youden, target, out.threshold_source = _honest_thresholds(
            model, task.X.iloc[task.train], task.y[task.train], g_tr, 1,
            s.sensitivity_target, spawn_seeds(task.seed, 1)[0])
        out.thresholds = (youden, target)
    if task.importance and task.y[task.test].min() != task.y[task.test].max():
        out.perm_importance = _batched_permutation_importance(model, Xte, task.y[task.test],
                                                              _IMPORTANCE_REPEATS, task.seed)
        out.impurity = _impurity_importance(model)
    return out


@dataclass
class _RefitPermTask:
    X: pd.DataFrame
    y: np.ndarray
    groups: np.ndarray | None
    units: np.ndarray  # unit index of every sample (permutation is done on units)
    unit_y: np.ndarray
    settings: _Settings
    seed: int
    #: fixed folds (leave-site-out); None: a new stratified split per permutation
    folds: list[tuple[np.ndarray, np.ndarray]] | None = None
    #: block (site) of every unit: labels are permuted within blocks; None: all together
    blocks: np.ndarray | None = None


def _permute_units(rng: np.random.Generator, unit_y: np.ndarray, blocks: np.ndarray | None
                   ) -> np.ndarray:
    """The unit labels permuted (within each block when ``blocks`` is given)."""
    if blocks is None:
        return rng.permutation(unit_y)
    out = unit_y.copy()
    for b in np.unique(blocks):
        idx = np.flatnonzero(blocks == b)
        out[idx] = unit_y[rng.permutation(idx)]
    return out


def _refit_permutation(task: _RefitPermTask) -> float:
    """AUC of one full CV repeat after permuting the labels."""
    split_seed, fit_seed, perm_seed = spawn_seeds(task.seed, 3)
    rng = np.random.default_rng(perm_seed)
    y = _permute_units(rng, task.unit_y, task.blocks)[task.units]
    folds = (task.folds if task.folds is not None else
             cv_splits(y, groups=task.groups, n_splits=task.settings.cv_folds, seed=split_seed))
    seeds = spawn_seeds(fit_seed, len(folds))
    prob = np.empty(len(y))
    for (tr, te), sd in zip(folds, seeds, strict=True):
        r = _fit_fold(_FoldTask(task.X, y, task.groups, tr, te, task.settings, sd, importance=False,
                                thresholds=False))
        prob[te] = r.prob
    if task.blocks is not None:  # leave-site-out: the within-site AUC
        return float(_site_aucs(prob[None, :], y == 1, task.blocks[task.units])[0])
    return float(roc_auc_score(y, prob))


@dataclass
class _ResampleTask:
    prob: np.ndarray  # (repeats, samples): each CV repeat's out-of-fold probabilities
    y: np.ndarray
    units: np.ndarray
    unit_y: np.ndarray
    n: int
    seed: int
    #: bootstrap strata of the units (default: their class)
    strata: np.ndarray | None = None
    #: permutation blocks of the units (default: none, all permuted together)
    blocks: np.ndarray | None = None
    #: site of every sample: the statistic is then the within-site AUC (:func:`_site_aucs`)
    sample_sites: np.ndarray | None = None


def _site_aucs(prob: np.ndarray, pos: np.ndarray, sites: np.ndarray) -> np.ndarray:
    """The within-site AUC of each row of ``prob`` (repeats, samples): the share of the
    case-control pairs of one site in which the case scores higher (ties count half), i.e.
    the mean of the sites' AUCs weighted by their numbers of case-control pairs; sites
    without cases or without controls add no pairs.

    Examples
    --------
    >>> p = np.array([[0.9, 0.1, 0.2, 0.05]])
    >>> float(_site_aucs(p, np.array([True, False, True, False]), np.array([0, 0, 1, 1]))[0])
    1.0
    """
    num = np.zeros(prob.shape[0])
    den = 0.0
    for b in np.unique(sites):
        idx = np.flatnonzero(sites == b)
        pb = pos[idx]
        m = int(pb.sum())
        k = len(idx) - m
        if m == 0 or k == 0:
            continue
        ranks = sps.rankdata(prob[:, idx], axis=1)
        num += ranks[:, pb].sum(axis=1) - m * (m + 1) / 2
        den += m * k
    out: np.ndarray = num / den if den else np.full(prob.shape[0], np.nan)
    return out


def _repeat_aucs(ranks: np.ndarray, pos: np.ndarray) -> np.ndarray:
    """Mann-Whitney AUC of each row of midranks ``ranks`` (repeats, samples) for the
    positives ``pos`` (bool)."""
    m = int(pos.sum())
    n = len(pos) - m
    out: np.ndarray = (ranks[:, pos].sum(axis=1) - m * (m + 1) / 2) / (m * n)
    return out


def _roc_on_grid(pos: np.ndarray, score: np.ndarray) -> np.ndarray:
    """True positive rate of the ROC curve of ``score`` for the positives ``pos`` (bool) at
    the false positive rates of :data:`ROC_GRID` (linear interpolation between the curve's
    points): ``np.interp(ROC_GRID, *roc_curve(pos, score)[:2])``, without its overhead."""
    order = np.argsort(-score, kind="stable")
    s, yb = score[order], pos[order]
    last = np.r_[np.flatnonzero(np.diff(s)), len(s) - 1]  # last sample of each distinct score
    tps = np.cumsum(yb)[last]
    fps = last + 1 - tps
    out: np.ndarray = np.interp(ROC_GRID, np.r_[0.0, fps / fps[-1]], np.r_[0.0, tps / tps[-1]])
    return out


def _bootstrap_block(task: _ResampleTask) -> tuple[np.ndarray, np.ndarray]:
    """``n`` bootstrap resamples of units (participants), stratified by the unit's class:
    the mean over repeats of each repeat's AUC on the resampled samples (the statistic of
    ``auc``), and the ROC curve of the repeat-averaged (pooled) probabilities (true positive
    rate on :data:`ROC_GRID`, vertical averaging)."""
    rng = np.random.default_rng(task.seed)
    members = [np.flatnonzero(task.units == u) for u in range(len(task.unit_y))]
    key = task.unit_y if task.strata is None else task.strata
    strata = [np.flatnonzero(key == c) for c in np.unique(key)]
    pooled = task.prob.mean(axis=0)
    aucs = np.empty(task.n)
    tprs = np.empty((task.n, len(ROC_GRID)))
    for b in range(task.n):
        pick = np.concatenate([rng.choice(s, size=len(s), replace=True) for s in strata])
        idx = np.concatenate([members[u] for u in pick])
        yb = task.y[idx] == 1
        if task.sample_sites is not None:
            aucs[b] = float(_site_aucs(task.prob[:, idx], yb, task.sample_sites[idx]).mean())
        else:
            aucs[b] = float(_repeat_aucs(sps.rankdata(task.prob[:, idx], axis=1), yb).mean())
        tprs[b] = _roc_on_grid(yb, pooled[idx])
    return aucs, tprs


def _permutation_block(task: _ResampleTask) -> list[float]:
    """The statistic of ``auc`` (each repeat's fixed out-of-fold probabilities against the
    permuted labels, averaged over repeats) for ``n`` permutations of the unit labels."""
    rng = np.random.default_rng(task.seed)
    if task.sample_sites is not None:
        return [float(_site_aucs(task.prob, _permute_units(rng, task.unit_y, task.blocks)
                                 [task.units] == 1, task.sample_sites).mean())
                for _ in range(task.n)]
    ranks = sps.rankdata(task.prob, axis=1)
    return [float(_repeat_aucs(ranks, _permute_units(rng, task.unit_y, task.blocks)[task.units]
                               == 1).mean())
            for _ in range(task.n)]


def _blocks(total: int) -> list[int]:
    return [min(_BLOCK, total - i) for i in range(0, total, _BLOCK)]


# -- helpers -------------------------------------------------------------------------------------


def encode_labels(y: Any, case: Any = None) -> tuple[np.ndarray, str, str]:
    """0/1 labels (1 = case) and the case and control labels in the user's terms.

    ``y`` holds two labels. The case is ``case`` when given; without it, booleans (True =
    case), 0/1 (1 = case) and the labels ``case``/``control`` are understood, and any other
    pair is an error: which label is the case never depends on how the labels sort.

    Examples
    --------
    >>> encode_labels(["healthy", "hikikomori", "healthy"], case="healthy")
    (array([1, 0, 1]), 'healthy', 'hikikomori')
    >>> encode_labels([True, False])[1:]
    ('case', 'control')
    """
    arr = np.asarray(y, dtype=object)
    if arr.ndim != 1:
        raise ValueError("y must be one-dimensional")
    if pd.isna(pd.Series(arr, dtype=object)).any():
        raise ValueError("y has missing values")
    values = list(dict.fromkeys(arr.tolist()))
    if len(values) > 2:
        raise ValueError(f"y must have two classes; got {sorted(map(str, values))}")
    if case is None:
        kinds = set(values)
        if kinds <= {True, False} or kinds <= {0, 1}:
            out = np.array([int(bool(v)) for v in arr])
            case_label, control_label = "case", "control"
        elif kinds <= {"case", "control"}:
            out = (arr == "case").astype(int)
            case_label, control_label = "case", "control"
        else:
            raise ValueError(f"name the case label (case=...): y holds {sorted(map(str, values))}")
    else:
        if case not in values:
            raise ValueError(f"the case label {case!r} is not in y (labels: "
                             f"{', '.join(sorted(map(str, values)))})")
        out = np.array([int(v == case) for v in arr])
        others = [v for v in values if v != case]
        case_label, control_label = str(case), str(others[0]) if others else "control"
    if out.min() == out.max():
        raise ValueError("y needs both cases and controls")
    return out, case_label, control_label


def case_column(model: Any, case_label: str) -> int:
    """The column of ``model.predict_proba`` that holds the case probability."""
    classes = list(getattr(model, "classes_", []))
    for label in (case_label, 1, True):
        if label in classes:
            return classes.index(label)
    raise ValueError(f"the model's classes {classes} do not include the case label {case_label!r}")


def _units(groups: np.ndarray | None, y: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Resampling units (participants, or samples) and their labels."""
    if groups is None:
        return np.arange(len(y)), y.copy()
    codes, uniq = pd.factorize(pd.Series(groups, dtype=object))
    unit_y = np.zeros(len(uniq), dtype=int)
    for u in range(len(uniq)):
        labels = np.unique(y[codes == u])
        if len(labels) != 1:
            raise ValueError(f"participant {uniq[u]!r} has samples labelled both case and control")
        unit_y[u] = labels[0]
    return np.asarray(codes), unit_y


def _wilson(k: float, n: float) -> tuple[float, float]:
    if n == 0:
        return float("nan"), float("nan")
    lo, hi = proportion_confint(k, n, alpha=0.05, method="wilson")
    return float(lo), float(hi)


def _rule_row(rule: str, thr: float, y: np.ndarray, p: np.ndarray, prevalence: float) -> dict[str, Any]:
    pos = p >= thr
    d = y == 1
    tp, fn = int((pos & d).sum()), int((~pos & d).sum())
    tn, fp = int((~pos & ~d).sum()), int((pos & ~d).sum())
    se = tp / (tp + fn) if tp + fn else float("nan")
    sp = tn / (tn + fp) if tn + fp else float("nan")
    se_lo, se_hi = _wilson(tp, tp + fn)
    sp_lo, sp_hi = _wilson(tn, tn + fp)
    ppv_at, npv_at = predictive_values(se, sp, prevalence)
    return {"rule": rule, "threshold": float(thr), "sensitivity": se, "sensitivity_ci_low": se_lo,
            "sensitivity_ci_high": se_hi, "specificity": sp, "specificity_ci_low": sp_lo,
            "specificity_ci_high": sp_hi, "ppv": tp / (tp + fp) if tp + fp else float("nan"),
            "npv": tn / (tn + fn) if tn + fn else float("nan"), "ppv_at_prevalence": ppv_at,
            "npv_at_prevalence": npv_at, "prevalence": float(prevalence)}


def _in_sample_thresholds(y: np.ndarray, p: np.ndarray, target: float, prevalence: float
                          ) -> pd.DataFrame:
    """Thresholds chosen and evaluated on the same predictions (optimistic; for comparison
    with the thresholds of :func:`discriminate`, which are chosen in the training folds)."""
    youden, target_thr = _choose_thresholds(y, p, target)
    return pd.DataFrame([_rule_row("youden", youden, y, p, prevalence),
                         _rule_row("sensitivity_target", target_thr, y, p, prevalence)])


def _choose_thresholds(y: np.ndarray, p: np.ndarray, target: float) -> tuple[float, float]:
    """The Youden threshold (largest sensitivity + specificity) and the most specific
    threshold with sensitivity >= ``target`` of scores ``p`` for 0/1 labels ``y``; each is
    the midpoint between the lowest score called positive and the next lower score (NaN
    without both classes)."""
    y = np.asarray(y)
    if len(y) == 0 or y.min() == y.max():
        return float("nan"), float("nan")
    fpr, tpr, thr = roc_curve(y, p, drop_intermediate=False)
    finite = np.isfinite(thr)
    fpr, tpr, thr = fpr[finite], tpr[finite], thr[finite]

    def cut(i: int) -> float:  # thresholds decrease: i + 1 is the next lower score
        return float((thr[i] + thr[i + 1]) / 2) if i + 1 < len(thr) else float(thr[i])

    j = tpr - fpr  # ties (to rounding) go to the higher, more specific threshold
    return cut(int(np.flatnonzero(j >= j.max() - 1e-12)[0])), cut(int(np.flatnonzero(tpr >= target)[0]))


def _honest_scores(model: BaseEstimator, X: pd.DataFrame, y: np.ndarray, groups: np.ndarray | None,
                   positive: Any, seed: int) -> tuple[np.ndarray, np.ndarray, str]:
    """Probabilities of ``positive`` for the training samples of the fitted ``model`` from
    models that did not see them: ``(rows, probabilities, source)``.

    A random forest gives its out-of-bag probabilities (samples in the bootstrap of every
    tree have none and are left out); any other model is refitted (with the hyper-parameters
    it was fitted with) in an inner stratified 3-fold CV of its training samples,
    group-aware with ``groups``, split with ``seed``. With fewer than 2 units of a class the
    model's own (in-sample) probabilities are all there is.
    """
    est = model.best_estimator_ if isinstance(model, GridSearchCV) else model
    clf = est.steps[-1][1] if isinstance(est, Pipeline) else est
    if isinstance(clf, RandomForestClassifier) and hasattr(clf, "oob_decision_function_"):
        oob = np.asarray(clf.oob_decision_function_, dtype=np.float64)
        seen = oob.sum(axis=1) > 0
        col = list(clf.classes_).index(positive)
        return np.flatnonzero(seen), oob[seen, col], "out-of-bag"
    yy = np.asarray(y)
    y01 = (yy == positive).astype(int)
    _, unit_y = _units(groups, y01)
    k = int(min(_INNER_FOLDS, (unit_y == 0).sum(), (unit_y == 1).sum()))
    folds = cv_splits(y01, groups=groups, n_splits=k, seed=seed) if k >= 2 else []
    if not folds or any(y01[tr].min() == y01[tr].max() for tr, _ in folds):
        prob = model.predict_proba(X)[:, list(model.classes_).index(positive)]
        return np.arange(len(yy)), np.asarray(prob, dtype=np.float64), "in-sample"
    prob = np.empty(len(yy))
    for tr, te in folds:
        inner = _fit(clone(est), X.iloc[tr], yy[tr], None)
        prob[te] = inner.predict_proba(X.iloc[te])[:, list(inner.classes_).index(positive)]
    return np.arange(len(yy)), prob, f"inner {k}-fold CV"


def _honest_thresholds(model: BaseEstimator, X: pd.DataFrame, y: np.ndarray,
                       groups: np.ndarray | None, positive: Any, target: float, seed: int
                       ) -> tuple[float, float, str]:
    """Youden and target-sensitivity thresholds of a fitted model, chosen on honest scores of
    its training samples (:func:`_honest_scores`), and where those scores came from."""
    rows, prob, source = _honest_scores(model, X, y, groups, positive, seed)
    youden, target_thr = _choose_thresholds((np.asarray(y)[rows] == positive).astype(int), prob,
                                            target)
    return youden, target_thr, source


def _pooled_rule_row(rule: str, threshold: float, counts: np.ndarray, repeats: int,
                     prevalence: float) -> dict[str, Any]:
    """Accuracy of held-out decisions pooled over folds and repeats; ``counts`` holds
    ``tp, fn, tn, fp`` summed over every held-out decision. Sensitivity and specificity
    are pooled proportions; their Wilson intervals use the number of cases (controls),
    not cases x repeats, since the repeats score the same people again."""
    tp, fn, tn, fp = (float(c) for c in counts)
    se = tp / (tp + fn) if tp + fn else float("nan")
    sp = tn / (tn + fp) if tn + fp else float("nan")
    n_case, n_control = (tp + fn) / repeats, (tn + fp) / repeats
    se_lo, se_hi = _wilson(se * n_case, n_case) if tp + fn else (float("nan"), float("nan"))
    sp_lo, sp_hi = _wilson(sp * n_control, n_control) if tn + fp else (float("nan"), float("nan"))
    ppv_at, npv_at = predictive_values(se, sp, prevalence)
    return {"rule": rule, "threshold": float(threshold), "sensitivity": se,
            "sensitivity_ci_low": se_lo, "sensitivity_ci_high": se_hi, "specificity": sp,
            "specificity_ci_low": sp_lo, "specificity_ci_high": sp_hi,
            "ppv": tp / (tp + fp) if tp + fp else float("nan"),
            "npv": tn / (tn + fn) if tn + fn else float("nan"), "ppv_at_prevalence": ppv_at,
            "npv_at_prevalence": npv_at, "prevalence": float(prevalence)}


def _hedges_g(X: pd.DataFrame, y: np.ndarray, log: bool = True) -> np.ndarray:
    """Hedges' g (cases - controls) per column: of log2 values (non-positive values ignored),
    or with ``log=False`` of the values as given."""
    V = X.to_numpy(dtype=np.float64)
    with np.errstate(divide="ignore", invalid="ignore"):
        L = np.log2(np.where(V > 0, V, np.nan)) if log else V
    g = hedges_g(L, np.asarray(y) == 1)["effect"]
    out: np.ndarray = np.where(np.isfinite(g), g, np.nan)
    return out


def _as_engine(engine: Engine | str | None) -> Engine:
    if engine is None:
        return Engine("serial")
    if isinstance(engine, str):
        return Engine(engine)
    return engine


# -- main entry point ----------------------------------------------------------------------------


def discriminate(X: pd.DataFrame, y: Any, *, case: Any = None, groups: Any = None, ids: Any = None,
                 model: str = _D.model, cv_folds: int = _D.cv_folds, cv_repeats: int = _D.cv_repeats,
                 permutations: int = _D.permutations, permutation_scheme: str = _D.permutation_scheme,
                 prevalence: float = Screening().prevalence,
                 sensitivity_target: float = _D.sensitivity_target, test_size: float | None = _D.test_size,
                 inner_cv: bool = _D.inner_cv, recalibrate: bool = _D.recalibrate, n_top: int = 10,
                 n_estimators: int = _D.n_estimators, seed: int = 0,
                 engine: Engine | str | None = None, log: bool = True, sites: Any = None,
                 cv: str = _D.cv, harmonise: str = "none") -> DiscriminationResult:
    """Validate a case-control classifier by repeated (group-aware) stratified cross-validation,
    or by leave-site-out validation.

    Parameters
    ----------
    X : DataFrame
        Samples x analytes, raw (positive) concentrations, or with ``log=False`` values on
        an additive scale (e.g. z-scores); missing values allowed.
    y : array-like
        Two labels: ``case`` names the case; without it booleans (True), 0/1 (1) or the
        labels ``"case"``/``"control"`` (see :func:`encode_labels`).
    case : object, optional
        The label of cases (the positive class) in ``y``.
    groups : array-like, optional
        Participant id of each sample. Samples of one participant are never
        split between training and test folds (``StratifiedGroupKFold``), and
        bootstraps and label permutations resample participants.
    ids : array-like, optional
        Sample ids for ``oof_predictions`` (default ``X.index``).
    model : {"rf", "logistic", "plsda"}
    cv_folds, cv_repeats : int
        k-fold CV repeated ``cv_repeats`` times; repeat ``r`` shuffles with its
        own seed from :func:`~hikisig.engine.spawn_seeds`. ``auc`` is the mean of
        the repeats' out-of-fold AUCs; ``oof_predictions`` (and ``auc_pooled``,
        the ROC curve and the calibration) hold the probabilities averaged over
        repeats.
    permutations : int
        Label permutations for the permutation p-value (0 to skip: ``permutation_p``
        is None and the model is not validated).
    permutation_scheme : {"oof", "refit"}
        ``"oof"`` (default, fast): permute the labels against the fixed
        out-of-fold probabilities of every repeat and average the repeats' AUCs
        (the statistic of ``auc``). No OOF probability was computed by a model
        that saw its own label, so this tests whether the OOF predictions rank
        cases above controls more than chance. It is an approximation: the
        fold models share training samples, so OOF AUCs on pure noise vary
        more than the label-permutation null assumes. In simulations (60
        samples x 200 noise analytes, 5-fold CV) the spread was close to the
        null for random forests (SD 0.083 vs 0.075) but clearly wider for
        logistic regression with more analytes than samples (SD 0.11), whose
        ``"oof"`` p-values are then too small; use ``"refit"`` there. ``"refit"``
        (slow, rigorous): for each permutation, permute the labels and rerun
        one repeat of the whole CV (preprocessing, tuning and fitting); each
        null AUC is a single-repeat OOF AUC, compared with ``auc`` (the mean of
        the repeats' OOF AUCs). Both use
        ``p = (1 + #{AUC_perm >= auc}) / (1 + B)``, with ``B = permutations``.
    prevalence : float
        Population prevalence for PPV/NPV (default 1.57%).
    sensitivity_target : float
        Sensitivity of the second threshold rule. Both rules are chosen inside the
        training folds and scored on the held-out folds (see the module docstring).
    test_size : float, optional
        Hold out this fraction (stratified, group-aware) as a test set: CV runs
        on the rest, and a model fitted on the rest is scored on the test set
        (``test_*`` metrics, ``tables["test_predictions"]``).
    inner_cv : bool
        Tune hyper-parameters by a 3-fold ``GridSearchCV`` inside each training fold.
    recalibrate : bool
        Wrap the classifier in ``CalibratedClassifierCV(method="sigmoid", cv=3)``
        (its internal folds are not group-aware).
    n_top : int
        Size of the top list that defines ``stability``.
    n_estimators : int
        Trees of the random forest (200, with ``cv_repeats=5``, keeps the
        defaults to about 15-25 s for ~80 samples x ~130 analytes on 2 cores).
    seed : int
    engine : Engine or backend name, optional
        Default: ``Engine("serial")``.
    log : bool
        ``True``: ``X`` holds concentrations; they are imputed by half the training
        minimum and log2-transformed before autoscaling, and the signature's ``effect``
        is Hedges' g of the log2 values. ``False``: ``X`` is on an additive scale and may
        be negative (z-scores, already logged values); no log, missing values take the
        training median, and ``effect`` is Hedges' g of the values as given.
    sites : array-like, optional
        Site of each sample. Needed by ``cv="leave-site-out"`` and ``harmonise="combat"``;
        otherwise it only adds the ``per_site`` table. A participant belongs to one site.
    cv : {"stratified", "leave-site-out"}
        ``"leave-site-out"``: one fold per site (``LeaveOneGroupOut`` on ``sites``), each
        site predicted by a model trained on the other sites; no repeats (the folds are
        fixed, ``cv_folds`` and ``cv_repeats`` are not used). ``auc`` is then the
        **within-site AUC** of the out-of-site predictions: the share of the case-control
        pairs of one site that the model, trained without that site, ranks correctly (the
        mean of the per-site AUCs weighted by their case x control pairs; sites without
        cases or controls add none). Its interval is a bootstrap of participants stratified
        by site and class, and the permutation test permutes labels within sites (each site
        keeps its case share), under which the within-site AUC is 0.5 on average.
        ``auc_pooled`` (DeLong CI) is the AUC of all out-of-site predictions pooled: it also
        compares cases of one site with controls of another, so it needs the scores on one
        scale across sites, and a site's shift combined with its case share moves it either
        way. The ``per_site`` table has each site's AUC with a DeLong interval. Not combined
        with ``test_size`` (the held-out sites are the test).
    harmonise : {"none", "combat"}
        ``"combat"``: ComBat on the log-scale analytes right after imputation and log,
        fitted inside each training fold without the labels (:class:`SiteComBat`; a site
        unseen in training is harmonised by its own location and scale). The final
        model's ``predict`` then needs each sample's site.

    Returns
    -------
    DiscriminationResult
        ``model`` is the pipeline fitted on all samples, with the user's labels (its
        ``predict`` returns them). ``validated`` is True when the permutation p of
        ``auc`` is below 0.05; ``verdict`` says so in words. Tables:
        ``oof_predictions`` (id, y_true, y_prob: probabilities averaged over
        repeats), ``roc`` (of those pooled probabilities), ``roc_band`` (pointwise
        95% band of the pooled ROC curve from the same participant-level bootstrap
        resamples as the AUC interval), ``calibration`` (pooled probabilities),
        ``thresholds`` (``rule``, ``threshold`` used by ``predict``, pooled
        held-out ``sensitivity``/``specificity`` with Wilson CIs, ``ppv``, ``npv``,
        ``ppv_at_prevalence``, ``npv_at_prevalence``, ``prevalence``,
        ``threshold_fold_min``/``threshold_fold_max`` (range of the per-fold
        thresholds) and ``method`` (how they were chosen and scored)),
        ``importance``, ``signature``, ``per_repeat`` (each repeat's OOF AUC; their
        mean is ``auc``), ``per_site`` (with ``sites``: ``site, n_case, n_control, auc,
        auc_ci_low, auc_ci_high, note``, the AUC of each site's out-of-fold predictions) and
        ``test_predictions`` in held-out mode.
    """
    if model not in MODELS:
        raise ValueError(f"unknown model {model!r}; valid values: {', '.join(map(repr, MODELS))}")
    if permutation_scheme not in PERMUTATION_SCHEMES:
        raise ValueError(f"unknown permutation_scheme {permutation_scheme!r}; "
                         f"valid values: {', '.join(map(repr, PERMUTATION_SCHEMES))}")
    if cv not in CV_SCHEMES:
        raise ValueError(f"unknown cv {cv!r}; valid values: {', '.join(map(repr, CV_SCHEMES))}")
    if harmonise not in HARMONISERS:
        raise ValueError(f"unknown harmonise {harmonise!r}; valid values: "
                         f"{', '.join(map(repr, HARMONISERS))}")
    X = model_input(X)
    yy, case_label, control_label = encode_labels(y, case)
    if len(yy) != len(X):
        raise ValueError(f"y has {len(yy)} values for {len(X)} samples")
    g_all = None if groups is None else np.asarray(groups, dtype=object)
    id_all = np.asarray(X.index if ids is None else ids, dtype=object)
    if (g_all is not None and len(g_all) != len(X)) or len(id_all) != len(X):
        raise ValueError("groups and ids must have one entry per sample")
    loso = cv == "leave-site-out"
    combat = harmonise == "combat"
    if sites is None and (loso or combat):
        raise HikisigError(("leave-site-out validation" if loso else "ComBat harmonisation")
                           + " needs each sample's site (design.site, --site-column)")
    site_all = None if sites is None else check_sites(sites, len(X), g_all)
    if loso and test_size is not None:
        raise HikisigError("leave-site-out validation holds out whole sites: leave out test_size "
                           "(--test-size)")
    if combat and len(set(site_all.tolist())) < 2:  # type: ignore[union-attr]
        raise HikisigError("ComBat harmonisation needs at least 2 sites; the samples come from 1")
    Xm = with_site(X, site_all) if combat else X  # what the pipelines see
    eng = _as_engine(engine)
    settings = _Settings(model, inner_cv, recalibrate, n_estimators, cv_folds, n_top, log,
                         sensitivity_target, combat)
    ss = np.random.SeedSequence(seed)
    s_test, s_split, s_fit, s_boot, s_perm, s_final = ss.spawn(6)

    # held-out split (at the participant level when groups are given)
    units_all, unit_y_all = _units(g_all, yy)
    dev = np.arange(len(yy))
    test_idx = np.array([], dtype=int)
    if test_size is not None:
        ux = np.arange(len(unit_y_all))
        u_tr, u_te = train_test_split(ux, test_size=test_size, stratify=unit_y_all,
                                      random_state=spawn_seeds(s_test, 1)[0])
        dev = np.flatnonzero(np.isin(units_all, u_tr))
        test_idx = np.flatnonzero(np.isin(units_all, u_te))
    Xd = Xm.iloc[dev]
    yd = yy[dev]
    gd = None if g_all is None else g_all[dev]
    sd_sites = None if site_all is None else site_all[dev]
    units, unit_y = _units(gd, yd)
    unit_site = None
    if sd_sites is not None:
        unit_site = np.empty(len(unit_y), dtype=object)
        unit_site[units] = sd_sites

    # repeated CV: one engine task per (repeat, fold); leave-site-out: one task per site
    tasks, repeat_of = [], []
    site_names: list[str] = []
    site_folds: list[tuple[np.ndarray, np.ndarray]] | None = None
    if loso:
        site_names, site_folds = site_splits(sd_sites, yd)  # type: ignore[arg-type]
        cv_repeats = 1
        for (tr, te), sd in zip(site_folds, spawn_seeds(s_fit, len(site_folds)), strict=True):
            tasks.append(_FoldTask(Xd, yd, gd, tr, te, settings, sd))
            repeat_of.append(0)
    else:
        split_seeds = spawn_seeds(s_split, cv_repeats)
        fit_seeds = spawn_seeds(s_fit, cv_repeats * cv_folds)
        for r, sr in enumerate(split_seeds):
            folds = cv_splits(yd, groups=gd, n_splits=cv_folds, seed=sr)
            for (tr, te), sd in zip(folds, fit_seeds[r * cv_folds:(r + 1) * cv_folds],
                                    strict=True):
                tasks.append(_FoldTask(Xd, yd, gd, tr, te, settings, sd))
                repeat_of.append(r)
    results = eng.map(_fit_fold, tasks)
    # leave-site-out: bootstrap strata are site x class, permutations stay within sites
    strata = blocks = sample_sites = None
    if loso and unit_site is not None:
        blocks = pd.factorize(pd.Series(unit_site, dtype=object))[0]
        strata = blocks * 2 + unit_y
        sample_sites = blocks[units]

    n = len(yd)
    prob_rep = np.full((cv_repeats, n), np.nan)
    for r, res in zip(repeat_of, results, strict=True):
        prob_rep[r, res.test] = res.prob
    if np.isnan(prob_rep).any():  # pragma: no cover - k-fold covers every sample once per repeat
        raise RuntimeError("some samples got no out-of-fold prediction")
    oof = prob_rep.mean(axis=0)
    if loso:  # the within-site AUC of the out-of-site predictions
        per_repeat = _site_aucs(prob_rep, yd == 1, sd_sites)  # type: ignore[arg-type]
        if not np.isfinite(per_repeat).all():
            raise HikisigError("leave-site-out: no site has both cases and controls, so no "
                               "site's predictions can be scored")
    else:
        per_repeat = np.array([roc_auc_score(yd, prob_rep[r]) for r in range(cv_repeats)])
    # the model's own error of measurement on the logit scale: spread of a sample's
    # out-of-fold logit across CV repeats (used for reliable change at follow-up)
    logit_rep = np.log(np.clip(prob_rep, 1e-3, 1 - 1e-3) / (1 - np.clip(prob_rep, 1e-3, 1 - 1e-3)))
    logit_sem = (float(np.sqrt(np.mean(logit_rep.var(axis=0, ddof=1)))) if cv_repeats > 1
                 else None)

    # headline AUC (mean over repeats) with its participant-level stratified bootstrap CI;
    # the pooled AUC (of the repeat-averaged probabilities) with its DeLong CI
    auc = float(per_repeat.mean())
    dl = auc_delong(yd, oof)
    boot_seeds = spawn_seeds(s_boot, len(_blocks(_N_BOOT)))
    boot_parts = eng.map(_bootstrap_block, [
        _ResampleTask(prob_rep, yd, units, unit_y, k, sd, strata=strata,
                      sample_sites=sample_sites)
        for k, sd in zip(_blocks(_N_BOOT), boot_seeds, strict=True)])
    boot = np.concatenate([a for a, _ in boot_parts])
    boot_tpr = np.vstack([t for _, t in boot_parts])
    unit_name = "participants" if gd is not None else "samples"
    ci_method = (f"percentile bootstrap: {len(boot)} resamples of {unit_name}, stratified by class, "
                 f"each scoring every CV repeat's out-of-fold probabilities and averaging the "
                 f"repeats' AUCs")
    if loso:
        ci_method = (f"percentile bootstrap: {len(boot)} resamples of {unit_name}, stratified by "
                     f"site and class, each scoring the within-site AUC of the out-of-site "
                     f"probabilities")

    # permutation test of the same statistic
    p_value: float | None = None
    if permutations > 0:
        if permutation_scheme == "oof":
            perm_seeds = spawn_seeds(s_perm, len(_blocks(permutations)))
            null = np.concatenate(eng.map(_permutation_block, [
                _ResampleTask(prob_rep, yd, units, unit_y, k, sd, blocks=blocks,
                              sample_sites=sample_sites)
                for k, sd in zip(_blocks(permutations), perm_seeds, strict=True)]))
        else:
            null = np.asarray(eng.map(_refit_permutation, [
                _RefitPermTask(Xd, yd, gd, units, unit_y, settings, sd, site_folds, blocks)
                for sd in spawn_seeds(s_perm, permutations)]))
        p_value = float((1 + np.sum(null >= auc - 1e-12)) / (1 + len(null)))

    # calibration and ROC of the pooled probabilities
    cal = calibration_slope_intercept(yd, oof)
    fpr, tpr, thr = roc_curve(yd, oof)

    # thresholds: chosen on honest scores of each training fold, scored on its held-out fold
    counts = np.zeros((2, 4))  # rule x (tp, fn, tn, fp)
    fold_thr = np.array([res.thresholds for res in results], dtype=np.float64)  # (folds, 2)
    for res, (t_y, t_s) in zip(results, fold_thr, strict=True):
        d = yd[res.test] == 1
        for j, t in enumerate((t_y, t_s)):
            pos = res.prob >= t
            counts[j] += [(pos & d).sum(), (~pos & d).sum(), (~pos & ~d).sum(), (pos & ~d).sum()]
    sources = sorted({res.threshold_source for res in results})

    # importance and signature
    cols = list(X.columns)
    imps = [res.perm_importance for res in results if res.perm_importance is not None]
    perm_imp = np.vstack(imps) if imps else np.full((1, len(cols)), np.nan)
    top = np.zeros(len(cols))
    for row in perm_imp if imps else []:
        top[np.argsort(-row, kind="stable")[:n_top]] += 1
    stability = top / len(perm_imp) if imps else np.full(len(cols), np.nan)
    impurities = [res.impurity for res in results if res.impurity is not None]
    impurity = np.mean(impurities, axis=0) if impurities else np.full(len(cols), np.nan)
    importance = pd.DataFrame({
        "analyte": cols, "permutation_importance": perm_imp.mean(axis=0),
        "permutation_importance_sd": perm_imp.std(axis=0, ddof=1) if len(perm_imp) > 1 else np.nan,
        "impurity_importance": impurity, "stability": stability})
    g = _hedges_g(X.iloc[dev], yd, log)
    sig = importance[["analyte"]].copy()
    sig["importance"] = importance["permutation_importance"]
    sig["stability"] = stability
    sig["effect"] = g
    sig["direction"] = np.where(np.nan_to_num(g) < 0, "lower in cases", "higher in cases")
    sig = sig.sort_values(["importance", "stability"], ascending=False, kind="stable").reset_index(drop=True)
    sig["rank"] = np.arange(1, len(sig) + 1)
    sig = sig[SIGNATURE_COLUMNS]
    importance = importance.sort_values("permutation_importance", ascending=False,
                                        kind="stable").reset_index(drop=True)

    tuned: dict[str, Any] = {}
    if inner_cv:
        for res in results:
            for k, v in res.params.items():
                tuned.setdefault(k, {}).setdefault(str(v), 0)
                tuned[k][str(v)] += 1

    # final model on all samples, fitted on the user's labels (its predict returns them)
    final_seed = spawn_seeds(s_final, 2)
    final = make_pipeline(model, seed=final_seed[0], inner_cv=inner_cv, recalibrate=recalibrate,
                          n_estimators=n_estimators, log=log, harmonise=combat)
    labels = np.where(yy == 1, case_label, control_label).astype(object)
    _fit(final, Xm, labels, g_all)
    final_youden, final_target, final_source = _honest_thresholds(
        final, Xm, labels, g_all, case_label, sensitivity_target, spawn_seeds(final_seed[0], 1)[0])
    if isinstance(final, GridSearchCV):
        final = final.best_estimator_
    how = (f"chosen on {' / '.join(sources)} probabilities of the training samples of each of "
           f"the {len(results)} {'leave-site-out' if loso else 'CV'} folds and applied to its "
           f"held-out samples; accuracy pooled "
           f"over the held-out decisions of the {cv_repeats} repeat(s); threshold: chosen on "
           f"{final_source} probabilities of all samples for the final model")
    rows = []
    for j, (rule, final_thr) in enumerate((("youden", final_youden),
                                           ("sensitivity_target", final_target))):
        row = _pooled_rule_row(rule, final_thr, counts[j], cv_repeats, prevalence)
        per_fold = fold_thr[np.isfinite(fold_thr[:, j]), j]
        row["threshold_fold_min"] = float(per_fold.min()) if per_fold.size else float("nan")
        row["threshold_fold_max"] = float(per_fold.max()) if per_fold.size else float("nan")
        row["method"] = how
        rows.append(row)
    thresholds = pd.DataFrame(rows)

    group_aware = "yes" if g_all is not None else "no"
    n_sites = len(set(site_all.tolist())) if site_all is not None else None
    fpr_all, tpr_all, _ = roc_curve(yd, oof)
    tables: dict[str, pd.DataFrame] = {
        "oof_predictions": pd.DataFrame({"id": id_all[dev], "y_true": yd, "y_prob": oof}),
        "roc": pd.DataFrame({"fpr": fpr, "tpr": tpr, "threshold": thr}),
        "roc_band": pd.DataFrame({
            "fpr": ROC_GRID, "tpr": np.interp(ROC_GRID, fpr_all, tpr_all),
            "tpr_ci_low": np.quantile(boot_tpr, 0.025, axis=0),
            "tpr_ci_high": np.quantile(boot_tpr, 0.975, axis=0)}),
        "calibration": reliability_table(yd, oof, 10),
        "thresholds": thresholds,
        "importance": importance,
        "signature": sig,
        "per_repeat": pd.DataFrame({"repeat": np.arange(1, cv_repeats + 1), "auc": per_repeat}),
    }
    if sd_sites is not None:
        tables["per_site"] = _per_site_auc(sd_sites, yd, oof)

    held_out = None
    if len(test_idx):
        held = make_pipeline(model, seed=final_seed[1], inner_cv=inner_cv, recalibrate=recalibrate,
                             n_estimators=n_estimators, log=log, harmonise=combat)
        _fit(held, Xd, yd, gd)
        held_thr = _honest_thresholds(held, Xd, yd, gd, 1, sensitivity_target,
                                      spawn_seeds(final_seed[1], 1)[0])
        yt = yy[test_idx]
        pt = np.asarray(held.predict_proba(Xm.iloc[test_idx])[:, 1], dtype=np.float64)
        tables["test_predictions"] = pd.DataFrame({"id": id_all[test_idx], "y_true": yt, "y_prob": pt})
        held_out = HeldOut(len(yt), int(yt.sum()), int(len(yt) - yt.sum()), brier_score(yt, pt))
        if yt.min() != yt.max():
            tdl = auc_delong(yt, pt)
            held_out.test_auc, held_out.test_auc_ci_low = tdl["auc"], tdl["lower"]
            held_out.test_auc_ci_high = tdl["upper"]
        # thresholds of the development model, chosen on honest scores of the development samples
        for rule, t_rule in zip(("youden", "sensitivity_target"), held_thr[:2], strict=True):
            t = _rule_row(rule, t_rule, yt, pt, prevalence)
            held_out.rules[rule] = (t["sensitivity"], t["specificity"])

    params = {"model": model, "cv_folds": cv_folds, "cv_repeats": cv_repeats, "permutations": permutations,
              "permutation_scheme": permutation_scheme, "prevalence": prevalence,
              "sensitivity_target": sensitivity_target, "test_size": test_size, "inner_cv": inner_cv,
              "recalibrate": recalibrate, "n_top": n_top, "n_estimators": n_estimators, "seed": seed,
              "group_aware": g_all is not None, "engine": eng.backend,
              "bootstrap_resamples": _N_BOOT, "importance_repeats": _IMPORTANCE_REPEATS,
              "inner_folds": _INNER_FOLDS if inner_cv else None,
              "param_grid": PARAM_GRIDS[model] if inner_cv else None,
              "tuned_params": tuned or None,
              "log": bool(log), "preprocessing": _preprocessing_names(log, harmonise=combat),
              "cv": cv, "harmonise": harmonise, "n_sites": n_sites}
    if loso:
        params["cv_folds"], params["cv_repeats"] = len(site_names), 1
        cv_scheme = (f"leave-site-out CV: one fold per site ({len(site_names)} sites, each "
                     f"predicted by a model trained on the others), no repeats (the folds are "
                     f"fixed), group-aware: {group_aware}")
    else:
        cv_scheme = (f"{cv_folds}-fold stratified CV x {cv_repeats} repeats, group-aware: "
                     f"{group_aware}")
    cv_scheme += ((", nested 3-fold grid search" if inner_cv else "")
                  + (", sigmoid recalibration" if recalibrate else "")
                  + (", ComBat fitted in each training fold (unseen site: its own location "
                     "and scale, no labels)" if combat else ""))
    return DiscriminationResult(
        model=final, features=cols, tables=tables, params=params, n=int(n), seed=int(seed),
        cv_scheme=cv_scheme, training=training_data(X, labels, ids=id_all), auc=auc,
        auc_ci_low=float(np.clip(np.quantile(boot, 0.025), 0, 1)),
        auc_ci_high=float(np.clip(np.quantile(boot, 0.975), 0, 1)),
        auc_ci_method=ci_method, auc_ci_resamples=len(boot), auc_pooled=dl["auc"],
        auc_pooled_ci_low=dl["lower"], auc_pooled_ci_high=dl["upper"], auc_pooled_se=dl["se"],
        auc_per_repeat_mean=float(per_repeat.mean()),
        auc_per_repeat_sd=float(per_repeat.std(ddof=1)) if cv_repeats > 1 else 0.0,
        prediction_sem_logit=logit_sem, brier=brier_score(yd, oof),
        calibration_slope=cal["slope"], calibration_intercept=cal["intercept"],
        permutation_p=p_value, permutations=int(permutations),
        permutation_scheme=permutation_scheme, n_case=int(yd.sum()), n_control=int(n - yd.sum()),
        n_participants=len(unit_y) if g_all is not None else None, classifier=model,
        case_label=case_label, control_label=control_label, held_out=held_out, cv=cv,
        n_sites=n_sites, harmonise=harmonise).assess()


def _per_site_auc(sites: np.ndarray, y: np.ndarray, prob: np.ndarray) -> pd.DataFrame:
    """Each site's AUC of the out-of-fold probabilities with its DeLong 95% interval (NaN,
    with a note, for a site without cases or without controls)."""
    rows = []
    for s in sorted(set(sites.tolist())):
        rows_s = sites == s
        ys, ps = y[rows_s], prob[rows_s]
        n_case, n_control = int(ys.sum()), int(len(ys) - ys.sum())
        row: dict[str, Any] = {"site": s, "n_case": n_case, "n_control": n_control,
                               "auc": np.nan, "auc_ci_low": np.nan, "auc_ci_high": np.nan,
                               "note": ""}
        if n_case and n_control:
            dl = auc_delong(ys, ps)
            row.update(auc=dl["auc"], auc_ci_low=dl["lower"], auc_ci_high=dl["upper"])
            if min(n_case, n_control) < 2:
                row["note"] = "fewer than 2 cases or controls: the interval is not reliable"
        else:
            row["note"] = f"no {'controls' if n_case else 'cases'} at this site: no AUC"
        rows.append(row)
    return pd.DataFrame(rows, columns=["site", "n_case", "n_control", "auc", "auc_ci_low",
                                       "auc_ci_high", "note"])
