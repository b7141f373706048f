"""The consensus signature across models."""

from __future__ import annotations

import numpy as np
import pandas as pd

from hikisig.models.result import ModelResult

__all__ = ["consensus_signature"]


def consensus_signature(results: list[ModelResult], top: int = 20) -> pd.DataFrame:
    """Combine the ``signature`` tables of the validated models.

    Only models that passed their validation rule enter: a model whose ``validated`` is
    False is left out (its verdict says why). A model that was never assessed (no
    ``validated`` attribute, or None: assembled by hand or saved before verdicts were
    recorded) enters as before. Each entering model's ranks are turned into a score in
    [0, 1] (1 = rank 1, 0 = last); the consensus score is the mean over the models that
    have the analyte.

    Returns
    -------
    DataFrame
        ``analyte, consensus_score, n_models_top`` (models in whose top ``top`` the
        analyte is), then ``rank_<kind>`` and ``direction_<kind>`` per entering model, and
        ``models`` (the kinds of the models that entered, joined by ``;``, on every row),
        sorted by consensus score. ``attrs["models"]`` lists the kinds that entered and
        ``attrs["excluded"]`` maps each left-out kind to its verdict; when no model
        entered the table has no rows and these attributes say why.

    Examples
    --------
    >>> sig = pd.DataFrame({"analyte": ["a", "b"], "rank": [1, 2], "direction": ["up", "down"],
    ...                     "effect": [1.0, -1.0], "importance": [2.0, 1.0], "stability": [1.0, .5]})
    >>> from hikisig.models.result import SeverityResult
    >>> r = SeverityResult(model=None, features=["a", "b"], tables={"signature": sig})
    >>> consensus_signature([r])["analyte"].tolist()
    ['a', 'b']
    >>> r.validated, r.verdict = False, "Not validated: Q2 <= 0."
    >>> empty = consensus_signature([r])
    >>> len(empty), empty.attrs["models"], empty.attrs["excluded"]
    (0, [], {'severity': 'Not validated: Q2 <= 0.'})
    """
    frames = []
    entered: list[str] = []
    excluded: dict[str, str] = {}
    for res in results:
        if getattr(res, "validated", None) is False:
            excluded[res.kind] = str(getattr(res, "verdict", "") or "not validated")
            continue
        sig = res.tables.get("signature")
        if sig is None or sig.empty:
            continue
        entered.append(res.kind)
        n = len(sig)
        f = pd.DataFrame({"analyte": sig["analyte"].astype(str),
                          f"rank_{res.kind}": sig["rank"].to_numpy(),
                          f"direction_{res.kind}": sig["direction"].to_numpy(),
                          f"_score_{res.kind}": 1 - (sig["rank"].to_numpy() - 1) / max(1, n - 1),
                          f"_top_{res.kind}": (sig["rank"].to_numpy() <= top).astype(int)})
        frames.append(f.set_index("analyte"))
    if not frames:
        out = pd.DataFrame(columns=["analyte", "consensus_score", "n_models_top", "models"])
    else:
        merged = pd.concat(frames, axis=1)
        scores = merged[[c for c in merged.columns if c.startswith("_score_")]]
        tops = merged[[c for c in merged.columns if c.startswith("_top_")]]
        out = merged.drop(columns=list(scores.columns) + list(tops.columns))
        out.insert(0, "n_models_top", tops.fillna(0).sum(axis=1).astype(int))
        out.insert(0, "consensus_score", np.round(scores.mean(axis=1, skipna=True), 12))
        out = out.reset_index().rename(columns={"index": "analyte"})
        out["models"] = ";".join(entered)
        out = out.sort_values(["consensus_score", "analyte"], ascending=[False, True],
                              ignore_index=True)
    out.attrs["models"] = entered
    out.attrs["excluded"] = excluded
    return out
