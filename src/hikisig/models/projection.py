"""Views of the whole data set for figures: principal components, and autoscaled log2
values of samples by subgroup. Computed here; the report only draws them."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd

__all__ = ["PCAScores", "cluster_matrix", "log2_autoscaled", "pca_scores"]


def log2_autoscaled(X: pd.DataFrame) -> pd.DataFrame:
    """log2, half-minimum imputed, autoscaled (mean 0, SD 1) data; constant columns dropped.

    Examples
    --------
    >>> log2_autoscaled(pd.DataFrame({"a": [1.0, 2.0, 4.0], "b": [1.0, 1.0, 1.0]})).columns.tolist()
    ['a']
    """
    Xp = X.where(X > 0)
    Xp = Xp.loc[:, Xp.notna().any()]
    Xp = Xp.fillna(Xp.min() / 2.0)
    L = np.log2(Xp.astype(float))
    sd = L.std(ddof=1)
    L = L.loc[:, sd > 0]
    return (L - L.mean()) / L.std(ddof=1)


@dataclass
class PCAScores:
    """PCA scores (samples x components) and each component's share of the variance."""

    scores: pd.DataFrame
    explained: np.ndarray


def pca_scores(X: pd.DataFrame, n: int = 2) -> PCAScores:
    """PCA of log2, half-minimum-imputed, autoscaled data; each component's sign is set so
    that its largest absolute score is positive (deterministic)."""
    Z = log2_autoscaled(X)
    U, S, _ = np.linalg.svd(Z.to_numpy(), full_matrices=False)
    scores = U[:, :n] * S[:n]
    for j in range(scores.shape[1]):
        if scores[np.argmax(np.abs(scores[:, j])), j] < 0:
            scores[:, j] *= -1
    var = S**2 / np.sum(S**2)
    cols = [f"PC{i + 1}" for i in range(scores.shape[1])]
    return PCAScores(pd.DataFrame(scores, index=X.index, columns=cols), var[:n])


def cluster_matrix(X: pd.DataFrame, assignments: pd.DataFrame, analytes: list[str]
                   ) -> tuple[pd.DataFrame, pd.Series]:
    """Autoscaled log2 values of the clustered samples (ordered by cluster, then membership
    probability) for some analytes, and each sample's cluster."""
    a = assignments.drop_duplicates("id").set_index("id")
    ids = [i for i in a.index if i in X.index]
    Z = log2_autoscaled(X.loc[ids])
    cols = [c for c in analytes if c in Z.columns]
    order = a.loc[ids].reset_index().sort_values(["cluster", "probability", "id"],
                                                 ascending=[True, False, True], kind="stable")
    Z = Z.loc[order["id"], cols]
    return Z, order.set_index("id")["cluster"]
