"""PLS utilities: VIP, R2Y/Q2 bookkeeping, a fast PLS1 path and OPLS.

* :func:`vip` - variable importance in projection of a fitted
  :class:`~sklearn.cross_decomposition.PLSRegression`.
* :func:`fit_metrics` - R2Y, Q2, RMSEE and RMSECV from fitted and
  cross-validated predictions (SIMCA/ropls conventions).
* :func:`pls1_path` - NIPALS PLS1 (one target) returning the regression
  coefficients of every number of components from 1 to ``n_components`` in
  one pass; numerically the same model as ``PLSRegression(scale=False)``
  (checked in the tests), used to make repeated cross-validation and
  permutation tests cheap.
* :class:`OPLS` - orthogonal PLS regression for one target (Trygg & Wold
  2002): one predictive and ``n_orthogonal`` orthogonal components.

Examples
--------
>>> import numpy as np
>>> from sklearn.cross_decomposition import PLSRegression
>>> rng = np.random.default_rng(0)
>>> X = rng.normal(size=(30, 6)); y = X[:, 0] + 0.1 * rng.normal(size=30)
>>> v = vip(PLSRegression(2, scale=False).fit(X, y))
>>> bool(np.isclose((v ** 2).mean(), 1.0))
True
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
from sklearn.base import BaseEstimator, RegressorMixin, TransformerMixin
from sklearn.cross_decomposition import PLSRegression
from sklearn.utils.validation import check_is_fitted, validate_data

__all__ = ["OPLS", "PLS1Path", "fit_metrics", "pls1_path", "vip", "vip_from_weights"]


def vip_from_weights(weights: np.ndarray, ssy: np.ndarray) -> np.ndarray:
    """VIP from the X weights (features x components) and the Y sum of squares per component.

    ``VIP_j = sqrt(p * sum_a SSY_a (w_ja / ||w_a||)^2 / sum_a SSY_a)``, so the
    mean of the squared VIPs is 1.
    """
    W = np.asarray(weights, dtype=np.float64)
    if W.ndim == 1:
        W = W[:, None]
    ssy = np.asarray(ssy, dtype=np.float64).ravel()
    Wn = W / np.linalg.norm(W, axis=0, keepdims=True)
    out: np.ndarray = np.sqrt(W.shape[0] * (Wn ** 2 @ ssy) / ssy.sum())
    return out


def vip(pls: PLSRegression) -> np.ndarray:
    """Variable importance in projection of a fitted PLS regression.

    ``SSY_a = ||t_a||^2 * ||q_a||^2`` is the Y sum of squares explained by
    component ``a`` (summed over targets), ``w_a`` the X weights of component
    ``a`` (on the deflated X, as in NIPALS). This is the formula of ropls
    (which weights by R2Y per component: the same up to a constant).

    Parameters
    ----------
    pls : PLSRegression
        A fitted model.

    Returns
    -------
    ndarray of shape (n_features,)
    """
    check_is_fitted(pls, "x_weights_")
    T = pls.x_scores_
    Q = pls.y_loadings_
    ssy = (T ** 2).sum(axis=0) * (Q ** 2).sum(axis=0)
    return vip_from_weights(pls.x_weights_, ssy)


def fit_metrics(y: Any, fitted: Any, predicted_cv: Any | None, n_components: int) -> dict[str, float]:
    """R2Y, Q2, RMSEE and RMSECV for one target.

    ``R2Y = 1 - SS(y - fitted) / SS(y - mean y)``; ``Q2 = 1 - PRESS / SS(y -
    mean y)`` with ``PRESS`` from the cross-validated predictions;
    ``RMSEE = sqrt(SS(y - fitted) / (n - A - 1))`` (ropls / SIMCA, ``A``
    components); ``RMSECV = sqrt(PRESS / n)``.

    Examples
    --------
    >>> m = fit_metrics([1.0, 2.0, 3.0, 4.0], [1.0, 2.0, 3.0, 4.0], [1.5, 2.0, 3.0, 3.5], 1)
    >>> m["r2y"], m["q2"], round(m["rmsecv"], 4)
    (1.0, 0.9, 0.3536)
    """
    yv = np.asarray(y, dtype=np.float64).ravel()
    fv = np.asarray(fitted, dtype=np.float64).ravel()
    n = yv.size
    ss = float(((yv - yv.mean()) ** 2).sum())
    ss_res = float(((yv - fv) ** 2).sum())
    dof = n - n_components - 1
    out = {"r2y": 1.0 - ss_res / ss if ss > 0 else float("nan"),
           "rmsee": float(np.sqrt(ss_res / dof)) if dof > 0 else float("nan"),
           "q2": float("nan"), "rmsecv": float("nan")}
    if predicted_cv is not None:
        pv = np.asarray(predicted_cv, dtype=np.float64).ravel()
        press = float(((yv - pv) ** 2).sum())
        out["q2"] = 1.0 - press / ss if ss > 0 else float("nan")
        out["rmsecv"] = float(np.sqrt(press / n))
    return out


@dataclass
class PLS1Path:
    """PLS1 models with 1..A components from one NIPALS pass (see :func:`pls1_path`).

    Attributes
    ----------
    x_mean : ndarray (p,)
    y_mean : float
    coef : ndarray (p, A)
        Column ``a - 1``: regression coefficients of the ``a``-component model
        on centred X.
    weights : ndarray (p, A)
        Unit-norm X weights (on the deflated X).
    ssy : ndarray (A,)
        Y sum of squares explained by each component.
    """

    x_mean: np.ndarray
    y_mean: float
    coef: np.ndarray
    weights: np.ndarray
    ssy: np.ndarray

    def predict(self, X: np.ndarray, n_components: int | None = None) -> np.ndarray:
        """Predictions, shape (n, A), or (n,) for one ``n_components``."""
        Xc = np.asarray(X, dtype=np.float64) - self.x_mean
        if n_components is None:
            out: np.ndarray = Xc @ self.coef + self.y_mean
            return out
        pred: np.ndarray = Xc @ self.coef[:, n_components - 1] + self.y_mean
        return pred

    def vip(self, n_components: int) -> np.ndarray:
        """VIP of the ``n_components``-component model."""
        return vip_from_weights(self.weights[:, :n_components], self.ssy[:n_components])


def pls1_path(X: np.ndarray, y: np.ndarray, n_components: int) -> PLS1Path:
    """NIPALS PLS1 on centred X and y (no scaling), all component counts at once.

    For one target NIPALS needs no inner iteration: ``w = X'y / ||X'y||``.
    The ``a``-component coefficients are ``W_a (P_a' W_a)^-1 q_a``, the model
    ``PLSRegression(n_components=a, scale=False)`` fits.
    """
    X = np.asarray(X, dtype=np.float64)
    yv = np.asarray(y, dtype=np.float64).ravel()
    x_mean = X.mean(axis=0)
    y_mean = float(yv.mean())
    Xk = X - x_mean
    yk = yv - y_mean
    p = X.shape[1]
    W = np.zeros((p, n_components))
    P = np.zeros((p, n_components))
    q = np.zeros(n_components)
    ssy = np.zeros(n_components)
    A = 0
    for a in range(n_components):
        w = Xk.T @ yk
        norm = np.linalg.norm(w)
        if norm <= 1e-12 * max(1.0, np.abs(Xk).max()):
            break
        w /= norm
        t = Xk @ w
        tt = float(t @ t)
        if tt <= 0:
            break
        P[:, a] = Xk.T @ t / tt
        q[a] = float(yk @ t) / tt
        W[:, a] = w
        ssy[a] = q[a] ** 2 * tt
        Xk -= np.outer(t, P[:, a])
        yk = yk - q[a] * t
        A = a + 1
    # rotations r_a = w_a - sum_b r_b (p_b' w_a), i.e. R = W (P'W)^-1, built column by column
    coef = np.zeros((p, n_components))
    R = np.zeros((p, A))
    for a in range(A):
        R[:, a] = W[:, a] - R[:, :a] @ (P[:, :a].T @ W[:, a])
        coef[:, a] = R[:, a] * q[a] + (coef[:, a - 1] if a else 0.0)
    if A:
        coef[:, A:] = coef[:, [A - 1]]
    if n_components > A:  # nothing left to explain: repeat the last model
        W[:, A:] = W[:, [max(A - 1, 0)]]
    return PLS1Path(x_mean, y_mean, coef, W, ssy)


class OPLS(RegressorMixin, TransformerMixin, BaseEstimator):
    """Orthogonal PLS regression of one target (Trygg & Wold 2002), NIPALS.

    X (and y) are centred, and scaled to unit variance (``sd`` with
    ``ddof=1``) when ``scale=True`` (ropls "standard" scaling). Then
    ``n_orthogonal`` times: ``w = X'y / ||X'y||``, ``t = Xw``,
    ``p = X't / t't``, ``w_o = p - (w'p) w`` normalised, ``t_o = X w_o``,
    ``p_o = X't_o / t_o't_o`` and ``X <- X - t_o p_o'``; finally one
    predictive component ``w, t, p, c = y't / t't`` of the filtered X. New
    samples are filtered with the same ``w_o, p_o`` and predicted as
    ``(x w) c``.

    Parameters
    ----------
    n_orthogonal : int, default=1
    scale : bool, default=True

    Attributes
    ----------
    x_mean_, x_std_ : ndarray (p,)
    y_mean_, y_std_ : float
    x_weights_ : ndarray (p,)
        Predictive weight ``w``.
    x_loadings_ : ndarray (p,)
        Predictive loading ``p``.
    x_scores_ : ndarray (n,)
        Predictive scores ``t`` of the training samples.
    y_loading_ : float
        ``c``.
    x_weights_ortho_, x_loadings_ortho_ : ndarray (p, n_orthogonal)
    x_scores_ortho_ : ndarray (n, n_orthogonal)
    coef_ : ndarray (p,)
        Coefficients on the original X: ``predict(X) = (X - x_mean_) @ coef_ + y_mean_``.
    vip_ : ndarray (p,)
        Predictive VIP (VIP4,p of Galindo-Prieto et al. 2014, the ``getVipVn`` of ropls):
        built from the normalised predictive loading and the X and y sums of squares of the
        predictive and orthogonal parts.
    vip_ortho_ : ndarray (p,)
        Orthogonal VIP (VIP4,o).
    r2y_ : float
        R2Y of the training fit.

    Examples
    --------
    >>> rng = np.random.default_rng(1)
    >>> X = rng.normal(size=(40, 5)); y = X[:, 0] - X[:, 1]
    >>> m = OPLS(n_orthogonal=1).fit(X, y)
    >>> m.predict(X).shape, m.transform(X).shape
    ((40,), (40, 2))
    """

    def __init__(self, n_orthogonal: int = 1, scale: bool = True) -> None:
        self.n_orthogonal = n_orthogonal
        self.scale = scale

    def fit(self, X: Any, y: Any) -> OPLS:
        X, yv = validate_data(self, X, y, dtype=np.float64, y_numeric=True)
        yv = np.asarray(yv, dtype=np.float64).ravel()
        n, p = X.shape
        self.x_mean_ = X.mean(axis=0)
        self.y_mean_ = float(yv.mean())
        if self.scale:
            sd = X.std(axis=0, ddof=1)
            self.x_std_ = np.where(sd > 0, sd, 1.0)
            ysd = float(yv.std(ddof=1))
            self.y_std_ = ysd if ysd > 0 else 1.0
        else:
            self.x_std_ = np.ones(p)
            self.y_std_ = 1.0
        Xk = (X - self.x_mean_) / self.x_std_
        yk = (yv - self.y_mean_) / self.y_std_
        k = int(self.n_orthogonal)
        Wo, Po, To = np.zeros((p, k)), np.zeros((p, k)), np.zeros((n, k))
        for i in range(k):
            w = Xk.T @ yk / (yk @ yk)
            w /= np.linalg.norm(w)
            t = Xk @ w
            pl = Xk.T @ t / (t @ t)
            wo = pl - (w @ pl) * w
            wo /= np.linalg.norm(wo)
            to = Xk @ wo
            po = Xk.T @ to / (to @ to)
            Xk = Xk - np.outer(to, po)
            Wo[:, i], Po[:, i], To[:, i] = wo, po, to
        w = Xk.T @ yk / (yk @ yk)
        w /= np.linalg.norm(w)
        t = Xk @ w
        self.x_weights_ = w
        self.x_scores_ = t
        self.x_loadings_ = Xk.T @ t / (t @ t)
        self.y_loading_ = float(yk @ t / (t @ t))
        self.x_weights_ortho_, self.x_loadings_ortho_, self.x_scores_ortho_ = Wo, Po, To
        # the orthogonal filter is linear: x -> x (I - wo po') ... then (x w) c
        v = w.copy()
        for i in reversed(range(k)):
            v = v - Wo[:, i] * (Po[:, i] @ v)
        self.coef_ = v * self.y_loading_ * self.y_std_ / self.x_std_
        self.vip_, self.vip_ortho_ = self._vip4(yk)
        fitted = t * self.y_loading_ * self.y_std_ + self.y_mean_
        ss = float(((yv - yv.mean()) ** 2).sum())
        self.r2y_ = 1.0 - float(((yv - fitted) ** 2).sum()) / ss if ss > 0 else float("nan")
        return self

    def _vip4(self, yk: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """VIP4,p and VIP4,o of Galindo-Prieto et al. (2014), as in ropls."""
        t, pl, c = self.x_scores_, self.x_loadings_, self.y_loading_
        To, Po = self.x_scores_ortho_, self.x_loadings_ortho_
        tt_o = (To ** 2).sum(axis=0)
        qo = np.divide(To.T @ yk, tt_o, out=np.zeros_like(tt_o), where=tt_o > 0)
        sxp, syp = float(t @ t) * float(pl @ pl), float(t @ t) * c ** 2
        sxo, syo = tt_o * (Po ** 2).sum(axis=0), tt_o * qo ** 2
        ssx, ssy = sxp + sxo.sum(), syp + syo.sum()
        n_feat = pl.size
        kp = n_feat / (sxp / ssx + syp / ssy)
        vp = np.sqrt(kp * (pl / np.linalg.norm(pl)) ** 2 * (sxp / ssx + syp / ssy))
        if To.shape[1] == 0:
            return vp, np.zeros(n_feat)
        ko = n_feat / (sxo.sum() / ssx + syo.sum() / ssy)
        Pon2 = (Po / np.linalg.norm(Po, axis=0)) ** 2
        vo = np.sqrt(ko * (Pon2 @ sxo / ssx + Pon2 @ syo / ssy))
        return vp, vo

    def _filter(self, X: Any) -> tuple[np.ndarray, np.ndarray]:
        check_is_fitted(self, "coef_")
        Xv = validate_data(self, X, dtype=np.float64, reset=False)
        Xk = (Xv - self.x_mean_) / self.x_std_
        To = np.zeros((Xk.shape[0], self.x_weights_ortho_.shape[1]))
        for i in range(To.shape[1]):
            to = Xk @ self.x_weights_ortho_[:, i]
            Xk = Xk - np.outer(to, self.x_loadings_ortho_[:, i])
            To[:, i] = to
        return Xk, To

    def transform(self, X: Any) -> np.ndarray:
        """Scores: predictive ``t`` in column 0, then the orthogonal scores."""
        Xk, To = self._filter(X)
        out: np.ndarray = np.column_stack([Xk @ self.x_weights_, To])
        return out

    def predict(self, X: Any) -> np.ndarray:
        """Predicted target in original units."""
        Xk, _ = self._filter(X)
        out: np.ndarray = (Xk @ self.x_weights_) * self.y_loading_ * self.y_std_ + self.y_mean_
        return out
