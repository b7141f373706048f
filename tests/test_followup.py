"""Follow-up analysis core: arms, cross-fitted scores, reliable change, rates, mixed models."""

from __future__ import annotations

import warnings
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import statsmodels.api as sm

from hikisig.analysis import followup as fu
from hikisig.analysis.followup import (
    CHANGE_COLUMNS,
    LMM_COLUMNS,
    RATE_COLUMNS,
    SCORE_COLUMNS,
    THRESHOLD_COLUMNS,
    arms,
    crossfit_scores,
    followup_lmm,
    reliable_change,
    reliable_rates,
)
from hikisig.stats.mixed import random_intercept_lmm

REF = Path(__file__).parent / "reference"
VISITS = (1, 2, 3)


def cohort(seed: int = 7, *, n_treated: int = 20, n_untreated: int = 20, n_control: int = 40,
           n_analytes: int = 20, n_planted: int = 5, effect: float = 1.5, shift: float = 1.0
           ) -> tuple[pd.DataFrame, pd.Series, pd.Series, pd.Series, pd.Series]:
    """Log2 values (samples x analytes), participant, visit and arm per sample, group per participant.

    Analytes ``m0..m{n_planted-1}`` are higher in cases by ``shift`` (person-level SD 1,
    visit noise SD 0.5); in treated cases they move back towards the controls by
    ``effect / 2`` per visit after the first (``effect`` at visit 3).
    """
    rng = np.random.default_rng(seed)
    arm_p = np.array(["treated"] * n_treated + ["untreated"] * n_untreated + ["control"] * n_control)
    n = arm_p.size
    pids = np.array([f"P{i:03d}" for i in range(n)])
    person = rng.normal(0, 1.0, (n, n_analytes))
    person[arm_p != "control", :n_planted] += shift
    rows, data = [], []
    for i in range(n):
        for v in VISITS:
            x = 10 + person[i] + rng.normal(0, 0.5, n_analytes)
            if arm_p[i] == "treated":
                x[:n_planted] -= effect * (v - 1) / 2
            rows.append((f"{pids[i]}_v{v}", pids[i], v, arm_p[i]))
            data.append(x)
    idx = pd.Index([r[0] for r in rows], name="sample")
    X = pd.DataFrame(np.array(data), index=idx, columns=[f"m{j}" for j in range(n_analytes)])
    pid = pd.Series([r[1] for r in rows], index=idx)
    visit = pd.Series([r[2] for r in rows], index=idx)
    arm = pd.Series([r[3] for r in rows], index=idx)
    group = pd.Series(np.where(arm_p == "control", "control", "hikikomori"), index=pids)
    return X, pid, visit, arm, group


def tidy(X: pd.DataFrame, pid: pd.Series, visit: pd.Series) -> pd.DataFrame:
    return (X.assign(participant=pid, visit=visit)
            .melt(id_vars=["participant", "visit"], var_name="measure", value_name="value"))


# -- arms ---------------------------------------------------------------------------------------


def test_arms() -> None:
    g = pd.Series({"a": "hk", "b": "hk", "c": "ctl", "d": "ctl"})
    iv = pd.DataFrame({"participant": ["a", "a", "c", "zz"], "kind": ["cbt", "drug", "cbt", "cbt"],
                       "start": [2, 3, 2, 2], "end": [None] * 4, "detail": [""] * 4})
    with pytest.warns(UserWarning) as rec:
        out = arms(g, "hk", iv)
    assert out.to_dict() == {"a": "treated", "b": "untreated", "c": "control", "d": "control"}
    messages = " ".join(str(w.message) for w in rec)
    assert "kept as controls" in messages and "not in the participants" in messages
    assert arms(g, "hk", None).tolist() == ["untreated", "untreated", "control", "control"]
    with pytest.raises(ValueError, match="case label"):
        arms(g, "nobody", iv)


# -- cross-fitting --------------------------------------------------------------------------------


def test_crossfit_never_scores_with_a_model_that_saw_the_participant(monkeypatch) -> None:
    X, pid, visit, arm, _ = cohort(n_analytes=10)
    y_case = arm != "control"
    severity = pd.Series(np.where(y_case, 40 + 10 * X["m0"].sub(10), np.nan), index=X.index)
    fits: list[tuple[str, set[str]]] = []

    def recording(factory, kind):
        def make(*args, **kwargs):
            est = factory(*args, **kwargs)
            original = est.fit

            def fit(Xtr, ytr, **kw):
                fits.append((kind, set(Xtr.index)))
                return original(Xtr, ytr, **kw)

            est.fit = fit
            return est
        return make

    monkeypatch.setattr(fu, "make_pipeline", recording(fu.make_pipeline, "disc"))
    monkeypatch.setattr(fu, "severity_pipeline", recording(fu.severity_pipeline, "sev"))
    scores = crossfit_scores(X, y_case, pid, visit, folds=5, seed=3, n_estimators=50,
                             severity=severity, log=False)
    assert list(scores.columns) == SCORE_COLUMNS
    assert set(scores["measure"]) == {"discrimination_logit", "severity_prediction"}
    assert len(scores) == 2 * len(X) and scores["value"].notna().all()
    assert [k for k, _ in fits] == ["disc", "sev"] * 5
    fold_of = scores.drop_duplicates("participant").set_index("participant")["fold"]
    assert (scores.groupby("participant")["fold"].nunique() == 1).all()  # one fold per person
    for k in range(5):
        for kind, train in (f for f in fits[2 * k: 2 * k + 2]):
            train_people = set(pid[list(train)])
            held_out = set(fold_of.index[fold_of == k])
            assert not train_people & held_out
            assert (visit[list(train)] == 1).all()  # baseline samples only
            if kind == "sev":
                assert y_case[list(train)].all()
    # scored people of fold k are exactly the held-out ones; every visit scored
    assert scores.groupby(["participant", "measure"]).size().eq(3).all()
    # the out-of-sample logit separates cases from controls at baseline
    base = scores[(scores["measure"] == "discrimination_logit") & (scores["visit"] == 1)]
    case = base["participant"].map(pid.groupby(pid).first().index.to_series()).isin(
        pid[y_case].unique())
    assert base.loc[case, "value"].mean() > base.loc[~case, "value"].mean() + 1
    # reproducible
    again = crossfit_scores(X, y_case, pid, visit, folds=5, seed=3, n_estimators=50,
                            severity=severity, log=False)
    pd.testing.assert_frame_equal(scores, again)


def test_crossfit_scores_feed_reliable_change() -> None:
    X, pid, visit, arm, group = cohort(seed=11, n_analytes=10, effect=2.0)
    scores = crossfit_scores(X, arm != "control", pid, visit, folds=5, seed=1, n_estimators=100,
                             log=False)
    arm_p = arms(group, "hikikomori", pd.DataFrame({"participant": pid[arm == "treated"].unique()}))
    table, thr = reliable_change(scores, arm_p)
    rates = reliable_rates(table).set_index("arm")
    assert rates.loc["treated", "share_improve"] > 2 * rates.loc["untreated", "share"]
    assert thr["n_people"].iloc[0] == 60


# -- reliable change ------------------------------------------------------------------------------


def noise_values(seed: int, effect: float, n_measures: int = 20
                 ) -> tuple[pd.DataFrame, pd.Series]:
    """80 participants x 3 visits x ``n_measures`` measures: person level + N(0, 0.5^2) visit noise."""
    X, pid, visit, arm, _ = cohort(seed=seed, n_analytes=n_measures, n_planted=n_measures,
                                   effect=effect)
    arm_p = arm.groupby(pid).first()
    return tidy(X, pid, visit), arm_p


def test_reliable_change_flags_five_percent_of_noise_and_the_planted_effect() -> None:
    values, arm_p = noise_values(1, effect=2.0)
    table, all_thr = reliable_change(values, arm_p)
    assert list(table.columns) == CHANGE_COLUMNS
    assert list(all_thr.columns)[:5] == THRESHOLD_COLUMNS
    assert set(all_thr["stratum"]) == {"all", "cases", "controls"}
    thr = all_thr[all_thr["stratum"] == "all"]
    # SEM: the visit noise SD (0.5), from 60 reference people with 3 visits each
    assert thr["sem"].between(0.4, 0.6).all() and thr["sem"].mean() == pytest.approx(0.5, abs=0.02)
    assert (thr["n_people"] == 60).all() and (thr["df"] == 120).all()
    assert np.allclose(thr["threshold_rci"], 1.96 * np.sqrt(2) * thr["sem"])
    assert (all_thr["threshold"] >= all_thr["threshold_rci"] - 1e-12).all()
    rate = table.groupby(table["arm"] != "treated")["reliable_change"].mean()
    assert 0.02 <= rate[True] <= 0.05  # untreated + controls: at most 5% by construction
    per_arm = table.groupby("arm")["reliable_change"].mean()
    assert per_arm["untreated"] <= 0.05 and per_arm["control"] <= 0.05
    assert rate[False] > 0.5  # treated: 1 and 2 units of change against a threshold of ~1.4
    improve = table[table["arm"] == "treated"].query("reliable_change")["direction"]
    # moving back towards the controls' mean: "improve" unless the person started below it
    assert (improve == "improve").mean() > 0.8


def test_reliable_change_zero_effect_arms_alike() -> None:
    values, arm_p = noise_values(2, effect=0.0)
    table, _ = reliable_change(values, arm_p)
    rates = table.groupby("arm")["reliable_change"].mean()
    assert rates.between(0.02, 0.08).all(), rates
    assert abs(rates["treated"] - rates[["untreated", "control"]].mean()) < 0.03


def test_reliable_change_definitions() -> None:
    values = pd.DataFrame({
        "participant": ["a"] * 3 + ["b"] * 3 + ["c"] * 2,
        "visit": [1, 2, 3, 1, 2, 3, 1, 2],
        "measure": "discrimination_logit",
        "value": [0.0, 0.5, -0.5, 1.0, 1.0, 1.3, 2.0, -3.0]})
    arm_p = pd.Series({"a": "untreated", "b": "control", "c": "treated"})
    table, thr = reliable_change(values, arm_p)
    # within-person SS: a: 0.5 (mean 0); b: 0.06 (mean 1.1); df = 2 + 2
    sem = np.sqrt((0.25 + 0.25 + 0.01 + 0.01 + 0.04) / 4)
    assert thr["sem"].iloc[0] == pytest.approx(sem)
    assert thr["threshold"].iloc[0] == pytest.approx(1.96 * np.sqrt(2) * sem)
    c = table[table["participant"] == "c"].iloc[0]
    assert c["change"] == -5.0 and c["reliable_change"] and c["direction"] == "improve"
    a = table[table["participant"] == "a"].set_index("visit")
    assert a.loc[2, "direction"] == "worsen" and a.loc[3, "direction"] == "improve"
    # a marker improves towards the controls' first-visit mean (here 1.0)
    marker = values.assign(measure="m1")
    t2, _ = reliable_change(marker, arm_p)
    a2 = t2[t2["participant"] == "a"].set_index("visit")
    assert a2.loc[2, "direction"] == "improve" and a2.loc[3, "direction"] == "worsen"
    with pytest.raises(ValueError, match="no arm"):
        reliable_change(values, arm_p.drop("c"))


def test_reliable_rates_wilson() -> None:
    values, arm_p = noise_values(1, effect=2.0, n_measures=3)
    table, _ = reliable_change(values, arm_p)
    rates = reliable_rates(table)
    assert list(rates.columns) == RATE_COLUMNS
    assert len(rates) == 9 and (rates["n"] == table.groupby(["measure", "arm"]).size().values).all()
    z = 1.959963984540054
    for r in rates.itertuples():
        for k, lo, hi in ((r.n_reliable, r.ci_low, r.ci_high),
                          (r.n_improve, r.improve_ci_low, r.improve_ci_high)):
            p = k / r.n
            centre = (p + z**2 / (2 * r.n)) / (1 + z**2 / r.n)
            half = z / (1 + z**2 / r.n) * np.sqrt(p * (1 - p) / r.n + z**2 / (4 * r.n**2))
            assert lo == pytest.approx(centre - half, abs=1e-12)
            assert hi == pytest.approx(centre + half, abs=1e-12)
    assert (rates["n_improve"] <= rates["n_reliable"]).all()


# -- mixed models ---------------------------------------------------------------------------------


def test_lmm_recovers_the_planted_interaction() -> None:
    X, pid, visit, arm, _ = cohort(seed=5, n_analytes=40, n_planted=8, effect=1.0)
    res = followup_lmm(X, pid, visit, arm)
    assert list(res.columns) == LMM_COLUMNS
    assert set(res["term"]) == {"intercept", "visit", "arm[treated]", "arm[control]",
                                "visit:arm[treated]", "visit:arm[control]"}
    inter = res[res["term"] == "visit:arm[treated]"].set_index("analyte")
    planted = [f"m{j}" for j in range(8)]
    assert (inter.loc[planted, "q"] < 0.05).all()
    assert inter.loc[planted, "estimate"].between(-0.75, -0.25).all()  # -0.5 per visit
    assert (inter.drop(planted)["q"] < 0.05).sum() <= 1
    # q: BH within the term
    from statsmodels.stats.multitest import multipletests
    assert np.allclose(inter["q"], multipletests(inter["p"], method="fdr_bh")[1])
    # the reference arm can be the controls
    ctl = followup_lmm(X.iloc[:, :3], pid, visit, arm, reference_arm="control")
    assert "arm[untreated]" in set(ctl["term"]) and "arm[control]" not in set(ctl["term"])


def test_lmm_missing_singular_and_unfittable_do_not_crash() -> None:
    X, pid, visit, arm, _ = cohort(seed=6, n_analytes=4)
    X = X.copy()
    X.iloc[::7, 1] = np.nan  # its own missingness pattern
    X["empty"] = np.nan
    X["const_people"] = 10 + np.random.default_rng(0).normal(0, 1, len(X))  # no person effect
    X["const_people"] -= X["const_people"].groupby(pid).transform("mean") * 0.9  # negative ICC
    res = followup_lmm(X, pid, visit, arm)
    by = res.set_index(["analyte", "term"])
    assert by.loc[("m1", "visit"), "n"] == X["m1"].notna().sum()
    assert np.isfinite(by.loc[("m1", "visit"), "estimate"])
    assert by.loc[("empty", "visit"), "note"].startswith("not fitted")
    assert np.isnan(by.loc[("empty", "visit"), "estimate"])
    assert by.loc[("const_people", "visit"), "note"] == "singular"
    # a singular fit is least squares
    rows = res[res["analyte"] == "const_people"].set_index("term")["estimate"]
    design = pd.DataFrame({"visit": visit - 1, "arm": arm})
    Xd = np.column_stack([np.ones(len(X)), design["visit"],
                          design["arm"] == "treated", design["arm"] == "control",
                          design["visit"] * (design["arm"] == "treated"),
                          design["visit"] * (design["arm"] == "control")]).astype(float)
    ols = np.linalg.lstsq(Xd, X["const_people"].to_numpy(), rcond=None)[0]
    assert np.allclose(rows.to_numpy(), ols)


def test_lmm_equals_statsmodels_mixedlm() -> None:
    X, pid, visit, arm, _ = cohort(seed=8, n_analytes=3)
    Xd = np.column_stack([np.ones(len(X)), visit - 1, arm == "treated", arm == "control",
                          (visit - 1) * (arm == "treated"), (visit - 1) * (arm == "control")]).astype(float)
    for reml in (True, False):
        fit = random_intercept_lmm(X.to_numpy(), Xd, pid.to_numpy(), reml=reml)
        for j in range(3):
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                sm_fit = sm.MixedLM(X.iloc[:, j].to_numpy(), Xd, groups=pid.to_numpy()).fit(reml=reml)
            assert np.allclose(fit.beta[j], sm_fit.fe_params, atol=1e-6)
            assert np.allclose(fit.se[j], sm_fit.bse_fe, atol=1e-5)
            assert fit.llf[j] == pytest.approx(sm_fit.llf, abs=1e-5)
            assert fit.sigma2[j] == pytest.approx(sm_fit.scale, rel=1e-4)


def test_lmm_equals_lme4() -> None:
    data = pd.read_csv(REF / "followup_lmm_input.csv")
    ref = pd.read_csv(REF / "followup_lmm_r.csv", float_precision="round_trip")
    wide = data.pivot(index=["participant", "visit", "arm"], columns="analyte",
                      values="value").reset_index()
    analytes = ["a1", "a2", "a3"]
    for reml in (True, False):
        res = followup_lmm(wide[analytes], wide["participant"], wide["visit"], wide["arm"], reml=reml)
        r = ref[ref["reml"] == reml]
        both = res.merge(r, on=["analyte", "term"], suffixes=("", "_r"))
        assert len(both) == 18
        assert np.allclose(both["estimate"], both["estimate_r"], atol=1e-4, rtol=0)
        assert np.allclose(both["se"], both["se_r"], atol=1e-4, rtol=0)
        # log-likelihood and variance components from the kernel
        Xd = np.column_stack([np.ones(len(wide)), wide["visit"] - 1, wide["arm"] == "treated",
                              wide["arm"] == "control", (wide["visit"] - 1) * (wide["arm"] == "treated"),
                              (wide["visit"] - 1) * (wide["arm"] == "control")]).astype(float)
        fit = random_intercept_lmm(wide[analytes].to_numpy(), Xd, wide["participant"].to_numpy(),
                                   reml=reml)
        rr = r.set_index(["analyte", "term"])["estimate"]
        for j, a in enumerate(analytes):
            assert fit.llf[j] == pytest.approx(rr[(a, "logLik")], abs=1e-4)
            assert fit.sigma2[j] == pytest.approx(rr[(a, "sigma2")], abs=1e-4)
            assert fit.tau2[j] == pytest.approx(rr[(a, "tau2")], abs=1e-4)


def test_heavy_tailed_noise_does_not_flag_more_than_five_percent() -> None:
    """With t(3) visit noise the normal RCI alone flags more than 5% of people without an
    intervention; the empirical quantile caps it, in cases and in controls."""
    rng = np.random.default_rng(4)
    n, visits = 150, 3
    arm_p = pd.Series(np.repeat(["untreated", "control"], [50, 100]),
                      index=[f"p{i:03d}" for i in range(n)])
    person = rng.normal(0, 1, n)
    scale = np.where(arm_p.to_numpy() == "control", 0.6, 0.4)  # controls vary more
    rows = [(pid, v, "score", person[i] + scale[i] * rng.standard_t(3))
            for i, pid in enumerate(arm_p.index) for v in range(1, visits + 1)]
    values = pd.DataFrame(rows, columns=["participant", "visit", "measure", "value"])
    table, thr = reliable_change(values, arm_p)
    rates = table.groupby("arm")["reliable_change"].mean()
    assert (rates <= 0.05).all(), rates
    rci_only = thr.set_index("stratum")["threshold_rci"]
    naive = (table["change"].abs() > table["arm"].map(
        {"untreated": rci_only["cases"], "control": rci_only["controls"]})).mean()
    assert naive > 0.05  # what the normal RCI alone would flag
