"""Benchmark: a 10,000-permutation AUC test on the 83-participant study, serial vs Dask.

The default synthetic study (`hikisig synth` preset: 42 cases, 41 controls, 127
analytes) and `discriminate` with its defaults (random forest of 200 trees,
5 x 5-fold CV, 1,000 bootstraps, importances) and 10,000 label permutations
(scheme "oof": labels permuted against the out-of-fold probabilities; 100 tasks
of 100 permutations). Timed: the whole call, and the permutation stage alone
(the same 100 tasks through the engine). Backends: serial, and Dask on a
LocalCluster of 2 worker processes (1 thread each) started once before the
runs (its start-up time is reported separately, as for an existing cluster).
Results must be identical (checked).

With the "oof" scheme the 10,000 permutations themselves take a fraction of a
second; the rigorous "refit" scheme reruns the whole cross-validation for each
permutation (here with the penalised logistic model: 5 fits per permutation,
50,000 fits), which is where a cluster pays off; it is timed too (--refit-runs,
1 run by default: about 15 minutes serial on the reference machine).

Results: benchmarks/results/scale_permutation.json.

Run: .venv/bin/python benchmarks/bench_scale_permutation.py [--runs 3] [--permutations 10000]
     [--refit-runs 1] [--refit-permutations 10000]
"""

from __future__ import annotations

import argparse
import os
import statistics
import time
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
from _machine import machine, write_results

from hikisig.engine import Engine, spawn_seeds
from hikisig.models.discriminate import _blocks, _permutation_block, _ResampleTask, discriminate
from hikisig.synth import SyntheticStudy, preset

RESULTS = Path(__file__).parent / "results" / "scale_permutation.json"


def study() -> tuple[pd.DataFrame, np.ndarray]:
    """The default synthetic study: values below the LOD missing, as in the files."""
    st = SyntheticStudy(preset())
    ch = next(iter(st.chunks()))
    X = pd.DataFrame(np.where(ch.below_lod, np.nan, ch.values), columns=st.panel["id"],
                     index=ch.samples["id"])
    group = st.participants.set_index("id")["group"]
    y = (ch.samples["id"].map(group) == "case").to_numpy()
    return X, y


def permutation_stage(engine: Engine, prob: np.ndarray, y: np.ndarray, n: int) -> np.ndarray:
    """The permutation test alone: ``n`` label permutations against fixed probabilities."""
    units, unit_y = np.arange(len(y)), y.astype(int)
    seeds = spawn_seeds(12345, len(_blocks(n)))
    tasks = [_ResampleTask(prob, y.astype(int), units, unit_y, k, s)
             for k, s in zip(_blocks(n), seeds, strict=True)]
    return np.concatenate(engine.map(_permutation_block, tasks))


def timed(fn: Any) -> tuple[float, Any]:
    t0 = time.perf_counter()
    out = fn()
    return time.perf_counter() - t0, out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--runs", type=int, default=3)
    ap.add_argument("--permutations", type=int, default=10_000)
    ap.add_argument("--workers", type=int, default=2)
    ap.add_argument("--refit-runs", type=int, default=1)
    ap.add_argument("--refit-permutations", type=int, default=10_000)
    ap.add_argument("--results", type=Path, default=RESULTS, help="JSON file to write.")
    args = ap.parse_args()
    X, y = study()
    load_before = os.getloadavg()[0]
    res: dict[str, dict[str, list[float]]] = {}
    metrics: dict[str, dict[str, Any]] = {}
    nulls: dict[str, np.ndarray] = {}
    startup = None
    from distributed import Client, LocalCluster

    for backend in ("serial", "dask"):
        cluster = client = None
        if backend == "dask":
            t0 = time.perf_counter()
            cluster = LocalCluster(n_workers=args.workers, threads_per_worker=1, processes=True,
                                   dashboard_address="127.0.0.1:0")
            client = Client(cluster)
            startup = time.perf_counter() - t0
        try:
            eng = Engine(backend)
            total, stage = [], []
            for _ in range(args.runs):
                t, r = timed(lambda eng=eng: discriminate(X, y, permutations=args.permutations,
                                                          seed=1, engine=eng))
                total.append(t)
                metrics[backend] = r.metrics
                prob = r.tables["oof_predictions"]["y_prob"].to_numpy()
                t, null = timed(lambda eng=eng, prob=prob: permutation_stage(
                    eng, prob, y, args.permutations))
                stage.append(t)
                nulls[backend] = null
            refit = []
            for _ in range(args.refit_runs):
                t, r = timed(lambda eng=eng: discriminate(
                    X, y, model="logistic", permutations=args.refit_permutations,
                    permutation_scheme="refit", seed=1, engine=eng))
                refit.append(t)
                metrics[f"{backend}_refit"] = r.metrics
            res[backend] = {"discriminate_s": total, "permutation_stage_s": stage}
            if refit:
                res[backend]["logistic_refit_s"] = refit
        finally:
            if client is not None:
                client.close()
            if cluster is not None:
                cluster.close()
    med = {b: {k: statistics.median(v) for k, v in r.items()} for b, r in res.items()}
    result = {
        "benchmark": f"{args.permutations}-permutation AUC test, 83 participants, serial vs Dask",
        "study": {"participants": len(y), "cases": int(y.sum()), "analytes": X.shape[1]},
        "settings": "discriminate defaults: rf (200 trees), 5 x 5-fold CV, 1,000 bootstraps, "
                    f"{args.permutations} permutations (oof scheme, 100 per task)",
        "runs": {b: {k: [round(x, 2) for x in v] for k, v in r.items()} for b, r in res.items()},
        "median_s": {b: {k: round(v, 2) for k, v in m.items()} for b, m in med.items()},
        "ratio_serial_over_dask": {k: round(med["serial"][k] / med["dask"][k], 2)
                                   for k in med["serial"]},
        "dask_workers": args.workers, "dask_cluster_startup_s": round(startup or 0.0, 2),
        "refit_settings": f"logistic, {args.refit_permutations} permutations, scheme refit "
                          "(each permutation reruns one 5-fold CV)",
        "identical_results": metrics["serial"] == metrics["dask"]
        and bool(np.array_equal(nulls["serial"], nulls["dask"]))
        and metrics.get("serial_refit") == metrics.get("dask_refit"),
        "refit_permutation_p": (metrics.get("serial_refit") or {}).get("permutation_p"),
        "auc": metrics["serial"]["auc"], "permutation_p": metrics["serial"]["permutation_p"],
        "machine": machine(load_before),
    }
    write_results(args.results, result)


if __name__ == "__main__":
    main()
