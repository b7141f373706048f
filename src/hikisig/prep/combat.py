"""ComBat batch harmonisation (Johnson, Li & Rabinovic 2007, Biostatistics 8:118).

Each analyte ``j`` of sample ``i`` in batch ``b`` is modelled on the log scale as
``y_ij = alpha_j + z_i beta_j + gamma_bj + delta_bj e_ij``: a grand mean, the effects of the
biological covariates ``z`` (kept), an additive batch effect and a multiplicative one. The
data are standardised with the pooled residual variance, the batch parameters are estimated
per batch and shrunk towards their distribution over analytes by empirical Bayes (normal
prior for ``gamma``, inverse gamma for ``delta``; or a non-parametric prior), and each
value is mapped to ``(s - gamma*) / sqrt(delta*)`` on the standardised scale.

:func:`combat` is ``sva::ComBat`` (Bioconductor sva 3.46; ``mod`` the model matrix of the
covariates, ``ref.batch`` not offered); :class:`ComBat` is the same computation as a
scikit-learn transformer that learns the batch parameters in ``fit`` and applies them to
other samples of the same batches in ``transform``. Both agree with ``sva::ComBat`` to
1e-10 on the reference table of the tests (parametric, non-parametric, mean only, no
covariates, missing values).

Rules beyond sva:

* **Missing values** are estimated around, as sva does: each analyte's regression uses its
  observed samples, batch means and variances use the observed values of the batch, and a
  missing value stays missing in the output without touching any other value. As in sva,
  the pooled variance divides by ``n`` when no value is missing and by ``n - 1`` (over the
  observed values of each analyte) otherwise; the adjusted values hardly depend on this
  (ComBat is equivariant to a common rescaling of the pooled variances).
* **Analytes left unadjusted** (passed through unchanged, with a warning naming them, and
  left out of the empirical Bayes priors): constant within a batch (sva's rule, there
  "uniform expression"), fewer than two observed values in some batch (one with
  ``mean_only``), or a design that is singular on the observed samples of the analyte
  (sva would fail or return missing values for every analyte). ``adjusted_`` records them.
* A single adjusted analyte has no other analytes to learn the empirical Bayes prior
  from: its batch estimates are used unshrunk (sva returns missing values).
* A batch with a single sample forces ``mean_only`` (as sva, with a warning). At least two
  batches are needed.
* **Covariates**: numeric columns enter as they are; text, boolean and categorical columns
  are coded as indicators of every level but the reference (the first category of a
  pandas ``Categorical``, else the smallest level in sorted order); the result does not
  depend on the reference. A covariate confounded with batch is an error, as in sva.

Examples
--------
>>> rng = np.random.default_rng(0)
>>> batch = pd.Series(np.repeat(["a", "b"], 10))
>>> X = pd.DataFrame(rng.normal(size=(20, 3)) + np.repeat([[0.0], [2.0]], 10, axis=0))
>>> Xc = combat(X, batch)
>>> bool((Xc[batch == "b"].mean() - Xc[batch == "a"].mean()).abs().max() < 0.5)
True
"""

from __future__ import annotations

import warnings
from collections.abc import Hashable, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd
from sklearn.base import BaseEstimator, TransformerMixin
from sklearn.utils.validation import check_array, check_is_fitted, validate_data

from hikisig.errors import AlignmentError
from hikisig.prep.missing import _listing

__all__ = ["ComBat", "combat"]

#: Convergence tolerance of the parametric empirical Bayes iteration (sva's ``conv``).
_CONV = 1e-4
#: Safety cap on the parametric iteration (sva has none; it converges in tens of steps).
_MAX_ITER = 10_000
#: Analytes per block of the non-parametric prior (a block holds a block x analytes matrix).
_NP_BLOCK = 512


# -- covariates ------------------------------------------------------------------------------------


@dataclass(frozen=True)
class _Covariate:
    """How one covariate column becomes design columns."""

    name: Hashable
    levels: tuple[Any, ...] | None  # None: numeric; else every level, the first the reference

    @property
    def width(self) -> int:
        return 1 if self.levels is None else len(self.levels) - 1

    @classmethod
    def learn(cls, name: Hashable, values: pd.Series) -> _Covariate:
        if values.isna().any():
            raise ValueError(f"covariate {name!r} has missing values; ComBat needs every covariate "
                             "value of the samples it is fitted on")
        dtype = values.dtype
        if isinstance(dtype, pd.CategoricalDtype):
            levels = tuple(c for c in dtype.categories if (values == c).any())
            return cls(name, levels)
        if pd.api.types.is_bool_dtype(dtype) or not pd.api.types.is_numeric_dtype(dtype):
            try:
                levels = tuple(sorted(pd.unique(values)))
            except TypeError:
                levels = tuple(sorted(pd.unique(values), key=str))
            return cls(name, levels)
        return cls(name, None)

    def encode(self, values: pd.Series | None, n: int, mean: np.ndarray) -> np.ndarray:
        """Design columns of ``values``; missing values (or ``values`` None) take ``mean``."""
        out = np.tile(mean, (n, 1))
        if values is None:
            return out
        known = ~values.isna().to_numpy()
        if self.levels is None:
            try:
                num = pd.to_numeric(values[known])
            except (TypeError, ValueError) as exc:
                raise ValueError(f"covariate {self.name!r} was numeric in fit; got non-numeric "
                                 "values") from exc
            out[known, 0] = num.to_numpy(dtype=np.float64)
            return out
        vals = values[known]
        unseen = ~vals.isin(self.levels)
        if unseen.any():
            new = _listing([str(v) for v in pd.unique(vals[unseen])])
            raise ValueError(f"covariate {self.name!r} has level(s) not seen in fit: {new} "
                             f"(seen: {_listing([str(v) for v in self.levels])})")
        codes = np.array([self.levels.index(v) for v in vals], dtype=np.int64)
        block = np.zeros((codes.size, self.width))
        rows = np.flatnonzero(codes > 0)
        block[rows, codes[rows] - 1] = 1.0
        out[known] = block
        return out

    def column_names(self) -> list[str]:
        if self.levels is None:
            return [str(self.name)]
        return [f"{self.name}[{lev}]" for lev in self.levels[1:]]


def _learn_covariates(covariates: pd.DataFrame | None, n: int
                      ) -> tuple[list[_Covariate], np.ndarray, np.ndarray]:
    """Covariate coding, the design matrix (n x m) and its column means."""
    if covariates is None or covariates.shape[1] == 0:
        return [], np.zeros((n, 0)), np.zeros(0)
    specs = [_Covariate.learn(name, covariates[name]) for name in covariates.columns]
    parts = [s.encode(covariates[s.name], n, np.zeros(s.width)) for s in specs]
    M = np.hstack(parts) if parts else np.zeros((n, 0))
    return specs, M, M.mean(axis=0)


def _encode_covariates(specs: list[_Covariate], means: np.ndarray, covariates: pd.DataFrame | None,
                       n: int) -> np.ndarray:
    parts, start = [], 0
    for s in specs:
        mean = means[start:start + s.width]
        start += s.width
        values = covariates[s.name] if covariates is not None and s.name in covariates.columns else None
        parts.append(s.encode(values, n, mean))
    return np.hstack(parts) if parts else np.zeros((n, 0))


# -- the estimation --------------------------------------------------------------------------------


@dataclass
class _Params:
    batches: np.ndarray  # (B,) labels
    gamma_star: np.ndarray  # (B, p)
    delta_star: np.ndarray  # (B, p)
    grand_mean: np.ndarray  # (p,)
    var_pooled: np.ndarray  # (p,)
    beta: np.ndarray  # (m, p) covariate coefficients
    adjusted: np.ndarray  # (p,) bool
    mean_only: bool


def _batch_codes(batch: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    labels = pd.Series(batch, dtype=object)
    if labels.isna().any():
        raise ValueError(f"the batch labels have {int(labels.isna().sum())} missing value(s)")
    try:
        levels = np.array(sorted(pd.unique(labels)), dtype=object)
    except TypeError:
        levels = np.array(sorted(pd.unique(labels), key=str), dtype=object)
    codes = pd.Index(levels).get_indexer(labels)
    return levels, codes


def _postmean(g_hat: Any, g_bar: Any, n: Any, d_star: Any, t2: Any) -> Any:
    return (t2 * n * g_hat + d_star * g_bar) / (t2 * n + d_star)


def _postvar(sum2: Any, n: Any, a: Any, b: Any) -> Any:
    return (0.5 * sum2 + b) / (n / 2.0 + a - 1.0)


def _it_sol(S: np.ndarray, g_hat: np.ndarray, d_hat: np.ndarray, g_bar: float, t2: float,
            a: float, b: float) -> tuple[np.ndarray, np.ndarray]:
    """sva's ``it.sol``: parametric EB of one batch, vectorised over analytes (``S`` n_b x p)."""
    obs = ~np.isnan(S)
    n = obs.sum(axis=0)
    g_old, d_old = g_hat, d_hat
    for _ in range(_MAX_ITER):
        g_new = _postmean(g_hat, g_bar, n, d_old, t2)
        sum2 = np.nansum((S - g_new) ** 2, axis=0)
        d_new = _postvar(sum2, n, a, b)
        with np.errstate(divide="ignore", invalid="ignore"):
            # sva's criterion, signed denominators included
            change = max(np.max(np.abs(g_new - g_old) / g_old), np.max(np.abs(d_new - d_old) / d_old))
        g_old, d_old = g_new, d_new
        if not change > _CONV:
            break
    return g_old, d_old


def _int_eprior(S: np.ndarray, g_hat: np.ndarray, d_hat: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """sva's ``int.eprior``: non-parametric EB of one batch, vectorised in blocks of analytes.

    For analyte ``j`` the prior is the empirical distribution of ``(g_hat_k, d_hat_k)`` over
    the other analytes ``k``, weighted by the likelihood of ``j``'s values; the likelihood is
    computed on the log scale (the same weights as sva's, without its underflow).
    """
    obs = ~np.isnan(S)
    n = obs.sum(axis=0).astype(np.float64)  # (p,)
    s1 = np.nansum(S, axis=0)
    s2 = np.nansum(S**2, axis=0)
    p = S.shape[1]
    g_star, d_star = np.empty(p), np.empty(p)
    log_d = np.log(2.0 * np.pi * d_hat)
    for start in range(0, p, _NP_BLOCK):
        j = np.arange(start, min(start + _NP_BLOCK, p))
        # sum2[k, j] = sum_i (x_ij - g_k)^2 over the observed values of analyte j
        sum2 = s2[j][None, :] - 2.0 * g_hat[:, None] * s1[j][None, :] + n[j][None, :] * g_hat[:, None] ** 2
        ll = -0.5 * n[j][None, :] * log_d[:, None] - sum2 / (2.0 * d_hat[:, None])
        ll[j, np.arange(j.size)] = -np.inf  # leave analyte j out of its own prior
        w = np.exp(ll - ll.max(axis=0, keepdims=True))
        tot = w.sum(axis=0)
        g_star[j] = (g_hat @ w) / tot
        d_star[j] = (d_hat @ w) / tot
    return g_star, d_star


def _solve_stacked(D: np.ndarray, Y: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Least squares of every column of ``Y`` on ``D`` over its observed rows.

    Returns the coefficients (q x p) and whether each column's design was non-singular.
    """
    q, p = D.shape[1], Y.shape[1]
    B = np.full((q, p), np.nan)
    obs = ~np.isnan(Y)
    complete = obs.all(axis=0)
    ok = np.ones(p, dtype=bool)
    if complete.any():
        B[:, complete] = np.linalg.solve(D.T @ D, D.T @ Y[:, complete])
    part = np.flatnonzero(~complete)
    if part.size:
        W = obs[:, part].astype(np.float64)  # (n, k)
        XtX = np.einsum("ik,ia,ib->kab", W, D, D)
        Xty = np.einsum("ia,ik->ka", D, np.where(obs[:, part], Y[:, part], 0.0))
        rank = np.linalg.matrix_rank(XtX)
        good = rank == q
        ok[part[~good]] = False
        if good.any():
            B[:, part[good]] = np.linalg.solve(XtX[good], Xty[good][..., None])[..., 0].T
    return B, ok


def _fit(Y: np.ndarray, batch: np.ndarray, M: np.ndarray, *, parametric: bool, mean_only: bool,
         names: Sequence[str]) -> _Params:
    """sva::ComBat's estimation on ``Y`` (n x p, log scale) with covariate design ``M`` (n x m)."""
    n, p = Y.shape
    levels, codes = _batch_codes(batch)
    nb = levels.size
    if nb < 2:
        raise ValueError(f"ComBat needs at least 2 batches; every sample is in batch {levels[0]!r}"
                         if nb == 1 else "ComBat needs samples")
    onehot = np.zeros((n, nb))
    onehot[np.arange(n), codes] = 1.0
    n_batches = onehot.sum(axis=0)
    if np.any(n_batches == 1) and not mean_only:
        single = _listing([str(b) for b in levels[n_batches == 1]])
        warnings.warn(f"batch(es) {single} have a single sample: using the mean-only version of "
                      "ComBat (as sva::ComBat)", UserWarning, stacklevel=3)
        mean_only = True

    D = np.hstack([onehot, M])
    intercept = np.all(D == 1.0, axis=0)  # sva drops an intercept column of mod
    D = D[:, ~intercept]
    if np.linalg.matrix_rank(D) < D.shape[1]:
        if M.shape[1] and np.linalg.matrix_rank(D[:, nb:]) < D.shape[1] - nb:
            raise ValueError("the covariates are confounded with each other (or one is constant); "
                             "remove one or more so the design has full rank")
        raise ValueError("a covariate is confounded with batch; remove it (ComBat cannot keep an "
                         "effect that batch explains)")

    # analytes that cannot be adjusted
    obs = ~np.isnan(Y)
    need = 1 if mean_only else 2
    keep = np.ones(p, dtype=bool)
    for b in range(nb):
        rows = codes == b
        cnt = obs[rows].sum(axis=0)
        keep &= cnt >= need
        if rows.sum() > 1:
            with warnings.catch_warnings(), np.errstate(invalid="ignore"):
                warnings.simplefilter("ignore", RuntimeWarning)
                flat = (np.nanmax(Y[rows], axis=0) == np.nanmin(Y[rows], axis=0)) & (cnt >= 2)
            keep &= ~flat
    B_hat = np.full((D.shape[1], p), np.nan)
    if keep.any():
        B_k, ok = _solve_stacked(D, Y[:, keep])
        idx = np.flatnonzero(keep)
        keep[idx[~ok]] = False
        B_hat[:, idx[ok]] = B_k[:, ok]
    if not keep.all():
        left = _listing([str(names[int(j)]) for j in np.flatnonzero(~keep)])
        warnings.warn(f"{int((~keep).sum())} analyte(s) left unadjusted by ComBat (constant within "
                      f"a batch, too few observed values in a batch, or a singular design on the "
                      f"observed samples): {left}", UserWarning, stacklevel=3)
    m = M.shape[1] - int(intercept[nb:].sum())
    gamma_star = np.zeros((nb, p))
    delta_star = np.ones((nb, p))
    grand_mean = np.zeros(p)
    var_pooled = np.ones(p)
    beta = np.zeros((M.shape[1], p))
    if not keep.any():
        return _Params(levels, gamma_star, delta_star, grand_mean, var_pooled, beta, keep, mean_only)

    Yk, Bk = Y[:, keep], B_hat[:, keep]
    grand = (n_batches / n) @ Bk[:nb]
    resid = Yk - D @ Bk
    # sva: the mean square without missing values, the variance (n - 1) with them
    vp = np.nanvar(resid, axis=0, ddof=1) if np.isnan(Yk).any() else np.mean(resid**2, axis=0)
    beta_k = np.zeros((M.shape[1], Bk.shape[1]))
    beta_k[~intercept[nb:]] = Bk[nb:nb + m]
    stand = grand + M @ beta_k
    S = (Yk - stand) / np.sqrt(vp)

    pk = Yk.shape[1]
    g_hat = np.empty((nb, pk))
    d_hat = np.ones((nb, pk))
    for b in range(nb):
        Sb = S[codes == b]
        g_hat[b] = np.nanmean(Sb, axis=0)
        if not mean_only:
            d_hat[b] = np.nanvar(Sb, axis=0, ddof=1)
    g_bar = g_hat.mean(axis=1)
    t2 = g_hat.var(axis=1, ddof=1) if pk > 1 else np.zeros(nb)
    g_st, d_st = np.empty((nb, pk)), np.ones((nb, pk))
    for b in range(nb):
        if pk == 1:  # no other analyte to learn a prior from: the batch estimates as they are
            g_st[b], d_st[b] = g_hat[b], d_hat[b]
        elif parametric and mean_only:
            g_st[b] = _postmean(g_hat[b], g_bar[b], 1.0, 1.0, t2[b])
        elif parametric:
            dm, dv = d_hat[b].mean(), d_hat[b].var(ddof=1)
            a_prior = (2.0 * dv + dm**2) / dv
            b_prior = (dm * dv + dm**3) / dv
            g_st[b], d_st[b] = _it_sol(S[codes == b], g_hat[b], d_hat[b], g_bar[b], t2[b],
                                       a_prior, b_prior)
        else:
            g_st[b], d_st[b] = _int_eprior(S[codes == b], g_hat[b], d_hat[b])
    gamma_star[:, keep] = g_st
    delta_star[:, keep] = d_st
    grand_mean[keep] = grand
    var_pooled[keep] = vp
    beta[:, keep] = beta_k
    if not (np.isfinite(gamma_star).all() and np.isfinite(delta_star).all()):
        raise ValueError("the ComBat estimates are not finite (too few analytes for the empirical "
                         "Bayes prior?)")
    return _Params(levels, gamma_star, delta_star, grand_mean, var_pooled, beta, keep, mean_only)


def _apply(params: _Params, Y: np.ndarray, batch: np.ndarray, M: np.ndarray) -> np.ndarray:
    """Harmonise ``Y`` (n x p) of known batches with covariate design ``M``."""
    labels = pd.Series(batch, dtype=object)
    if labels.isna().any():
        raise ValueError(f"the batch labels have {int(labels.isna().sum())} missing value(s)")
    codes = pd.Index(params.batches).get_indexer(labels)
    if (codes < 0).any():
        unseen = _listing([str(b) for b in pd.unique(labels[codes < 0])])
        raise ValueError(f"batch(es) not seen in fit: {unseen}; ComBat can only harmonise samples "
                         f"of the batches it was fitted on ({_listing([str(b) for b in params.batches])})")
    keep = params.adjusted
    out = Y.copy()
    if keep.any():
        sd = np.sqrt(params.var_pooled[keep])
        stand = params.grand_mean[keep] + M @ params.beta[:, keep]
        S = (Y[:, keep] - stand) / sd
        adj = (S - params.gamma_star[codes][:, keep]) / np.sqrt(params.delta_star[codes][:, keep])
        out[:, keep] = adj * sd + stand
    return out


def _aligned(values: pd.Series | pd.DataFrame, index: pd.Index, what: str) -> Any:
    if values.index.equals(index):
        return values
    if values.index.has_duplicates:
        raise AlignmentError(f"{what} has duplicate sample ids")
    missing = index[~index.isin(values.index)]
    if len(missing):
        shown = ", ".join(map(str, missing[:8])) + (", ..." if len(missing) > 8 else "")
        raise AlignmentError(f"{what} lacks {len(missing)} sample id(s) of the data: {shown}")
    return values.reindex(index)


def _check_values(Y: np.ndarray) -> None:
    if np.isinf(Y).any():
        raise ValueError("ComBat needs finite values (log scale); the data hold infinite values")


# -- the function ----------------------------------------------------------------------------------


def combat(X: pd.DataFrame, batch: pd.Series, covariates: pd.DataFrame | None = None, *,
           parametric: bool = True, mean_only: bool = False) -> pd.DataFrame:
    """Harmonise batches by ComBat, as ``sva::ComBat``.

    Parameters
    ----------
    X : DataFrame of shape (n_samples, n_analytes)
        Log-scale values; missing values allowed (they stay missing).
    batch : Series
        Batch label of each sample, aligned to ``X`` by index (a sequence of one label per
        sample is also accepted).
    covariates : DataFrame, optional
        Biological covariates whose effects are kept (sva's ``mod``, without the intercept),
        aligned by index; numeric columns as they are, others as indicators of all levels but
        the reference.
    parametric : bool, default=True
        Parametric empirical Bayes priors (sva's ``par.prior``); False: non-parametric.
    mean_only : bool, default=False
        Adjust only the batch means (sva's ``mean.only``); forced when a batch has one sample.

    Returns
    -------
    DataFrame
        The harmonised values, same index and columns as ``X``.
    """
    if not isinstance(X, pd.DataFrame):
        X = pd.DataFrame(X)
    n = X.shape[0]
    b = _aligned(batch, X.index, "batch") if isinstance(batch, pd.Series) else pd.Series(
        np.asarray(batch, dtype=object).ravel(), index=X.index)
    if len(b) != n:
        raise AlignmentError(f"batch has {len(b)} values for {n} samples")
    cov = None if covariates is None else _aligned(covariates, X.index, "covariates")
    Y = X.to_numpy(dtype=np.float64, copy=True)
    _check_values(Y)
    _, M, _ = _learn_covariates(cov, n)
    params = _fit(Y, b.to_numpy(dtype=object), M, parametric=parametric, mean_only=mean_only,
                  names=[str(c) for c in X.columns])
    return pd.DataFrame(_apply(params, Y, b.to_numpy(dtype=object), M), index=X.index, columns=X.columns)


# -- the transformer -------------------------------------------------------------------------------


class ComBat(TransformerMixin, BaseEstimator):
    """ComBat batch harmonisation as a transformer: learn the batch parameters in ``fit``,
    apply them to samples of the same batches in ``transform``.

    ``X`` holds the batch column, the covariate columns and the features (log scale);
    ``transform`` returns the features only, harmonised, in their order (a DataFrame with the
    index of ``X`` when ``X`` is one). ``fit_transform(X)`` equals :func:`combat` of the
    features with the same batch and covariates, i.e. ``sva::ComBat``.

    Parameters
    ----------
    batch_column : str or int, default="site"
        The column of batch labels: a column name of a DataFrame, or (for a NumPy array, or a
        DataFrame without a column of that name) a column position.
    covariate_columns : tuple of str or int, default=()
        Biological covariates whose effects are kept (sva's ``mod``), named or positioned as
        ``batch_column``. In ``transform`` a covariate column may be absent (e.g. the
        case/control label of new samples) and its cells may be missing: those samples take
        the training mean of the covariate's design columns. The adjustment depends on the
        covariates only through ``(1 - 1/sqrt(delta*)) * z beta``, which is small when the
        batch scale ``delta*`` is near 1; the batch location shift does not depend on them.
    parametric : bool, default=True
        Parametric empirical Bayes (sva's ``par.prior``); False: non-parametric.
    mean_only : bool, default=False
        Adjust only batch means (sva's ``mean.only``).

    Attributes
    ----------
    batches_ : ndarray of shape (n_batches,)
        Batch labels seen in fit (sorted).
    gamma_star_ : ndarray of shape (n_batches, n_features_out)
        Shrunk additive batch effects, on the standardised scale.
    delta_star_ : ndarray of shape (n_batches, n_features_out)
        Shrunk multiplicative batch effects (variance ratios).
    grand_mean_ : ndarray of shape (n_features_out,)
    var_pooled_ : ndarray of shape (n_features_out,)
    beta_ : ndarray of shape (n_design_columns, n_features_out)
        Covariate coefficients; rows named by ``design_columns_``.
    design_columns_ : list of str
        Covariate design columns (``name[level]`` for a level of a categorical covariate).
    design_mean_ : ndarray of shape (n_design_columns,)
        Training means of the design columns, used for absent covariates in ``transform``.
    adjusted_ : ndarray of bool, shape (n_features_out,)
        False for analytes passed through unchanged (see :mod:`hikisig.prep.combat`).
    mean_only_ : bool
        Whether the mean-only version was used (forced by a single-sample batch).
    n_features_in_ : int
        Columns of ``X`` in fit, batch and covariate columns included.
    feature_names_in_ : ndarray of str
        Defined when ``X`` has string column names.

    Notes
    -----
    A batch not seen in ``fit`` is an error in ``transform``: its parameters are unknown and
    passing its samples through unchanged would leave them on another scale. With NumPy
    input, ``batch_column`` must be an int (arrays have no column names).

    Examples
    --------
    >>> rng = np.random.default_rng(0)
    >>> X = pd.DataFrame(rng.normal(size=(40, 3)), columns=["m1", "m2", "m3"])
    >>> X["site"] = np.repeat(["a", "b"], 20)
    >>> X.loc[X.site == "b", ["m1", "m2", "m3"]] += 3.0
    >>> cb = ComBat().fit(X.iloc[::2])
    >>> out = cb.transform(X.iloc[1::2])
    >>> list(out.columns), bool(abs(out.m1[X.site == "b"].mean() - out.m1[X.site == "a"].mean()) < 1)
    (['m1', 'm2', 'm3'], True)
    """

    def __init__(self, batch_column: str | int = "site", covariate_columns: tuple[str | int, ...] = (),
                 parametric: bool = True, mean_only: bool = False) -> None:
        self.batch_column = batch_column
        self.covariate_columns = covariate_columns
        self.parametric = parametric
        self.mean_only = mean_only

    # -- columns ------------------------------------------------------------------------------

    @staticmethod
    def _locate(X: pd.DataFrame, key: Any, what: str) -> int:
        """Column position of ``key`` in ``X``: its name, else (an int) its position."""
        cols = list(X.columns)
        if key in cols:
            return cols.index(key)
        is_int = isinstance(key, int | np.integer) and not isinstance(key, bool)
        if is_int and 0 <= int(key) < len(cols):
            return int(key)
        if is_int:
            raise ValueError(f"{what} column {key} is out of range for X with {len(cols)} column(s)")
        raise ValueError(f"X has no {what} column {key!r}; its columns are "
                         f"{_listing([str(c) for c in cols])}")

    def _check_params(self) -> tuple[Any, ...]:
        cov = self.covariate_columns
        if isinstance(cov, str | int) or cov is None:
            raise ValueError(f"covariate_columns must be a tuple of column names; got {cov!r}")
        cov = tuple(cov)
        if self.batch_column in cov:
            raise ValueError(f"the batch column {self.batch_column!r} is also a covariate column")
        if len(set(cov)) != len(cov):
            raise ValueError(f"covariate_columns has duplicates: {cov!r}")
        for name, value in (("parametric", self.parametric), ("mean_only", self.mean_only)):
            if not isinstance(value, bool | np.bool_):
                raise ValueError(f"{name} must be True or False; got {value!r}")
        return cov

    def _frame(self, X: Any, *, reset: bool) -> pd.DataFrame:
        """``X`` as a DataFrame, with ``n_features_in_`` and ``feature_names_in_`` set or checked."""
        if not isinstance(X, pd.DataFrame):
            X = pd.DataFrame(check_array(X, dtype=None, ensure_all_finite=False, ensure_2d=True,
                                         ensure_min_samples=1))
        validate_data(self, X, skip_check_array=True, reset=reset)
        return X

    def _features(self, F: pd.DataFrame) -> np.ndarray:
        Y = check_array(F.to_numpy(), dtype=np.float64, ensure_all_finite="allow-nan",
                        ensure_min_features=1, ensure_min_samples=1)
        _check_values(Y)
        return Y

    # -- fit / transform ----------------------------------------------------------------------

    def fit(self, X: Any, y: Any = None) -> ComBat:
        """Learn the batch parameters.

        Parameters
        ----------
        X : DataFrame or array-like of shape (n_samples, n_columns)
            Batch column, covariate columns and features (log scale; missing values allowed).
        y : ignored

        Returns
        -------
        self
        """
        self._fit(X)
        return self

    def _fit(self, X: Any) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        cov = self._check_params()
        if not isinstance(X, pd.DataFrame):
            for key in (self.batch_column, *cov):
                if not isinstance(key, int | np.integer) or isinstance(key, bool):
                    raise ValueError(f"X is an array without column names, so the column {key!r} "
                                     "cannot be found: pass a DataFrame, or column positions as int")
        frame = self._frame(X, reset=True)
        if frame.shape[0] < 2:
            raise ValueError(f"ComBat needs at least 2 samples per batch; got {frame.shape[0]} sample")
        ib = self._locate(frame, self.batch_column, "batch")
        ic = [self._locate(frame, c, "covariate") for c in cov]
        meta = {ib, *ic}
        feat = [j for j in range(frame.shape[1]) if j not in meta]
        if not feat:
            raise ValueError(f"X has {frame.shape[1]} feature(s) (columns), all of them batch or "
                             "covariate columns: no analytes to harmonise")
        Y = self._features(frame.iloc[:, feat])
        n = Y.shape[0]
        batch = frame.iloc[:, ib].to_numpy(dtype=object)
        covs = frame.iloc[:, ic]
        specs, M, means = _learn_covariates(covs if ic else None, n)
        names = [str(c) for c in frame.columns[feat]]
        p = _fit(Y, batch, M, parametric=bool(self.parametric), mean_only=bool(self.mean_only),
                 names=names)
        self._specs = specs
        self._feature_pos = np.asarray(feat)
        self._batch_pos = ib
        self._covariate_pos = list(ic)
        self.batches_ = p.batches
        self.gamma_star_ = p.gamma_star
        self.delta_star_ = p.delta_star
        self.grand_mean_ = p.grand_mean
        self.var_pooled_ = p.var_pooled
        self.beta_ = p.beta
        self.design_columns_ = [c for s in specs for c in s.column_names()]
        self.design_mean_ = means
        self.adjusted_ = p.adjusted
        self.mean_only_ = p.mean_only
        return Y, batch, M

    def _params(self) -> _Params:
        return _Params(self.batches_, self.gamma_star_, self.delta_star_, self.grand_mean_,
                       self.var_pooled_, self.beta_, self.adjusted_, self.mean_only_)

    def _wrap(self, X: Any, out: np.ndarray) -> Any:
        if isinstance(X, pd.DataFrame):
            return pd.DataFrame(out, index=X.index, columns=self.get_feature_names_out())
        return out

    def fit_transform(self, X: Any, y: Any = None, **fit_params: Any) -> Any:
        """Fit and harmonise ``X`` (the same as ``fit(X).transform(X)``)."""
        Y, batch, M = self._fit(X)
        return self._wrap(X, _apply(self._params(), Y, batch, M))

    def transform(self, X: Any) -> Any:
        """Harmonise the features of samples of the batches seen in fit.

        Parameters
        ----------
        X : DataFrame or array-like
            The columns of fit; covariate columns of a DataFrame may be absent (their
            samples take the training mean of the covariate effect).

        Returns
        -------
        DataFrame (for DataFrame ``X``, same index) or ndarray of shape (n_samples, n_features_out)
        """
        check_is_fitted(self, "gamma_star_")
        cov = tuple(self.covariate_columns)
        names_in = getattr(self, "feature_names_in_", None)
        if isinstance(X, pd.DataFrame) and names_in is not None:
            absent = [c for c in cov if c not in X.columns]
            expected = [c for c in names_in if c not in absent]
            if list(X.columns) != expected:
                missing = [str(c) for c in expected if c not in X.columns]
                extra = [str(c) for c in X.columns if c not in expected]
                raise ValueError("the columns of X differ from those seen in fit (covariate columns "
                                 f"may be absent): missing {_listing(missing) or 'none'}, unexpected "
                                 f"{_listing(extra) or 'none'}; the order must be that of fit")
            frame = X
            ib = list(X.columns).index(names_in[self._batch_pos])
            feat = [list(X.columns).index(names_in[j]) for j in self._feature_pos]
            covs = X[[c for c in (names_in[j] for j in self._covariate_pos) if c in X.columns]]
        else:
            frame = self._frame(X, reset=False)
            ib, feat = self._batch_pos, list(self._feature_pos)
            covs = frame.iloc[:, list(self._covariate_pos)]
        Y = self._features(frame.iloc[:, feat])
        M = _encode_covariates(self._specs, self.design_mean_, covs, Y.shape[0])
        out = _apply(self._params(), Y, frame.iloc[:, ib].to_numpy(dtype=object), M)
        return self._wrap(X, out)

    def get_feature_names_out(self, input_features: Any = None) -> np.ndarray:
        """Names of the feature columns (``x<j>`` positions for array input)."""
        check_is_fitted(self, "gamma_star_")
        names = getattr(self, "feature_names_in_", None)
        if names is not None:
            return np.asarray([names[j] for j in self._feature_pos], dtype=object)
        return np.asarray([f"x{j}" for j in self._feature_pos], dtype=object)

    def __sklearn_tags__(self) -> Any:
        tags = super().__sklearn_tags__()
        tags.input_tags.allow_nan = True
        tags.input_tags.string = True
        tags.input_tags.categorical = True
        return tags
