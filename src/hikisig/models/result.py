"""What every model builder returns."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import pandas as pd

__all__ = ["SIGNATURE_COLUMNS", "ModelResult"]

#: Columns of every model's ``signature`` table (more may follow).
SIGNATURE_COLUMNS = ["analyte", "rank", "direction", "effect", "importance", "stability"]


@dataclass
class ModelResult:
    """A validated model and everything reported about it.

    Attributes
    ----------
    kind : str
        ``discriminate``, ``severity`` or ``stratify``.
    model : object
        The final fitted estimator (a scikit-learn Pipeline), trained on all data.
    features : list of str
        Input columns the model expects, in order.
    metrics : dict
        JSON-serialisable headline numbers (CV metrics with CIs, chosen settings).
    tables : dict of DataFrame
        Tidy result tables; every kind has ``signature`` (:data:`SIGNATURE_COLUMNS`).
    params : dict
        Settings used (for the model card and provenance).
    """

    kind: str
    model: Any
    features: list[str]
    metrics: dict[str, Any]
    tables: dict[str, pd.DataFrame] = field(default_factory=dict)
    params: dict[str, Any] = field(default_factory=dict)
