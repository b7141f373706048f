"""Quality control with pooled QC samples: RSD filter and signal drift correction.

Pooled QC samples (aliquots of one pooled sample injected at regular intervals
through the run) measure analytical variation only.

* :class:`QCRSDFilter` keeps analytes whose relative standard deviation over
  the QC injections is small enough (commonly 20 % or 30 %).
* :class:`QCDriftCorrector` removes within-batch signal drift by QC-robust
  LOESS signal correction (QC-RLSC; Dunn et al. 2011, Nat Protoc 6:1060) and
  then aligns batches by median centring.

Which samples are QCs, their injection order and their batch are passed as
keyword arguments of ``fit`` (and ``transform`` for order and batch):
``fit(X, qc=mask)``, ``fit_transform(X, qc=mask, order=order, batch=batch)``.
They are per-sample metadata like ``sample_weight``; with
``sklearn.set_config(enable_metadata_routing=True)`` they can be routed
through a pipeline with ``set_fit_request(qc=True)``. Drift correction is
normally applied once to the whole run (all injections, QCs included) before
any modelling, outside cross-validation; it uses no outcome information.
"""

from __future__ import annotations

import warnings
from typing import Any

import numpy as np
import pandas as pd
from sklearn.base import BaseEstimator, OneToOneFeatureMixin, TransformerMixin
from sklearn.feature_selection import SelectorMixin
from sklearn.utils.validation import check_is_fitted, validate_data
from statsmodels.nonparametric.smoothers_lowess import lowess

from hikisig.prep.missing import (
    _check_non_negative,
    _feature_names,
    _listing,
    _sample_mask,
    _select,
)

__all__ = ["MIN_QC_PER_BATCH", "QCDriftCorrector", "QCRSDFilter"]

#: Fewest QC injections per batch that a drift curve is fitted to.
MIN_QC_PER_BATCH = 4


class QCRSDFilter(SelectorMixin, BaseEstimator):
    """Keep analytes with a small relative standard deviation over QC samples.

    ``RSD = SD / mean`` over the QC samples (``ddof=1``, missing values
    ignored). Analytes with fewer than two observed QC values or a zero QC
    mean have an undefined RSD and are dropped.

    Parameters
    ----------
    max_rsd : float, default=0.2
        Largest RSD kept, as a fraction (0.2 = 20 %).

    Attributes
    ----------
    rsd_ : ndarray of shape (n_features,)
        RSD of each analyte over the QC samples (NaN where undefined).
    support_ : ndarray of bool, shape (n_features,)
        Analytes kept.
    n_features_in_ : int
    feature_names_in_ : ndarray of str
        Defined when ``X`` has string column names.

    Examples
    --------
    >>> X = np.array([[10.0, 10.0], [11.0, 20.0], [9.0, 30.0], [50.0, 50.0]])
    >>> qc = np.array([True, True, True, False])
    >>> f = QCRSDFilter(max_rsd=0.2).fit(X, qc=qc)
    >>> f.rsd_.round(3)
    array([0.1, 0.5])
    >>> f.transform(X)
    array([[10.],
           [11.],
           [ 9.],
           [50.]])
    """

    def __init__(self, max_rsd: float = 0.2) -> None:
        self.max_rsd = max_rsd

    def fit(self, X: Any, y: Any = None, *, qc: Any = None) -> QCRSDFilter:
        """Compute the QC RSD of each analyte.

        Parameters
        ----------
        X : array-like of shape (n_samples, n_features)
            Non-negative concentrations.
        y : ignored
        qc : array-like of bool, shape (n_samples,), optional
            True for QC samples. None takes every sample of ``X`` as a QC
            (pass the QC injections only).

        Returns
        -------
        self
        """
        ok = isinstance(self.max_rsd, int | float | np.number) and not isinstance(self.max_rsd, bool)
        if not ok or not float(self.max_rsd) > 0:
            raise ValueError(f"max_rsd must be a positive fraction (0.2 for 20 %); got {self.max_rsd!r}")
        X = validate_data(self, X, dtype=np.float64, ensure_all_finite="allow-nan")
        _check_non_negative(self, X, "the QC RSD")
        mask = _sample_mask(qc, X.shape[0])
        n_qc = int(mask.sum())
        if n_qc == 0:
            raise ValueError("no QC samples: the qc mask is all False")
        if n_qc < 2:
            raise ValueError(f"the QC RSD needs at least 2 QC samples; got {n_qc} sample(s) flagged as QC")
        Q = X[mask]
        n_obs = (~np.isnan(Q)).sum(axis=0)
        rsd = np.full(X.shape[1], np.nan)
        ok_cols = n_obs >= 2
        if ok_cols.any():
            Qo = Q[:, ok_cols]
            with np.errstate(invalid="ignore", divide="ignore"):
                mean = np.nanmean(Qo, axis=0)
                r = np.nanstd(Qo, axis=0, ddof=1) / mean
            rsd[ok_cols] = np.where(mean > 0, r, np.nan)
        self.rsd_ = rsd
        with np.errstate(invalid="ignore"):
            self.support_ = rsd <= float(self.max_rsd)
        return self

    def _get_support_mask(self) -> np.ndarray:
        check_is_fitted(self, "support_")
        return np.asarray(self.support_)

    def transform(self, X: Any) -> np.ndarray:
        """Keep the analytes that passed.

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
        tags.input_tags.positive_only = True
        return tags


class QCDriftCorrector(OneToOneFeatureMixin, TransformerMixin, BaseEstimator):
    """QC-based signal drift correction (QC-RLSC) with batch median centring.

    Within each batch, for each analyte, a LOWESS curve (statsmodels, local
    linear, span ``frac``) is fitted to the QC values against injection order
    and linearly interpolated at every sample's injection order (held constant
    before the first and after the last QC of the batch). Each value is then
    divided by the curve and multiplied by the median of the analyte's QC
    values in that batch. Afterwards, unless ``centre_batches=False``, each
    batch is divided by its median over study samples (non-QC; all samples
    when there are none) and multiplied by the overall median of the study
    samples, per analyte.

    The curves are fitted in a loop over analytes and batches (one statsmodels
    ``lowess`` call each; about 0.1 s for 150 analytes x 200 injections); all
    other steps are vectorised over analytes. An analyte is left uncorrected
    in a batch (a warning names it) when it has fewer than
    ``MIN_QC_PER_BATCH`` observed QC values there or its curve is not
    positive; ``uncorrected_`` records where.

    Parameters
    ----------
    frac : float, default=0.75
        LOWESS span: fraction of a batch's QC injections used for each local
        fit (0.75 is R's ``loess`` default). Larger is smoother.
    robust_iterations : int, default=0
        Robustifying iterations of LOWESS (0: plain least squares, as R's
        ``loess(family="gaussian")`` used in QC-RLSC; 3 down-weights outlying
        QC injections).
    centre_batches : bool, default=True
        Apply batch median centring after the within-batch correction.

    Attributes
    ----------
    batches_ : ndarray of shape (n_batches,)
        Batch labels seen in fit.
    qc_order_ : list of ndarray
        Sorted injection orders of the QC samples of each batch.
    qc_curve_ : list of ndarray of shape (n_qc_in_batch, n_features)
        Fitted LOWESS curve at those orders.
    qc_median_ : ndarray of shape (n_batches, n_features)
        Median QC value of each analyte in each batch.
    batch_factor_ : ndarray of shape (n_batches, n_features)
        Batch centring multiplier (1 when ``centre_batches=False``).
    uncorrected_ : ndarray of bool, shape (n_batches, n_features)
        Where no drift curve could be fitted.
    n_features_in_ : int
    feature_names_in_ : ndarray of str
        Defined when ``X`` has string column names.

    Notes
    -----
    ``order`` defaults to the row position and ``batch`` to a single batch.
    Without an explicit ``order``, the rows of ``X`` must be in injection order,
    and ``transform`` of other rows needs their ``order`` and ``batch``.

    Examples
    --------
    >>> order = np.arange(13)
    >>> drift = 1 + 0.05 * order
    >>> qc = order % 3 == 0
    >>> X = np.column_stack([np.where(qc, 100.0, 50.0) * drift, np.full(13, 10.0) * drift])
    >>> Xc = QCDriftCorrector().fit_transform(X, qc=qc, order=order)
    >>> np.ptp(Xc[qc], axis=0).round(6), np.ptp(Xc[~qc], axis=0).round(6)
    (array([0., 0.]), array([0., 0.]))
    """

    def __init__(self, frac: float = 0.75, robust_iterations: int = 0, centre_batches: bool = True) -> None:
        self.frac = frac
        self.robust_iterations = robust_iterations
        self.centre_batches = centre_batches

    # -- metadata -------------------------------------------------------------------------------

    @staticmethod
    def _order(order: Any, n: int) -> np.ndarray:
        if order is None:
            return np.arange(n, dtype=np.float64)
        try:
            o = np.asarray(order, dtype=np.float64)
        except (TypeError, ValueError) as exc:
            raise ValueError("order must be numeric injection orders") from exc
        if o.ndim != 1 or o.shape[0] != n:
            raise ValueError(f"order must have one injection order per sample ({n}); got shape {o.shape}")
        if not np.isfinite(o).all():
            raise ValueError("order has missing or infinite values")
        return o

    @staticmethod
    def _batch(batch: Any, n: int) -> pd.Index:
        if batch is None:
            return pd.Index(np.zeros(n, dtype=np.int64))
        b = pd.Index(np.asarray(batch).ravel())
        if b.shape[0] != n:
            raise ValueError(f"batch must have one label per sample ({n}); got {b.shape[0]}")
        if b.hasnans:
            raise ValueError("batch has missing labels")
        return b

    # -- fit ------------------------------------------------------------------------------------

    def _check_params(self) -> None:
        frac = self.frac
        if not isinstance(frac, int | float | np.number) or isinstance(frac, bool) or not 0 < frac <= 1:
            raise ValueError(f"frac must be a number in (0, 1]; got {frac!r}")
        it = self.robust_iterations
        if not isinstance(it, int | np.integer) or isinstance(it, bool) or it < 0:
            raise ValueError(f"robust_iterations must be a non-negative integer; got {it!r}")

    def fit(self, X: Any, y: Any = None, *, qc: Any = None, order: Any = None,
            batch: Any = None) -> QCDriftCorrector:
        """Fit the QC drift curves and the batch centring factors.

        Parameters
        ----------
        X : array-like of shape (n_samples, n_features)
            Non-negative concentrations of all injections (QC and study).
        y : ignored
        qc : array-like of bool, shape (n_samples,), optional
            True for QC samples. None takes every sample as a QC (drift then
            estimated from all samples, sensible only for a randomised run).
        order : array-like of shape (n_samples,), optional
            Injection order (unique within a batch). Default: row position.
        batch : array-like of shape (n_samples,), optional
            Batch labels. Default: one batch.

        Returns
        -------
        self

        Raises
        ------
        ValueError
            When a batch has fewer than ``MIN_QC_PER_BATCH`` QC samples, or
            for negative values, malformed ``qc``/``order``/``batch``.
        """
        self._check_params()
        Xv: np.ndarray = validate_data(self, X, dtype=np.float64, ensure_all_finite="allow-nan")
        _check_non_negative(self, Xv, "QC drift correction")
        n, p = Xv.shape
        mask = _sample_mask(qc, n)
        if not mask.any():
            raise ValueError("no QC samples: the qc mask is all False")
        o = self._order(order, n)
        b = self._batch(batch, n)
        batches = b.unique()
        codes = batches.get_indexer(b)

        orders, curves = [], []
        medians = np.empty((len(batches), p))
        uncorrected = np.zeros((len(batches), p), dtype=bool)
        for k, label in enumerate(batches):
            in_qc = (codes == k) & mask
            n_qc = int(in_qc.sum())
            if n_qc < MIN_QC_PER_BATCH:
                raise ValueError(
                    f"QC drift correction needs at least {MIN_QC_PER_BATCH} QC samples in each batch; "
                    f"batch {label!r} has {n_qc} sample(s) flagged as QC"
                )
            idx = np.flatnonzero(in_qc)
            idx = idx[np.argsort(o[idx], kind="stable")]
            ob, Q = o[idx], Xv[idx]
            if np.any(np.diff(ob) == 0):
                raise ValueError(f"batch {label!r} has QC samples with the same injection order")
            curve, med, bad = self._fit_batch(ob, Q)
            orders.append(ob)
            curves.append(curve)
            medians[k] = med
            uncorrected[k] = bad

        self.batches_ = np.asarray(batches)
        self.qc_order_ = orders
        self.qc_curve_ = curves
        self.qc_median_ = medians
        self.uncorrected_ = uncorrected
        self.batch_factor_ = np.ones((len(batches), p))
        if uncorrected.any():
            cols = np.flatnonzero(uncorrected.any(axis=0))
            warnings.warn(
                f"no QC drift curve for feature(s) {_listing(_feature_names(self, cols))} in some batch "
                f"(fewer than {MIN_QC_PER_BATCH} observed QC values or a non-positive curve); "
                "left uncorrected there (see uncorrected_)",
                UserWarning,
                stacklevel=2,
            )
        if self.centre_batches:
            Xc = self._within_batch(Xv, o, codes)
            study = ~mask if (~mask).any() else np.ones(n, dtype=bool)
            overall = _col_median(Xc[study])
            for k in range(len(batches)):
                rows = (codes == k) & study
                if not rows.any():
                    rows = codes == k
                with np.errstate(invalid="ignore", divide="ignore"):
                    factor = overall / _col_median(Xc[rows])
                self.batch_factor_[k] = np.where(np.isfinite(factor) & (factor > 0), factor, 1.0)
        return self

    def _fit_batch(self, ob: np.ndarray, Q: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """LOWESS curve of each analyte at the QC orders ``ob`` (loop over analytes)."""
        observed = ~np.isnan(Q)
        n_obs = observed.sum(axis=0)
        med = _col_median(Q)
        curve = np.tile(med, (Q.shape[0], 1))
        bad = n_obs < MIN_QC_PER_BATCH
        complete = observed.all(axis=0)
        for j in np.flatnonzero(~bad):
            keep = slice(None) if complete[j] else observed[:, j]
            fitted = lowess(Q[keep, j], ob[keep], frac=float(self.frac), it=int(self.robust_iterations),
                            delta=0.0, is_sorted=True, missing="none", return_sorted=False)
            curve[:, j] = fitted if complete[j] else np.interp(ob, ob[keep], fitted)
        invalid = ~np.all(np.isfinite(curve) & (curve > 0), axis=0) | ~(med > 0)
        bad |= invalid
        curve[:, bad] = 1.0
        med = np.where(bad, 1.0, med)
        return curve, med, bad

    # -- transform -----------------------------------------------------------------------------

    def _within_batch(self, X: np.ndarray, o: np.ndarray, codes: np.ndarray) -> np.ndarray:
        out = np.empty_like(X)
        for k in np.unique(codes):
            rows = np.flatnonzero(codes == k)
            ob, F = self.qc_order_[k], self.qc_curve_[k]
            t = o[rows]
            pos = np.clip(np.searchsorted(ob, t, side="right") - 1, 0, ob.size - 2)
            w = np.clip((t - ob[pos]) / (ob[pos + 1] - ob[pos]), 0.0, 1.0)[:, None]
            curve = F[pos] * (1.0 - w) + F[pos + 1] * w
            out[rows] = X[rows] / curve * self.qc_median_[k]
        return out

    def transform(self, X: Any, *, order: Any = None, batch: Any = None) -> np.ndarray:
        """Correct drift (and batch offsets) of samples from the fitted batches.

        Parameters
        ----------
        X : array-like of shape (n_samples, n_features)
        order : array-like of shape (n_samples,), optional
            Injection order of each row. Default: row position.
        batch : array-like of shape (n_samples,), optional
            Batch of each row; every batch must have been seen in fit.
            Default: one batch (the single batch of fit).

        Returns
        -------
        ndarray of shape (n_samples, n_features), float64
        """
        check_is_fitted(self, "qc_curve_")
        Xv: np.ndarray = validate_data(self, X, dtype=np.float64, ensure_all_finite="allow-nan",
                                       reset=False)
        _check_non_negative(self, Xv, "QC drift correction")
        n = Xv.shape[0]
        o = self._order(order, n)
        if batch is None:
            if len(self.batches_) > 1:
                raise ValueError(f"batch is needed: the corrector was fitted on {len(self.batches_)} batches")
            codes = np.zeros(n, dtype=np.int64)
        else:
            b = self._batch(batch, n)
            codes = pd.Index(self.batches_).get_indexer(b)
            if (codes < 0).any():
                unknown = pd.unique(np.asarray(b)[codes < 0]).tolist()
                raise ValueError(f"batch(es) {_listing(unknown)} were not seen in fit; "
                                 f"known: {_listing(self.batches_.tolist())}")
        out = self._within_batch(Xv, o, codes)
        out *= self.batch_factor_[codes]
        return out

    def fit_transform(self, X: Any, y: Any = None, *, qc: Any = None, order: Any = None,
                      batch: Any = None) -> np.ndarray:
        """Fit on a whole run and correct it.

        Parameters
        ----------
        X : array-like of shape (n_samples, n_features)
        y : ignored
        qc, order, batch
            As in :meth:`fit`.

        Returns
        -------
        ndarray of shape (n_samples, n_features), float64
        """
        return self.fit(X, y, qc=qc, order=order, batch=batch).transform(X, order=order, batch=batch)

    def __sklearn_tags__(self) -> Any:
        tags = super().__sklearn_tags__()
        tags.input_tags.allow_nan = True
        tags.input_tags.positive_only = True
        return tags


def _col_median(X: np.ndarray) -> np.ndarray:
    """Column medians ignoring NaN (NaN for an all-missing column, without a warning)."""
    out = np.full(X.shape[1], np.nan)
    seen = ~np.isnan(X).all(axis=0)
    if seen.any() and X.shape[0]:
        out[seen] = np.nanmedian(X[:, seen], axis=0)
    return out
