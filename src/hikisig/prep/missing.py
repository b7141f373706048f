"""Missing values: filter analytes by missingness and impute what is left.

Missing concentrations in targeted metabolomics are mostly values below the
limit of detection (LOD), i.e. missing *not* at random: they are small. The
imputers here therefore fill a fraction of a small value (the training minimum
or the LOD) rather than a mean.

* :class:`MissingFilter` drops analytes with too many missing values, overall
  or (the "80 % rule") when no group has enough observed values.
* :class:`MinFractionImputer` fills ``fraction`` x the training minimum of each
  analyte (``fraction=0.5``: the usual half-minimum imputation). Zeros and
  negative values of a concentration are values below detection too (kit
  exports write them for ``<LOD``): by default (``nonpositive="missing"``) they
  are treated like missing values, left out of the minimum and replaced.
* :class:`LODImputer` fills ``fraction`` x the analyte's LOD (the same
  ``nonpositive`` option, keeping values <= 0 by default).
* k-nearest-neighbour imputation is :class:`sklearn.impute.KNNImputer` and
  median imputation is ``sklearn.impute.SimpleImputer(strategy="median")``;
  both are re-exported here and are not rewritten. Note that, unlike the two
  imputers above, they silently drop analytes that are missing in every
  training sample (``keep_empty_features=False``), and they keep values <= 0
  (a later plain log then stops with an error naming the analyte and sample).
* :func:`make_imputer` builds any of them from a method name.

Imputation statistics are learned in ``fit`` from training samples only, so
the imputers can sit in a cross-validated :class:`~sklearn.pipeline.Pipeline`.
"""

from __future__ import annotations

import warnings
from collections.abc import Iterable, Mapping, Sequence
from typing import Any

import numpy as np
import pandas as pd
from sklearn.base import BaseEstimator, OneToOneFeatureMixin, TransformerMixin
from sklearn.feature_selection import SelectorMixin
from sklearn.impute import KNNImputer, SimpleImputer
from sklearn.utils.validation import check_is_fitted, validate_data

__all__ = [
    "IMPUTERS",
    "NONPOSITIVE",
    "KNNImputer",
    "LODImputer",
    "MinFractionImputer",
    "MissingFilter",
    "SimpleImputer",
    "make_imputer",
]

#: Method names understood by :func:`make_imputer`.
IMPUTERS = ("half_min", "min_fraction", "lod", "knn", "median")
#: Values of the ``nonpositive`` parameter of the imputers.
NONPOSITIVE = ("missing", "keep")

_MAX_LISTED = 10


# -- helpers shared by the modules of hikisig.prep ---------------------------------------------


def _listing(items: Sequence[object]) -> str:
    """Comma-separated reprs of at most ``_MAX_LISTED`` items."""
    shown = ", ".join(repr(i) for i in items[:_MAX_LISTED])
    if len(items) > _MAX_LISTED:
        shown += f" and {len(items) - _MAX_LISTED} more"
    return shown


def _feature_names(est: BaseEstimator, idx: Iterable[int]) -> list[str]:
    """Names of the features at positions ``idx`` (``x<j>`` for array input)."""
    names = getattr(est, "feature_names_in_", None)
    if names is not None:
        return [str(names[j]) for j in idx]
    return [f"x{j}" for j in idx]


def _sample_names(X: Any, idx: Iterable[int]) -> list[object]:
    """Index labels of rows ``idx`` of ``X`` (row positions for arrays)."""
    index = getattr(X, "index", None)
    if index is not None:
        return [index[i] for i in idx]
    return [int(i) for i in idx]


def _check_option(param: str, value: object, options: Sequence[str]) -> None:
    if not isinstance(value, str) or value not in options:
        raise ValueError(f"unknown {param} {value!r}; valid values: {', '.join(map(repr, options))}")


def _check_fraction(param: str, value: object, *, low_open: bool = True) -> float:
    """A number in (0, 1] (``low_open``) or [0, 1]."""
    ok = isinstance(value, int | float | np.number) and not isinstance(value, bool)
    if ok:
        v = float(value)  # type: ignore[arg-type]
        ok = (0 < v <= 1) if low_open else (0 <= v <= 1)
    if not ok:
        interval = "(0, 1]" if low_open else "[0, 1]"
        raise ValueError(f"{param} must be a number in {interval}; got {value!r}")
    return float(value)  # type: ignore[arg-type]


def _check_non_negative(est: BaseEstimator, X: np.ndarray, what: str) -> None:
    """Raise a ValueError naming the features with negative values."""
    with np.errstate(invalid="ignore"):
        bad = np.flatnonzero(np.any(X < 0, axis=0))
    if bad.size:
        raise ValueError(
            f"Negative values in data: {what} needs non-negative concentrations; negative values in "
            f"feature(s) {_listing(_feature_names(est, bad))}"
        )


def _sample_mask(mask: Any, n_samples: int, name: str = "qc") -> np.ndarray:
    """Validate a boolean per-sample mask (``None`` means every sample)."""
    if mask is None:
        return np.ones(n_samples, dtype=bool)
    m = np.asarray(mask)
    if m.ndim != 1 or m.shape[0] != n_samples:
        raise ValueError(f"{name} must be a 1-D boolean mask with one entry per sample ({n_samples}); "
                         f"got shape {m.shape}")
    if m.dtype != bool:
        if m.dtype.kind in "iuf" and np.isin(m, (0, 1)).all():
            m = m.astype(bool)
        else:
            raise ValueError(f"{name} must be a boolean mask (True for QC samples); got dtype {m.dtype}")
    return m


def _all_missing_error(est: BaseEstimator, cols: np.ndarray, what: str) -> ValueError:
    return ValueError(
        f"cannot impute {what}: feature(s) {_listing(_feature_names(est, cols))} are missing in every "
        "training sample; drop them first (e.g. with MissingFilter)"
    )


# -- filter ---------------------------------------------------------------------------------------


class MissingFilter(SelectorMixin, BaseEstimator):
    """Drop analytes with too many missing values.

    Parameters
    ----------
    max_missing : float, default=0.2
        Largest missing fraction (in [0, 1]) an analyte may have to be kept.
    per_group : bool, default=False
        If True, ``fit(X, y)`` keeps an analyte when its missing fraction is at
        most ``max_missing`` in at least one group (level of ``y``): the "80 %
        rule" applied per group, so that an analyte present in cases but absent
        in controls is kept. Samples with a missing group label count in no
        group.

    Attributes
    ----------
    missing_fraction_ : ndarray of shape (n_features,)
        Missing fraction of each analyte over all training samples.
    group_missing_fraction_ : ndarray of shape (n_groups, n_features)
        Missing fraction per group (only with ``per_group=True``).
    groups_ : ndarray of shape (n_groups,)
        Group labels (only with ``per_group=True``).
    support_ : ndarray of bool, shape (n_features,)
        Analytes kept.
    n_features_in_ : int
    feature_names_in_ : ndarray of str
        Defined when ``X`` has string column names.

    Examples
    --------
    >>> X = np.array([[1.0, np.nan], [2.0, np.nan], [3.0, 4.0]])
    >>> MissingFilter(max_missing=0.5).fit(X).support_
    array([ True, False])
    >>> MissingFilter(max_missing=0.5, per_group=True).fit(X, ["a", "a", "b"]).support_
    array([ True,  True])
    """

    def __init__(self, max_missing: float = 0.2, per_group: bool = False) -> None:
        self.max_missing = max_missing
        self.per_group = per_group

    def fit(self, X: Any, y: Any = None) -> MissingFilter:
        """Compute missing fractions on training data.

        Parameters
        ----------
        X : array-like of shape (n_samples, n_features)
        y : array-like of shape (n_samples,), optional
            Group labels; required when ``per_group=True``, ignored otherwise.

        Returns
        -------
        self
        """
        limit = _check_fraction("max_missing", self.max_missing, low_open=False)
        X = validate_data(self, X, dtype=np.float64, ensure_all_finite="allow-nan")
        missing = np.isnan(X)
        self.missing_fraction_ = missing.mean(axis=0)
        if self.per_group:
            if y is None:
                raise ValueError("MissingFilter(per_group=True) needs the group labels: call fit(X, y)")
            labels = pd.Series(np.asarray(y, dtype=object).ravel())
            if labels.shape[0] != X.shape[0]:
                raise ValueError(f"y has {labels.shape[0]} labels but X has {X.shape[0]} samples")
            codes, groups = pd.factorize(labels, sort=True, use_na_sentinel=True)
            if groups.size == 0:
                raise ValueError("y has no non-missing group label")
            frac = np.vstack([missing[codes == g].mean(axis=0) for g in range(groups.size)])
            self.groups_ = np.asarray(groups)
            self.group_missing_fraction_ = frac
            self.support_ = np.any(frac <= limit, axis=0)
        else:
            self.support_ = self.missing_fraction_ <= limit
        return self

    def _get_support_mask(self) -> np.ndarray:
        check_is_fitted(self, "support_")
        return np.asarray(self.support_)

    def transform(self, X: Any) -> np.ndarray:
        """Keep the selected analytes.

        Parameters
        ----------
        X : array-like of shape (n_samples, n_features)

        Returns
        -------
        ndarray of shape (n_samples, n_selected), float64
        """
        check_is_fitted(self, "support_")
        X = validate_data(self, X, dtype=np.float64, ensure_all_finite="allow-nan", reset=False)
        return _select(X, self.support_)

    def __sklearn_tags__(self) -> Any:
        tags = super().__sklearn_tags__()
        tags.input_tags.allow_nan = True
        return tags


def _select(X: np.ndarray, support: np.ndarray) -> np.ndarray:
    if not support.any():
        warnings.warn("No features were selected: every analyte failed the filter", UserWarning,
                      stacklevel=3)
    return np.array(X[:, support], dtype=np.float64)


# -- imputers ----------------------------------------------------------------------------------


def _below_detection(X: np.ndarray, nonpositive: str) -> np.ndarray:
    """Where ``X`` is missing, or (``nonpositive="missing"``) zero or negative."""
    missing = np.isnan(X)
    if nonpositive == "missing":
        with np.errstate(invalid="ignore"):
            missing |= X <= 0
    return missing


def _positive_minimum(est: BaseEstimator, X: np.ndarray, nonpositive: str, what: str,
                      cols: np.ndarray | None = None) -> np.ndarray:
    """Smallest usable training value of each column (of the columns ``cols``; values <= 0
    left out with ``nonpositive="missing"``); a ValueError names the columns without one."""
    cols = np.arange(X.shape[1]) if cols is None else np.asarray(cols, dtype=np.intp)
    X = X[:, cols]
    usable = ~_below_detection(X, nonpositive)
    none = np.flatnonzero(~usable.any(axis=0))
    if none.size:
        all_nan = np.isnan(X[:, none]).all(axis=0)
        if all_nan.any():
            raise _all_missing_error(est, cols[none[all_nan]], what)
        raise ValueError(
            f"cannot impute {what}: feature(s) {_listing(_feature_names(est, cols[none]))} have "
            "no positive value in any training sample (values <= 0 count as missing with "
            "nonpositive='missing'); drop them first, or use nonpositive='keep' for data that "
            "are not concentrations"
        )
    out: np.ndarray = np.min(np.where(usable, X, np.inf), axis=0)
    return out


class _FillImputer(OneToOneFeatureMixin, TransformerMixin, BaseEstimator):
    """Replace NaN (and, with ``nonpositive="missing"``, values <= 0) by a per-feature fill
    value ``fill_values_`` learned in fit."""

    fill_values_: np.ndarray
    nonpositive: str

    def transform(self, X: Any) -> np.ndarray:
        """Replace missing values by the fitted fill values.

        Parameters
        ----------
        X : array-like of shape (n_samples, n_features)

        Returns
        -------
        ndarray of shape (n_samples, n_features), float64
        """
        check_is_fitted(self, "fill_values_")
        X = validate_data(self, X, dtype=np.float64, ensure_all_finite="allow-nan", reset=False,
                          copy=True)
        # imputers saved before ``nonpositive`` existed only filled NaN
        nonpositive = getattr(self, "nonpositive", "keep")
        rows, cols = np.nonzero(_below_detection(X, nonpositive))
        X[rows, cols] = self.fill_values_[cols]
        return X

    def __sklearn_tags__(self) -> Any:
        tags = super().__sklearn_tags__()
        tags.input_tags.allow_nan = True
        return tags


class MinFractionImputer(_FillImputer):
    """Replace missing values by a fraction of the analyte's training minimum.

    With ``fraction=0.5`` this is the common half-minimum imputation for values
    below the limit of detection. Meant for raw (positive) concentrations, where
    zeros and negative values are values below detection too.

    Parameters
    ----------
    fraction : float, default=0.5
        Multiplier in (0, 1] of the smallest observed training value.
    nonpositive : {"missing", "keep"}, default="missing"
        ``"missing"``: values <= 0 are below detection, like missing values: the
        minimum is learned from the positive training values, and ``transform``
        replaces values <= 0 as it replaces NaN. ``"keep"``: only NaN is missing;
        values <= 0 enter the minimum and are kept (for data that are not
        concentrations; the fill value may then be zero or negative).

    Attributes
    ----------
    min_ : ndarray of shape (n_features,)
        Smallest observed training value of each analyte (the smallest positive one
        with ``nonpositive="missing"``).
    fill_values_ : ndarray of shape (n_features,)
        ``fraction * min_``.
    n_features_in_ : int
    feature_names_in_ : ndarray of str
        Defined when ``X`` has string column names.

    Raises
    ------
    ValueError
        In ``fit``, when ``nonpositive`` is not a valid option, or an analyte is
        missing (or, with ``nonpositive="missing"``, not positive) in every
        training sample.

    Examples
    --------
    >>> X = np.array([[4.0, np.nan], [2.0, 10.0], [np.nan, 8.0], [0.0, 12.0]])
    >>> MinFractionImputer().fit_transform(X)
    array([[ 4.,  4.],
           [ 2., 10.],
           [ 1.,  8.],
           [ 1., 12.]])
    >>> MinFractionImputer(nonpositive="keep").fit_transform(X)[:, 0]
    array([4., 2., 0., 0.])
    """

    def __init__(self, fraction: float = 0.5, nonpositive: str = "missing") -> None:
        self.fraction = fraction
        self.nonpositive = nonpositive

    def fit(self, X: Any, y: Any = None) -> MinFractionImputer:
        """Learn the minimum of each analyte.

        Parameters
        ----------
        X : array-like of shape (n_samples, n_features)
        y : ignored

        Returns
        -------
        self
        """
        fraction = _check_fraction("fraction", self.fraction)
        _check_option("nonpositive", self.nonpositive, NONPOSITIVE)
        X = validate_data(self, X, dtype=np.float64, ensure_all_finite="allow-nan")
        self.min_ = _positive_minimum(self, X, self.nonpositive, "by a fraction of the minimum")
        self.fill_values_ = fraction * self.min_
        return self


class LODImputer(_FillImputer):
    """Replace missing values (below the limit of detection) by a fraction of the LOD.

    Parameters
    ----------
    lod : array-like of shape (n_features,), dict, Series or None, default=None
        Limit of detection of each analyte, in the units of ``X``. An array
        gives one LOD per column (NaN where unknown). A dict or a Series maps
        feature names (the DataFrame column names; column positions for array
        input) to LODs; analytes not in it have no known LOD. An analyte without a
        known LOD falls back to ``fraction`` x its training minimum, as in
        :class:`MinFractionImputer`; ``None`` means no LOD is known.
    fraction : float, default=0.5
        Multiplier in (0, 1]: missing values become ``fraction * LOD``
        (``LOD / 2`` by default).
    nonpositive : {"keep", "missing"}, default="keep"
        ``"keep"``: only NaN is missing; values <= 0 are kept (a later plain log
        rejects them, naming the analyte and sample). ``"missing"``: values <= 0
        are below detection and replaced like NaN, and the fallback minimum is that
        of the positive training values (as in :class:`MinFractionImputer`).

    Attributes
    ----------
    lod_ : ndarray of shape (n_features,)
        LOD used for each analyte (NaN where the training minimum was used).
    fill_values_ : ndarray of shape (n_features,)
        Value that replaces a missing value of each analyte.
    n_features_in_ : int
    feature_names_in_ : ndarray of str
        Defined when ``X`` has string column names.

    Raises
    ------
    ValueError
        In ``fit``, when an LOD is not positive, a dict names an unknown
        feature, the LOD array has the wrong length, ``nonpositive`` is not a
        valid option, or an analyte without LOD has no usable training value.

    Examples
    --------
    >>> X = pd.DataFrame({"Orn": [40.0, np.nan, 55.0], "Arg": [np.nan, 80.0, 90.0]})
    >>> LODImputer(lod={"Orn": 5.0}).fit_transform(X)
    array([[40. , 40. ],
           [ 2.5, 80. ],
           [55. , 90. ]])
    """

    def __init__(self, lod: Any = None, fraction: float = 0.5, nonpositive: str = "keep") -> None:
        self.lod = lod
        self.fraction = fraction
        self.nonpositive = nonpositive

    def _resolve_lod(self, n_features: int) -> np.ndarray:
        lod = np.full(n_features, np.nan)
        if self.lod is None:
            return lod
        given_map = self.lod.to_dict() if isinstance(self.lod, pd.Series) else self.lod
        if isinstance(given_map, Mapping):
            names = getattr(self, "feature_names_in_", None)
            keys = list(names) if names is not None else list(range(n_features))
            position = {k: j for j, k in enumerate(keys)}
            unknown = [k for k in given_map if k not in position]
            if unknown:
                what = "feature names" if names is not None else "column positions (X has no names)"
                raise ValueError(f"lod names unknown feature(s) {_listing(unknown)}; keys must be {what}")
            for k, v in given_map.items():
                lod[position[k]] = np.nan if v is None else float(v)
        else:
            given = np.asarray(self.lod, dtype=np.float64)
            if given.ndim != 1 or given.shape[0] != n_features:
                raise ValueError(f"lod must have one value per feature ({n_features}); "
                                 f"got shape {given.shape}")
            lod = given.copy()
        bad = np.flatnonzero(~np.isnan(lod) & ~((lod > 0) & np.isfinite(lod)))
        if bad.size:
            raise ValueError("lod must be positive and finite; feature(s) "
                             f"{_listing(_feature_names(self, bad))}")
        return lod

    def fit(self, X: Any, y: Any = None) -> LODImputer:
        """Resolve the LOD of each analyte (training minimum where unknown).

        Parameters
        ----------
        X : array-like of shape (n_samples, n_features)
        y : ignored

        Returns
        -------
        self
        """
        fraction = _check_fraction("fraction", self.fraction)
        _check_option("nonpositive", self.nonpositive, NONPOSITIVE)
        X = validate_data(self, X, dtype=np.float64, ensure_all_finite="allow-nan")
        lod = self._resolve_lod(X.shape[1])
        fallback = np.flatnonzero(np.isnan(lod))
        base = lod.copy()
        if fallback.size:
            base[fallback] = _positive_minimum(self, X, self.nonpositive, "without an LOD",
                                               fallback)
        self.lod_ = lod
        self.fill_values_ = fraction * base
        return self


def make_imputer(method: str, **kwargs: Any) -> BaseEstimator:
    """Build an imputer from its method name.

    Parameters
    ----------
    method : {"half_min", "min_fraction", "lod", "knn", "median"}
        ``"half_min"``: :class:`MinFractionImputer` with ``fraction=0.5``
        (unless given); ``"min_fraction"``: :class:`MinFractionImputer`;
        ``"lod"``: :class:`LODImputer`; ``"knn"``:
        :class:`sklearn.impute.KNNImputer`; ``"median"``:
        ``sklearn.impute.SimpleImputer(strategy="median")``.
    **kwargs
        Passed to the imputer's constructor.

    Returns
    -------
    estimator
        An unfitted imputer.

    Examples
    --------
    >>> make_imputer("half_min")
    MinFractionImputer()
    >>> make_imputer("knn", n_neighbors=3)
    KNNImputer(n_neighbors=3)
    """
    _check_option("imputation method", method, IMPUTERS)
    if method == "half_min":
        return MinFractionImputer(**{"fraction": 0.5, **kwargs})
    if method == "min_fraction":
        return MinFractionImputer(**kwargs)
    if method == "lod":
        return LODImputer(**kwargs)
    if method == "knn":
        return KNNImputer(**kwargs)
    return SimpleImputer(**{"strategy": "median", **kwargs})
