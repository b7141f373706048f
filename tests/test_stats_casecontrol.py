"""Case-control statistics against R (tests/reference/casecontrol_r.R) and published results."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from scipy import stats as sps

from hikisig.stats.casecontrol import TIDY_COLUMNS, case_control
from hikisig.stats.univariate import mann_whitney

REF = Path(__file__).parent / "reference"


@pytest.fixture(scope="module")
def result():
    d = pd.read_csv(REF / "casecontrol_data.csv")
    X = d[["orn", "arg", "c16", "tied"]]
    return case_control(X, d["group"] == "case", by=d["sex"], covariates=d[["age"]],
                        severity=d["hq25"])


@pytest.fixture(scope="module")
def ref():
    r = pd.read_csv(REF / "casecontrol_r.csv", comment="#")
    return r


def _pick(df, analyte, stratum, test):
    row = df[(df["analyte"] == analyte) & (df["stratum"] == stratum) & (df["test"] == test)]
    assert len(row) == 1, (analyte, stratum, test)
    return row.iloc[0]


@pytest.mark.parametrize("test", ["welch", "student", "mwu"])
def test_two_group_tests_equal_r(result, ref, test):
    for r in ref[ref["test"] == test].itertuples():
        ours = _pick(result, r.analyte, r.stratum, test)
        assert ours["statistic"] == pytest.approx(r.statistic, rel=1e-10, abs=1e-10)
        assert ours["p"] == pytest.approx(r.p, rel=1e-10, abs=1e-12)
        assert ours["q"] == pytest.approx(r.q, rel=1e-10, abs=1e-12)
        assert ours["p_holm"] == pytest.approx(r.p_holm, rel=1e-10, abs=1e-12)
        if test != "mwu":
            assert ours["df"] == pytest.approx(r.df, rel=1e-10)


def test_fold_change_ci_equals_r(result, ref):
    for r in ref[ref["test"] == "fold_change"].itertuples():
        ours = _pick(result, r.analyte, r.stratum, "welch")
        assert ours["fold_change"] == pytest.approx(r.effect, rel=1e-10)
        assert ours["fold_change_ci_low"] == pytest.approx(r.low, rel=1e-10)
        assert ours["fold_change_ci_high"] == pytest.approx(r.high, rel=1e-10)


def test_linear_model_equals_r_lm(result, ref):
    for r in ref[ref["test"] == "lm"].itertuples():
        ours = _pick(result, r.analyte, r.stratum, "lm")
        for col, val in (("statistic", r.statistic), ("p", r.p), ("effect", r.effect),
                         ("effect_ci_low", r.low), ("effect_ci_high", r.high), ("df", r.df)):
            assert ours[col] == pytest.approx(val, rel=1e-10, abs=1e-12), (r.analyte, r.stratum, col)


def test_correlations_equal_r(result, ref):
    for r in ref[ref["test"] == "pearson"].itertuples():
        ours = _pick(result, r.analyte, "cases", "pearson")
        for col, val in (("effect", r.effect), ("statistic", r.statistic), ("p", r.p),
                         ("effect_ci_low", r.low), ("effect_ci_high", r.high)):
            assert ours[col] == pytest.approx(val, rel=1e-10), col
    for r in ref[ref["test"] == "spearman"].itertuples():
        assert _pick(result, r.analyte, "cases", "spearman")["effect"] == pytest.approx(r.effect, rel=1e-10)


def test_tidy_contract(result):
    assert list(result.columns[: len(TIDY_COLUMNS)]) == TIDY_COLUMNS
    assert set(result["stratum"]) == {"all", "F", "M", "interaction", "cases"}


def test_hedges_g_and_cliffs_delta():
    rng = np.random.default_rng(5)
    x = np.concatenate([rng.normal(1, 1, 30), rng.normal(0, 1, 40)])[:, None]
    case = np.arange(70) < 30
    t = case_control(pd.DataFrame(x, columns=["a"]), case)
    g = t[t["test"] == "welch"].iloc[0]
    a, b = x[case, 0], x[~case, 0]
    sp = np.sqrt(((29) * a.var(ddof=1) + 39 * b.var(ddof=1)) / 68)
    assert g["effect"] == pytest.approx((a.mean() - b.mean()) / sp * (1 - 3 / (4 * 70 - 9)))
    m = t[t["test"] == "mwu"].iloc[0]
    dom = np.sign(a[:, None] - b[None, :]).mean()
    assert m["effect"] == pytest.approx(dom)
    assert m["effect_ci_low"] < m["effect"] < m["effect_ci_high"]


def test_mwu_exact_matches_scipy_and_is_labelled():
    rng = np.random.default_rng(1)
    x = rng.normal(size=(12, 4))
    case = np.arange(12) < 5
    res = mann_whitney(x, case, method="exact")
    for j in range(4):
        ref = sps.mannwhitneyu(x[case, j], x[~case, j], method="exact")
        assert res["p"][j] == pytest.approx(ref.pvalue)
    t = case_control(pd.DataFrame(x), case, tests=["mwu"], mwu_method="exact")
    assert set(t["method"]) == {"exact"}


def test_vectorised_equals_per_analyte_scipy_with_missing():
    rng = np.random.default_rng(3)
    x = rng.lognormal(size=(200, 30))
    x[rng.random(x.shape) < 0.1] = np.nan
    case = rng.random(200) < 0.4
    t = case_control(pd.DataFrame(x), case).set_index(["analyte", "stratum", "test"])
    for j in range(30):
        a, b = x[case, j], x[~case, j]
        a, b = a[~np.isnan(a)], b[~np.isnan(b)]
        w = sps.ttest_ind(a, b, equal_var=False)
        m = sps.mannwhitneyu(a, b, method="asymptotic", use_continuity=True)
        assert t.loc[(f"{j}", "all", "welch"), "p"] == pytest.approx(w.pvalue, rel=1e-9)
        assert t.loc[(f"{j}", "all", "mwu"), "p"] == pytest.approx(m.pvalue, rel=1e-9)


def test_column_blocks_give_identical_results():
    rng = np.random.default_rng(9)
    x = pd.DataFrame(rng.lognormal(size=(120, 25)))
    x.iloc[rng.random(x.shape) < 0.05] = np.nan
    case = rng.random(120) < 0.5
    sex = np.where(rng.random(120) < 0.6, "M", "F")
    sev = rng.normal(size=120)
    one = case_control(x, case, by=sex, severity=sev)
    many = case_control(x, case, by=sex, severity=sev, block_cells=300, n_jobs=2)
    pd.testing.assert_frame_equal(one, many)
