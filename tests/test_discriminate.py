"""Tests of hikisig.models.discriminate (case-control classifier with repeated CV)."""

from __future__ import annotations

import json
from typing import Any

import numpy as np
import pandas as pd
import pytest
from sklearn.utils.estimator_checks import parametrize_with_checks

from hikisig.engine import Engine
from hikisig.models.calibration import calibration_slope_intercept, reliability_table
from hikisig.models.discriminate import PLSDAClassifier, cv_splits, discriminate
from hikisig.models.result import SIGNATURE_COLUMNS, ModelResult
from hikisig.synth import SyntheticStudy, preset

REQUIRED_METRICS = {
    "auc", "auc_ci_low", "auc_ci_high", "auc_ci_method", "auc_boot_ci_low", "auc_boot_ci_high",
    "auc_per_repeat_mean", "auc_per_repeat_sd", "brier", "calibration_slope", "calibration_intercept",
    "permutation_p", "permutations", "permutation_scheme", "cv_scheme", "n", "n_case", "n_control",
    "model", "seed",
}
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
    json.dumps(res.to_metrics(), allow_nan=False)
    json.dumps(res.params, allow_nan=False)
    m = res.to_metrics()
    assert m["auc_ci_method"] == "delong"
    assert 0 <= m["auc_ci_low"] <= m["auc"] <= m["auc_ci_high"] <= 1
    assert 0 <= m["auc_boot_ci_low"] <= m["auc_boot_ci_high"] <= 1
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
    thr = res.tables["thresholds"].set_index("rule")
    assert list(thr.index) == ["youden", "sensitivity_target"]
    assert thr.loc["sensitivity_target", "sensitivity"] >= 0.9
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


def test_same_seed_same_result_other_seed_differs() -> None:
    X, y = _small_signal(2)
    a = discriminate(X, y, seed=1, **FAST)
    b = discriminate(X, y, seed=1, **FAST)
    c = discriminate(X, y, seed=2, **FAST)
    assert a.to_metrics() == b.to_metrics()
    assert a.auc_boot_ci_low != c.auc_boot_ci_low or a.to_metrics() != c.to_metrics()


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
