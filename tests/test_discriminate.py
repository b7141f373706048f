"""Tests of hikisig.models.discriminate (case-control classifier with repeated CV)."""

from __future__ import annotations

import json
from typing import Any

import numpy as np
import pandas as pd
import pytest
from sklearn.utils.estimator_checks import parametrize_with_checks

from hikisig.engine import Engine
from hikisig.models import discriminate as disc
from hikisig.models.calibration import calibration_slope_intercept, reliability_table
from hikisig.models.discriminate import PLSDAClassifier, cv_splits, discriminate
from hikisig.models.result import SIGNATURE_COLUMNS, ModelResult
from hikisig.synth import SyntheticStudy, preset

REQUIRED_METRICS = {
    "auc", "auc_ci_low", "auc_ci_high", "auc_ci_method", "auc_ci_resamples", "auc_pooled",
    "auc_pooled_ci_low", "auc_pooled_ci_high", "auc_pooled_se", "auc_per_repeat_mean",
    "auc_per_repeat_sd", "brier", "calibration_slope", "calibration_intercept",
    "permutation_p", "permutations", "permutation_scheme", "cv_scheme", "n", "n_case", "n_control",
    "model", "seed", "validated", "verdict", "youden_threshold", "youden_sensitivity",
    "youden_specificity", "sensitivity_target_threshold",
}
#: Keys of the former metrics.json that would now mislead (the AUC is the mean over repeats).
REMOVED_METRICS = {"auc_se", "auc_boot_ci_low", "auc_boot_ci_high", "auc_boot_resamples"}
THRESHOLD_COLUMNS = [
    "rule", "threshold", "sensitivity", "sensitivity_ci_low", "sensitivity_ci_high", "specificity",
    "specificity_ci_low", "specificity_ci_high", "ppv", "npv", "ppv_at_prevalence",
    "npv_at_prevalence", "prevalence", "threshold_fold_min", "threshold_fold_max", "method"]
FAST: dict[str, Any] = {"model": "logistic", "cv_repeats": 1, "permutations": 200}


def _noise(seed: int, n: int = 60, p: int = 200) -> tuple[pd.DataFrame, np.ndarray]:
    rng = np.random.default_rng(seed)
    X = pd.DataFrame(rng.lognormal(size=(n, p)), columns=[f"m{j}" for j in range(p)])
    y = rng.permutation(np.repeat([0, 1], n // 2))
    return X, y


def _small_signal(seed: int = 0, n: int = 40) -> tuple[pd.DataFrame, np.ndarray]:
    rng = np.random.default_rng(seed)
    y = np.repeat([1, 0], n // 2)
    X = pd.DataFrame(rng.lognormal(size=(n, 8)), columns=[f"m{j}" for j in range(8)],
                     index=[f"S{i:03d}" for i in range(n)])
    X["m0"] *= np.where(y == 1, 5.0, 1.0)
    X.iloc[3, 2] = np.nan  # imputed inside the pipeline
    return X, y


@pytest.fixture(scope="module")
def planted() -> tuple[ModelResult, list[str]]:
    study = SyntheticStudy(preset(seed=3, n_cases=150, n_controls=150, lod=False))
    X = pd.DataFrame(np.concatenate([c.values for c in study.chunks()]), columns=study.panel["id"])
    y = study.participants["group"].to_numpy()
    res = discriminate(X, y, model="rf", n_estimators=100, cv_repeats=1, permutations=100, seed=1)
    return res, [e["analyte"] for e in study.truth()["effects"]]


@pytest.fixture(scope="module")
def small() -> ModelResult:
    X, y = _small_signal()
    return discriminate(X, y, model="rf", n_estimators=30, cv_repeats=2, permutations=200, seed=5)


def test_no_leakage_on_noise() -> None:
    aucs, ps = [], []
    for seed in range(20):
        X, y = _noise(seed)
        m = discriminate(X, y, seed=seed, model="rf", n_estimators=25, cv_repeats=1,
                         permutations=200).to_metrics()
        aucs.append(m["auc"])
        ps.append(m["permutation_p"])
    assert 0.45 <= float(np.mean(aucs)) <= 0.55
    assert sum(p < 0.05 for p in ps) < 4
    assert float(np.median(ps)) > 0.2


def test_planted_signal_is_found(planted: tuple[ModelResult, list[str]]) -> None:
    res, truth = planted
    assert res.auc > 0.8
    assert res.permutation_p < 0.05
    top = res.tables["signature"].head(10)
    assert top["analyte"].isin(truth).sum() >= 5
    long_chain = top[top["analyte"].str.match(r"c1[468]")]
    assert (long_chain["direction"] == "higher in cases").all()
    assert (long_chain["effect"] > 0).all()


def test_tables_and_metrics(small: ModelResult) -> None:
    res = small
    X, y = _small_signal()
    assert res.kind == "discriminate"
    assert set(res.to_metrics()) >= REQUIRED_METRICS
    assert not set(res.to_metrics()) & REMOVED_METRICS
    json.dumps(res.to_metrics(), allow_nan=False)
    json.dumps(res.params, allow_nan=False)
    m = res.to_metrics()
    assert "bootstrap" in m["auc_ci_method"] and "samples" in m["auc_ci_method"]
    assert m["auc_ci_resamples"] == 1000
    assert 0 <= m["auc_ci_low"] <= m["auc"] <= m["auc_ci_high"] <= 1
    assert 0 <= m["auc_pooled_ci_low"] <= m["auc_pooled"] <= m["auc_pooled_ci_high"] <= 1
    assert m["validated"] is True and m["verdict"].startswith("Validated:")
    assert (m["n"], m["n_case"], m["n_control"]) == (40, 20, 20)
    assert m["cv_scheme"] == "5-fold stratified CV x 2 repeats, group-aware: no"
    oof = res.tables["oof_predictions"]
    assert list(oof.columns) == ["id", "y_true", "y_prob"]
    assert oof["id"].tolist() == list(X.index)
    assert oof["y_true"].tolist() == y.tolist()
    assert oof["y_prob"].between(0, 1).all()
    assert list(res.tables["signature"].columns) == SIGNATURE_COLUMNS
    assert res.tables["signature"]["rank"].tolist() == list(range(1, 9))
    assert res.tables["signature"]["analyte"].iloc[0] == "m0"
    imp = res.tables["importance"]
    assert {"analyte", "permutation_importance", "permutation_importance_sd", "impurity_importance",
            "stability"} <= set(imp.columns)
    assert imp["stability"].between(0, 1).all() and imp["impurity_importance"].notna().all()
    cal = res.tables["calibration"]
    assert list(cal.columns) == ["bin", "mean_predicted", "fraction_positive", "n"]
    assert len(cal) == 10 and cal["n"].sum() == 40
    assert list(res.tables["thresholds"].columns) == THRESHOLD_COLUMNS
    thr = res.tables["thresholds"].set_index("rule")
    assert list(thr.index) == ["youden", "sensitivity_target"]
    assert thr.loc["sensitivity_target", "sensitivity"] >= thr.loc["youden", "sensitivity"]
    assert thr.loc["sensitivity_target", "threshold"] <= thr.loc["youden", "threshold"]
    assert (thr["threshold_fold_min"] <= thr["threshold_fold_max"]).all()
    assert thr["method"].str.contains("out-of-bag probabilities of the training samples").all()
    assert thr.loc["youden", "prevalence"] == pytest.approx(0.0157)
    assert (thr["sensitivity_ci_low"] <= thr["sensitivity"]).all()
    assert (thr["specificity"] <= thr["specificity_ci_high"]).all()
    assert {"fpr", "tpr", "threshold"} <= set(res.tables["roc"].columns)
    assert res.features == list(X.columns)
    assert res.model.predict_proba(X).shape == (40, 2)
    assert res.params["cv_repeats"] == 2 and res.params["model"] == "rf"


def test_backends_give_identical_results() -> None:
    from distributed import Client, LocalCluster

    X, y = _small_signal(1)
    kw: dict[str, Any] = {"model": "rf", "n_estimators": 20, "cv_repeats": 2, "permutations": 150, "seed": 11}
    serial = discriminate(X, y, engine=Engine("serial"), **kw)
    loky = discriminate(X, y, engine=Engine("loky", n_jobs=2), **kw)
    with LocalCluster(processes=False, n_workers=1, threads_per_worker=2,
                      dashboard_address="127.0.0.1:0") as cl, Client(cl):
        dask = discriminate(X, y, engine="dask", **kw)
    for other in (loky, dask):
        assert other.to_metrics() == serial.to_metrics()
        pd.testing.assert_frame_equal(other.tables["oof_predictions"], serial.tables["oof_predictions"])
        pd.testing.assert_frame_equal(other.tables["importance"], serial.tables["importance"])
        pd.testing.assert_frame_equal(other.tables["thresholds"], serial.tables["thresholds"])
    # thresholds from inner CV (seeded from the fold's seed): the same on every backend
    kw = {"model": "logistic", "cv_repeats": 2, "permutations": 50, "seed": 3}
    a = discriminate(X, y, engine=Engine("serial"), **kw)
    b = discriminate(X, y, engine=Engine("loky", n_jobs=2), **kw)
    assert a.to_metrics() == b.to_metrics()
    pd.testing.assert_frame_equal(a.tables["thresholds"], b.tables["thresholds"])


def test_same_seed_same_result_other_seed_differs() -> None:
    X, y = _small_signal(2)
    a = discriminate(X, y, seed=1, **FAST)
    b = discriminate(X, y, seed=1, **FAST)
    c = discriminate(X, y, seed=2, **FAST)
    assert a.to_metrics() == b.to_metrics()
    assert a.auc_ci_low != c.auc_ci_low or a.to_metrics() != c.to_metrics()


def test_group_aware_splits_keep_participants_together() -> None:
    rng = np.random.default_rng(0)
    participants = np.repeat(np.arange(30), 2)
    y = np.repeat(rng.permutation(np.repeat([0, 1], 15)), 2)
    for seed in range(5):
        folds = cv_splits(y, groups=participants, n_splits=5, seed=seed)
        assert len(folds) == 5
        tested = np.concatenate([te for _, te in folds])
        assert sorted(tested) == list(range(60))
        for tr, te in folds:
            assert not set(participants[tr]) & set(participants[te])
            assert 0 < y[te].mean() < 1


def test_group_aware_discriminate() -> None:
    X, y = _small_signal(3, n=40)
    participants = np.repeat([f"P{i}" for i in range(20)], 2)
    y2 = np.repeat(y[::2], 2)
    res = discriminate(X, y2, groups=participants, **FAST)
    assert res.cv_scheme.endswith("group-aware: yes")
    assert res.n_participants == 20
    assert len(res.tables["oof_predictions"]) == 40
    with pytest.raises(ValueError, match="both case and control"):
        discriminate(X, y, groups=np.arange(40) % 20, **FAST)


def test_held_out_mode() -> None:
    X, y = _small_signal(4, n=60)
    res = discriminate(X, y, test_size=0.25, **FAST)
    m = res.to_metrics()
    assert m["n"] + m["n_test"] == 60 and m["n_test"] == 15
    assert 0 <= m["test_auc_ci_low"] <= m["test_auc"] <= m["test_auc_ci_high"] <= 1
    test_ids = set(res.tables["test_predictions"]["id"])
    assert not test_ids & set(res.tables["oof_predictions"]["id"])
    assert "test_youden_sensitivity" in m


def test_inner_cv_tunes_inside_training_folds() -> None:
    X, y = _small_signal(5)
    res = discriminate(X, y, model="logistic", cv_repeats=1, permutations=20, inner_cv=True)
    tuned = res.params["tuned_params"]["clf__C"]
    assert sum(tuned.values()) == 5 and set(tuned) <= {"0.01", "0.1", "1.0", "10.0"}
    assert "nested" in res.cv_scheme
    assert res.model.predict_proba(X).shape == (40, 2)


def test_recalibrate_and_plsda() -> None:
    X, y = _small_signal(6)
    rf = discriminate(X, y, model="rf", n_estimators=10, cv_repeats=1, permutations=20, recalibrate=True)
    assert rf.tables["importance"]["impurity_importance"].notna().all()
    assert "sigmoid recalibration" in rf.cv_scheme
    pls = discriminate(X, y, model="plsda", cv_repeats=1, permutations=20)
    assert pls.auc > 0.7
    assert pls.tables["importance"]["impurity_importance"].isna().all()
    for res in (rf, pls):
        assert res.tables["oof_predictions"]["y_prob"].between(0, 1).all()


def test_headline_auc_is_the_mean_of_the_repeats(small: ModelResult) -> None:
    from sklearn.metrics import roc_auc_score

    res = small
    per_repeat = res.tables["per_repeat"]
    assert len(per_repeat) == 2
    assert res.auc == pytest.approx(per_repeat["auc"].mean(), abs=1e-15)
    assert res.auc_per_repeat_mean == res.auc
    oof = res.tables["oof_predictions"]
    assert res.auc_pooled == pytest.approx(roc_auc_score(oof["y_true"], oof["y_prob"]))
    assert res.auc_ci == (res.auc_ci_low, res.auc_ci_high)
    assert res.auc_pooled_ci == (res.auc_pooled_ci_low, res.auc_pooled_ci_high)
    assert res.auc_ci_low <= res.auc <= res.auc_ci_high
    # the bootstrap CI and the band come from the same participant-level resamples
    assert res.auc_ci_resamples == 1000 and len(res.tables["roc_band"]) == 101
    s = res.summary()
    assert "pooled AUC" in s and "permutation p 0.0050" in s and res.verdict in s


def _repeat_probs(seed: int, n: int = 30, repeats: int = 3) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    y = rng.permutation(np.repeat([0, 1], n // 2))
    prob = np.clip(y * 0.3 + rng.uniform(size=(repeats, n)), 0, 1)
    return prob, y


def test_bootstrap_statistic_is_the_mean_of_the_repeats_aucs() -> None:
    from sklearn.metrics import roc_auc_score

    prob, y = _repeat_probs(0)
    units, unit_y = np.arange(len(y)), y.copy()
    aucs, tprs = disc._bootstrap_block(disc._ResampleTask(prob, y, units, unit_y, 4, 7))
    rng = np.random.default_rng(7)
    strata = [np.flatnonzero(unit_y == c) for c in (0, 1)]
    for b in range(4):
        idx = np.concatenate([rng.choice(s, size=len(s), replace=True) for s in strata])
        want = np.mean([roc_auc_score(y[idx], prob[r, idx]) for r in range(3)])
        assert aucs[b] == pytest.approx(want, abs=1e-12)
    assert tprs.shape == (4, 101)


def test_fast_roc_band_equals_roc_curve() -> None:
    from sklearn.metrics import roc_curve

    rng = np.random.default_rng(4)
    for i in range(200):
        pos = rng.permutation(np.r_[np.ones(7 + i % 13, bool), np.zeros(9 + i % 5, bool)])
        score = rng.uniform(size=len(pos))
        if i % 2:
            score = np.round(score, 1)  # ties
        fpr, tpr, _ = roc_curve(pos, score)
        np.testing.assert_allclose(disc._roc_on_grid(pos, score),
                                   np.interp(disc.ROC_GRID, fpr, tpr), rtol=0, atol=1e-12)


def test_oof_permutation_tests_the_headline_statistic() -> None:
    from sklearn.metrics import roc_auc_score

    prob, y = _repeat_probs(1)
    units, unit_y = np.arange(len(y)), y.copy()
    null = disc._permutation_block(disc._ResampleTask(prob, y, units, unit_y, 5, 3))
    rng = np.random.default_rng(3)
    for value in null:
        yp = rng.permutation(unit_y)[units]
        assert value == pytest.approx(np.mean([roc_auc_score(yp, prob[r]) for r in range(3)]),
                                      abs=1e-12)


def test_permutation_p_agrees_with_auc() -> None:
    X, y = _small_signal(8)
    res = discriminate(X, y, model="logistic", cv_repeats=3, permutations=99, seed=2)
    # the null of p is centred on 0.5 and the observed statistic is ``auc`` (not the pooled AUC)
    assert res.auc < res.auc_pooled or res.auc == pytest.approx(res.auc_pooled)
    assert res.permutation_p == pytest.approx(0.01)


@pytest.mark.parametrize("model", ["rf", "logistic"])
def test_thresholds_chosen_in_training_folds_are_not_optimistic_on_noise(model: str) -> None:
    """On noise, sensitivity + specificity of thresholds chosen in the training folds stay
    near 1 (chance); chosen and scored on the same out-of-fold predictions they look better."""
    honest, in_sample = [], []
    for seed in range(8):
        X, y = _noise(seed, n=60, p=20)
        res = discriminate(X, y, model=model, n_estimators=40, cv_repeats=2, permutations=0,
                           seed=seed)
        t = res.tables["thresholds"].set_index("rule")
        honest.append(t.loc["youden", "sensitivity"] + t.loc["youden", "specificity"])
        oof = res.tables["oof_predictions"]
        naive = disc._in_sample_thresholds(oof["y_true"].to_numpy(), oof["y_prob"].to_numpy(),
                                           0.9, 0.0157).set_index("rule")
        in_sample.append(naive.loc["youden", "sensitivity"] + naive.loc["youden", "specificity"])
        source = "out-of-bag" if model == "rf" else "inner 3-fold CV"
        assert t["method"].str.startswith(f"chosen on {source} probabilities").all()
    assert sum(h < i for h, i in zip(honest, in_sample, strict=True)) >= 7, (honest, in_sample)
    assert float(np.mean(honest)) < 1.08
    assert float(np.mean(in_sample)) > float(np.mean(honest)) + 0.08


def test_final_threshold_is_chosen_on_out_of_bag_probabilities(small: ModelResult) -> None:
    forest = small.model.steps[-1][1]
    col = list(forest.classes_).index("case")
    oob = forest.oob_decision_function_
    seen = oob.sum(axis=1) > 0
    _X, y = _small_signal()
    youden, target = disc._choose_thresholds(y[seen], oob[seen, col], 0.9)
    assert small.threshold("youden") == pytest.approx(youden)
    assert small.threshold("sensitivity_target") == pytest.approx(target)
    t = small.thresholds.set_index("rule")
    assert small.to_metrics()["youden_threshold"] == t.loc["youden", "threshold"]


def test_choose_thresholds_midpoints() -> None:
    y = np.array([0, 0, 1, 0, 1, 1])
    p = np.array([0.1, 0.2, 0.3, 0.4, 0.6, 0.8])
    youden, target = disc._choose_thresholds(y, p, 0.9)
    assert youden == pytest.approx(0.5)  # 0.6 and 0.8 positive, between 0.4 and 0.6
    assert target == pytest.approx(0.25)  # all cases: between 0.2 and 0.3
    assert all(np.isnan(disc._choose_thresholds(np.ones(3), p[:3], 0.9)))


def test_without_permutations() -> None:
    X, y = _small_signal(9)
    res = discriminate(X, y, model="logistic", cv_repeats=2, permutations=0)
    assert res.permutation_p is None and res.permutations == 0
    assert res.validated is False and "not tested against chance" in res.verdict
    assert "permutation p not computed" in res.summary()
    m = res.to_metrics()
    assert m["permutation_p"] is None and m["validated"] is False
    json.dumps(m, allow_nan=False)


def test_refit_permutation_scheme() -> None:
    X, y = _small_signal(7)
    res = discriminate(X, y, model="logistic", cv_repeats=2, permutations=4, permutation_scheme="refit")
    assert res.permutations == 4 and res.permutation_scheme == "refit"
    assert res.permutation_p in {0.2, 0.4, 0.6, 0.8, 1.0}


def test_labels_and_arguments() -> None:
    X, y = _small_signal(6)
    labels = np.where(y == 1, "case", "control")
    a = discriminate(X, labels, **FAST)
    b = discriminate(X, y, **FAST)
    assert a.to_metrics() == b.to_metrics()
    with pytest.raises(ValueError, match="unknown model"):
        discriminate(X, y, model="svm")
    with pytest.raises(ValueError, match="permutation_scheme"):
        discriminate(X, y, permutation_scheme="nope")
    with pytest.raises(ValueError, match="both cases and controls"):
        discriminate(X, np.ones(40, dtype=int))


def test_calibration_helpers() -> None:
    rng = np.random.default_rng(1)
    p = rng.uniform(0.02, 0.98, 4000)
    y = (rng.uniform(size=4000) < p).astype(int)
    s = calibration_slope_intercept(y, p)
    assert s["slope"] == pytest.approx(1, abs=0.15) and s["intercept"] == pytest.approx(0, abs=0.15)
    sharp = calibration_slope_intercept(y, np.clip(0.5 + 2 * (p - 0.5), 0.001, 0.999))
    assert sharp["slope"] < 0.9  # over-confident predictions: slope below 1
    t = reliability_table(y, p)
    assert t["n"].sum() == 4000 and t["mean_predicted"].is_monotonic_increasing
    assert np.isnan(calibration_slope_intercept(np.zeros(10), p[:10])["slope"])


@parametrize_with_checks([PLSDAClassifier()])
def test_plsda_sklearn_conventions(estimator: Any, check: Any) -> None:
    check(estimator)


def test_plsda_probabilities() -> None:
    X, y = _small_signal(7)
    clf = PLSDAClassifier().fit(np.log(X.fillna(1.0)), np.where(y == 1, "case", "control"))
    proba = clf.predict_proba(np.log(X.fillna(1.0)))
    assert ((proba >= 0) & (proba <= 1)).all() and np.allclose(proba.sum(axis=1), 1)
    assert list(clf.classes_) == ["case", "control"]
    with pytest.raises(ValueError, match="2 classes"):
        PLSDAClassifier().fit(np.ones((6, 2)), [0, 1, 2, 0, 1, 2])
