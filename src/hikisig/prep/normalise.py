"""Sample normalisation: remove differences in overall concentration between samples.

Each normaliser divides every sample (row) by a sample-specific factor:

* :class:`PQNormaliser`: probabilistic quotient normalisation (Dieterle et al.
  2006, Anal Chem 78:4281), the factor being the median quotient of the
  sample over a reference profile;
* :class:`TotalSumNormaliser`: the factor is the row sum;
* :class:`MedianNormaliser`: the factor is the row median.

Missing values and zeros are ignored when computing the factors (a zero is a
non-detect and says nothing about dilution; it adds nothing to a sum anyway)
and stay as they are in the output. The reference profile and the target
level are learned in ``fit`` from training samples only. The normalisers need
non-negative concentrations (raw or imputed, not log-transformed or scaled
data) and raise ``ValueError`` for negative values. A sample without any
positive value (only zeros and missing values) is returned unchanged, which is
exact whatever its factor.
"""

from __future__ import annotations

from typing import Any

import numpy as np
from sklearn.base import BaseEstimator, OneToOneFeatureMixin, TransformerMixin
from sklearn.utils.validation import check_is_fitted, validate_data

from hikisig.prep.missing import (
    _check_non_negative,
    _check_option,
    _listing,
    _sample_mask,
    _sample_names,
)

__all__ = ["MedianNormaliser", "PQNormaliser", "TotalSumNormaliser"]

REFERENCES = ("median", "qc")


class _RowNormaliser(OneToOneFeatureMixin, TransformerMixin, BaseEstimator):
    """Shared machinery: validation, tags and division by per-sample factors."""

    _what = "normalisation"

    def _validate(self, X: Any, *, reset: bool) -> np.ndarray:
        Xv: np.ndarray = validate_data(self, X, dtype=np.float64, ensure_all_finite="allow-nan",
                                       reset=reset)
        _check_non_negative(self, Xv, self._what)
        return Xv

    def _divide(self, X_orig: Any, X: np.ndarray, factors: np.ndarray, name: str) -> np.ndarray:
        # A sample without any positive value (only zeros and NaN) is the same after division by
        # any factor: it is returned unchanged. Any other undefined factor is an error.
        undefined = ~((factors > 0) & np.isfinite(factors))
        bad = np.flatnonzero(undefined & np.any(X > 0, axis=1))
        if bad.size:
            raise ValueError(
                f"cannot normalise sample(s) {_listing(_sample_names(X_orig, bad))}: their {name} is "
                "undefined (no positive value among the analytes used)"
            )
        out: np.ndarray = X / np.where(undefined, 1.0, factors)[:, None]
        return out

    def __sklearn_tags__(self) -> Any:
        tags = super().__sklearn_tags__()
        tags.input_tags.allow_nan = True
        tags.input_tags.positive_only = True
        return tags


def _check_target(target: object) -> float | None:
    if target is None:
        return None
    ok = isinstance(target, int | float | np.number) and not isinstance(target, bool)
    if not ok or not (np.isfinite(float(target)) and float(target) > 0):  # type: ignore[arg-type]
        raise ValueError(f"target must be None or a positive number; got {target!r}")
    return float(target)  # type: ignore[arg-type]


def _positive(X: np.ndarray) -> np.ndarray:
    """``X`` with zeros (non-detects) set to NaN."""
    return np.where(X > 0, X, np.nan)


def _nan_median(X: np.ndarray, axis: int) -> np.ndarray:
    """Medians ignoring NaN (NaN for an all-missing row or column, without a warning)."""
    seen = ~np.isnan(X).all(axis=axis)
    out = np.full(seen.shape[0], np.nan)
    if seen.any():
        out[seen] = np.nanmedian(X[seen] if axis == 1 else X[:, seen], axis=axis)
    return out


class PQNormaliser(_RowNormaliser):
    """Probabilistic quotient normalisation (Dieterle et al. 2006).

    For each sample the quotients sample / reference are computed analyte by
    analyte; the sample is divided by the median of its quotients (its most
    probable dilution factor). The total-area pre-normalisation that Dieterle
    et al. apply before PQN is *not* applied; chain :class:`TotalSumNormaliser`
    first if wanted. Missing values and zeros (non-detects) are left out of
    both the reference and the quotients; an analyte never detected in the
    reference samples takes no part.

    Parameters
    ----------
    reference : {"median", "qc"}, default="median"
        Reference profile: the median over all training samples, or over the
        training QC samples given by the ``qc`` mask of :meth:`fit`.

    Attributes
    ----------
    reference_ : ndarray of shape (n_features,)
        Reference profile: median of each analyte over the positive values of
        the reference samples (NaN where there are none).
    n_features_in_ : int
    feature_names_in_ : ndarray of str
        Defined when ``X`` has string column names.

    Examples
    --------
    >>> X = np.array([[1.0, 2.0, 3.0], [2.0, 4.0, 6.0], [1.0, 1.0, 1.0]])
    >>> PQNormaliser().fit_transform(X)
    array([[1., 2., 3.],
           [1., 2., 3.],
           [2., 2., 2.]])
    """

    _what = "PQN"

    def __init__(self, reference: str = "median") -> None:
        self.reference = reference

    def fit(self, X: Any, y: Any = None, *, qc: Any = None) -> PQNormaliser:
        """Compute the reference profile.

        Parameters
        ----------
        X : array-like of shape (n_samples, n_features)
            Non-negative concentrations.
        y : ignored
        qc : array-like of bool, shape (n_samples,), optional
            True for the QC samples of ``X``; required with ``reference="qc"``
            and not accepted otherwise.

        Returns
        -------
        self
        """
        _check_option("reference", self.reference, REFERENCES)
        X = self._validate(X, reset=True)
        if self.reference == "qc":
            if qc is None:
                raise ValueError('PQNormaliser(reference="qc") needs the QC mask: fit(X, qc=mask)')
            mask = _sample_mask(qc, X.shape[0])
            if not mask.any():
                raise ValueError("no QC samples: the qc mask is all False")
            X = X[mask]
        elif qc is not None:
            raise ValueError('a qc mask is only used with reference="qc"')
        reference = _nan_median(_positive(X), axis=0)
        if np.isnan(reference).all():
            raise ValueError("the PQN reference has no positive value")
        self.reference_ = reference
        return self

    def dilution_factors(self, X: Any) -> np.ndarray:
        """Most probable dilution factor of each sample relative to the reference.

        Parameters
        ----------
        X : array-like of shape (n_samples, n_features)

        Returns
        -------
        ndarray of shape (n_samples,)
            Median quotient (NaN when a sample has no usable analyte).
        """
        check_is_fitted(self, "reference_")
        return self._factors(self._validate(X, reset=False))

    def _factors(self, X: np.ndarray) -> np.ndarray:
        usable = ~np.isnan(self.reference_)
        return _nan_median(_positive(X[:, usable]) / self.reference_[usable], axis=1)

    def transform(self, X: Any) -> np.ndarray:
        """Divide each sample by its dilution factor.

        Parameters
        ----------
        X : array-like of shape (n_samples, n_features)

        Returns
        -------
        ndarray of shape (n_samples, n_features), float64
        """
        check_is_fitted(self, "reference_")
        Xv = self._validate(X, reset=False)
        return self._divide(X, Xv, self._factors(Xv), "median quotient")


class TotalSumNormaliser(_RowNormaliser):
    """Divide each sample by its total (row sum), rescaled to a common level.

    Each sample is divided by the sum of its observed values and multiplied
    by ``target`` (by default the median row sum of the training samples, so
    that values stay in concentration-like units). Missing values count as
    absent from the sum, so impute before normalising if many are missing.

    Parameters
    ----------
    target : float or None, default=None
        Common total of the normalised samples; None for the training median
        of the row sums.

    Attributes
    ----------
    target_ : float
        Total that every sample is scaled to.
    n_features_in_ : int
    feature_names_in_ : ndarray of str
        Defined when ``X`` has string column names.

    Examples
    --------
    >>> X = np.array([[1.0, 3.0], [2.0, 6.0], [3.0, 1.0]])
    >>> TotalSumNormaliser().fit_transform(X)
    array([[1., 3.],
           [1., 3.],
           [3., 1.]])
    """

    _what = "total-sum normalisation"

    def __init__(self, target: float | None = None) -> None:
        self.target = target

    @staticmethod
    def _factors(X: np.ndarray) -> np.ndarray:
        return np.where(np.isnan(X).all(axis=1), np.nan, np.nansum(X, axis=1))

    def fit(self, X: Any, y: Any = None) -> TotalSumNormaliser:
        """Learn the target total.

        Parameters
        ----------
        X : array-like of shape (n_samples, n_features)
        y : ignored

        Returns
        -------
        self
        """
        target = _check_target(self.target)
        Xv = self._validate(X, reset=True)
        if target is None:
            sums = self._factors(Xv)
            sums = sums[sums > 0]
            if sums.size == 0:
                raise ValueError("no training sample has a positive total")
            target = float(np.median(sums))
        self.target_ = target
        return self

    def transform(self, X: Any) -> np.ndarray:
        """Scale every sample to the target total.

        Parameters
        ----------
        X : array-like of shape (n_samples, n_features)

        Returns
        -------
        ndarray of shape (n_samples, n_features), float64
        """
        check_is_fitted(self, "target_")
        Xv = self._validate(X, reset=False)
        return self._divide(X, Xv, self._factors(Xv) / self.target_, "total")


class MedianNormaliser(_RowNormaliser):
    """Divide each sample by its median, rescaled to a common level.

    Each sample is divided by the median of its positive values (missing
    values and zeros are left out) and multiplied by ``target`` (by default
    the median over training samples of the row medians).

    Parameters
    ----------
    target : float or None, default=None
        Common median of the normalised samples; None for the training median
        of the row medians.

    Attributes
    ----------
    target_ : float
        Median that every sample is scaled to.
    n_features_in_ : int
    feature_names_in_ : ndarray of str
        Defined when ``X`` has string column names.

    Examples
    --------
    >>> X = np.array([[1.0, 2.0, 4.0], [2.0, 4.0, 8.0], [1.0, 2.0, 9.0]])
    >>> MedianNormaliser().fit_transform(X)
    array([[1., 2., 4.],
           [1., 2., 4.],
           [1., 2., 9.]])
    """

    _what = "median normalisation"

    def __init__(self, target: float | None = None) -> None:
        self.target = target

    def fit(self, X: Any, y: Any = None) -> MedianNormaliser:
        """Learn the target median.

        Parameters
        ----------
        X : array-like of shape (n_samples, n_features)
        y : ignored

        Returns
        -------
        self
        """
        target = _check_target(self.target)
        Xv = self._validate(X, reset=True)
        if target is None:
            medians = _nan_median(_positive(Xv), axis=1)
            medians = medians[medians > 0]
            if medians.size == 0:
                raise ValueError("no training sample has a positive median")
            target = float(np.median(medians))
        self.target_ = target
        return self

    def transform(self, X: Any) -> np.ndarray:
        """Scale every sample to the target median.

        Parameters
        ----------
        X : array-like of shape (n_samples, n_features)

        Returns
        -------
        ndarray of shape (n_samples, n_features), float64
        """
        check_is_fitted(self, "target_")
        Xv = self._validate(X, reset=False)
        return self._divide(X, Xv, _nan_median(_positive(Xv), axis=1) / self.target_, "median")
