"""Benchmark: sex-stratified univariate statistics, vectorised vs a per-analyte scipy loop.

100,000 participants x 1,000 analytes (float64, 800 MB), two groups, two sexes:
Welch t + Mann-Whitney U + BH, overall and within each sex (plus the
group x sex linear model and descriptives that hikisig computes in the same
call). The baseline calls ``scipy.stats.ttest_ind`` and ``mannwhitneyu`` once
per analyte and stratum, then ``multipletests``. Both run in this process on
the same data; peak memory is the growth of this process's peak RSS during
the hikisig call. Results: benchmarks/results/stats.json.

Run: .venv/bin/python benchmarks/bench_stats.py [--n 100000] [--p 1000] [--runs 3]
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import resource
import statistics
import time
from pathlib import Path

import numpy as np
import pandas as pd
from scipy import stats as sps
from statsmodels.stats.multitest import multipletests

from hikisig.stats.casecontrol import case_control

RESULTS = Path(__file__).parent / "results" / "stats.json"


def rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def scipy_loop(x: np.ndarray, case: np.ndarray, sex: np.ndarray, mwu: bool = True) -> int:
    n_tests = 0
    for sel in (np.ones(len(case), bool), sex == "M", sex == "F"):
        ps_t, ps_u = [], []
        a_all, b_all = x[sel & case], x[sel & ~case]
        for j in range(x.shape[1]):
            a, b = a_all[:, j], b_all[:, j]
            ps_t.append(sps.ttest_ind(a, b, equal_var=False).pvalue)
            n_tests += 1
            if mwu:
                ps_u.append(sps.mannwhitneyu(a, b, method="asymptotic").pvalue)
                n_tests += 1
        multipletests(ps_t, method="fdr_bh")
        if mwu:
            multipletests(ps_u, method="fdr_bh")
    return n_tests


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--n", type=int, default=100_000)
    ap.add_argument("--p", type=int, default=1_000)
    ap.add_argument("--runs", type=int, default=3)
    ap.add_argument("--baseline-runs", type=int, default=1)
    args = ap.parse_args()
    rng = np.random.default_rng(1)
    x = rng.lognormal(size=(args.n, args.p))
    case = rng.random(args.n) < 0.5
    sex = np.where(rng.random(args.n) < 0.6, "M", "F")
    age = rng.integers(18, 65, args.n).astype(float)
    X = pd.DataFrame(x, columns=[f"a{j}" for j in range(args.p)])
    cov = pd.DataFrame({"age": age})
    data_mb = x.nbytes / 1e6
    base_rss = rss_mb()
    times = []
    for _ in range(args.runs):
        t0 = time.perf_counter()
        res = case_control(X, case, by=sex, covariates=cov, tests=["welch", "mwu"])
        times.append(time.perf_counter() - t0)
    peak_growth = rss_mb() - base_rss
    loop_times = []
    for _ in range(args.baseline_runs):
        t0 = time.perf_counter()
        scipy_loop(x, case, sex)
        loop_times.append(time.perf_counter() - t0)
    # Welch + BH only (no ranks), same strata, both ways
    t0 = time.perf_counter()
    case_control(X, case, by=sex, tests=["welch"])
    welch_hik = time.perf_counter() - t0
    t0 = time.perf_counter()
    scipy_loop(x, case, sex, mwu=False)
    welch_loop = time.perf_counter() - t0
    hik = statistics.median(times)
    loop = statistics.median(loop_times)
    result = {
        "benchmark": "sex-stratified univariate statistics",
        "shape": [args.n, args.p], "data_mb": round(data_mb, 1),
        "hikisig_runs_s": [round(t, 2) for t in times], "hikisig_median_s": round(hik, 2),
        "scipy_loop_runs_s": [round(t, 2) for t in loop_times], "scipy_loop_median_s": round(loop, 2),
        "speedup": round(loop / hik, 1),
        "welch_only_hikisig_s": round(welch_hik, 2), "welch_only_scipy_loop_s": round(welch_loop, 2),
        "welch_only_speedup": round(welch_loop / welch_hik, 1),
        "peak_rss_growth_mb": round(peak_growth, 1),
        "peak_over_data": round(peak_growth / data_mb, 2),
        "result_rows": len(res),
        "goals": {"speedup": 20, "wall_s": 60, "peak_over_data": 3},
        "machine": {"python": platform.python_version(), "platform": platform.platform(),
                    "cpus": os.cpu_count()},
        "date": time.strftime("%Y-%m-%d"),
    }
    result["pass"] = result["speedup"] >= 20 and hik < 60 and result["peak_over_data"] < 3
    RESULTS.parent.mkdir(parents=True, exist_ok=True)
    RESULTS.write_text(json.dumps(result, indent=2) + "\n")
    print(json.dumps(result))


if __name__ == "__main__":
    main()
