"""Ranks of many subsets from one sort, for all analytes at once.

Rank-based statistics need, for each analyte, the ranks of the values within
several subsets of samples (a stratum; its cases; its controls). Sorting once
per analyte and then counting members along the sorted order gives every
subset's average (mid) ranks, tie counts and order statistics in a few
vectorised passes, without sorting again and without a loop per analyte.

Arrays are held analyte-major (``(p, n)``, each analyte's sorted values
contiguous), so that the sort and the running counts stream through memory.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

__all__ = ["SortedBlock", "SubsetRanks"]


@dataclass
class SubsetRanks:
    """Ranks of one subset of rows, in sorted order of each analyte.

    Attributes
    ----------
    member : ndarray of bool (p, n)
        Position (in sorted order) holds a non-missing member of the subset.
    rank : ndarray (p, n)
        Mid-rank within the subset at member positions (undefined elsewhere); the
        running count itself when the block has no ties.
    count : ndarray of int (p, n)
        Running count of members (inclusive) along the sorted order.
    n : ndarray of int (p,)
        Members per analyte.
    ties : ndarray of float (p,)
        Sum over tie groups of (t^3 - t) within the subset.
    """

    member: np.ndarray
    rank: np.ndarray
    count: np.ndarray
    n: np.ndarray
    ties: np.ndarray


class SortedBlock:
    """One argsort of a block of analytes, reused for every subset of rows.

    Parameters
    ----------
    x : ndarray (n, p)
        Values, samples in rows; NaN sort last and are never members.

    Examples
    --------
    >>> b = SortedBlock(np.array([[3.0], [1.0], [3.0], [2.0]]))
    >>> r = b.subset(np.array([True, True, True, True]))
    >>> b.unsort(np.where(r.member, r.rank, np.nan))[:, 0].tolist()
    [3.5, 1.0, 3.5, 2.0]
    """

    def __init__(self, x: np.ndarray) -> None:
        xt = np.ascontiguousarray(np.asarray(x, dtype=np.float64).T)
        self.order = np.argsort(xt, axis=1)
        self.xs = np.take_along_axis(xt, self.order, axis=1)
        self.valid = ~np.isnan(self.xs)
        n = self.xs.shape[1]
        start = np.ones_like(self.valid)
        end = np.ones_like(self.valid)
        if n > 1:
            start[:, 1:] = self.xs[:, 1:] != self.xs[:, :-1]
            end[:, :-1] = self.xs[:, :-1] != self.xs[:, 1:]
        self.start = start & self.valid
        self.end = end & self.valid
        #: without ties, a member's mid-rank is its running count (fast path)
        self.has_ties = bool((self.valid & ~self.start).any())
        self._dtype = np.int32 if n < 2**31 - 1 else np.int64

    def subset(self, rows: np.ndarray) -> SubsetRanks:
        """Mid-ranks, counts and ties of the rows where ``rows`` is True."""
        member = np.asarray(rows, dtype=bool)[self.order]
        member &= self.valid
        count = np.cumsum(member, axis=1, dtype=self._dtype)
        p = self.xs.shape[0]
        n = count[:, -1].astype(np.int64) if count.shape[1] else np.zeros(p, dtype=np.int64)
        if not self.has_ties:
            return SubsetRanks(member, count, count, n, np.zeros(p))
        before = np.maximum.accumulate(np.where(self.start, count - member, 0), axis=1)
        big = np.iinfo(self._dtype).max
        at_end = np.where(self.end, count, big)[:, ::-1]
        group_end = np.minimum.accumulate(at_end, axis=1)[:, ::-1]
        in_group = group_end - before
        rank = before + (in_group + 1) / 2.0
        t = np.where(self.end, in_group, 0).astype(np.float64)
        ties = (t * (t * t - 1.0)).sum(axis=1)  # t^3 - t, exact for integer t (no pow())
        return SubsetRanks(member, rank, count, n, ties)

    def quantiles(self, sub: SubsetRanks, qs: tuple[float, ...]) -> list[np.ndarray]:
        """Quantiles of the subset per analyte (linear interpolation, as numpy's default)."""
        _, pos_idx = np.nonzero(sub.member)  # members, analyte by analyte, in sorted order
        offsets = np.concatenate([[0], np.cumsum(sub.n)[:-1]]).astype(np.int64)
        rows = np.arange(self.xs.shape[0])
        has = sub.n > 0
        last = np.maximum(sub.n - 1, 0)
        out = []
        for q in qs:
            if pos_idx.size == 0:
                out.append(np.full(rows.size, np.nan))
                continue
            h = (sub.n - 1) * q
            lo = np.floor(np.maximum(h, 0)).astype(np.int64)
            hi = np.minimum(lo + 1, last)
            frac = np.where(has, h - lo, 0.0)
            v_lo = self.xs[rows, pos_idx[np.where(has, offsets + lo, 0)]]
            v_hi = self.xs[rows, pos_idx[np.where(has, offsets + hi, 0)]]
            out.append(np.where(has, v_lo + frac * (v_hi - v_lo), np.nan))
        return out

    def unsort(self, a: np.ndarray) -> np.ndarray:
        """Put an analyte-major array in sorted order back into samples x analytes order."""
        out = np.empty_like(a)
        np.put_along_axis(out, self.order, a, axis=1)
        return out.T
