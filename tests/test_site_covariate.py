"""The site as a categorical covariate of the linear model (``design.site``,
``--site-column``, ``case_control(site=...)``): equal to statsmodels OLS with ``C(site)``,
wired through ``hikisig stats`` and the study run, shown in the report."""

from __future__ import annotations

import io
import warnings
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import statsmodels.formula.api as smf

import hikisig
from helpers import hikisig as cli
from hikisig.config import StudyConfig
from hikisig.stats.casecontrol import CategoricalCovariateWarning, case_control
from hikisig.stats.describe import site_counts
from hikisig.stats.univariate import treatment_dummies

FAST = {"discriminate": {"enabled": False}, "severity": {"enabled": False},
        "stratify": {"enabled": False}}


def _cohort(n: int = 96, seed: int = 3) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Obs (group, sex, age, site) and four analytes with a site shift; site 'nagoya' has a
    single sample, analyte 'd' has no value at site 'tokyo'."""
    rng = np.random.default_rng(seed)
    site = rng.choice(["kyoto", "osaka", "tokyo"], n).astype(object)
    site[0] = "nagoya"
    obs = pd.DataFrame({"group": np.where(np.arange(n) % 3 == 0, "case", "control"),
                        "sex": rng.choice(["F", "M"], n), "age": rng.normal(40, 9, n).round(1),
                        "site": site}, index=[f"S{i:03d}" for i in range(n)])
    shift = obs["site"].map({"kyoto": 0.0, "osaka": 0.7, "tokyo": -0.5, "nagoya": 0.2})
    X = pd.DataFrame(rng.lognormal(size=(n, 4)) * np.exp(shift.to_numpy())[:, None],
                     index=obs.index, columns=["a", "b", "c", "d"])
    X.iloc[[4, 9], 0] = np.nan
    X.iloc[5, 1] = 0.0  # below detection: left out of the log-scale model
    X.loc[obs["site"] == "tokyo", "d"] = np.nan
    return obs, X


def _statsmodels(obs: pd.DataFrame, values: pd.Series) -> dict[str, tuple[float, float, float]]:
    """Estimate, p and residual df of the group effect in F, M and the interaction."""
    df = obs.assign(value=values).dropna()
    df = df[df["value"] > 0].assign(case=lambda f: (f["group"] == "case").astype(float))
    fit = smf.ols("np.log2(value) ~ case * C(sex) + age + C(site)", df).fit()
    names = list(fit.params.index)
    out = {}
    for key, terms in (("F", ["case"]), ("M", ["case", "case:C(sex)[T.M]"]),
                       ("interaction", ["case:C(sex)[T.M]"])):
        c = np.zeros(len(names))
        c[[names.index(t) for t in terms]] = 1
        t = fit.t_test(c)
        out[key] = (float(np.squeeze(t.effect)), float(np.squeeze(t.pvalue)), float(fit.df_resid))
    return out


def test_linear_model_with_site_equals_statsmodels() -> None:
    obs, X = _cohort()
    table = case_control(X, obs["group"] == "case", by=obs["sex"], covariates=obs[["age"]],
                         site=obs["site"])
    lm = table[table["test"] == "lm"].set_index(["analyte", "stratum"])
    assert set(lm["method"]) == {"log2(value) ~ group * by + covariates + site"}
    for analyte in X.columns:
        ref = _statsmodels(obs, X[analyte])
        for stratum, (est, p, df) in ref.items():
            row = lm.loc[(analyte, stratum)]
            assert row["effect"] == pytest.approx(est, abs=1e-10, rel=1e-10)
            assert row["p"] == pytest.approx(p, abs=1e-10, rel=1e-10)
            assert row["df"] == df
    # 'd' has no value at one site: that dummy is left out of its fit (one df back)
    assert lm.loc[("d", "F"), "df"] == int(X["d"].notna().sum()) - 7
    # the two-group tests do not use the site
    plain = case_control(X, obs["group"] == "case", by=obs["sex"], covariates=obs[["age"]])
    tests = table["test"] != "lm"
    pd.testing.assert_frame_equal(table[tests].reset_index(drop=True),
                                  plain[plain["test"] != "lm"].reset_index(drop=True))


def test_text_covariate_is_categorical_with_a_note() -> None:
    obs, X = _cohort()
    with pytest.warns(CategoricalCovariateWarning, match="'site' is not numeric: treated as "
                      "categorical \\(4 levels, reference 'kyoto'\\)"):
        as_cov = case_control(X, obs["group"] == "case", by=obs["sex"],
                              covariates=obs[["age", "site"]])
    with warnings.catch_warnings():
        warnings.simplefilter("error", CategoricalCovariateWarning)
        as_site = case_control(X, obs["group"] == "case", by=obs["sex"],
                               covariates=obs[["age"]], site=obs["site"])
    a, b = as_cov[as_cov["test"] == "lm"], as_site[as_site["test"] == "lm"]
    np.testing.assert_allclose(a["p"], b["p"], rtol=1e-12)
    np.testing.assert_allclose(a["effect"], b["effect"], rtol=1e-12)


def test_treatment_dummies_and_site_counts() -> None:
    d, levels = treatment_dummies(["b", "a", None, "c"])
    assert levels == ["a", "b", "c"]
    assert d[0].tolist() == [1.0, 0.0] and d[1].tolist() == [0.0, 0.0]
    assert np.isnan(d[2]).all()
    g = pd.Series(["case", "control", "case", "control", "case"])
    t = site_counts(g, "case", "control", pd.Series(["B", "A", "A", "B", None]))
    assert t.to_dict("list") == {"site": ["A", "B", "missing"], "n_case": [1, 1, 1],
                                 "n_control": [1, 1, 0], "n": [2, 2, 1]}


def _wide(folder: Path) -> Path:
    obs, X = _cohort()
    frame = pd.concat([obs, X.rename(columns=lambda c: f"feat_{c}")], axis=1)
    frame.index.name = "sample_id"
    path = folder / "wide.csv"
    frame.reset_index().to_csv(path, index=False)
    return path


def test_stats_site_column(tmp_path: Path) -> None:
    path = _wide(tmp_path)
    ran = cli("stats", str(path), "--site-column", "site", "--covariates", "age",
              "--participant-column", "none")
    assert ran.returncode == 0, ran.stderr
    table = pd.read_csv(io.StringIO(ran.stdout))
    lm = table[table["test"] == "lm"].set_index(["analyte", "stratum"])
    assert set(lm["method"]) == {"log2(value) ~ group * by + covariates + site"}
    obs, X = _cohort()
    ref = _statsmodels(obs, X["a"])
    assert lm.loc[("feat_a", "M"), "p"] == pytest.approx(ref["M"][1], rel=1e-10)
    # the same as the text covariate without --site-column (treated as categorical)
    ran2 = cli("stats", str(path), "--covariates", "age,site", "--participant-column", "none")
    assert ran2.returncode == 0, ran2.stderr
    assert "'site' is not numeric: treated as categorical" in ran2.stderr
    t2 = pd.read_csv(io.StringIO(ran2.stdout))
    np.testing.assert_allclose(t2.loc[t2["test"] == "lm", "p"],
                               table.loc[table["test"] == "lm", "p"], rtol=1e-12)
    bad = cli("stats", str(path), "--site-column", "region", "--participant-column", "none")
    assert bad.returncode == 2 and "no " in bad.stderr and "'region'" in bad.stderr


def test_numbers_mixed_with_text_are_an_error(tmp_path: Path) -> None:
    path = _wide(tmp_path)
    frame = pd.read_csv(path)
    frame.insert(4, "dose", frame["age"].astype(str))
    frame.loc[3, "dose"] = "forty"
    frame.to_csv(path, index=False)
    ran = cli("stats", str(path), "--covariates", "age,dose", "--participant-column", "none")
    assert ran.returncode == 2 and "expected a number" in ran.stderr and "'dose'" in ran.stderr


@pytest.fixture(scope="module")
def site_run(tmp_path_factory: pytest.TempPathFactory) -> tuple[hikisig.RunResults, str]:
    folder = tmp_path_factory.mktemp("site")
    path = _wide(folder)
    config = StudyConfig.model_validate({
        "source": {"file": str(path)},
        "design": {"participant": "", "severity": None, "instruments": [], "site": "site"},
        **FAST})
    results = hikisig.run(config, out=folder / "out")
    return results, (folder / "out" / "report.html").read_text(encoding="utf-8")


def _section(html: str, sid: str) -> str:
    block = html[html.index(f'<section id="{sid}">'):]
    return block[:block.index("</section>")]


def test_run_report_shows_sites(site_run: tuple[hikisig.RunResults, str]) -> None:
    results, html = site_run
    counts = results.site_counts
    assert counts is not None
    assert counts["site"].tolist() == ["kyoto", "nagoya", "osaka", "tokyo"]
    assert int(counts["n"].sum()) == len(results.X)
    cohort = _section(html, "cohort")
    assert "Samples per site" in cohort and "<td>nagoya</td>" in cohort
    assert 'id="fig-pca-site"' in _section(html, "pca")
    assert "C(site)" in _section(html, "methods")
    lm = results.stats[results.stats["test"] == "lm"]
    assert set(lm["method"]) == {"log2(value) ~ group * by + covariates + site"}


def test_no_site_no_change(site_run: tuple[hikisig.RunResults, str], tmp_path: Path) -> None:
    """Without a site column: no site table, figure or Methods words."""
    path = _wide(tmp_path)
    config = StudyConfig.model_validate({
        "source": {"file": str(path)},
        "design": {"participant": "", "severity": None, "instruments": []}, **FAST})
    results = hikisig.run(config, out=tmp_path / "out")
    html = (tmp_path / "out" / "report.html").read_text(encoding="utf-8")
    assert results.site_counts is None and "site" not in results.obs
    assert 'id="fig-pca-site"' not in html and "Samples per site" not in html
    assert "C(site)" not in html
