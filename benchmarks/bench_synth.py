"""Benchmark: the synthetic study at scale, written to Parquet in chunks.

Target (issue: synthetic cohort): 1,000,000 participants x 1,000 analytes to
Parquet with peak memory under 2 GB. Runs ``hikisig synth`` in a child
process, measures wall time and the child's peak RSS, removes the output and
writes benchmarks/results/synth.json.

Run: .venv/bin/python benchmarks/bench_synth.py [--participants N] [--analytes N]
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import resource
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

RESULTS = Path(__file__).parent / "results" / "synth.json"


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--participants", type=int, default=1_000_000)
    ap.add_argument("--analytes", type=int, default=1_000)
    ap.add_argument("--dtype", default="float64")
    args = ap.parse_args()
    work = Path(tempfile.mkdtemp(prefix="hikisig-bench-synth-", dir=os.environ.get("TMPDIR", "/tmp")))
    try:
        out = work / "study"
        cases = args.participants // 2
        cmd = [sys.executable, "-m", "hikisig", "-q", "synth", "--n-cases", str(cases),
               "--n-controls", str(args.participants - cases), "--n-analytes", str(args.analytes),
               "--format", "parquet", "--dtype", args.dtype, "--out", str(out)]
        t0 = time.perf_counter()
        proc = subprocess.run(cmd, capture_output=True, text=True)
        wall = time.perf_counter() - t0
        if proc.returncode != 0:
            raise SystemExit(proc.stderr)
        peak_mb = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024
        size_gb = sum(f.stat().st_size for f in out.iterdir()) / 1e9
    finally:
        shutil.rmtree(work, ignore_errors=True)
    result = {
        "benchmark": "hikisig synth to Parquet",
        "participants": args.participants, "analytes": args.analytes, "dtype": args.dtype,
        "wall_s": round(wall, 1), "peak_rss_mb": round(peak_mb, 1), "output_gb": round(size_gb, 2),
        "target_peak_rss_mb": 2048, "pass": peak_mb < 2048,
        "machine": {"python": platform.python_version(), "platform": platform.platform(),
                    "cpus": os.cpu_count()},
        "date": time.strftime("%Y-%m-%d"),
    }
    RESULTS.parent.mkdir(parents=True, exist_ok=True)
    RESULTS.write_text(json.dumps(result, indent=2) + "\n")
    print(json.dumps(result))


if __name__ == "__main__":
    main()
