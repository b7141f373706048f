"""Values <= 0 (below detection on a linear scale) and data on an additive scale."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
import statsmodels.formula.api as smf
from scipy import stats as sps

from hikisig.stats import case_control
from hikisig.stats import univariate as uv


def _pick(t: pd.DataFrame, analyte: str, stratum: str, test: str) -> pd.Series:
    row = t[(t["analyte"] == analyte) & (t["stratum"] == stratum) & (t["test"] == test)]
    assert len(row) == 1, (analyte, stratum, test)
    return row.iloc[0]


@pytest.fixture(scope="module")
def kit() -> dict:
    """A kit export: concentrations with real zeros (below detection) in both groups."""
    rng = np.random.default_rng(21)
    n = 60
    X = pd.DataFrame(rng.lognormal(1.0, 0.6, size=(n, 4)), columns=["orn", "arg", "c16", "c2"],
                     index=[f"S{i:02d}" for i in range(n)])
    X.iloc[[0, 5, 31], 0] = 0.0  # zeros in cases and in controls
    X.iloc[[2, 40], 2] = 0.0
    X.iloc[7, 3] = np.nan
    obs = pd.DataFrame({"case": np.arange(n) < 30, "sex": np.where(np.arange(n) % 3, "M", "F"),
                        "age": rng.integers(20, 50, n).astype(float),
                        "hq25": rng.normal(30, 8, n)}, index=X.index)
    return {"X": X, "obs": obs}


@pytest.fixture(scope="module")
def kit_table(kit: dict) -> pd.DataFrame:
    obs = kit["obs"]
    return case_control(kit["X"], obs["case"], by=obs["sex"], covariates=obs[["age"]],
                        severity=obs["hq25"])


def test_fold_change_from_positive_values(kit: dict, kit_table: pd.DataFrame) -> None:
    X, case = kit["X"], kit["obs"]["case"].to_numpy()
    x = X["orn"].to_numpy()
    a, b = x[case], x[~case]
    a_pos, b_pos = a[a > 0], b[b > 0]
    row = _pick(kit_table, "orn", "all", "welch")
    assert np.isfinite(row["fold_change"])
    la, lb = np.log(a_pos), np.log(b_pos)
    ci = sps.ttest_ind(la, lb, equal_var=False).confidence_interval()
    assert row["fold_change"] == pytest.approx(np.exp(la.mean() - lb.mean()), rel=1e-12)
    assert row["fold_change_ci_low"] == pytest.approx(np.exp(ci.low), rel=1e-10)
    assert row["fold_change_ci_high"] == pytest.approx(np.exp(ci.high), rel=1e-10)
    assert row["gmean_case"] == pytest.approx(sps.gmean(a_pos), rel=1e-12)
    assert row["gmean_control"] == pytest.approx(sps.gmean(b_pos), rel=1e-12)
    # the tests on the values as given keep the zeros
    assert row["n_case"] == len(a) and row["n_control"] == len(b)
    assert row["p"] == pytest.approx(sps.ttest_ind(a, b, equal_var=False).pvalue, rel=1e-10)
    assert row["mean_case"] == pytest.approx(a.mean(), rel=1e-12)
    mwu = _pick(kit_table, "orn", "all", "mwu")
    ref = sps.mannwhitneyu(a, b, method="asymptotic", use_continuity=True)
    assert mwu["p"] == pytest.approx(ref.pvalue, rel=1e-10)
    # every stratum of every analyte has a fold change and geometric means
    two = kit_table[kit_table["test"].isin(["welch", "student", "mwu", "lm"])]
    assert two["fold_change"].notna().all()
    assert kit_table.loc[kit_table["test"] == "welch", ["gmean_case", "gmean_control"]].notna().all().all()


def test_linear_model_leaves_zeros_out(kit: dict, kit_table: pd.DataFrame) -> None:
    X, obs = kit["X"], kit["obs"]
    d = obs.assign(y=X["orn"], group=obs["case"].astype(float),
                   male=(obs["sex"] == "M").astype(float))
    d = d[d["y"] > 0].assign(ly=lambda f: np.log2(f["y"]))
    fit = smf.ols("ly ~ group * male + age", data=d).fit()
    ci = fit.conf_int()
    f_row = _pick(kit_table, "orn", "F", "lm")
    assert f_row["effect"] == pytest.approx(fit.params["group"], rel=1e-10)
    assert f_row["effect_ci_low"] == pytest.approx(ci.loc["group", 0], rel=1e-10)
    assert f_row["p"] == pytest.approx(fit.pvalues["group"], rel=1e-9)
    assert f_row["df"] == fit.df_resid
    assert f_row["fold_change"] == pytest.approx(2.0 ** fit.params["group"], rel=1e-10)
    inter = _pick(kit_table, "orn", "interaction", "lm")
    assert inter["effect"] == pytest.approx(fit.params["group:male"], rel=1e-10)
    assert inter["effect_type"] == "log2_ratio_of_fold_changes"
    assert f_row["method"] == "log2(value) ~ group * by + covariates"


def test_univariate_helpers_leave_nonpositive_values_out() -> None:
    x = np.array([[1.0, 0.0], [4.0, 2.0], [2.0, 8.0], [8.0, -1.0]])
    case = np.array([True, True, False, False])
    fc = uv.fold_change(x, case)
    assert fc["fold_change"][0] == pytest.approx(2.0 / 4.0)  # geometric means 2 and 4
    assert fc["fold_change"][1] == pytest.approx(2.0 / 8.0)
    np.testing.assert_allclose(uv.describe_gmean(x), [sps.gmean(x[:, 0]), sps.gmean([2.0, 8.0])])
    np.testing.assert_allclose(uv.describe(x)["gmean"], uv.describe_gmean(x))
    assert np.isnan(uv.describe_gmean(np.array([[0.0], [-2.0]])))[0]


def test_zeros_and_negative_values_never_crash() -> None:
    rng = np.random.default_rng(2)
    n = 40
    X = pd.DataFrame({
        "zeros": np.zeros(n),  # nothing positive: no log-scale quantity, no crash
        "negative": -rng.lognormal(size=n),
        "mixed": rng.normal(size=n),
        "case_zero": np.where(np.arange(n) < 20, 0.0, rng.lognormal(size=n)),  # no positive case
        "constant": np.full(n, 3.0),
        "one_positive": np.where(np.arange(n) == 25, 1.0, 0.0),
        "empty": np.full(n, np.nan),
    })
    case = np.arange(n) < 20
    sex = np.where(np.arange(n) % 2, "M", "F")
    sev = rng.normal(size=n)
    t = case_control(X, case, by=sex, covariates=pd.DataFrame({"age": rng.normal(40, 5, n)}),
                     severity=sev)
    assert len(t) == X.shape[1] * (3 * 3 + 3 + 2)
    assert not np.isinf(t.select_dtypes("number").to_numpy()).any()
    welch = t[(t["test"] == "welch") & (t["stratum"] == "all")].set_index("analyte")
    for a in ("zeros", "negative", "case_zero", "empty"):
        assert np.isnan(welch.loc[a, "fold_change"]), a
    assert np.isnan(welch.loc["case_zero", "gmean_case"])
    assert np.isfinite(welch.loc["case_zero", "gmean_control"])
    assert np.isfinite(welch.loc["mixed", "fold_change"])  # from its positive values
    assert np.isfinite(welch.loc["negative", "p"]) and np.isfinite(welch.loc["mixed", "p"])
    lm = t[(t["test"] == "lm")].set_index(["analyte", "stratum"])
    assert lm.loc[("zeros", "F"), ["effect", "p"]].isna().all()
    assert np.isfinite(lm.loc[("mixed", "F"), "effect"])


# -- additive scale ------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def zscores() -> dict:
    """A z-score table (already centred and scaled: about half of the values negative)."""
    rng = np.random.default_rng(8)
    n = 80
    case = rng.random(n) < 0.45
    sex = np.where(rng.random(n) < 0.6, "M", "F")
    age = rng.normal(35, 8, n)
    raw = rng.normal(size=(n, 5)) + 0.8 * case[:, None] * np.array([1, 0, -1, 0.5, 0])
    X = pd.DataFrame((raw - raw.mean(axis=0)) / raw.std(axis=0, ddof=1),
                     columns=[f"z{j}" for j in range(5)])
    X.iloc[3, 1] = np.nan
    X.iloc[10, 4] = 0.0
    sev = rng.normal(20, 4, n)
    t = case_control(X, case, by=sex, covariates=pd.DataFrame({"age": age}), severity=sev,
                     additive=True)
    return {"X": X, "case": case, "sex": sex, "age": age, "sev": sev, "table": t}


def test_additive_mean_difference_ci_equals_scipy(zscores: dict) -> None:
    X, case, t = zscores["X"], zscores["case"], zscores["table"]
    for name, equal_var in (("welch", False), ("student", True)):
        rows = t[(t["test"] == name) & (t["stratum"] == "all")].set_index("analyte")
        assert set(rows["effect_type"]) == {"mean_difference"}
        for col in X.columns:
            x = X[col].to_numpy()
            a, b = x[case & ~np.isnan(x)], x[~case & ~np.isnan(x)]
            ref = sps.ttest_ind(a, b, equal_var=equal_var)
            ci = ref.confidence_interval()
            r = rows.loc[col]
            assert r["effect"] == pytest.approx(a.mean() - b.mean(), rel=1e-12, abs=1e-14)
            assert r["effect_ci_low"] == pytest.approx(ci.low, rel=1e-10)
            assert r["effect_ci_high"] == pytest.approx(ci.high, rel=1e-10)
            assert r["statistic"] == pytest.approx(ref.statistic, rel=1e-10)
            assert r["p"] == pytest.approx(ref.pvalue, rel=1e-10)


def test_additive_linear_model_equals_statsmodels(zscores: dict) -> None:
    X, t = zscores["X"], zscores["table"]
    lm = t[t["test"] == "lm"].set_index(["analyte", "stratum"])
    assert set(lm["method"]) == {"value ~ group * by + covariates"}
    for col in X.columns:
        d = pd.DataFrame({"y": X[col], "group": zscores["case"].astype(float),
                          "male": (zscores["sex"] == "M").astype(float), "age": zscores["age"]})
        fit = smf.ols("y ~ group * male + age", data=d.dropna()).fit()
        ci = fit.conf_int()
        f = lm.loc[(col, "F")]
        assert f["effect_type"] == "difference_adjusted"
        assert f["effect"] == pytest.approx(fit.params["group"], rel=1e-10, abs=1e-12)
        assert f["effect_ci_low"] == pytest.approx(ci.loc["group", 0], rel=1e-10)
        assert f["effect_ci_high"] == pytest.approx(ci.loc["group", 1], rel=1e-10)
        assert f["statistic"] == pytest.approx(fit.tvalues["group"], rel=1e-9)
        assert f["p"] == pytest.approx(fit.pvalues["group"], rel=1e-9)
        assert f["df"] == fit.df_resid
        inter = lm.loc[(col, "interaction")]
        assert inter["effect_type"] == "difference_of_differences"
        assert inter["effect"] == pytest.approx(fit.params["group:male"], rel=1e-10, abs=1e-12)
        assert inter["p"] == pytest.approx(fit.pvalues["group:male"], rel=1e-9)
        # the effect in men: group + group x male
        m = fit.t_test("group + group:male = 0")
        men = lm.loc[(col, "M")]
        assert men["effect"] == pytest.approx(float(m.effect[0]), rel=1e-10, abs=1e-12)
        assert men["p"] == pytest.approx(float(m.pvalue), rel=1e-9)
        low, high = m.conf_int()[0]
        assert (men["effect_ci_low"], men["effect_ci_high"]) == pytest.approx((low, high),
                                                                               rel=1e-10)


def test_additive_has_no_fold_change_and_keeps_the_rest(zscores: dict) -> None:
    X, t = zscores["X"], zscores["table"]
    empty = ["fold_change", "fold_change_ci_low", "fold_change_ci_high", "gmean_case",
             "gmean_control"]
    assert t[empty].isna().all().all()
    mwu = t[t["test"] == "mwu"]
    assert set(mwu["effect_type"]) == {"cliffs_delta"} and mwu["effect"].notna().all()
    default = case_control(X, zscores["case"], by=zscores["sex"],
                           covariates=pd.DataFrame({"age": zscores["age"]}),
                           severity=zscores["sev"])
    # tests on the values as given, ranks and correlations do not depend on the scale
    same = t["test"].isin(["welch", "student", "mwu", "pearson", "spearman"])
    for col in ("statistic", "p", "q", "mean_case", "sd_control", "median_case"):
        np.testing.assert_allclose(t.loc[same, col], default.loc[same, col], rtol=1e-12,
                                   equal_nan=True, err_msg=col)
    np.testing.assert_allclose(t.loc[t["test"] == "mwu", "effect"],
                               default.loc[default["test"] == "mwu", "effect"], rtol=1e-12)
    np.testing.assert_allclose(t.loc[t["test"] == "pearson", "effect"],
                               default.loc[default["test"] == "pearson", "effect"], rtol=1e-12)
    with pytest.raises(ValueError, match="additive must be True or False"):
        case_control(X, zscores["case"], additive="yes")  # type: ignore[arg-type]


def test_additive_blocks_give_identical_results(zscores: dict) -> None:
    kw = {"by": zscores["sex"], "covariates": pd.DataFrame({"age": zscores["age"]}),
          "severity": zscores["sev"], "additive": True}
    many = case_control(zscores["X"], zscores["case"], block_cells=100, n_jobs=2, **kw)
    pd.testing.assert_frame_equal(zscores["table"], many)
