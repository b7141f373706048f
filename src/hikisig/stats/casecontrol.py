"""The tidy case-control table: every analyte, every stratum, every test.

:func:`case_control` runs the two-group tests overall and within each level
of a stratifying variable (sex by default), the linear model
``log2(value) ~ group * sex + covariates`` (group effect in each sex and the
interaction), and correlations with a severity score within cases, and
returns one tidy DataFrame.

Values <= 0 on a linear scale are below detection: the log-scale quantities
(geometric means, fold changes and their CIs, the linear model on ``log2``
values) leave them out like missing values, while the t-tests, Mann-Whitney
and the correlations use the values as given. With ``additive=True`` (z-scores,
centred or already-logged data, which may be negative) no log is taken at all:
the t-tests report the difference of means, the linear model is
``value ~ group * sex + covariates``, and the fold-change and geometric-mean
columns are empty.
"""

from __future__ import annotations

import os
import threading
import warnings
from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any, TypeVar

import numpy as np
import pandas as pd

from hikisig.config import MWU_METHODS, TESTS
from hikisig.engine import Engine
from hikisig.errors import AlignmentError
from hikisig.stats import univariate as uv
from hikisig.stats.ranked import SortedBlock

__all__ = ["TESTS", "TIDY_COLUMNS", "CategoricalCovariateWarning", "aligned", "case_control"]

#: Leading columns of the result (more follow).
TIDY_COLUMNS = ["analyte", "stratum", "test", "statistic", "p", "q", "effect", "effect_ci_low",
                "effect_ci_high", "fold_change", "n_case", "n_control"]


@dataclass
class _BlockMoments:
    """Moments of values and of the logs of the positive values in every stratum x group
    (``log`` is None on an additive scale, where no log is taken).

    Mergeable (:meth:`merge`), so they can be accumulated over row chunks.
    """

    x: uv.Moments
    log: uv.Moments | None

    def merge(self, other: _BlockMoments) -> _BlockMoments:
        log = None
        if self.log is not None and other.log is not None:
            log = self.log.merge(other.log)
        return _BlockMoments(self.x.merge(other.x), log)

    def take(self, cols: slice) -> _BlockMoments:
        return _BlockMoments(self.x.take(cols), None if self.log is None else self.log.take(cols))

    @staticmethod
    def concat(parts: list[_BlockMoments]) -> _BlockMoments:
        logs = [m.log for m in parts if m.log is not None]
        return _BlockMoments(uv.Moments.concat([m.x for m in parts]),
                             uv.Moments.concat(logs) if len(logs) == len(parts) else None)


def _block_moments(x: np.ndarray, masks: np.ndarray, additive: bool = False) -> _BlockMoments:
    """Moments of a block's values and (unless ``additive``) of the logs of its positive
    values (values <= 0 are left out like missing values), in every stratum x group (one
    GEMM each)."""
    if additive:
        return _BlockMoments(uv.moment_sums(x, masks), None)
    with np.errstate(invalid="ignore", divide="ignore"):
        logx = np.log(np.where(x > 0, x, np.nan))
    return _BlockMoments(uv.moment_sums(x, masks), uv.moment_sums(logx, masks))


@dataclass
class _LmSetup:
    """The linear model's two levels and design (rows of unknown level are NaN: left out);
    ``optional`` marks the dummy columns of categorical covariates (a level without values
    of an analyte is left out of that analyte's fit)."""

    ref: str
    other: str
    design: np.ndarray
    with_covariates: bool
    optional: np.ndarray | None = None
    with_site: bool = False


class CategoricalCovariateWarning(UserWarning):
    """A covariate that is not numeric enters the linear model as a categorical one."""


def _covariate_columns(covariates: pd.DataFrame | None, site: Any, index: pd.Index,
                       keep: np.ndarray) -> tuple[np.ndarray | None, np.ndarray, bool, bool]:
    """The covariate columns of the linear model (kept rows): numeric covariates as given,
    a covariate with a value that is not a number and the site as treatment-coded dummies.

    Returns the columns (or None), which of them are dummies, and whether there were
    covariates and a site.
    """
    cols: list[np.ndarray] = []
    dummy: list[bool] = []
    with_cov = covariates is not None and covariates.shape[1] > 0
    if covariates is not None and covariates.shape[1]:
        values = pd.DataFrame(aligned(covariates, index, "covariates"), index=index,
                              columns=covariates.columns)
        for name in values.columns:
            col = values[name]
            num = pd.to_numeric(col, errors="coerce")
            if bool((num.isna() & col.notna()).any()):
                d, levels = uv.treatment_dummies(col.to_numpy()[keep])
                warnings.warn(f"covariate {name!r} is not numeric: treated as categorical "
                              f"({len(levels)} levels, reference {levels[0]!r})",
                              CategoricalCovariateWarning, stacklevel=4)
                cols += list(d.T)
                dummy += [True] * d.shape[1]
            else:
                cols.append(num.to_numpy(dtype=np.float64)[keep])
                dummy.append(False)
    with_site = site is not None
    if site is not None:
        d, _ = uv.treatment_dummies(aligned(site, index, "site")[keep])
        cols += list(d.T)
        dummy += [True] * d.shape[1]
    cov = np.column_stack(cols) if cols else None
    return cov, np.array(dummy, dtype=bool), with_cov, with_site


@dataclass
class _Design:
    """Everything about the rows, built once and shared by every block of analytes."""

    keep: np.ndarray  # input rows used (group known)
    case: np.ndarray  # over kept rows
    strata: list[tuple[str, np.ndarray]]
    masks: np.ndarray  # (kept rows, 2 x strata): cases, then controls, of each stratum
    lm: _LmSetup | None
    severity: np.ndarray | None
    tests: tuple[str, ...]
    mwu_method: str
    ci: float
    quantiles: bool
    additive: bool = False

    @property
    def needs_sort(self) -> bool:
        """Whether a block needs its sorted order (quantiles, Mann-Whitney)."""
        return self.quantiles or "mwu" in self.tests

    @property
    def needs_columns(self) -> bool:
        """Whether whole columns are needed (anything rank-based)."""
        return self.needs_sort or self.severity is not None


def _design(index: pd.Index, case: pd.Series | np.ndarray, by: pd.Series | np.ndarray | None,
            covariates: pd.DataFrame | None, severity: pd.Series | np.ndarray | None,
            tests: Sequence[str], mwu_method: str, ci: float, quantiles: bool,
            additive: bool = False, site: pd.Series | np.ndarray | None = None) -> _Design:
    bad = [t for t in tests if t not in TESTS]
    if bad:
        raise ValueError(f"unknown test(s) {bad}; expected {', '.join(TESTS)}")
    if mwu_method not in MWU_METHODS:
        raise ValueError("mwu_method must be 'asymptotic' or 'exact'")
    if not isinstance(additive, bool | np.bool_):
        raise ValueError(f"additive must be True or False; got {additive!r}")
    case_s = pd.Series(aligned(case, index, "case"), index=index)
    keep = case_s.notna().to_numpy()
    cs = case_s.to_numpy()[keep].astype(bool)
    n_rows = int(keep.sum())
    strata: list[tuple[str, np.ndarray]] = [("all", np.ones(n_rows, dtype=bool))]
    lm_setup = None
    if by is not None:
        by_s = pd.Series(aligned(by, index, "by")[keep])
        known = by_s.notna().to_numpy()
        labels = np.asarray(by_s.astype(str).where(known, ""), dtype=str)
        levels = sorted(set(labels[known]))
        strata += [(str(lev), labels == lev) for lev in levels]
        if len(levels) == 2:
            ref, other = _sex_levels([str(v) for v in levels])
            cov, dummy, with_cov, with_site = _covariate_columns(covariates, site, index, keep)
            design = uv.interaction_design(cs, labels == other, cov)
            design[~known] = np.nan
            optional = np.concatenate([np.zeros(4, dtype=bool), dummy])
            lm_setup = _LmSetup(ref, other, design, with_cov, optional if dummy.any() else None,
                                with_site)
    sev = None
    if severity is not None:
        sev = pd.to_numeric(pd.Series(aligned(severity, index, "severity"), index=index),
                            errors="coerce").to_numpy()[keep]
    masks = np.column_stack([m for _, rows in strata for m in (rows & cs, rows & ~cs)])
    return _Design(keep, cs, strata, masks, lm_setup, sev, tuple(tests), mwu_method, ci, quantiles,
                   bool(additive))


def aligned(values: Any, index: pd.Index, what: str) -> np.ndarray:
    """Per-sample values in the order of ``index``: a Series or DataFrame is aligned by its
    index (every sample id must be in it), anything else must have one entry per sample.

    Examples
    --------
    >>> aligned(pd.Series([1, 2], index=["b", "a"]), pd.Index(["a", "b"]), "by").tolist()
    [2, 1]
    """
    if isinstance(values, pd.Series | pd.DataFrame):
        if values.index.equals(index):
            return values.to_numpy(dtype=object)
        if values.index.has_duplicates:
            dup = values.index[values.index.duplicated()].unique()[:5]
            raise AlignmentError(f"{what} has duplicate sample ids: {', '.join(map(str, dup))}")
        missing = index[~index.isin(values.index)]
        if len(missing):
            shown = ", ".join(map(str, missing[:8])) + (", ..." if len(missing) > 8 else "")
            raise AlignmentError(f"{what} lacks {len(missing)} sample id(s) of the data: {shown}")
        return values.reindex(index).to_numpy(dtype=object)
    arr = np.asarray(values, dtype=object)
    if arr.ndim == 0 or len(arr) != len(index):
        n = 0 if arr.ndim == 0 else len(arr)
        raise AlignmentError(f"{what} has {n} values for {len(index)} samples")
    return arr


def _two_group(x: np.ndarray | None, block: SortedBlock | None, mom: _BlockMoments, k: int,
               rows: np.ndarray, d: _Design) -> list[dict[str, np.ndarray | str]]:
    """All two-group results for stratum ``k`` (rows ``rows``) of a block of columns."""
    case, tests, ci = d.case, d.tests, d.ci
    c, o = 2 * k, 2 * k + 1  # rows of the moment matrices: cases, controls of this stratum
    mx = mom.x
    var = mx.var
    p = mx.n.shape[1]
    args = (mx.n[c], mx.mean[c], var[c], mx.n[o], mx.mean[o], var[o])
    nan = np.full(p, np.nan)
    sub_c = sub_k = None
    if block is not None:
        sub_c = block.subset(rows & case)
        sub_k = block.subset(rows & ~case)
    if block is not None and d.quantiles and sub_c is not None and sub_k is not None:
        q_c = block.quantiles(sub_c, (0.25, 0.5, 0.75))
        q_k = block.quantiles(sub_k, (0.25, 0.5, 0.75))
    else:
        q_c = q_k = [nan, nan, nan]
    ml = mom.log
    if d.additive or ml is None:  # an additive scale: no geometric mean, no fold change
        fc = {"fold_change": nan, "low": nan, "high": nan}
        g_c = g_k = nan
    else:  # from the positive values (values <= 0 are left out of the log moments)
        log_var = ml.var
        fc = uv.ratio_from_logs(ml.n[c], ml.mean[c], log_var[c], ml.n[o], ml.mean[o],
                                log_var[o], ci)
        with np.errstate(over="ignore"):
            g_c, g_k = np.exp(ml.mean[c]), np.exp(ml.mean[o])
    common = {
        "fold_change": fc["fold_change"], "fold_change_ci_low": fc["low"],
        "fold_change_ci_high": fc["high"], "n_case": mx.n[c], "n_control": mx.n[o],
        "mean_case": mx.mean[c], "mean_control": mx.mean[o], "sd_case": np.sqrt(var[c]),
        "sd_control": np.sqrt(var[o]), "median_case": q_c[1], "median_control": q_k[1],
        "q1_case": q_c[0], "q3_case": q_c[2], "q1_control": q_k[0], "q3_control": q_k[2],
        "gmean_case": g_c, "gmean_control": g_k,
    }
    rows_out: list[dict[str, np.ndarray | str]] = []
    if {"welch", "student"} & set(tests):
        tt = uv.welch_student(*args)
        if d.additive:
            effects, effect_type = uv.mean_difference(*args, ci=ci), "mean_difference"
        else:
            g = uv.hedges_from(*args, ci=ci)
            effects, effect_type = {"welch": g, "student": g}, "hedges_g"
        for name in ("welch", "student"):
            if name in tests:
                e = effects[name]
                rows_out.append({"test": name, "method": "", "statistic": tt[name]["statistic"],
                                 "df": tt[name]["df"], "p": tt[name]["p"], "effect": e["effect"],
                                 "effect_type": effect_type, "effect_ci_low": e["low"],
                                 "effect_ci_high": e["high"], **common})
    if "mwu" in tests and block is not None and sub_c is not None and sub_k is not None:
        mw = uv.mwu_stats(block.subset(rows), sub_c, sub_k, ci)
        if d.mwu_method == "exact" and x is not None:
            mw["p"] = uv.mann_whitney(x[rows], case[rows], "exact", ci)["p"]
        rows_out.append({"test": "mwu", "method": d.mwu_method, "statistic": mw["statistic"],
                         "df": nan, "p": mw["p"], "effect": mw["effect"],
                         "effect_type": "cliffs_delta", "effect_ci_low": mw["low"],
                         "effect_ci_high": mw["high"], **common})
    return rows_out


#: One result of a block: (output order, stratum, columns of the tidy table for the block).
_Found = tuple[int, str, dict[str, np.ndarray | str]]


def _block_rows(x: np.ndarray | None, d: _Design, mom: _BlockMoments | None = None,
                lm: dict[str, dict[str, np.ndarray]] | None = None) -> list[_Found]:
    """Every result for a block of analytes.

    ``x`` holds the block's values (kept rows x analytes); the moments and the linear
    model come from it unless given (out-of-core statistics pass them from a single
    pass of mergeable sums, and may pass ``x=None`` when nothing rank-based is asked).
    """
    found: list[_Found] = []

    def add(order: int, stratum: str, rows: list[dict[str, np.ndarray | str]]) -> None:
        found.extend((order, stratum, r) for r in rows)

    if mom is None:
        if x is None:
            raise ValueError("a block needs its values or its moments")
        mom = _block_moments(x, d.masks, d.additive)
    block = SortedBlock(x) if x is not None and d.needs_sort else None
    for k, (label, rows) in enumerate(d.strata):
        add(k, label, _two_group(x, block, mom, k, rows, d))
    del block
    n_strata = len(d.strata)
    if d.lm is not None:
        setup = d.lm
        if lm is None:
            if x is None:
                raise ValueError("a block needs its values or its linear model")
            lm = uv.solve_interaction(uv.normal_equations(x, setup.design, log=not d.additive),
                                      d.ci, setup.optional)
        index = {label: k for k, (label, _) in enumerate(d.strata)}
        n = mom.x.n
        i_ref, i_other = index[setup.ref], index[setup.other]
        counts = {"F": (n[2 * i_ref], n[2 * i_ref + 1]), "M": (n[2 * i_other], n[2 * i_other + 1]),
                  "interaction": (n[2 * i_ref] + n[2 * i_other],
                                  n[2 * i_ref + 1] + n[2 * i_other + 1])}
        response = "value" if d.additive else "log2(value)"
        method = (f"{response} ~ group * by" + (" + covariates" if setup.with_covariates else "")
                  + (" + site" if setup.with_site else ""))
        types = (("difference_adjusted", "difference_of_differences") if d.additive else
                 ("log2_fold_change_adjusted", "log2_ratio_of_fold_changes"))
        for k, (label, key) in enumerate(((setup.ref, "F"), (setup.other, "M"),
                                          ("interaction", "interaction"))):
            r = lm[key]
            if d.additive:
                fold = {"fold_change": np.full(len(r["estimate"]), np.nan)}
                fold["fold_change_ci_low"] = fold["fold_change_ci_high"] = fold["fold_change"]
            else:
                with np.errstate(over="ignore"):
                    fold = {"fold_change": 2.0 ** r["estimate"],
                            "fold_change_ci_low": 2.0 ** r["low"],
                            "fold_change_ci_high": 2.0 ** r["high"]}
            add(n_strata + k, label, [{
                "test": "lm", "method": method,
                "statistic": r["statistic"], "df": r["df"], "p": r["p"],
                "effect": r["estimate"], "effect_type": types[key == "interaction"],
                "effect_ci_low": r["low"], "effect_ci_high": r["high"], **fold,
                "n_case": counts[key][0], "n_control": counts[key][1]}])
    if d.severity is not None:
        if x is None:
            raise ValueError("correlations with severity need the block's values")
        cs = d.case
        cor = uv.correlate(x[cs], d.severity[cs], d.ci)
        for name in ("pearson", "spearman"):
            r = cor[name]
            add(n_strata + 3, "cases", [{
                "test": name, "method": "t approximation", "statistic": r["statistic"],
                "df": r["n"] - 2, "p": r["p"], "effect": r["effect"], "effect_type": "r",
                "effect_ci_low": r["low"], "effect_ci_high": r["high"], "n_case": r["n"],
                "n_control": np.zeros(x.shape[1])}])
    return found


def _block_task(x: np.ndarray, d: _Design) -> list[_Found]:
    """Engine task: every result of one block of columns (kept rows only)."""
    return _block_rows(np.asarray(x, dtype=np.float64), d)


T = TypeVar("T")
C = TypeVar("C")
R = TypeVar("R")

_BLAS_LOCK = threading.Lock()
_BLAS_USERS = 0
_BLAS_LIMITER: Any = None


@contextmanager
def _one_blas_thread() -> Iterator[None]:
    """BLAS on one thread while blocks run side by side in threads.

    The kernels' matrix products are thin (a few groups x many rows); with a
    multi-threaded BLAS inside each of several block threads the cores are
    oversubscribed, and on a busy machine OpenBLAS threads spin (10-50 x slower).
    The limit is process-wide, so it is taken by the first caller and given back by
    the last (analyses may run concurrently, e.g. in a web server's threads).
    """
    global _BLAS_USERS, _BLAS_LIMITER
    with _BLAS_LOCK:
        if _BLAS_USERS == 0:
            from threadpoolctl import threadpool_limits

            _BLAS_LIMITER = threadpool_limits(limits=1, user_api="blas")
        _BLAS_USERS += 1
    try:
        yield
    finally:
        with _BLAS_LOCK:
            _BLAS_USERS -= 1
            if _BLAS_USERS == 0 and _BLAS_LIMITER is not None:
                _BLAS_LIMITER.restore_original_limits()
                _BLAS_LIMITER = None


def _map_blocks(fn: Callable[[T, C], R], tasks: list[T], common: C,
                engine: Engine | str | None, n_jobs: int | None) -> list[R]:
    """Run block tasks, results in task order: in threads of this process (numpy releases
    the GIL in the heavy kernels), or on an engine's workers with ``common`` sent once."""
    if isinstance(engine, str):
        if engine != "serial":
            with Engine(engine) as own:
                return own.map(fn, tasks, common=common)
        engine = None
    if engine is not None and engine.backend != "serial":
        return engine.map(fn, tasks, common=common)
    workers = max(1, min(n_jobs if n_jobs is not None else (os.cpu_count() or 1), len(tasks)))
    with _one_blas_thread():
        if workers > 1:
            with ThreadPoolExecutor(max_workers=workers) as pool:
                return list(pool.map(lambda t: fn(t, common), tasks))
        return [fn(t, common) for t in tasks]


def _assemble(names: list[str], per_block: list[list[_Found]], sizes: list[int]) -> pd.DataFrame:
    """The tidy table from the results of consecutive blocks of ``sizes`` analytes."""
    collected: dict[tuple[int, str, str], list[tuple[int, dict[str, np.ndarray | str]]]] = {}
    for found, size in zip(per_block, sizes, strict=True):
        for order, stratum, row in found:
            collected.setdefault((order, stratum, str(row["test"])), []).append((size, row))
    frames: list[pd.DataFrame] = []
    for (_, stratum, _), parts in collected.items():
        merged: dict[str, np.ndarray | str] = {}
        first = parts[0][1]
        for key in first:
            if isinstance(first[key], str):
                merged[key] = first[key]
            else:
                merged[key] = np.concatenate([np.broadcast_to(row[key], (size,))
                                              for size, row in parts])
        f = pd.DataFrame(merged)
        f.insert(0, "stratum", stratum)
        f.insert(0, "analyte", names)
        frames.append(f)
    out = pd.concat(frames, ignore_index=True)
    out["q"] = np.nan
    out["p_holm"] = np.nan
    for _, idx in out.groupby(["stratum", "test"], sort=False).groups.items():
        out.loc[idx, "q"] = uv.adjust(out.loc[idx, "p"].to_numpy(), "fdr_bh")
        out.loc[idx, "p_holm"] = uv.adjust(out.loc[idx, "p"].to_numpy(), "holm")
    lead = [*TIDY_COLUMNS, "p_holm", "df", "method", "effect_type", "fold_change_ci_low",
            "fold_change_ci_high"]
    rest = [c for c in out.columns if c not in lead]
    return out[lead + rest]


def _blocks(n: int, width: int) -> list[range]:
    return [range(s, min(n, s + width)) for s in range(0, n, width)]


def _sex_levels(levels: list[str]) -> tuple[str, str]:
    if set(levels) == {"F", "M"}:
        return "F", "M"
    return levels[0], levels[1]


def case_control(
    X: pd.DataFrame,
    case: pd.Series | np.ndarray,
    *,
    by: pd.Series | np.ndarray | None = None,
    covariates: pd.DataFrame | None = None,
    site: pd.Series | np.ndarray | None = None,
    severity: pd.Series | np.ndarray | None = None,
    tests: Sequence[str] = TESTS,
    mwu_method: str = "asymptotic",
    ci: float = 0.95,
    block_cells: int = 4_000_000,
    n_jobs: int | None = None,
    quantiles: bool = True,
    engine: Engine | str | None = None,
    additive: bool = False,
) -> pd.DataFrame:
    """Case-control statistics for every analyte (column of ``X``).

    Parameters
    ----------
    X : DataFrame
        Samples x analytes (NaN = missing). On a linear scale (the default) a value
        <= 0 is below detection: geometric means, fold changes and the linear model
        on ``log2(value)`` leave it out; the t-tests, Mann-Whitney and correlations
        use the values as given.
    case : array of bool
        True for cases, False for controls (rows with NaN/None are left out).
    by : array, optional
        Stratifying variable (e.g. sex). Tests run overall (``stratum = "all"``)
        and within each level; with exactly two levels the linear model gives the
        group effect in each level (``test = "lm"``) and the interaction
        (``stratum = "interaction"``).
    covariates : DataFrame, optional
        Covariates of the linear model (e.g. age). A numeric column enters as it is; a
        column with a value that is not a number is categorical: treatment-coded like
        ``site``, with a :class:`CategoricalCovariateWarning` saying so.
    site : array, optional
        The site (centre, batch) of each sample: a categorical covariate of the linear
        model, as treatment-coded dummies (one 0/1 column per level but the reference,
        the first level sorted as text; rows without a site are left out of the linear
        model). The method reads ``... + site``. A level whose samples are all in one group
        or one sex is fine (it only absorbs that level's mean); a level with a single sample
        is kept, fits that sample exactly and costs one degree of freedom without
        informing the group effect; a level with no value of an analyte is left out of
        that analyte's fit. The two-group tests do not use it.
    severity : array, optional
        A severity score: Pearson and Spearman correlation within cases
        (``stratum = "cases"``).
    tests : sequence of {"welch", "student", "mwu"}
    mwu_method : {"asymptotic", "exact"}
    ci : float
        Confidence level of every interval.
    block_cells : int
        Analytes are processed in blocks of about this many values (memory bound).
    n_jobs : int, optional
        Blocks processed at the same time in threads (default: the number of CPUs;
        results do not depend on it).
    quantiles : bool
        Group medians and quartiles (they need a sort of every analyte; without them
        and without Mann-Whitney the statistics need no sort, and the median and
        quartile columns are NaN).
    engine : Engine or backend name, optional
        Where the blocks run: ``None`` or ``"serial"`` in threads of this process
        (``n_jobs``); ``"loky"`` or ``"dask"`` (:class:`hikisig.engine.Engine`), one
        task per block of columns. Results do not depend on it.
    additive : bool
        The values are on an additive scale and may be negative (z-scores, centred or
        already-logged data): no log is taken anywhere. The t-tests' ``effect`` is the
        difference of means (cases - controls, ``effect_type = "mean_difference"``)
        with its Welch (``welch``) or pooled (``student``) CI; Mann-Whitney keeps
        Cliff's delta; the linear model is ``value ~ group * by + covariates``
        (``effect_type`` ``difference_adjusted`` in each level and
        ``difference_of_differences`` for the interaction); correlations are
        unchanged; every fold-change and geometric-mean column is NaN.

    Returns
    -------
    DataFrame
        One row per analyte x stratum x test; columns :data:`TIDY_COLUMNS`, then
        ``p_holm, df, method, effect_type, fold_change_ci_low/high`` and the group
        descriptives (mean, sd, median, q1, q3, gmean of cases and controls).
        ``q`` is Benjamini-Hochberg and ``p_holm`` Holm, within each stratum x test.
        Effects: Hedges' g (t-tests; the difference of means with ``additive``),
        Cliff's delta (Mann-Whitney), the adjusted log2 fold change (linear model; the
        adjusted difference with ``additive``), r (correlations).

    Examples
    --------
    >>> rng = np.random.default_rng(0)
    >>> X = pd.DataFrame(rng.lognormal(size=(40, 3)), columns=["a", "b", "c"])
    >>> case = np.arange(40) < 20
    >>> sex = np.where(np.arange(40) % 2, "M", "F")
    >>> t = case_control(X, case, by=sex)
    >>> sorted(t["stratum"].unique())
    ['F', 'M', 'all', 'interaction']
    """
    d = _design(X.index, case, by, covariates, severity, tests, mwu_method, ci, quantiles,
                additive, site)
    names = [str(c) for c in X.columns]
    x = X.to_numpy(dtype=np.float64)[d.keep]
    # columns in blocks: memory stays bounded by the block, not by the number of analytes
    width = max(1, block_cells // max(1, x.shape[0]))
    blocks = _blocks(len(names), width)
    per_block = _map_blocks(_block_task, [x[:, b.start:b.stop] for b in blocks], d, engine, n_jobs)
    return _assemble(names, per_block, [len(b) for b in blocks])
