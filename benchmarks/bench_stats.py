"""Benchmark: sex-stratified univariate statistics, serial vs Dask vs a per-analyte scipy loop.

100,000 participants x 1,000 analytes (float64, 800 MB), two groups, two sexes:
Welch t + Mann-Whitney U + BH, overall and within each sex (plus the
group x sex linear model with age and the descriptives that hikisig computes
in the same call). Measured in one process on the same data:

- hikisig serial: ``case_control`` in this process (column blocks in 2 threads);
- hikisig on Dask: the same call with ``engine=Engine("dask")`` on a LocalCluster
  of 2 worker processes (1 thread each) started once before the runs (its
  start-up is reported separately); each block of columns is sent to a worker;
- hikisig out of core: the same data in a Parquet file, ``case_control_parquet``
  serial and on the same Dask cluster (workers read their blocks from the file);
- the baseline: ``scipy.stats.ttest_ind`` and ``mannwhitneyu`` once per analyte
  and stratum, then ``multipletests``.

Peak memory is the growth of this process's peak RSS during the serial runs
(measured before any Dask run). Results: benchmarks/results/stats.json.

Run: .venv/bin/python benchmarks/bench_stats.py [--n 100000] [--p 1000] [--runs 3]
"""

from __future__ import annotations

import argparse
import os
import resource
import shutil
import statistics
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
from _machine import machine, write_results
from scipy import stats as sps
from statsmodels.stats.multitest import multipletests

from hikisig.engine import Engine
from hikisig.stats.casecontrol import case_control
from hikisig.stats.outofcore import case_control_parquet

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


def runs_of(fn: Any, n: int) -> tuple[list[float], Any]:
    times, out = [], None
    for _ in range(n):
        t0 = time.perf_counter()
        out = fn()
        times.append(time.perf_counter() - t0)
    return times, out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--n", type=int, default=100_000)
    ap.add_argument("--p", type=int, default=1_000)
    ap.add_argument("--runs", type=int, default=3)
    ap.add_argument("--baseline-runs", type=int, default=3)
    ap.add_argument("--workers", type=int, default=2)
    ap.add_argument("--results", type=Path, default=RESULTS, help="JSON file to write.")
    args = ap.parse_args()
    load_before = os.getloadavg()[0]
    rng = np.random.default_rng(1)
    x = rng.lognormal(size=(args.n, args.p))
    case = rng.random(args.n) < 0.5
    sex = np.where(rng.random(args.n) < 0.6, "M", "F")
    age = rng.integers(18, 65, args.n).astype(float)
    X = pd.DataFrame(x, columns=[f"a{j}" for j in range(args.p)])
    cov = pd.DataFrame({"age": age})
    kw: dict[str, Any] = {"by": sex, "covariates": cov, "tests": ["welch", "mwu"]}
    data_mb = x.nbytes / 1e6
    base_rss = rss_mb()
    t_serial, res = runs_of(lambda: case_control(X, case, **kw), args.runs)
    peak_growth = rss_mb() - base_rss
    t_welch, _ = runs_of(lambda: case_control(X, case, by=sex, tests=["welch"]), 1)
    t_welch_nq, _ = runs_of(lambda: case_control(X, case, by=sex, tests=["welch"],
                                                 quantiles=False), 1)
    t_loop, _ = runs_of(lambda: scipy_loop(x, case, sex), args.baseline_runs)
    t_loop_welch, _ = runs_of(lambda: scipy_loop(x, case, sex, mwu=False), 1)

    work = Path(tempfile.mkdtemp(prefix="hikisig-bench-stats-",
                                 dir=os.environ.get("HIKISIG_BENCH_DIR", tempfile.gettempdir())))
    from distributed import Client, LocalCluster

    try:
        path = work / "x.parquet"
        X.to_parquet(path, index=False, row_group_size=25_000)
        cols = list(X.columns)
        t_pq, res_pq = runs_of(lambda: case_control_parquet(path, cols, case, **kw), args.runs)
        t0 = time.perf_counter()
        with LocalCluster(n_workers=args.workers, threads_per_worker=1, processes=True,
                          dashboard_address="127.0.0.1:0") as cluster, Client(cluster):
            startup = time.perf_counter() - t0
            eng = Engine("dask")
            t_dask, res_dask = runs_of(lambda: case_control(X, case, engine=eng, **kw), args.runs)
            t_pq_dask, res_pq_dask = runs_of(
                lambda: case_control_parquet(path, cols, case, engine=eng, **kw), args.runs)
    finally:
        shutil.rmtree(work, ignore_errors=True)

    def diff(a: pd.DataFrame, b: pd.DataFrame) -> float:
        num = [c for c in a.columns if a[c].dtype.kind == "f"]
        d = (a[num] - b[num]).abs().to_numpy() / np.maximum(1.0, b[num].abs().to_numpy())
        return float(np.nanmax(d))

    med = {k: statistics.median(v) for k, v in {
        "serial": t_serial, "dask": t_dask, "parquet_serial": t_pq, "parquet_dask": t_pq_dask,
        "scipy_loop": t_loop}.items()}
    result = {
        "benchmark": "sex-stratified univariate statistics",
        "shape": [args.n, args.p], "data_mb": round(data_mb, 1),
        "runs_s": {"hikisig_serial": [round(t, 2) for t in t_serial],
                   "hikisig_dask": [round(t, 2) for t in t_dask],
                   "hikisig_parquet_serial": [round(t, 2) for t in t_pq],
                   "hikisig_parquet_dask": [round(t, 2) for t in t_pq_dask],
                   "scipy_loop": [round(t, 2) for t in t_loop]},
        "median_s": {k: round(v, 2) for k, v in med.items()},
        "hikisig_median_s": round(med["serial"], 2),
        "scipy_loop_median_s": round(med["scipy_loop"], 2),
        "speedup": round(med["scipy_loop"] / med["serial"], 1),
        "ratios": {"scipy_loop_over_serial": round(med["scipy_loop"] / med["serial"], 2),
                   "scipy_loop_over_dask": round(med["scipy_loop"] / med["dask"], 2),
                   "serial_over_dask": round(med["serial"] / med["dask"], 2),
                   "parquet_serial_over_parquet_dask": round(
                       med["parquet_serial"] / med["parquet_dask"], 2),
                   "parquet_serial_over_serial": round(med["parquet_serial"] / med["serial"], 2)},
        "dask_workers": args.workers, "dask_cluster_startup_s": round(startup, 2),
        "dask_equals_serial": bool(res_dask.equals(res)),
        "parquet_dask_equals_parquet_serial": bool(res_pq_dask.equals(res_pq)),
        "parquet_vs_in_memory_max_rel_diff": diff(res_pq, res),
        "welch_only_hikisig_s": round(t_welch[0], 2),
        "welch_only_hikisig_no_quantiles_s": round(t_welch_nq[0], 2),
        "welch_only_scipy_loop_s": round(t_loop_welch[0], 2),
        "welch_only_speedup": round(t_loop_welch[0] / t_welch[0], 1),
        "welch_only_no_quantiles_speedup": round(t_loop_welch[0] / t_welch_nq[0], 1),
        "peak_rss_growth_mb": round(peak_growth, 1),
        "peak_over_data": round(peak_growth / data_mb, 2),
        "result_rows": len(res),
        "goals": {"speedup": 20, "wall_s": 60, "peak_over_data": 3},
        "machine": machine(load_before),
    }
    result["pass"] = (result["speedup"] >= 20 and med["serial"] < 60
                      and result["peak_over_data"] < 3)
    write_results(args.results, result)


if __name__ == "__main__":
    main()
