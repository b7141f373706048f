"""A 3-site synthetic consortium end to end: ComBat removes the planted site offsets and
keeps the case effects, leave-site-out validation reports each site, and three per-site
summary exports pooled by `hikisig meta` recover the planted markers and equal the
inverse-variance analysis of the pooled participants."""

from __future__ import annotations

import json
import math
import re
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

import hikisig
from helpers import hikisig as cli
from hikisig.analysis.study import load_study
from hikisig.config import Design, Preprocessing, Source, StudyConfig


@pytest.fixture(scope="module")
def consortium(tmp_path_factory: pytest.TempPathFactory) -> Path:
    folder = tmp_path_factory.mktemp("consortium")
    r = cli("-q", "synth", "--sites", "3", "--n-cases", "150", "--n-controls", "150", "--seed",
            "7", "--out", str(folder / "syn"), "--db", str(folder / "c.db"))
    assert r.returncode == 0, r.stderr
    return folder


def _within_group_site_r2(X: pd.DataFrame, site: pd.Series, group: pd.Series) -> pd.Series:
    """Per analyte, the share of the within-group variance of log2 values explained by site."""
    logx = np.log2(X.where(X > 0))
    resid = logx - logx.groupby(group.to_numpy()).transform("mean")
    site_means = resid.groupby(site.to_numpy()).transform("mean")
    return (site_means ** 2).sum() / (resid ** 2).sum()


def _load(folder: Path, harmonise: str):
    return load_study(Source(db=str(folder / "c.db")), Design(site="site"),
                      Preprocessing(harmonise=harmonise)).stats_data


def test_combat_removes_site_offsets_and_keeps_case_effects(consortium: Path) -> None:
    truth = json.loads((consortium / "syn" / "truth.json").read_text())
    planted = {e["analyte"]: e["log_shift"] for e in truth["effects"]
               if e["contrast"] == "case_vs_control" and e["sexes"] == ["M", "F"]}
    before, after = _load(consortium, "none"), _load(consortium, "combat")
    site, group = before.column("site").astype(str), before.column("group").astype(str)
    r2_before = _within_group_site_r2(before.X, site, group)
    r2_after = _within_group_site_r2(after.X, site, group)
    print(f"site share of within-group variance, median: {r2_before.median():.4f} -> "
          f"{r2_after.median():.4f}; 90th percentile {r2_after.quantile(0.9):.4f}")
    assert r2_before.median() > 0.03
    assert r2_after.median() < 0.01 and r2_after.quantile(0.9) < 0.01
    case = (group == "case").to_numpy()

    def log_ratio(X: pd.DataFrame) -> pd.Series:
        logx = np.log(X[list(planted)].where(X[list(planted)] > 0))
        return logx[case].mean() - logx[~case].mean()

    b, a = log_ratio(before.X), log_ratio(after.X)
    truth_shift = pd.Series(planted)
    table = pd.DataFrame({"planted": truth_shift, "before": b, "after": a})
    print(table.round(3).to_string())
    # site offsets confounded with each site's case share bias the raw contrast; after ComBat
    # (with group kept as a covariate) the planted effects are closer to the truth, not shrunk
    assert (a - truth_shift).abs().mean() < (b - truth_shift).abs().mean()
    assert (a / truth_shift).median() > 0.8 and (a > 0).all()


def test_leave_site_out_run_reports_each_site(consortium: Path) -> None:
    config = StudyConfig.model_validate({
        "source": {"db": str(consortium / "c.db")},
        "design": {"site": "site"}, "preprocessing": {"harmonise": "combat"},
        "discriminate": {"cv": "leave-site-out", "permutations": 20, "n_estimators": 50},
        "severity": {"enabled": False}, "stratify": {"enabled": False}})
    results = hikisig.run(config, out=consortium / "run")
    d = results.discrimination
    assert d is not None and d.params["cv"] == "leave-site-out"
    per_site = d.tables["per_site"]
    assert sorted(per_site["site"]) == ["site1", "site2", "site3"]
    assert per_site["auc"].between(0, 1).all() and (per_site["auc_ci_low"] <= per_site["auc"]).all()
    html = (consortium / "run" / "report.html").read_text(encoding="utf-8")
    block = html[html.index('<section id="discrimination">'):]
    block = block[:block.index("</section>")]
    assert "the test of transportability" in block and block.count("<td>site") == 3
    assert 'id="fig-pca-site"' in html
    assert "ComBat harmonisation" in html[html.index('<section id="methods">'):]
    counts = pd.read_csv(consortium / "run" / "tables" / "site_counts.csv")
    assert sorted(counts["site"]) == ["site1", "site2", "site3"]


def _direct_fixed_effect(consortium: Path, analyte: str) -> tuple[float, float]:
    """The inverse-variance fixed-effect log2 fold change of one analyte straight from the
    participants' values of each site (math.fsum; not hikisig's summary code)."""
    data = load_study(Source(db=str(consortium / "c.db")), Design(site="site")).stats_data
    x = data.X[analyte].to_numpy(float)
    group = data.column("group").astype(str).to_numpy()
    site = data.column("site").astype(str).to_numpy()
    num, den = [], []
    for s in sorted(set(site)):
        parts = []
        for g in ("case", "control"):
            v = [math.log2(t) for t, gg, ss in zip(x, group, site, strict=True)
                 if ss == s and gg == g and t == t and t > 0]
            mean = math.fsum(v) / len(v)
            var = math.fsum((t - mean) ** 2 for t in v) / (len(v) - 1)
            parts.append((mean, var, len(v)))
        (m1, v1, n1), (m0, v0, n0) = parts
        w = 1.0 / (v1 / n1 + v0 / n0)
        num.append(w * (m1 - m0))
        den.append(w)
    return math.fsum(num) / math.fsum(den), 1.0 / math.sqrt(math.fsum(den))


def test_site_exports_pooled_by_meta(consortium: Path) -> None:
    out = consortium / "exports"
    r = cli("-q", "--db", str(consortium / "c.db"), "export", "summary", str(out),
            "--site-column", "site")
    assert r.returncode == 0, r.stderr
    files = sorted(p.name for p in out.glob("summary_*.csv"))
    assert files == ["summary_site1.csv", "summary_site2.csv", "summary_site3.csv"]
    codes = set(pd.read_csv(consortium / "syn" / "participants.csv", dtype=str)["id"])
    for path in out.iterdir():
        text = path.read_bytes().decode("utf-8", errors="replace")
        assert not [c for c in codes if re.search(rf"\b{re.escape(c)}\b", text)], path.name
    r = cli("-q", "meta", *[str(out / f) for f in files], "--method", "fixed", "--estimate",
            "log2fc", "--out", str(consortium / "meta"))
    assert r.returncode == 0, r.stderr
    meta = pd.read_csv(consortium / "meta" / "meta.csv")
    print(meta[meta["analyte"].isin(["ac_long_sum", "orn_arg_ratio", "arg_bioavailability",
                                     "cpt1_ratio", "ce_total"])].round(4).to_string())
    allx = meta[meta["stratum"] == "all"].set_index("analyte")
    assert allx.loc["ac_long_sum", "q"] < 0.05 and allx.loc["ac_long_sum", "estimate"] > 0
    men = meta[meta["stratum"] == "M"].set_index("analyte")
    assert men.loc["orn_arg_ratio", "q"] < 0.05 and men.loc["orn_arg_ratio", "estimate"] > 0
    for analyte in ("c14", "c16", "ornithine"):
        est, se = _direct_fixed_effect(consortium, analyte)
        assert allx.loc[analyte, "estimate"] == pytest.approx(est, abs=1e-10)
        assert allx.loc[analyte, "se"] == pytest.approx(se, abs=1e-10)
    assert (consortium / "meta" / "meta_report.html").exists()
