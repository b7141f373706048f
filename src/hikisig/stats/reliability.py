"""Internal consistency: Cronbach's alpha (Feldt interval) and item-total statistics.

Checked against R's ``psych::alpha`` (tests/reference/).
"""

from __future__ import annotations

import numpy as np
import pandas as pd
from scipy import stats as sps

__all__ = ["cronbach_alpha", "item_total"]


def _complete(items: pd.DataFrame | np.ndarray) -> tuple[np.ndarray, list[str]]:
    df = pd.DataFrame(items)
    names = [str(c) for c in df.columns]
    x = df.to_numpy(dtype=np.float64)
    x = x[~np.isnan(x).any(axis=1)]
    if x.shape[1] < 2:
        raise ValueError("Cronbach's alpha needs at least two items")
    if x.shape[0] < 3:
        raise ValueError("Cronbach's alpha needs at least three complete rows")
    return x, names


def _alpha(x: np.ndarray) -> float:
    k = x.shape[1]
    item_var = x.var(axis=0, ddof=1).sum()
    total_var = x.sum(axis=1).var(ddof=1)
    return float(k / (k - 1) * (1 - item_var / total_var))


def cronbach_alpha(items: pd.DataFrame | np.ndarray, ci: float = 0.95) -> dict[str, float]:
    """Cronbach's alpha with Feldt's confidence interval (complete rows only).

    Parameters
    ----------
    items : DataFrame or ndarray, shape (n, k)
        Item scores (reverse-scored items already turned).
    ci : float
        Confidence level.

    Returns
    -------
    dict
        ``alpha``, ``lower``, ``upper``, ``n`` (complete rows used), ``k``.

    Examples
    --------
    >>> x = np.array([[1, 2, 2], [2, 3, 3], [3, 3, 4], [4, 5, 4]])
    >>> round(cronbach_alpha(x)["alpha"], 4)
    0.9485
    """
    x, _ = _complete(items)
    n, k = x.shape
    a = _alpha(x)
    df1, df2 = n - 1, (n - 1) * (k - 1)
    lower = 1 - (1 - a) * sps.f.ppf(0.5 + ci / 2, df1, df2)
    upper = 1 - (1 - a) * sps.f.ppf(0.5 - ci / 2, df1, df2)
    return {"alpha": a, "lower": float(lower), "upper": float(upper), "n": n, "k": k}


def item_total(items: pd.DataFrame | np.ndarray) -> pd.DataFrame:
    """Corrected item-total correlation and alpha if the item is dropped.

    Returns
    -------
    DataFrame
        ``item``, ``mean``, ``sd``, ``r_item_rest`` (Pearson r of the item with the
        sum of the other items), ``alpha_if_dropped``.
    """
    x, names = _complete(items)
    total = x.sum(axis=1)
    rest = total[:, None] - x
    xc = x - x.mean(axis=0)
    rc = rest - rest.mean(axis=0)
    r = (xc * rc).sum(axis=0) / np.sqrt((xc**2).sum(axis=0) * (rc**2).sum(axis=0))
    k = x.shape[1]
    drop = [(_alpha(np.delete(x, j, axis=1)) if k > 2 else np.nan) for j in range(k)]
    return pd.DataFrame({"item": names, "mean": x.mean(axis=0), "sd": x.std(axis=0, ddof=1),
                         "r_item_rest": r, "alpha_if_dropped": drop})
