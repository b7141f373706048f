"""The tidy case-control table: every analyte, every stratum, every test.

:func:`case_control` runs the two-group tests overall and within each level
of a stratifying variable (sex by default), the linear model
``log2(value) ~ group * sex + covariates`` (group effect in each sex and the
interaction), and correlations with a severity score within cases, and
returns one tidy DataFrame.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass

import numpy as np
import pandas as pd

from hikisig.stats import univariate as uv
from hikisig.stats.ranked import SortedBlock

__all__ = ["TESTS", "TIDY_COLUMNS", "case_control"]

#: Tests ``case_control`` can run.
TESTS = ("welch", "student", "mwu")
#: Leading columns of the result (more follow).
TIDY_COLUMNS = ["analyte", "stratum", "test", "statistic", "p", "q", "effect", "effect_ci_low",
                "effect_ci_high", "fold_change", "n_case", "n_control"]


@dataclass
class _BlockMoments:
    """Moments of a block's values and log values in every stratum x group (one GEMM each)."""

    n: np.ndarray
    mean: np.ndarray
    var: np.ndarray
    log_n: np.ndarray
    log_mean: np.ndarray
    log_var: np.ndarray
    nonpositive: np.ndarray


def _block_moments(x: np.ndarray, masks: np.ndarray) -> _BlockMoments:
    n, mean, var = uv.grouped_moments(x, masks)
    with np.errstate(invalid="ignore", divide="ignore"):
        logx = np.log(np.where(x > 0, x, np.nan))
    ln, lm, lv = uv.grouped_moments(logx, masks)
    nonpos = masks.astype(np.float64).T @ (x <= 0).astype(np.float64)
    return _BlockMoments(n, mean, var, ln, lm, lv, nonpos > 0)


def _two_group(x: np.ndarray, block: SortedBlock, mom: _BlockMoments, k: int, rows: np.ndarray,
               case: np.ndarray, tests: Sequence[str], mwu_method: str, ci: float
               ) -> list[dict[str, np.ndarray | str]]:
    """All two-group results for stratum ``k`` (rows ``rows``) of a block of columns."""
    c, o = 2 * k, 2 * k + 1  # rows of the moment matrices: cases, controls of this stratum
    args = (mom.n[c], mom.mean[c], mom.var[c], mom.n[o], mom.mean[o], mom.var[o])
    sub_c = block.subset(rows & case)
    sub_k = block.subset(rows & ~case)
    q_c = block.quantiles(sub_c, (0.25, 0.5, 0.75))
    q_k = block.quantiles(sub_k, (0.25, 0.5, 0.75))
    positive = ~(mom.nonpositive[c] | mom.nonpositive[o])
    fc = uv.ratio_from_logs(mom.log_n[c], mom.log_mean[c], mom.log_var[c], mom.log_n[o],
                            mom.log_mean[o], mom.log_var[o], ci)
    fc = {key: np.where(positive, v, np.nan) for key, v in fc.items()}
    with np.errstate(over="ignore"):
        g_c = np.where(mom.nonpositive[c], np.nan, np.exp(mom.log_mean[c]))
        g_k = np.where(mom.nonpositive[o], np.nan, np.exp(mom.log_mean[o]))
    common = {
        "fold_change": fc["fold_change"], "fold_change_ci_low": fc["low"],
        "fold_change_ci_high": fc["high"], "n_case": mom.n[c], "n_control": mom.n[o],
        "mean_case": mom.mean[c], "mean_control": mom.mean[o], "sd_case": np.sqrt(mom.var[c]),
        "sd_control": np.sqrt(mom.var[o]), "median_case": q_c[1], "median_control": q_k[1],
        "q1_case": q_c[0], "q3_case": q_c[2], "q1_control": q_k[0], "q3_control": q_k[2],
        "gmean_case": g_c, "gmean_control": g_k,
    }
    rows_out: list[dict[str, np.ndarray | str]] = []
    if {"welch", "student"} & set(tests):
        tt = uv.welch_student(*args)
        g = uv.hedges_from(*args, ci=ci)
        for name in ("welch", "student"):
            if name in tests:
                rows_out.append({"test": name, "method": "", "statistic": tt[name]["statistic"],
                                 "df": tt[name]["df"], "p": tt[name]["p"], "effect": g["effect"],
                                 "effect_type": "hedges_g", "effect_ci_low": g["low"],
                                 "effect_ci_high": g["high"], **common})
    if "mwu" in tests:
        mw = uv.mwu_stats(block.subset(rows), sub_c, sub_k, ci)
        if mwu_method == "exact":
            mw["p"] = uv.mann_whitney(x[rows], case[rows], "exact", ci)["p"]
        rows_out.append({"test": "mwu", "method": mwu_method, "statistic": mw["statistic"],
                         "df": np.full(x.shape[1], np.nan), "p": mw["p"], "effect": mw["effect"],
                         "effect_type": "cliffs_delta", "effect_ci_low": mw["low"],
                         "effect_ci_high": mw["high"], **common})
    return rows_out


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
    severity: pd.Series | np.ndarray | None = None,
    tests: Sequence[str] = TESTS,
    mwu_method: str = "asymptotic",
    ci: float = 0.95,
    block_cells: int = 4_000_000,
    n_jobs: int | None = None,
) -> pd.DataFrame:
    """Case-control statistics for every analyte (column of ``X``).

    Parameters
    ----------
    X : DataFrame
        Samples x analytes (NaN = missing).
    case : array of bool
        True for cases, False for controls (rows with NaN/None are left out).
    by : array, optional
        Stratifying variable (e.g. sex). Tests run overall (``stratum = "all"``)
        and within each level; with exactly two levels the linear model gives the
        group effect in each level (``test = "lm"``) and the interaction
        (``stratum = "interaction"``).
    covariates : DataFrame, optional
        Numeric covariates of the linear model (e.g. age).
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

    Returns
    -------
    DataFrame
        One row per analyte x stratum x test; columns :data:`TIDY_COLUMNS`, then
        ``p_holm, df, method, effect_type, fold_change_ci_low/high`` and the group
        descriptives (mean, sd, median, q1, q3, gmean of cases and controls).
        ``q`` is Benjamini-Hochberg and ``p_holm`` Holm, within each stratum x test.

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
    bad = [t for t in tests if t not in TESTS]
    if bad:
        raise ValueError(f"unknown test(s) {bad}; expected {', '.join(TESTS)}")
    names = [str(c) for c in X.columns]
    values = X.to_numpy(dtype=np.float64)
    case_s = pd.Series(np.asarray(case, dtype=object), index=X.index)
    keep = case_s.notna().to_numpy()
    cs = case_s.to_numpy()[keep].astype(bool)
    x = values[keep]
    n_rows = x.shape[0]
    all_rows = np.ones(n_rows, dtype=bool)
    strata: list[tuple[str, np.ndarray]] = [("all", all_rows)]
    lm_setup = None
    if by is not None:
        by_arr = pd.Series(np.asarray(by, dtype=object), index=X.index).to_numpy()[keep]
        known = np.array([v is not None and not pd.isna(v) for v in by_arr])
        labels = np.array([str(v) if k else "" for v, k in zip(by_arr, known, strict=True)])
        levels = sorted(set(labels[known]))
        strata += [(str(lev), labels == lev) for lev in levels]
        if len(levels) == 2:
            ref, other = _sex_levels([str(v) for v in levels])
            cov = None
            if covariates is not None and covariates.shape[1]:
                cov = covariates.to_numpy(dtype=np.float64)[keep]
            lm_setup = (ref, other, labels == other, known, cov)
    sev = None
    if severity is not None:
        sev = pd.to_numeric(pd.Series(np.asarray(severity, dtype=object), index=X.index),
                            errors="coerce").to_numpy()[keep]
    # columns in blocks: memory stays bounded by the block, not by the number of analytes
    width = max(1, block_cells // max(1, n_rows))
    collected: dict[tuple[int, str, str], list[dict[str, np.ndarray | str]]] = {}

    def block_results(start: int) -> list[tuple[int, str, dict[str, np.ndarray | str]]]:
        found: list[tuple[int, str, dict[str, np.ndarray | str]]] = []

        def add(order: int, stratum: str, rows: list[dict[str, np.ndarray | str]]) -> None:
            found.extend((order, stratum, r) for r in rows)

        xb = x[:, start:start + width]
        block = SortedBlock(xb)
        masks = np.column_stack([m for _, rows in strata for m in (rows & cs, rows & ~cs)])
        mom = _block_moments(xb, masks)
        for k, (label, rows) in enumerate(strata):
            add(k, label, _two_group(xb, block, mom, k, rows, cs, tests, mwu_method, ci))
        del block
        if lm_setup is not None:
            ref, other, is_other, known, cov = lm_setup
            xm = np.where(known[:, None], xb, np.nan)
            lm = uv.interaction_model(xm, cs, is_other, cov, ci)
            for k, (label, key) in enumerate(((ref, "F"), (other, "M"), ("interaction", "interaction"))):
                r = lm[key]
                row: dict[str, np.ndarray | str] = {
                    "test": "lm", "method": "log2(value) ~ group * by" + (
                        " + covariates" if cov is not None else ""),
                    "statistic": r["statistic"], "df": r["df"], "p": r["p"],
                    "effect": r["estimate"], "effect_type": "log2_fold_change_adjusted"
                    if key != "interaction" else "log2_ratio_of_fold_changes",
                    "effect_ci_low": r["low"], "effect_ci_high": r["high"],
                    "fold_change": 2.0 ** r["estimate"], "fold_change_ci_low": 2.0 ** r["low"],
                    "fold_change_ci_high": 2.0 ** r["high"],
                }
                sel = (is_other if key == "M" else known & ~is_other) if key != "interaction" else known
                row["n_case"] = np.sum(~np.isnan(xb[sel & cs]), axis=0).astype(float)
                row["n_control"] = np.sum(~np.isnan(xb[sel & ~cs]), axis=0).astype(float)
                add(len(strata) + k, label, [row])
        if sev is not None:
            cor = uv.correlate(xb[cs], sev[cs], ci)
            for name in ("pearson", "spearman"):
                r = cor[name]
                add(len(strata) + 3, "cases", [{
                    "test": name, "method": "t approximation", "statistic": r["statistic"],
                    "df": r["n"] - 2, "p": r["p"], "effect": r["effect"], "effect_type": "r",
                    "effect_ci_low": r["low"], "effect_ci_high": r["high"], "n_case": r["n"],
                    "n_control": np.zeros(xb.shape[1])}])
        return found

    starts = list(range(0, x.shape[1], width))
    workers = max(1, min(n_jobs if n_jobs is not None else (os.cpu_count() or 1), len(starts)))
    if workers > 1:
        # numpy releases the GIL in the heavy kernels: blocks run side by side
        with ThreadPoolExecutor(max_workers=workers) as pool:
            per_block = list(pool.map(block_results, starts))
    else:
        per_block = [block_results(st) for st in starts]
    for found in per_block:
        for order, stratum, row in found:
            collected.setdefault((order, stratum, str(row["test"])), []).append(row)
    frames: list[pd.DataFrame] = []
    for (_, stratum, _), parts in collected.items():
        merged: dict[str, np.ndarray | str] = {}
        for key in parts[0]:
            if isinstance(parts[0][key], str):
                merged[key] = parts[0][key]
            else:
                merged[key] = np.concatenate([np.broadcast_to(p[key], (len(b),)) for p, b in
                                              zip(parts, _blocks(len(names), width), strict=True)])
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
