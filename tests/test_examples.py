"""The shipped examples run end to end (reduced resampling)."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest

from helpers import Ran, hikisig

ROOT = Path(__file__).resolve().parents[1]
REDUCED = ["--set", "discriminate.cv_repeats=1", "--set", "discriminate.permutations=50",
           "--set", "discriminate.n_estimators=50", "--set", "severity.cv_repeats=1",
           "--set", "severity.permutations=10", "--set", "stratify.bootstraps=5"]


def hs(*args: str, cwd: Path) -> Ran:
    r = hikisig("-q", *args, cwd=cwd)
    assert r.returncode == 0, r.stderr
    return r


def test_demo(demo_run):
    report = demo_run / "results" / "report.html"
    assert str(report) in (demo_run / "stdout.txt").read_text() and report.exists()
    html = report.read_text()
    assert "SYNTHETIC" in html and "http://" not in html and "https://" not in html
    assert (demo_run / "synthetic-study" / "truth.json").exists()
    assert (demo_run / "results" / "models" / "discriminate" / "model_card.md").exists()
    for fig in ("missingness", "pca", "volcano-all", "volcano-M", "volcano-F", "boxplots", "markers",
                "roc", "calibration", "pls", "vip", "clusters", "profiles"):
        assert f'id="fig-{fig}"' in html, fig


@pytest.mark.parametrize("name,data,study", [
    ("sacurine", "tests/data/sacurine/sacurine_dataMatrix.tsv", "sacurine"),
    ("gastric_cancer", "tests/data/gastric_cancer_nmr/GastricCancer_NMR.xlsx", "gastric"),
])
def test_public_examples(tmp_path, name, data, study):
    folder = tmp_path / name
    shutil.copytree(ROOT / "examples" / name, folder)
    db = {"sacurine": "sacurine.db", "gastric_cancer": "gastric.db"}[name]
    hs("--db", db, "--study", study, "init", cwd=folder)
    hs("--db", db, "--study", study, "import", "measurements", str(ROOT / data), cwd=folder)
    hs("run", "study.toml", *REDUCED, cwd=folder)
    metrics = json.loads((folder / "results" / "models" / "discriminate" / "metrics.json").read_text())
    assert metrics["auc"] > 0.85  # sex in sacurine, GC vs HE in the gastric data
    assert (folder / "results" / "report.html").exists()
    assert (folder / "results" / "tables" / "stats.csv").exists()
