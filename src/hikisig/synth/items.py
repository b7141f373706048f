"""Item-level answers with an exact total, for any instrument definition."""

from __future__ import annotations

import numpy as np

from hikisig.assess.definition import Instrument
from hikisig.assess.scoring import reverse

__all__ = ["answers_for_totals"]


def answers_for_totals(instrument: Instrument, totals: np.ndarray, rng: np.random.Generator
                       ) -> np.ndarray:
    """Raw answers whose scored total equals ``totals`` exactly.

    Each item has ``max - min`` unit "slots"; for every row, ``total - n*min``
    slots chosen at random are filled, so every item lands in range and the
    items of a row share its level (which gives realistic inter-item
    correlation). Reverse-scored items are then turned back into raw answers.

    Parameters
    ----------
    instrument : Instrument
    totals : ndarray of int
        Scored totals, clipped to the instrument's range.
    rng : numpy Generator

    Examples
    --------
    >>> from hikisig.assess.definition import load_instrument
    >>> inst = load_instrument("ucla3")
    >>> raw = answers_for_totals(inst, np.array([20, 50, 80]), np.random.default_rng(0))
    >>> reverse(inst, raw).sum(axis=1).tolist()
    [20.0, 50.0, 80.0]
    """
    k, lo, hi = instrument.n_items, instrument.response_min, instrument.response_max
    width = hi - lo
    t = np.clip(np.rint(totals).astype(np.int64), k * lo, k * hi)
    units = t - k * lo
    keys = rng.random((len(t), k * width))
    ranks = np.argsort(np.argsort(keys, axis=1), axis=1)
    filled = ranks < units[:, None]
    scored = lo + filled.reshape(len(t), k, width).sum(axis=2)
    # reversing is its own inverse: turning the scored values gives the raw answers
    return reverse(instrument, scored.astype(np.float64))
