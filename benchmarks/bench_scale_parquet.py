"""Benchmark: out-of-core univariate statistics over 2,000,000 x 1,000 float32 in Parquet.

Target (issue 9): the sex-stratified case-control statistics of a Parquet file
larger than the memory bound (2,000,000 participants x 1,000 analytes, float32,
about 8 GB on disk) with peak memory under 4 GB.

The file is written by a generator of this script (numpy + pyarrow, row groups
of 50,000 participants: 40 row groups; columns id, group, sex, age, a0000 ...;
lognormal values, 1% missing, planted group and sex effects): `hikisig synth`
writes the same size of data but in row groups of 2,000 participants and takes
about 10 minutes. It goes to a temporary folder under $HIKISIG_BENCH_DIR (default
/tmp) and is deleted at the end unless --keep is given.

Each run is a fresh `hikisig stats FILE --out result.parquet` process (all tests:
Welch, Student, Mann-Whitney, descriptives with medians and quartiles, the
group x sex linear model with age); its peak memory is the largest resident set
of the process and its children, polled every 0.1 s with psutil (and
ru_maxrss of the children as a check). A second configuration runs Welch t and
the linear model only (--test welch --no-quantiles: one pass of mergeable sums).
Results: benchmarks/results/scale_parquet.json.

Run: .venv/bin/python benchmarks/bench_scale_parquet.py [--n 2000000] [--p 1000] [--runs 1]
"""

from __future__ import annotations

import argparse
import os
import resource
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import psutil
import pyarrow as pa
import pyarrow.parquet as pq
from _machine import machine, write_results

RESULTS = Path(__file__).parent / "results" / "scale_parquet.json"
ROW_GROUP = 50_000
LIMIT_MB = 4096


def generate(path: Path, n: int, p: int, seed: int = 9) -> float:
    """Write the wide Parquet file; return seconds taken."""
    t0 = time.perf_counter()
    root = np.random.default_rng(seed)
    effect = np.zeros(p, dtype=np.float32)
    effect[: max(1, p // 20)] = 0.2  # 5% of analytes higher in cases (log scale)
    male_effect = np.zeros(p, dtype=np.float32)
    male_effect[p // 20: p // 10] = 0.15
    mu = root.normal(2.0, 0.5, p).astype(np.float32)
    names = [f"a{j:04d}" for j in range(p)]
    seeds = np.random.SeedSequence(seed).spawn(-(-n // ROW_GROUP))
    writer = None
    try:
        for k, start in enumerate(range(0, n, ROW_GROUP)):
            rows = min(ROW_GROUP, n - start)
            rng = np.random.default_rng(seeds[k])
            case = rng.random(rows) < 0.5
            male = rng.random(rows) < 0.6
            age = rng.integers(18, 65, rows)
            z = rng.standard_normal((p, rows), dtype=np.float32)
            z *= np.float32(0.4)
            z += mu[:, None]
            z += effect[:, None] * case[None, :]
            z += male_effect[:, None] * male[None, :]
            np.exp(z, out=z)
            z[rng.random((p, rows), dtype=np.float32) < 0.01] = np.nan
            cols = [pa.array(np.arange(start, start + rows)),
                    pa.array(np.where(case, "case", "control")),
                    pa.array(np.where(male, "M", "F")), pa.array(age)]
            cols += [pa.array(z[j]) for j in range(p)]
            table = pa.Table.from_arrays(cols, names=["id", "group", "sex", "age", *names])
            if writer is None:
                # plain float32 pages (dictionary pages would make 50,000 distinct values
                # half as large again)
                writer = pq.ParquetWriter(path, table.schema, compression="NONE",
                                          use_dictionary=["group", "sex"])
            writer.write_table(table, row_group_size=ROW_GROUP)
            del z, cols, table
    finally:
        if writer is not None:
            writer.close()
    return time.perf_counter() - t0


def run_stats(path: Path, out: Path, extra: list[str]) -> dict[str, float]:
    """One `hikisig stats` child process: wall time and peak RSS of its process tree."""
    cmd = [sys.executable, "-m", "hikisig", "-q", "stats", str(path), "--out", str(out), *extra]
    t0 = time.perf_counter()
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    ps = psutil.Process(proc.pid)
    peak = 0
    while proc.poll() is None:
        try:
            rss = ps.memory_info().rss + sum(c.memory_info().rss
                                             for c in ps.children(recursive=True))
            peak = max(peak, rss)
        except psutil.NoSuchProcess:
            pass
        time.sleep(0.1)
    wall = time.perf_counter() - t0
    _, stderr = proc.communicate()
    if proc.returncode != 0:
        raise SystemExit(stderr)
    return {"wall_s": round(wall, 1), "peak_rss_mb": round(peak / 2**20, 1)}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--n", type=int, default=2_000_000)
    ap.add_argument("--p", type=int, default=1_000)
    ap.add_argument("--runs", type=int, default=1)
    ap.add_argument("--block-size", type=int, default=4_000_000)
    ap.add_argument("--keep", action="store_true", help="Keep the Parquet file.")
    ap.add_argument("--results", type=Path, default=RESULTS, help="JSON file to write.")
    args = ap.parse_args()
    base = os.environ.get("HIKISIG_BENCH_DIR", tempfile.gettempdir())
    work = Path(tempfile.mkdtemp(prefix="hikisig-bench-scale-", dir=base))
    path = work / "wide.parquet"
    configs = {
        "all_tests": ["--block-size", str(args.block_size)],
        "welch_lm_one_pass": ["--block-size", str(args.block_size), "--test", "welch",
                              "--no-quantiles"],
    }
    load_before = os.getloadavg()
    try:
        gen_s = generate(path, args.n, args.p)
        size_gb = path.stat().st_size / 1e9
        runs: dict[str, list[dict[str, float]]] = {k: [] for k in configs}
        for _ in range(args.runs):
            for name, extra in configs.items():
                runs[name].append(run_stats(path, work / f"{name}.parquet", extra))
                print(name, runs[name][-1], flush=True)
        res = __import__("pandas").read_parquet(work / "all_tests.parquet")
        rows = len(res)
        n_analytes = int(res["analyte"].nunique())
        children_maxrss_mb = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024
    finally:
        if not args.keep:
            shutil.rmtree(work, ignore_errors=True)
    summary = {name: {"runs": r, "median_wall_s": round(statistics.median(x["wall_s"] for x in r), 1),
                      "peak_rss_mb": max(x["peak_rss_mb"] for x in r)} for name, r in runs.items()}
    result = {
        "benchmark": "out-of-core univariate statistics over Parquet",
        "shape": [args.n, args.p], "dtype": "float32", "row_group_rows": ROW_GROUP,
        "parquet_gb": round(size_gb, 2), "generate_s": round(gen_s, 1),
        "block_size_values": args.block_size, "result_rows": rows, "analytes": n_analytes,
        "configs": summary,
        "children_ru_maxrss_mb": round(children_maxrss_mb, 1),
        "limit_peak_rss_mb": LIMIT_MB,
        "pass": all(s["peak_rss_mb"] < LIMIT_MB for s in summary.values()),
        "kept": str(path) if args.keep else None,
        "machine": machine(load_before[0]),
    }
    write_results(args.results, result)


if __name__ == "__main__":
    main()
