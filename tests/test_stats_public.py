"""Case-control statistics on published data and on the synthetic truth."""

from __future__ import annotations

import csv
import io

import numpy as np
import pandas as pd
import pytest

from conftest import GASTRIC
from helpers import hikisig
from hikisig.cohort.readers import read_measurements
from hikisig.stats.casecontrol import case_control
from hikisig.synth.config import preset
from hikisig.synth.generate import SyntheticStudy

CIMCB_TABLE = GASTRIC.parent / "cimcb_tutorial1_statsTable_GC_vs_HE.csv"


@pytest.fixture(scope="module")
def gastric():
    t = read_measurements(GASTRIC)
    X = pd.DataFrame(t.values, columns=t.variables["name"], index=t.samples["sample"])
    return X, t.samples.set_index("sample")


def test_cimcb_gc_vs_he_student_t_reproduces_published_table(gastric):
    X, samples = gastric
    ref = pd.read_csv(CIMCB_TABLE)
    sel = samples["group"].isin(["GC", "HE"]).to_numpy()
    res = case_control(X.loc[sel, ref["Name"]], samples.loc[sel, "group"] == "GC", tests=["student"])
    res = res.set_index("analyte")
    # CIMCB's t is HE minus GC (Grp0 = HE); ours is case (GC) minus control (HE)
    np.testing.assert_allclose(res.loc[ref["Name"], "statistic"], -ref["TTestStat"], atol=1e-3)
    np.testing.assert_allclose(res.loc[ref["Name"], "p"], ref["TTestPvalue"], atol=1e-3, rtol=1e-3)
    np.testing.assert_allclose(res.loc[ref["Name"], "q"], ref["bhQvalue"], atol=1e-3, rtol=1e-3)
    ours = set(res.index[res["q"] < 0.05])
    theirs = set(ref.loc[ref["bhQvalue"] < 0.05, "Name"])
    assert ours == theirs == {"M138", "M89", "M134", "M118", "M4", "M32", "M45"}
    assert res.loc["M138", "statistic"] == pytest.approx(5.160, abs=1e-3)


@pytest.fixture(scope="module")
def synthetic_result():
    study = SyntheticStudy(preset(seed=21, n_cases=3000, n_controls=3000, lod=False))
    ch = list(study.chunks())
    X = pd.DataFrame(np.concatenate([c.values for c in ch]), columns=study.panel["id"])
    p = study.participants
    return case_control(X, p["group"] == "case", by=p["sex"], covariates=p[["age"]],
                        tests=["welch"]), study


def test_sex_specific_effects_found_in_men_not_women(synthetic_result):
    res, study = synthetic_result
    r = res.set_index(["analyte", "stratum", "test"])
    for a, sign in (("ornithine", 1), ("arginase", 1), ("arginine", -1), ("total_bilirubin", -1)):
        men, women = r.loc[(a, "M", "lm")], r.loc[(a, "F", "lm")]
        assert men["q"] < 1e-6 and np.sign(men["effect"]) == sign, a
        assert women["p"] > 0.01, a
        assert r.loc[(a, "interaction", "lm"), "p"] < 1e-4, a
        assert r.loc[(a, "M", "welch"), "effect"] == pytest.approx(0.8 * sign, abs=0.15)
    # long-chain acylcarnitines: both sexes, no interaction
    for a in ("c16", "c18_1"):
        assert r.loc[(a, "M", "lm"), "q"] < 1e-6 and r.loc[(a, "F", "lm"), "q"] < 1e-6
        assert r.loc[(a, "interaction", "lm"), "p"] > 0.001
    # nulls stay null overall (few false positives at q < 0.05)
    null = study.truth()["null_analytes"]
    allw = res[(res["test"] == "welch") & (res["stratum"] == "all") & res["analyte"].isin(null)]
    assert (allw["q"] < 0.05).sum() <= 2


def test_cli_stats_file(tmp_path):
    rng = np.random.default_rng(0)
    n = 40
    df = pd.DataFrame({"id": [f"S{i}" for i in range(n)],
                       "group": np.where(np.arange(n) < 20, "hikikomori", "control"),
                       "sex": np.where(np.arange(n) % 3, "M", "F"), "age": rng.integers(18, 45, n),
                       "Orn": np.round(rng.lognormal(4, 0.2, n), 3),
                       "Arg": np.round(rng.lognormal(4.4, 0.2, n), 3),
                       "Cit": np.round(rng.lognormal(3.4, 0.2, n), 3)})
    f = tmp_path / "c.csv"
    df.to_csv(f, index=False)
    r = hikisig("stats", str(f), "--case", "hikikomori")
    assert r.returncode == 0, r.stderr
    rows = list(csv.DictReader(io.StringIO(r.stdout)))
    assert list(rows[0])[:12] == ["analyte", "stratum", "test", "statistic", "p", "q", "effect",
                                  "effect_ci_low", "effect_ci_high", "fold_change", "n_case",
                                  "n_control"]
    analytes = {row["analyte"] for row in rows}
    assert {"ornithine", "arginine", "citrulline", "orn_arg_ratio", "arg_bioavailability"} <= analytes
    formula = {row["analyte"]: row["formula"] for row in rows}
    assert formula["orn_arg_ratio"] == "ornithine / arginine"
    assert {row["stratum"] for row in rows} == {"all", "F", "M", "interaction"}
    df["Arg"] = df["Arg"].astype(object)
    df.loc[3, "Arg"] = "n/a?"
    df.to_csv(f, index=False)
    bad = hikisig("stats", str(f), "--case", "hikikomori")
    assert bad.returncode == 2 and "row 5, column 'Arg'" in bad.stderr


def test_cimcb_qc_filter_keeps_the_published_52_peaks(gastric):
    from hikisig.prep import MissingFilter, QCRSDFilter

    X, samples = gastric
    qc = (samples["sample_type"] == "qc").to_numpy()
    rsd = QCRSDFilter(max_rsd=0.2).fit(X, qc=qc)
    miss = MissingFilter(max_missing=0.1).fit(X)
    kept = [c for c, a, b in zip(X.columns, rsd.support_, miss.support_, strict=True) if a and b]
    published = pd.read_csv(CIMCB_TABLE)["Name"].tolist()
    assert len(kept) == 52
    assert kept == published
