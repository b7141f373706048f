"""Benchmark: import a wide CSV of 10,000 samples x 100 analytes into SQLite.

Target (issue: foundation): under 30 s with peak memory under 2 GB on a
2-core machine. Each run is a fresh ``hikisig import measurements`` process
into a fresh store; wall time and the child's peak RSS are measured. Results
go to benchmarks/results/import.json.

Run: make bench   (or .venv/bin/python benchmarks/bench_import.py [--runs N])
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

N_SAMPLES, N_ANALYTES = 10_000, 100
RESULTS = Path(__file__).parent / "results" / "import.json"


def make_csv(path: Path, seed: int = 7) -> None:
    """A wide CSV: sample id, sex, age, group, then 100 analyte columns."""
    rng = np.random.default_rng(seed)
    kit = ["Orn", "Arg", "Cit", "Trp", "Kynurenine", "C0", "C2", "C16", "C18", "C18:1"]
    names = kit + [f"feature_{j:03d}" for j in range(N_ANALYTES - len(kit))]
    vals = rng.lognormal(mean=3.0, sigma=0.4, size=(N_SAMPLES, N_ANALYTES))
    sex = rng.choice(["M", "F"], size=N_SAMPLES)
    age = rng.integers(18, 65, size=N_SAMPLES)
    with open(path, "w") as fh:
        fh.write("sample,sex,age,group," + ",".join(names) + "\n")
        for i in range(N_SAMPLES):
            row = ",".join(f"{v:.6g}" for v in vals[i])
            fh.write(f"S{i:05d},{sex[i]},{age[i]},{'case' if i % 2 else 'control'},{row}\n")


def one_run(csv: Path, workdir: Path, k: int) -> dict[str, float]:
    db = workdir / f"bench{k}.db"
    hs = [sys.executable, "-m", "hikisig", "--db", str(db), "-q"]
    subprocess.run([*hs, "init"], check=True, capture_output=True)
    before = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss
    t0 = time.perf_counter()
    proc = subprocess.run([*hs, "import", "measurements", str(csv)], capture_output=True, text=True)
    wall = time.perf_counter() - t0
    if proc.returncode != 0:
        raise SystemExit(proc.stderr)
    peak_kib = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss
    # ru_maxrss of children is the max over all children so far; runs are in fresh
    # processes of similar size, so the running max is an upper bound of this run's peak
    return {"wall_s": wall, "peak_rss_mb": max(peak_kib, before) / 1024}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--runs", type=int, default=3)
    args = ap.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp)
        csv = work / "wide.csv"
        make_csv(csv)
        runs = [one_run(csv, work, k) for k in range(args.runs)]
        size_mb = csv.stat().st_size / 1e6
    result = {
        "benchmark": "import wide CSV into SQLite",
        "shape": [N_SAMPLES, N_ANALYTES],
        "values": N_SAMPLES * N_ANALYTES,
        "csv_mb": round(size_mb, 1),
        "runs": runs,
        "median_wall_s": round(statistics.median(r["wall_s"] for r in runs), 2),
        "peak_rss_mb": round(max(r["peak_rss_mb"] for r in runs), 1),
        "targets": {"wall_s": 30, "peak_rss_mb": 2048},
        "machine": {"python": platform.python_version(), "platform": platform.platform(),
                    "cpus": os.cpu_count()},
        "date": time.strftime("%Y-%m-%d"),
    }
    result["pass"] = (result["median_wall_s"] < 30) and (result["peak_rss_mb"] < 2048)
    RESULTS.parent.mkdir(parents=True, exist_ok=True)
    RESULTS.write_text(json.dumps(result, indent=2) + "\n")
    print(json.dumps({k: result[k] for k in ("shape", "median_wall_s", "peak_rss_mb", "pass")}))


if __name__ == "__main__":
    main()
