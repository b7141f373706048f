"""Views of the whole data set for figures: principal components, and autoscaled values of
samples by subgroup (log2 concentrations, or values on an additive scale with ``log=False``).
Computed here; the report only draws them."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd

__all__ = ["PCAScores", "autoscaled", "cluster_matrix", "log2_autoscaled", "pca_scores"]


def autoscaled(X: pd.DataFrame, *, log: bool = True) -> pd.DataFrame:
    """Imputed, autoscaled (mean 0, SD 1) data; all-missing and constant columns dropped.

    ``log=True`` (concentrations): values <= 0 count as missing, missing values take half
    the column's minimum, then log2. ``log=False`` (values on an additive scale that may
    be negative, e.g. z-scores): missing values take the column's median, no log.

    Examples
    --------
    >>> X = pd.DataFrame({"a": [-1.0, 0.5, np.nan, 2.0], "b": [1.0, 1.0, 1.0, 1.0]})
    >>> autoscaled(X, log=False)["a"].round(3).tolist()
    [-1.225, 0.0, 0.0, 1.225]
    """
    if log:
        Xp = X.where(X > 0)
        Xp = Xp.loc[:, Xp.notna().any()]
        L = np.log2(Xp.fillna(Xp.min() / 2.0).astype(float))
    else:
        Xa = X.astype(float)
        Xa = Xa.loc[:, Xa.notna().any()]
        L = Xa.fillna(Xa.median())
    sd = L.std(ddof=1)
    L = L.loc[:, sd > 0]
    return (L - L.mean()) / L.std(ddof=1)


def log2_autoscaled(X: pd.DataFrame) -> pd.DataFrame:
    """log2, half-minimum imputed, autoscaled (mean 0, SD 1) data; constant columns dropped
    (:func:`autoscaled` with ``log=True``).

    Examples
    --------
    >>> log2_autoscaled(pd.DataFrame({"a": [1.0, 2.0, 4.0], "b": [1.0, 1.0, 1.0]})).columns.tolist()
    ['a']
    """
    return autoscaled(X, log=True)


@dataclass
class PCAScores:
    """PCA scores (samples x components) and each component's share of the variance."""

    scores: pd.DataFrame
    explained: np.ndarray


def pca_scores(X: pd.DataFrame, n: int = 2, *, log: bool = True) -> PCAScores:
    """PCA of imputed, autoscaled data (:func:`autoscaled`: log2 of half-minimum-imputed
    concentrations, or with ``log=False`` median-imputed values as given); each component's
    sign is set so that its largest absolute score is positive (deterministic)."""
    Z = autoscaled(X, log=log)
    U, S, _ = np.linalg.svd(Z.to_numpy(), full_matrices=False)
    scores = U[:, :n] * S[:n]
    for j in range(scores.shape[1]):
        if scores[np.argmax(np.abs(scores[:, j])), j] < 0:
            scores[:, j] *= -1
    var = S**2 / np.sum(S**2)
    cols = [f"PC{i + 1}" for i in range(scores.shape[1])]
    return PCAScores(pd.DataFrame(scores, index=X.index, columns=cols), var[:n])


def cluster_matrix(X: pd.DataFrame, assignments: pd.DataFrame, analytes: list[str], *,
                   log: bool = True) -> tuple[pd.DataFrame, pd.Series]:
    """Autoscaled values (:func:`autoscaled`: log2 concentrations, or with ``log=False`` the
    values as given) of the clustered samples, ordered by cluster, then membership
    probability, for some analytes, and each sample's cluster."""
    a = assignments.drop_duplicates("id").set_index("id")
    ids = [i for i in a.index if i in X.index]
    Z = autoscaled(X.loc[ids], log=log)
    cols = [c for c in analytes if c in Z.columns]
    order = a.loc[ids].reset_index().sort_values(["cluster", "probability", "id"],
                                                 ascending=[True, False, True], kind="stable")
    Z = Z.loc[order["id"], cols]
    return Z, order.set_index("id")["cluster"]
