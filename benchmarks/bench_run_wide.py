"""Benchmark: `hikisig run` with default settings on a wide study, 200 samples x 1,200 analytes.

Target: under 3 minutes and under 2 GB peak RSS on 2 cores (serial engine). The
synthetic study (`hikisig.synth`: 100 cases, 100 controls, 1,200 analytes: the 127
of the default panel, the remaining catalog analytes, then uncatalogued
`syn_feature_NNNNN` columns) is written once into a SQLite store; each run is a
fresh child process calling `hikisig.run(config, out=...)` with the default config
(statistics; discrimination: random forest of 200 trees, 5 x 5-fold CV, 1,000
permutations; severity: PLS, 5 x 7-fold CV, 200 permutations; stratification: 100
bootstraps; report). Wall time is measured around the child; its peak RSS is the
`ru_maxrss` of that child alone (`os.wait4`). The child also reports the time of
each stage. 3 runs. Results: benchmarks/results/run_wide.json.

Run: .venv/bin/python benchmarks/bench_run_wide.py [--runs N] [--src DIR]
     (--src: put another source tree first on the child's PYTHONPATH, e.g. to measure
     an older version of hikisig on the same data)
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from _machine import machine, write_results

N_CASES, N_CONTROLS, N_ANALYTES = 100, 100, 1200
TARGET_S, TARGET_MB = 180, 2048
RESULTS = Path(__file__).parent / "results" / "run_wide.json"

#: The child: run the study config, print the time at which each stage started (JSON).
CHILD = """
import json, sys, time
import hikisig
t0 = time.perf_counter()
marks = []
hikisig.run(sys.argv[1], out=sys.argv[2],
            progress=lambda stage: marks.append((stage, time.perf_counter() - t0)))
marks.append(("end", time.perf_counter() - t0))
print(json.dumps({"marks": marks, "version": hikisig.__version__}))
"""


#: The study: a synthetic store and a default study config pointing at it.
SYNTH = """
import sys
from pathlib import Path
from hikisig.config import RunSection, Source, StudyConfig, render_config
from hikisig.synth import SyntheticStudy, preset, write_store
work, n_cases, n_controls, n_analytes = Path(sys.argv[1]), *map(int, sys.argv[2:5])
study = SyntheticStudy(preset(n_cases=n_cases, n_controls=n_controls, n_analytes=n_analytes))
write_store(study, str(work / "wide.db"))
(work / "study.toml").write_text(render_config(StudyConfig(source=Source(db="wide.db"),
                                                           run=RunSection(out="results"))))
"""


def child_env(src: str | None) -> dict[str, str]:
    env = dict(os.environ)
    if src:
        env["PYTHONPATH"] = os.pathsep.join([src, *filter(None, [env.get("PYTHONPATH")])])
    return env


def make_study(work: Path, src: str | None) -> Path:
    """Write the synthetic store and the default config into ``work`` (in a child process,
    with the same hikisig as the runs)."""
    proc = subprocess.run([sys.executable, "-c", SYNTH, str(work), str(N_CASES), str(N_CONTROLS),
                           str(N_ANALYTES)], env=child_env(src), capture_output=True, text=True)
    if proc.returncode != 0:
        raise SystemExit(proc.stderr)
    return work / "study.toml"


def one_run(config: Path, out: Path, src: str | None) -> dict[str, Any]:
    env = child_env(src)
    log_out, log_err = out.with_suffix(".stdout"), out.with_suffix(".stderr")
    with log_out.open("w") as fo, log_err.open("w") as fe:
        t0 = time.perf_counter()
        proc = subprocess.Popen([sys.executable, "-c", CHILD, str(config), str(out)], env=env,
                                stdout=fo, stderr=fe)
        # wait4: this child's own resource usage (its peak RSS), not the running max of all
        # children so far
        _, status, usage = os.wait4(proc.pid, 0)
        wall = time.perf_counter() - t0
    proc.returncode = os.waitstatus_to_exitcode(status)
    if proc.returncode != 0:
        raise SystemExit(log_err.read_text())
    stdout = log_out.read_text()
    marks = json.loads(stdout.strip().splitlines()[-1])["marks"]
    stages = {name: round(marks[i + 1][1] - t, 1) for i, (name, t) in enumerate(marks[:-1])}
    return {"wall_s": round(wall, 1), "peak_rss_mb": round(usage.ru_maxrss / 1024, 1),
            "stages_s": stages}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--runs", type=int, default=3)
    ap.add_argument("--src", default=None, help="source tree put first on the child's PYTHONPATH")
    ap.add_argument("--out", type=Path, default=RESULTS, help="results file")
    args = ap.parse_args()
    load_before = os.getloadavg()[0]
    work = Path(tempfile.mkdtemp(prefix="hikisig-bench-run-wide-"))
    try:
        config = make_study(work, args.src)
        runs = []
        for k in range(args.runs):
            runs.append(one_run(config, work / f"results-{k}", args.src))
            print(json.dumps(runs[-1]), flush=True)
            shutil.rmtree(work / f"results-{k}", ignore_errors=True)
    finally:
        shutil.rmtree(work, ignore_errors=True)
    wall = statistics.median(r["wall_s"] for r in runs)
    peak = max(r["peak_rss_mb"] for r in runs)
    result = {
        "benchmark": "hikisig run, default config, 200 samples x 1,200 analytes (serial)",
        "shape": [N_CASES + N_CONTROLS, N_ANALYTES], "source": args.src or "installed",
        "runs": runs, "median_wall_s": round(wall, 1), "peak_rss_mb": round(peak, 1),
        "targets": {"wall_s": TARGET_S, "peak_rss_mb": TARGET_MB},
        "pass": wall < TARGET_S and peak < TARGET_MB, "machine": machine(load_before),
    }
    write_results(args.out, result)


if __name__ == "__main__":
    main()
