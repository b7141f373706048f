"""Random-intercept linear mixed models, fitted for many outcomes at once.

The model, for every outcome column ``y`` (an analyte) with the same design ``X`` and
grouping (participants)::

    y = X beta + b[group] + e,   b ~ N(0, tau2),   e ~ N(0, sigma2)

is the model of ``statsmodels`` ``MixedLM(y, X, groups)`` and of R
``lme4::lmer(y ~ X + (1 | group))``. With ``gamma = tau2 / sigma2`` the covariance of a
group with ``k`` observations is ``sigma2 (I + gamma J)``, whose inverse is
``(I - c J) / sigma2`` with ``c = gamma / (1 + k gamma)``. So for a given ``gamma``
the generalised least-squares quantities ``X'W^-1 X``, ``X'W^-1 y`` and ``y'W^-1 y``
are the ordinary ones minus ``c(k)``-weighted sums of per-group column sums, and those
sums depend only on the group *size* ``k``: they are computed once, and every
evaluation of the profiled likelihood costs ``O(sizes x p^2)`` per outcome, whatever the
number of samples. ``beta`` and ``sigma2`` are profiled out (Bates et al. 2015, J Stat
Softw 67(1), eqs. 34-41); the one remaining parameter, ``rho = gamma / (1 + gamma)`` in
``[0, 1)``, is found for all outcomes together by a grid followed by golden-section
search. ``rho = 0`` (``tau2 = 0``) is a boundary ("singular") fit: the estimates are
then those of ordinary least squares, as in lme4.

Standard errors are ``sqrt(diag(sigma2 (X'W^-1 X)^-1))`` at the estimate (lme4's
``vcov``); p-values are Wald z (statsmodels' convention; lme4 gives none).

Checked against statsmodels ``MixedLM`` and R ``lme4::lmer`` (tests/reference/).

Examples
--------
>>> rng = np.random.default_rng(0)
>>> g = np.repeat(np.arange(30), 3)
>>> X = np.column_stack([np.ones(90), np.tile([0.0, 1.0, 2.0], 30)])
>>> y = 1 + 0.5 * X[:, 1] + rng.normal(size=30)[g] + rng.normal(size=90)
>>> fit = random_intercept_lmm(y[:, None], X, g)
>>> np.round(fit.beta, 3).tolist(), np.round(fit.se, 3).tolist()  # statsmodels MixedLM: the same
([[0.663, 0.864]], [[0.223, 0.121]])
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from scipy import stats

__all__ = ["LMMFit", "random_intercept_lmm"]

_GOLDEN = (np.sqrt(5.0) - 1.0) / 2.0
_RHO_MAX = 1.0 - 1e-8
_GRID = 48
_ITERATIONS = 80


@dataclass(frozen=True)
class LMMFit:
    """Per-outcome results of :func:`random_intercept_lmm` (``m`` outcomes, ``p`` columns).

    ``beta``, ``se``, ``p`` are ``m x p``; ``sigma2`` (residual variance), ``tau2``
    (random-intercept variance), ``llf`` (log-likelihood; the REML one when ``reml``),
    ``singular`` (``tau2`` at its lower bound 0) have length ``m``.
    """

    beta: np.ndarray
    se: np.ndarray
    p: np.ndarray
    sigma2: np.ndarray
    tau2: np.ndarray
    llf: np.ndarray
    singular: np.ndarray
    reml: bool
    n: int
    n_groups: int


class _Sums:
    """Group-size-wise sums of a design and outcomes (all that the likelihood needs)."""

    def __init__(self, Y: np.ndarray, X: np.ndarray, groups: np.ndarray) -> None:
        _, inverse, counts = np.unique(groups, return_inverse=True, return_counts=True)
        G = counts.size
        S = np.zeros((G, X.shape[1]))
        np.add.at(S, inverse, X)
        T = np.zeros((G, Y.shape[1]))
        np.add.at(T, inverse, Y)
        self.sizes, size_index = np.unique(counts, return_inverse=True)
        K = self.sizes.size
        self.n_per_size = np.bincount(size_index, minlength=K).astype(float)
        self.M = np.stack([S[size_index == k].T @ S[size_index == k] for k in range(K)])  # K p p
        self.N = np.stack([S[size_index == k].T @ T[size_index == k] for k in range(K)])  # K p m
        self.Q = np.stack([(T[size_index == k] ** 2).sum(axis=0) for k in range(K)])  # K m
        self.XtX = X.T @ X
        self.XtY = X.T @ Y  # p m
        self.YtY = (Y**2).sum(axis=0)
        self.n, self.p = X.shape
        self.n_groups = G

    def solve(self, rho: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """``A = X'W^-1 X`` (m p p), ``beta`` (m p) and the GLS residual sum of squares (m)."""
        gamma = rho / (1.0 - rho)
        c = gamma[None, :] / (1.0 + self.sizes[:, None] * gamma[None, :])  # K m
        A = self.XtX[None] - np.einsum("km,kpq->mpq", c, self.M)
        b = self.XtY.T - np.einsum("km,kpm->mp", c, self.N)
        yy = self.YtY - (c * self.Q).sum(axis=0)
        beta = np.linalg.solve(A, b[..., None])[..., 0]
        rss = yy - (b * beta).sum(axis=1)
        return A, beta, np.maximum(rss, 1e-300)

    def deviance(self, rho: np.ndarray, reml: bool) -> np.ndarray:
        """-2 x the profiled (REML) log-likelihood at ``rho`` (one value per outcome)."""
        A, _, rss = self.solve(rho)
        gamma = rho / (1.0 - rho)
        logdet_w = (self.n_per_size[:, None] * np.log1p(self.sizes[:, None] * gamma[None, :])).sum(axis=0)
        if not reml:
            return self.n * (np.log(2 * np.pi * rss / self.n) + 1.0) + logdet_w
        dof = self.n - self.p
        return dof * (np.log(2 * np.pi * rss / dof) + 1.0) + logdet_w + np.linalg.slogdet(A)[1]


def random_intercept_lmm(Y: np.ndarray, X: np.ndarray, groups: np.ndarray, *, reml: bool = True
                         ) -> LMMFit:
    """Fit ``Y[:, j] ~ X + (1 | groups)`` for every column ``j`` of ``Y`` (no missing values).

    Parameters
    ----------
    Y : (n, m) array
        Outcomes, complete (drop or impute missing values first; rows with a missing value in
        some outcomes need a separate call).
    X : (n, p) array
        Fixed-effect design of full column rank (include the intercept column).
    groups : (n,) array
        Group (participant) of each row.
    reml : bool
        Restricted maximum likelihood (the default of lme4 and statsmodels) or ML.
    """
    Y = np.asarray(Y, dtype=float)
    X = np.asarray(X, dtype=float)
    if Y.ndim == 1:
        Y = Y[:, None]
    if Y.shape[0] != X.shape[0] or len(groups) != X.shape[0]:
        raise ValueError("Y, X and groups must have the same number of rows")
    if not np.isfinite(Y).all() or not np.isfinite(X).all():
        raise ValueError("Y and X must be finite (drop missing values first)")
    if np.linalg.matrix_rank(X) < X.shape[1]:
        raise ValueError("the fixed-effect design is rank deficient")
    sums = _Sums(Y, X, np.asarray(groups))
    m = Y.shape[1]
    if sums.n - sums.p < 1:
        raise ValueError("fewer observations than fixed effects")
    # grid (denser near 0 and 1), then golden section within the bracket around its minimum
    grid = np.concatenate([[0.0], (np.sin(np.linspace(0, np.pi / 2, _GRID)[1:]) ** 2) * _RHO_MAX])
    dev = np.stack([sums.deviance(np.full(m, r), reml) for r in grid])  # g m
    best = np.nanargmin(np.where(np.isfinite(dev), dev, np.inf), axis=0)
    lo = grid[np.maximum(best - 1, 0)]
    hi = grid[np.minimum(best + 1, grid.size - 1)]
    for _ in range(_ITERATIONS):  # both interior points re-evaluated: simple and cheap
        x1 = hi - _GOLDEN * (hi - lo)
        x2 = lo + _GOLDEN * (hi - lo)
        f1, f2 = sums.deviance(x1, reml), sums.deviance(x2, reml)
        left = f1 < f2  # the minimum lies in [lo, x2]
        hi = np.where(left, x2, hi)
        lo = np.where(left, lo, x1)
    rho = np.where(f1 < f2, x1, x2)
    f_rho = np.minimum(f1, f2)
    # the boundary rho = 0 is a candidate too (within rounding of the deviance)
    rho = np.where((dev[0] <= f_rho + 1e-9 * np.maximum(1.0, np.abs(f_rho))) | (rho < 1e-12), 0.0, rho)
    A, beta, rss = sums.solve(rho)
    dof = sums.n - sums.p if reml else sums.n
    sigma2 = rss / dof
    cov = sigma2[:, None, None] * np.linalg.inv(A)
    se = np.sqrt(np.diagonal(cov, axis1=1, axis2=2))
    with np.errstate(divide="ignore", invalid="ignore"):
        p = 2 * stats.norm.sf(np.abs(beta / se))
    tau2 = rho / (1 - rho) * sigma2
    llf = -0.5 * sums.deviance(rho, reml)
    return LMMFit(beta=beta, se=se, p=p, sigma2=sigma2, tau2=tau2, llf=llf, singular=rho == 0.0,
                  reml=reml, n=sums.n, n_groups=sums.n_groups)
