"""The generic, vectorised questionnaire scorer.

One function, :func:`score`, scores any instrument definition: it reverses
the reverse-scored items, applies the missing-data rule, sums the total and
the subscales, assigns the band, and raises the cut-off and item-alert flags,
for all rows at once (numpy on the whole answers matrix).
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from hikisig.assess.definition import Instrument
from hikisig.errors import HikisigError

__all__ = ["reverse", "score", "score_columns"]


def reverse(instrument: Instrument, answers: np.ndarray) -> np.ndarray:
    """Return answers with the reverse-scored items turned (min + max - x).

    Parameters
    ----------
    instrument : Instrument
    answers : ndarray, shape (n, n_items)
        Raw answers; NaN for unanswered.

    Examples
    --------
    >>> from hikisig.assess.definition import load_instrument
    >>> inst = load_instrument("phq9")
    >>> float(reverse(inst, np.zeros((1, 9))).sum())
    0.0
    """
    out = np.array(answers, dtype=np.float64, copy=True)
    if instrument.reverse_items:
        idx = np.asarray(instrument.reverse_items) - 1
        out[:, idx] = instrument.response_min + instrument.response_max - out[:, idx]
    return out


def _apply_rule(scored: np.ndarray, instrument: Instrument) -> tuple[np.ndarray, np.ndarray]:
    """Sum a block of scored items under the missing-data rule; returns score and n_missing."""
    k = scored.shape[1]
    n_missing = np.isnan(scored).sum(axis=1)
    answered = k - n_missing
    sums = np.nansum(scored, axis=1)
    rule = instrument.missing
    allowed = rule.max_missing if rule.rule == "prorate" else 0
    ok = (n_missing <= allowed) & (answered > 0)
    with np.errstate(invalid="ignore", divide="ignore"):
        prorated = np.where(n_missing > 0, sums / answered * k, sums)
    return np.where(ok, prorated, np.nan), n_missing


def score_columns(instrument: Instrument) -> list[str]:
    """The columns :func:`score` returns, in order (after ``id``)."""
    cols = ["total", "band"] + [s.id for s in instrument.subscales]
    cols += [c.id for c in instrument.cutoffs] + [a.id for a in instrument.alerts]
    return [*cols, "n_missing", "note"]


def _compare(total: np.ndarray, direction: str, value: float) -> pd.arrays.BooleanArray:
    with np.errstate(invalid="ignore"):
        res = {">=": total >= value, ">": total > value, "<": total < value,
               "<=": total <= value}[direction]
    return pd.arrays.BooleanArray(res, np.isnan(total))


def score(answers: pd.DataFrame, instrument: Instrument, *, cutoff: float | None = None
          ) -> pd.DataFrame:
    """Score an answers frame.

    Parameters
    ----------
    answers : DataFrame
        ``id``, optional ``visit``/``date``, and ``item1`` ... ``itemN`` (raw answers,
        NaN for unanswered), as from :func:`hikisig.assess.answers.check_answers`.
    instrument : Instrument
        The definition.
    cutoff : float, optional
        Replaces the default of the instrument's first cut-off (e.g. 44 for HQ-25).

    Returns
    -------
    DataFrame
        ``id``, ``total``, ``band`` ("" where the instrument has none or the total
        is missing), one column per subscale, the cut-off flags (e.g.
        ``screen_positive``), the item alerts (e.g. ``item9_alert``), ``n_missing``,
        ``note`` (why a score is missing), and ``visit``/``date`` when given.

    Examples
    --------
    >>> from hikisig.assess.definition import load_instrument
    >>> phq9 = load_instrument("phq9")
    >>> a = pd.DataFrame({"id": ["P1"], **{f"item{i}": [0.0] for i in range(1, 9)}, "item9": [1.0]})
    >>> out = score(a, phq9)
    >>> float(out.loc[0, "total"]), out.loc[0, "band"], bool(out.loc[0, "item9_alert"])
    (1.0, 'minimal', True)
    """
    inst = instrument
    missing_cols = [c for c in inst.item_columns if c not in answers.columns]
    if missing_cols:
        raise HikisigError(f"answers lack item columns {', '.join(missing_cols)} of {inst.id}")
    raw = answers[inst.item_columns].to_numpy(dtype=np.float64)
    scored = reverse(inst, raw)
    total, n_missing = _apply_rule(scored, inst)
    out = pd.DataFrame({"id": answers["id"].astype(str).to_numpy() if "id" in answers
                        else np.arange(len(answers)).astype(str)})
    out["total"] = total
    if inst.bands:
        mins = np.array([b.min for b in inst.bands])
        labels = np.array([b.label for b in inst.bands] + [""], dtype=object)
        pos = np.searchsorted(mins, np.nan_to_num(total, nan=-np.inf), side="right") - 1
        pos = np.where(np.isnan(total) | (pos < 0), len(inst.bands), pos)
        out["band"] = labels[pos]
    else:
        out["band"] = ""
    for sub in inst.subscales:
        idx = np.asarray(sub.items) - 1
        out[sub.id], _ = _apply_rule(scored[:, idx], inst)
    for k, c in enumerate(inst.cutoffs):
        value = cutoff if (cutoff is not None and k == 0) else c.default
        out[c.id] = _compare(total, c.direction, value)
    for al in inst.alerts:
        col = raw[:, al.item - 1]
        with np.errstate(invalid="ignore"):
            flag = col > al.above
        out[al.id] = pd.arrays.BooleanArray(flag, np.isnan(col))
    out["n_missing"] = n_missing.astype(np.int64)
    allowed = inst.missing.max_missing if inst.missing.rule == "prorate" else 0
    note = np.where(np.isnan(total),
                    [f"{m} of {inst.n_items} items unanswered (at most {allowed} allowed)"
                     for m in n_missing], "")
    prorated = ~np.isnan(total) & (n_missing > 0)
    note = np.where(prorated, [f"prorated: {m} item(s) unanswered" for m in n_missing], note)
    out["note"] = note
    for extra in ("visit", "date"):
        if extra in answers.columns:
            out[extra] = answers[extra].to_numpy()
    return out
