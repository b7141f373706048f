"""Benchmark: `hikisig demo` end to end with default settings (target: under 60 s).

Synthesises the default study into a fresh SQLite store, runs the default config
(statistics, discrimination with 5 x 5-fold CV and 1,000 permutations, severity,
stratification, report) in a child process; 3 runs. Results:
benchmarks/results/demo.json.

Run: .venv/bin/python benchmarks/bench_demo.py [--runs N]
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

RESULTS = Path(__file__).parent / "results" / "demo.json"


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--runs", type=int, default=3)
    args = ap.parse_args()
    times = []
    for _ in range(args.runs):
        work = Path(tempfile.mkdtemp(prefix="hikisig-bench-demo-"))
        try:
            t0 = time.perf_counter()
            proc = subprocess.run([sys.executable, "-m", "hikisig", "-q", "demo", "--out",
                                   str(work / "demo")], capture_output=True, text=True)
            times.append(time.perf_counter() - t0)
            if proc.returncode != 0:
                raise SystemExit(proc.stderr)
        finally:
            shutil.rmtree(work, ignore_errors=True)
    result = {"benchmark": "hikisig demo (default settings)", "runs_s": [round(t, 1) for t in times],
              "median_s": round(statistics.median(times), 1), "target_s": 60,
              "pass": statistics.median(times) < 60,
              "machine": {"python": platform.python_version(), "platform": platform.platform(),
                          "cpus": os.cpu_count()},
              "date": time.strftime("%Y-%m-%d")}
    RESULTS.parent.mkdir(parents=True, exist_ok=True)
    RESULTS.write_text(json.dumps(result, indent=2) + "\n")
    print(json.dumps(result))


if __name__ == "__main__":
    main()
