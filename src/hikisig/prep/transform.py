"""Variance-stabilising transforms and scaling of analytes.

* :class:`LogTransformer`: log2, log10, natural log or the generalised log
  (glog), which is defined for zero and negative values too.
* :class:`Scaler`: centring and scaling by the methods compared by van den Berg
  et al. (2006, BMC Genomics 7:142): autoscaling, Pareto, range and VAST
  scaling, centring only, or nothing.

Statistics are learned in ``fit`` from training samples only and ignore
missing values, which stay missing in the output.
"""

from __future__ import annotations

import warnings
from collections.abc import Callable
from typing import Any

import numpy as np
from sklearn.base import BaseEstimator, OneToOneFeatureMixin, TransformerMixin
from sklearn.utils.validation import check_is_fitted, validate_data

from hikisig.prep.missing import _check_option, _sample_names

__all__ = ["LOG_BASES", "SCALINGS", "LogTransformer", "Scaler", "glog"]

#: Bases understood by :class:`LogTransformer`.
LOG_BASES = ("log2", "log10", "ln", "glog")
#: Methods understood by :class:`Scaler`.
SCALINGS = ("auto", "pareto", "range", "vast", "centre", "none")

_LOG: dict[str, Callable[[np.ndarray], np.ndarray]] = {"log2": np.log2, "log10": np.log10, "ln": np.log}
_EXP: dict[str, Callable[[np.ndarray], np.ndarray]] = {
    "log2": lambda y: np.power(2.0, y),
    "log10": lambda y: np.power(10.0, y),
    "ln": np.exp,
}


def glog(x: Any, lam: float) -> np.ndarray:
    """Generalised logarithm ``log2((x + sqrt(x**2 + lam)) / 2)``.

    Equal to ``log2(x)`` asymptotically for ``x >> sqrt(lam)``, finite for
    every real ``x``, and ``log2(sqrt(lam) / 2)`` at ``x = 0``.

    Examples
    --------
    >>> round(float(glog(1000.0, 1.0)), 6), round(float(np.log2(1000.0)), 6)
    (9.965785, 9.965784)
    """
    x = np.asarray(x, dtype=np.float64)
    out: np.ndarray = np.log2((x + np.sqrt(x * x + lam)) / 2.0)
    return out


def _glog_inverse(y: np.ndarray, lam: float) -> np.ndarray:
    u = 2.0 * np.power(2.0, y)  # u = x + sqrt(x^2 + lam)
    out: np.ndarray = (u * u - lam) / (2.0 * u)
    return out


def _is_number(value: object) -> bool:
    return isinstance(value, int | float | np.number) and not isinstance(value, bool)


_MAX_SHOWN = 3


def _bad_values(est: BaseEstimator, X_in: Any, bad: np.ndarray) -> str:
    """Which analytes hold offending values, in which samples (``bad``: samples x features),
    e.g. ``feature(s) 'Arg' in sample(s) 'S01', 'S07'; 'Cit' in sample(s) 'S02'``.

    Features are named by their column names (``column <j>`` for array input) and
    samples by the index labels of ``X_in`` (``row <i>`` for array input).
    """
    names = getattr(est, "feature_names_in_", None)
    has_index = getattr(X_in, "index", None) is not None
    cols = np.flatnonzero(bad.any(axis=0))
    parts = []
    for j in cols[:_MAX_SHOWN]:
        rows = np.flatnonzero(bad[:, j])
        feature = repr(str(names[j])) if names is not None else f"column {j}"
        shown = [repr(v) for v in _sample_names(X_in, rows[:_MAX_SHOWN])] if has_index else \
            [f"row {i}" for i in rows[:_MAX_SHOWN]]
        etc = f", ... ({rows.size} in all)" if rows.size > _MAX_SHOWN else ""
        parts.append(f"{feature} in sample(s) {', '.join(shown)}{etc}")
    if cols.size > _MAX_SHOWN:
        parts.append(f"and {cols.size - _MAX_SHOWN} more feature(s)")
    return "feature(s) " + "; ".join(parts)


class LogTransformer(OneToOneFeatureMixin, TransformerMixin, BaseEstimator):
    """Logarithm of concentrations, optionally after adding an offset.

    Parameters
    ----------
    base : {"log2", "log10", "ln", "glog"}, default="log2"
        ``"glog"`` is the generalised log ``log2((x + sqrt(x^2 + lambda)) / 2)``
        (Durbin et al. 2002; Parsons et al. 2007), which behaves like ``log2``
        for large values and stays finite at and below zero.
    offset : float, default=0.0
        Added to every value before the log (e.g. 1 for ``log2(x + 1)``).
        With the plain logs every ``x + offset`` must be positive.
    glog_lambda : float or None, default=None
        The glog ``lambda`` (> 0). None estimates it in ``fit`` by the simple
        rule of MetaboAnalyst: ``lambda = (m / 10) ** 2``, ``m`` being the
        smallest non-zero absolute value of the training data (after the
        offset), so that glog is close to log2 above about ``m / 10`` and
        stays finite near zero. (Parsons et al. estimate lambda by maximum
        likelihood from technical replicates; pass that value here if known.)

    Attributes
    ----------
    lambda_ : float
        glog lambda used (only for ``base="glog"``).
    n_features_in_ : int
    feature_names_in_ : ndarray of str
        Defined when ``X`` has string column names.

    Raises
    ------
    ValueError
        With a plain log, when a value plus ``offset`` is zero or negative;
        the message names the features and, for each, the first such sample
        (an error instead of ``-inf``). Zeros and negative concentrations are
        values below detection: impute them first with
        :class:`~hikisig.prep.MinFractionImputer`, which treats them as missing.

    Examples
    --------
    >>> LogTransformer().fit_transform(np.array([[1.0, 8.0], [4.0, np.nan]]))
    array([[ 0.,  3.],
           [ 2., nan]])
    >>> LogTransformer(base="log10", offset=1.0).fit_transform(np.array([[0.0], [99.0]]))
    array([[0.],
           [2.]])
    """

    def __init__(self, base: str = "log2", offset: float = 0.0, glog_lambda: float | None = None) -> None:
        self.base = base
        self.offset = offset
        self.glog_lambda = glog_lambda

    def _check_params(self) -> None:
        _check_option("base", self.base, LOG_BASES)
        if not _is_number(self.offset) or not np.isfinite(self.offset) or self.offset < 0:
            raise ValueError(f"offset must be a non-negative number; got {self.offset!r}")
        if self.glog_lambda is not None and (
            not _is_number(self.glog_lambda) or not (np.isfinite(self.glog_lambda) and self.glog_lambda > 0)
        ):
            raise ValueError(f"glog_lambda must be None or a positive number; got {self.glog_lambda!r}")

    def _shifted(self, X: Any, *, reset: bool) -> np.ndarray:
        Xv: np.ndarray = validate_data(self, X, dtype=np.float64, ensure_all_finite="allow-nan",
                                       reset=reset)
        Xv = Xv + float(self.offset)
        if self.base != "glog":
            with np.errstate(invalid="ignore"):
                cells = Xv <= 0
            if cells.any():
                with np.errstate(invalid="ignore"):
                    negative = bool(np.any(Xv < 0))
                lead = "Negative values in data: " if negative else ""
                plus = f" + offset {self.offset}" if self.offset else ""
                raise ValueError(
                    f"{lead}{self.base} needs positive values; values{plus} <= 0 in "
                    f"{_bad_values(self, X, cells)}. Values <= 0 of a concentration are below "
                    "detection: impute them (MinFractionImputer treats them as missing) or filter "
                    "them, give offset > 0, or use base='glog'"
                )
        return Xv

    def fit(self, X: Any, y: Any = None) -> LogTransformer:
        """Check the data (and estimate the glog lambda).

        Parameters
        ----------
        X : array-like of shape (n_samples, n_features)
        y : ignored

        Returns
        -------
        self
        """
        self._check_params()
        Xv = self._shifted(X, reset=True)
        if self.base == "glog":
            if self.glog_lambda is not None:
                self.lambda_ = float(self.glog_lambda)
            else:
                a = np.abs(Xv[~np.isnan(Xv)])
                a = a[a > 0]
                if a.size == 0:
                    raise ValueError("cannot estimate glog_lambda: the data have no non-zero value; "
                                     "give glog_lambda")
                self.lambda_ = float((a.min() / 10.0) ** 2)
        return self

    def transform(self, X: Any) -> np.ndarray:
        """Apply the log.

        Parameters
        ----------
        X : array-like of shape (n_samples, n_features)

        Returns
        -------
        ndarray of shape (n_samples, n_features), float64
        """
        check_is_fitted(self, "n_features_in_")
        Xv = self._shifted(X, reset=False)
        if self.base == "glog":
            return glog(Xv, self.lambda_)
        out: np.ndarray = _LOG[self.base](Xv)
        return out

    def inverse_transform(self, X: Any) -> np.ndarray:
        """Back-transform to concentrations.

        Parameters
        ----------
        X : array-like of shape (n_samples, n_features)
            Log values.

        Returns
        -------
        ndarray of shape (n_samples, n_features), float64
        """
        check_is_fitted(self, "n_features_in_")
        Y: np.ndarray = validate_data(self, X, dtype=np.float64, ensure_all_finite="allow-nan",
                                      reset=False)
        Xv = _glog_inverse(Y, self.lambda_) if self.base == "glog" else _EXP[self.base](Y)
        out: np.ndarray = Xv - float(self.offset)
        return out

    def __sklearn_tags__(self) -> Any:
        tags = super().__sklearn_tags__()
        tags.input_tags.allow_nan = True
        tags.input_tags.positive_only = self.base != "glog"
        return tags


class Scaler(OneToOneFeatureMixin, TransformerMixin, BaseEstimator):
    """Centre and scale analytes (van den Berg et al. 2006).

    Every analyte is centred by its training mean ``m`` and divided by a
    scale ``s_j`` that depends on ``method`` (``sd``: standard deviation with
    ``ddof=1``, as in van den Berg et al.):

    ========  ==========================  =======================================
    method    scale                       effect
    ========  ==========================  =======================================
    auto      ``sd``                      unit variance (autoscaling, z-scores)
    pareto    ``sqrt(sd)``                keeps part of the size differences
    range     ``max - min``               relative to the observed range
    vast      ``sd ** 2 / |m|``           autoscaling times ``|m| / sd``: favours
                                          analytes with a small CV
    centre    1                           centring only
    none      1                           no centring either (identity)
    ========  ==========================  =======================================

    Missing values are ignored in the statistics and stay missing. A scale
    that is zero or undefined (a constant analyte, a single observed value,
    or ``vast`` with a zero mean) is replaced by 1, so such an analyte is only
    centred.

    Parameters
    ----------
    method : {"auto", "pareto", "range", "vast", "centre", "none"}, default="auto"

    Attributes
    ----------
    mean_ : ndarray of shape (n_features,)
        Training mean of each analyte (NaN ignored), whatever the method.
    center_ : ndarray of shape (n_features,)
        Value subtracted (``mean_``, or 0 for ``method="none"``).
    scale_ : ndarray of shape (n_features,)
        Divisor applied after centring.
    n_features_in_ : int
    feature_names_in_ : ndarray of str
        Defined when ``X`` has string column names.

    Examples
    --------
    >>> X = np.array([[1.0, 10.0], [3.0, 30.0], [5.0, 50.0]])
    >>> Scaler().fit_transform(X)
    array([[-1., -1.],
           [ 0.,  0.],
           [ 1.,  1.]])
    >>> Scaler(method="pareto").fit(X).scale_
    array([1.41421356, 4.47213595])
    """

    def __init__(self, method: str = "auto") -> None:
        self.method = method

    def fit(self, X: Any, y: Any = None) -> Scaler:
        """Learn the centre and scale of each analyte.

        Parameters
        ----------
        X : array-like of shape (n_samples, n_features)
        y : ignored

        Returns
        -------
        self
        """
        _check_option("method", self.method, SCALINGS)
        X = validate_data(self, X, dtype=np.float64, ensure_all_finite="allow-nan")
        with warnings.catch_warnings(), np.errstate(invalid="ignore", divide="ignore"):
            warnings.simplefilter("ignore", RuntimeWarning)  # all-missing analytes: NaN statistics
            mean = np.nanmean(X, axis=0)
            method = self.method
            if method in ("auto", "pareto", "vast"):
                sd = np.nanstd(X, axis=0, ddof=1)
                scale = {"auto": sd, "pareto": np.sqrt(sd), "vast": sd * sd / np.abs(mean)}[method]
            elif method == "range":
                scale = np.nanmax(X, axis=0) - np.nanmin(X, axis=0)
            else:
                scale = np.ones(X.shape[1])
        tiny = 10 * np.finfo(np.float64).eps * np.maximum(np.abs(mean), 1.0)
        degenerate = ~np.isfinite(scale) | (scale <= tiny)
        self.mean_ = mean
        self.center_ = np.zeros_like(mean) if method == "none" else mean.copy()
        self.scale_ = np.where(degenerate, 1.0, scale)
        return self

    def transform(self, X: Any) -> np.ndarray:
        """Centre and scale.

        Parameters
        ----------
        X : array-like of shape (n_samples, n_features)

        Returns
        -------
        ndarray of shape (n_samples, n_features), float64
        """
        check_is_fitted(self, "scale_")
        Xv: np.ndarray = validate_data(self, X, dtype=np.float64, ensure_all_finite="allow-nan",
                                       reset=False)
        out: np.ndarray = (Xv - self.center_) / self.scale_
        return out

    def inverse_transform(self, X: Any) -> np.ndarray:
        """Undo centring and scaling.

        Parameters
        ----------
        X : array-like of shape (n_samples, n_features)

        Returns
        -------
        ndarray of shape (n_samples, n_features), float64
        """
        check_is_fitted(self, "scale_")
        Xv: np.ndarray = validate_data(self, X, dtype=np.float64, ensure_all_finite="allow-nan",
                                       reset=False)
        out: np.ndarray = Xv * self.scale_ + self.center_
        return out

    def __sklearn_tags__(self) -> Any:
        tags = super().__sklearn_tags__()
        tags.input_tags.allow_nan = True
        return tags
