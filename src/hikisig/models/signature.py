"""The consensus signature across models."""

from __future__ import annotations

import numpy as np
import pandas as pd

from hikisig.models.result import ModelResult

__all__ = ["consensus_signature"]


def consensus_signature(results: list[ModelResult], top: int = 20) -> pd.DataFrame:
    """Combine the ``signature`` tables of several models.

    Each model's ranks are turned into a score in [0, 1] (1 = rank 1, 0 = last);
    the consensus score is the mean over the models that have the analyte.

    Returns
    -------
    DataFrame
        ``analyte, consensus_score, n_models_top`` (models in whose top ``top`` the
        analyte is), then ``rank_<kind>`` and ``direction_<kind>`` per model, sorted
        by consensus score.

    Examples
    --------
    >>> sig = pd.DataFrame({"analyte": ["a", "b"], "rank": [1, 2], "direction": ["up", "down"],
    ...                     "effect": [1.0, -1.0], "importance": [2.0, 1.0], "stability": [1.0, .5]})
    >>> from hikisig.models.result import SeverityResult
    >>> r = SeverityResult(model=None, features=["a", "b"], tables={"signature": sig})
    >>> consensus_signature([r])["analyte"].tolist()
    ['a', 'b']
    """
    frames = []
    for res in results:
        sig = res.tables.get("signature")
        if sig is None or sig.empty:
            continue
        n = len(sig)
        f = pd.DataFrame({"analyte": sig["analyte"].astype(str),
                          f"rank_{res.kind}": sig["rank"].to_numpy(),
                          f"direction_{res.kind}": sig["direction"].to_numpy(),
                          f"_score_{res.kind}": 1 - (sig["rank"].to_numpy() - 1) / max(1, n - 1),
                          f"_top_{res.kind}": (sig["rank"].to_numpy() <= top).astype(int)})
        frames.append(f.set_index("analyte"))
    if not frames:
        return pd.DataFrame(columns=["analyte", "consensus_score", "n_models_top"])
    merged = pd.concat(frames, axis=1)
    scores = merged[[c for c in merged.columns if c.startswith("_score_")]]
    tops = merged[[c for c in merged.columns if c.startswith("_top_")]]
    out = merged.drop(columns=list(scores.columns) + list(tops.columns))
    out.insert(0, "n_models_top", tops.fillna(0).sum(axis=1).astype(int))
    out.insert(0, "consensus_score", np.round(scores.mean(axis=1, skipna=True), 12))
    out = out.reset_index().rename(columns={"index": "analyte"})
    return out.sort_values(["consensus_score", "analyte"], ascending=[False, True],
                           ignore_index=True)
