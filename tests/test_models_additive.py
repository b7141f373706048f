"""Models on an additive scale (``log=False``: z-scores), column names through the model
pipelines, and the memory-bounded permutation importances (same numbers as scoring every
permuted copy with the whole model)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest
from scipy import stats as sps
from sklearn.base import clone
from sklearn.ensemble import RandomForestClassifier
from sklearn.metrics import adjusted_rand_score

from hikisig.engine import Engine
from hikisig.models import discriminate as disc
from hikisig.models import stratify as strat
from hikisig.models.discriminate import discriminate, make_pipeline
from hikisig.models.persist import load_model, save_model
from hikisig.models.predict import predict
from hikisig.models.projection import autoscaled, cluster_matrix, log2_autoscaled, pca_scores
from hikisig.models.severity import severity, severity_pipeline
from hikisig.models.stratify import stratify
from hikisig.stats.univariate import hedges_g

PLANTED = ["z0", "z1", "z2"]


def _zscores(seed: int = 0, n: int = 120, p: int = 30) -> tuple[pd.DataFrame, np.ndarray]:
    """z-scores (negative values, a few missing); cases higher by 1 SD in z0..z2."""
    rng = np.random.default_rng(seed)
    y = np.repeat([1, 0], n // 2)
    Z = rng.normal(size=(n, p))
    Z[:, :3] += np.where(y == 1, 1.0, 0.0)[:, None]
    X = pd.DataFrame(Z, columns=[f"z{j}" for j in range(p)], index=[f"S{i:03d}" for i in range(n)])
    X.iloc[4, 5] = np.nan
    X.iloc[7, 0] = np.nan
    return X, y


def _unchunked_importance(model: Any, X: pd.DataFrame, y: np.ndarray, n_repeats: int,
                          seed: int) -> np.ndarray:
    """The definition the chunked importance must reproduce: every permuted copy of the
    rows stacked and scored by the whole model in one call (the former implementation)."""
    rng = np.random.default_rng(seed)
    n, p = X.shape
    pos = np.asarray(y) == 1
    base = disc._auc_from_ranks(sps.rankdata(model.predict_proba(X)[:, 1]), pos)
    Xv = X.to_numpy()
    blocks = []
    for _ in range(n_repeats):
        for j in range(p):
            Xp = Xv.copy()
            Xp[:, j] = Xp[rng.permutation(n), j]
            blocks.append(Xp)
    big = pd.DataFrame(np.vstack(blocks), columns=X.columns)
    prob = model.predict_proba(big)[:, 1].reshape(n_repeats, p, n)
    ranks = sps.rankdata(prob, axis=-1)
    m = int(pos.sum())
    scores = (ranks[..., pos].sum(axis=-1) - m * (m + 1) / 2) / (m * (n - m))
    out: np.ndarray = (base - scores).mean(axis=0)
    return out


def _concentrations(seed: int = 0, n: int = 80, p: int = 25) -> tuple[pd.DataFrame, np.ndarray]:
    rng = np.random.default_rng(seed)
    y = np.repeat([1, 0], n // 2)
    X = pd.DataFrame(rng.lognormal(size=(n, p)), columns=[f"a{j}" for j in range(p)])
    X.iloc[:, :4] *= np.where(y == 1, 2.0, 1.0)[:, None]
    X.iloc[3, 6] = np.nan
    return X, y


# -- memory-bounded permutation importance ---------------------------------------------------


@pytest.mark.parametrize(("model", "kw"), [
    ("rf", {}), ("rf", {"log": False}), ("rf", {"inner_cv": True}), ("logistic", {}),
    ("plsda", {"log": False}), ("rf", {"recalibrate": True}),
])
def test_chunked_importance_equals_unchunked_definition(model: str, kw: dict[str, Any]) -> None:
    X, y = _concentrations()
    if not kw.get("log", True):
        X = np.log(X) - 1.0  # negative values
    train, test = np.arange(0, len(y), 2), np.arange(1, len(y), 2)
    pipe = make_pipeline(model, seed=3, n_estimators=40, **kw).fit(X.iloc[train], y[train])
    expected = _unchunked_importance(pipe, X.iloc[test], y[test], 3, 17)
    # max_cells=1: one permuted copy at a time; 400: a few copies per chunk; default: one chunk
    for cells in (1, 400, disc._IMPORTANCE_CELLS):
        got = disc._batched_permutation_importance(pipe, X.iloc[test], y[test], 3, 17,
                                                   max_cells=cells)
        if model == "rf":  # tree probabilities added in the forest's order: the same bits
            np.testing.assert_array_equal(got, expected)
        else:
            np.testing.assert_allclose(got, expected, rtol=0, atol=1e-12)


def test_forest_copies_reproduce_predict_proba_of_permuted_copies() -> None:
    rng = np.random.default_rng(4)
    X = rng.normal(size=(60, 12))
    labels = rng.integers(0, 3, size=60)
    X[labels == 1, :3] += 1.5
    rf = RandomForestClassifier(n_estimators=25, random_state=2).fit(X[:40], labels[:40])
    Xt = X[40:].astype(np.float32)
    fc = disc._ForestCopies(rf, Xt, [0, 1, 2])
    assert fc.exact
    cols = np.array([0, 0, 5, 11, 2])
    perms = np.stack([rng.permutation(len(Xt)) for _ in cols])
    got = fc.proba(cols, perms)
    for q, (j, perm) in enumerate(zip(cols, perms, strict=True)):
        copy = Xt.copy()
        copy[:, j] = Xt[perm, j]
        np.testing.assert_array_equal(got[q], rf.predict_proba(copy))
    assert not disc._ForestCopies(rf, np.where(Xt > 2, np.nan, Xt), [1]).exact


def test_default_forest_pipeline_takes_the_fast_path() -> None:
    X, y = _concentrations()
    pipe = make_pipeline("rf", seed=1, n_estimators=20).fit(X, y)
    pre, clf = disc._columnwise_split(pipe)
    assert pre is not None and isinstance(clf, RandomForestClassifier)
    assert disc._ForestCopies(clf, np.asarray(pre.transform(X), dtype=np.float32), [1]).exact


def _unchunked_stratify_importance(x: np.ndarray, labels: np.ndarray, seed: int,
                                   repeats: int = 10, batch: int = 16) -> np.ndarray:
    """The former stratification importance: copies of 16 analytes per ``predict`` call."""
    from sklearn.model_selection import StratifiedKFold

    p = x.shape[1]
    rng = np.random.default_rng(seed)
    total = np.zeros(p)
    for train, test in StratifiedKFold(2, shuffle=True, random_state=seed).split(x, labels):
        rf = RandomForestClassifier(n_estimators=100, random_state=seed, n_jobs=1)
        rf.fit(x[train], labels[train])
        xt, yt = x[test], labels[test]
        base = float(np.mean(rf.predict(xt) == yt))
        m = len(test)
        for start in range(0, p, batch):
            cols = list(range(start, min(p, start + batch)))
            stack = np.tile(xt, (len(cols) * repeats, 1))
            for i, j in enumerate(cols):
                for r in range(repeats):
                    block = (i * repeats + r) * m
                    stack[block:block + m, j] = xt[rng.permutation(m), j]
            pred = rf.predict(stack).reshape(len(cols), repeats, m)
            total[cols] += base - np.mean(pred == yt[None, None, :], axis=(1, 2))
    out: np.ndarray = total / 2
    return out


@pytest.mark.parametrize("k", [2, 3])
def test_stratify_importance_equals_unchunked_definition(k: int) -> None:
    rng = np.random.default_rng(k)
    x = rng.normal(size=(60, 20))
    labels = rng.integers(1, k + 1, size=60)
    x[labels == 2, :4] += 1.0
    expected = _unchunked_stratify_importance(x, labels, 5)
    for cells in (1, 3000, disc._IMPORTANCE_CELLS):
        np.testing.assert_array_equal(strat._permutation_importance(x, labels, 5, max_cells=cells),
                                      expected)


# -- log=False: additive scale ---------------------------------------------------------------


def test_discriminate_on_zscores_finds_planted_signal() -> None:
    X, y = _zscores()
    assert (X.to_numpy() < 0).any()
    res = discriminate(X, y, model="rf", n_estimators=60, cv_repeats=1, permutations=100, seed=2,
                       log=False)
    assert res.auc is not None and res.auc > 0.8
    assert res.permutation_p is not None and res.permutation_p < 0.05
    sig = res.tables["signature"].set_index("analyte")
    assert set(res.tables["signature"]["analyte"].head(5)) >= set(PLANTED)
    assert (sig.loc[PLANTED, "direction"] == "higher in cases").all()
    # effect: Hedges g of the values as given (not of log2 values)
    g = hedges_g(X.to_numpy(), y == 1)["effect"]
    np.testing.assert_allclose(sig.loc[list(X.columns), "effect"].to_numpy(), g)
    assert res.params["log"] is False
    assert "SimpleImputer(strategy='median', keep_empty_features=True)" in res.params["preprocessing"]
    assert [name for name, _ in res.model.steps] == ["impute", "scale", "clf"]
    assert res.model.named_steps["impute"].strategy == "median"
    for model in ("logistic", "plsda"):
        other = discriminate(X, y, model=model, cv_repeats=1, permutations=50, seed=2, log=False)
        assert other.auc is not None and other.auc > 0.8, model


def test_log_true_is_the_default_and_recorded() -> None:
    X, y = _concentrations()
    res = discriminate(X, y, model="logistic", cv_repeats=1, permutations=20, seed=1)
    assert res.params["log"] is True
    assert [name for name, _ in res.model.steps] == ["impute", "log", "scale", "clf"]


def test_severity_on_zscores() -> None:
    rng = np.random.default_rng(3)
    n, p = 90, 30
    X = pd.DataFrame(rng.normal(size=(n, p)), columns=[f"z{j}" for j in range(p)])
    X.iloc[2, 4] = np.nan
    y = 10 + 3 * X["z0"].fillna(0) + 2 * X["z1"] - 2 * X["z2"] + rng.normal(size=n)
    res = severity(X, y.to_numpy(), cv_folds=5, cv_repeats=2, permutations=19, seed=1, log=False)
    assert res.q2 is not None and res.q2 > 0.5
    assert res.permutation_p_q2 == pytest.approx(1 / 20)
    top = set(res.tables["signature"]["analyte"].head(3))
    assert top == set(PLANTED)
    sig = res.tables["signature"].set_index("analyte")
    assert sig.loc["z2", "direction"] == "lower with severity"
    assert res.params["log"] is False and "SimpleImputer" in res.params["pipeline"]
    assert [name for name, _ in res.model.steps] == ["impute", "scale", "pls"]


def test_stratify_on_zscores() -> None:
    rng = np.random.default_rng(5)
    n, p = 120, 25
    truth = np.repeat([1, 2], n // 2)
    Z = rng.normal(size=(n, p))
    Z[:, :5] += np.where(truth == 1, -1.5, 1.5)[:, None]
    X = pd.DataFrame(Z, columns=[f"z{j}" for j in range(p)], index=[f"P{i}" for i in range(n)])
    X.iloc[0, 7] = np.nan
    res = stratify(X, k=2, bootstraps=5, seed=0, log=False)
    assert adjusted_rand_score(truth, res.tables["assignments"]["cluster"]) > 0.8
    assert set(res.tables["signature"]["analyte"].head(5)) == {f"z{j}" for j in range(5)}
    prof = res.tables["profiles"]
    assert "mean" in prof.columns and "mean_log2" not in prof.columns
    assert res.params["log"] is False
    assert [name for name, _ in res.model.steps][:2] == ["impute", "scale"]


def test_log_false_serial_and_loky_identical() -> None:
    X, y = _zscores(1, n=60, p=12)
    loky = Engine("loky", n_jobs=2)
    kw: dict[str, Any] = {"model": "rf", "n_estimators": 20, "cv_repeats": 2, "permutations": 50,
                          "seed": 4, "log": False}
    a, b = discriminate(X, y, engine=Engine("serial"), **kw), discriminate(X, y, engine=loky, **kw)
    assert a.to_metrics() == b.to_metrics()
    pd.testing.assert_frame_equal(a.tables["importance"], b.tables["importance"])
    sy = X["z0"].fillna(0).to_numpy() * 2 + np.arange(60) % 3
    skw: dict[str, Any] = {"cv_folds": 4, "cv_repeats": 2, "permutations": 30, "seed": 2, "log": False}
    sa, sb = severity(X, sy, engine=Engine("serial"), **skw), severity(X, sy, engine=loky, **skw)
    assert sa.to_metrics() == sb.to_metrics()
    pd.testing.assert_frame_equal(sa.tables["signature"], sb.tables["signature"])
    ta = stratify(X, k=2, bootstraps=4, seed=3, engine=Engine("serial"), log=False)
    tb = stratify(X, k=2, bootstraps=4, seed=3, engine=loky, log=False)
    assert ta.to_metrics() == tb.to_metrics()
    pd.testing.assert_frame_equal(ta.tables["signature"], tb.tables["signature"])


def test_severity_permutations_on_wide_data_match_full_width_fits() -> None:
    """More analytes than samples: the permutation fits run in compact coordinates and give
    the Q2 of the full-width fits up to rounding."""
    from hikisig.models import severity as sev

    rng = np.random.default_rng(0)
    X = rng.lognormal(size=(40, 150))
    y = np.log(X[:, :3]).sum(axis=1) + rng.normal(size=40)
    reps = [sev._cv_repeat((s, X, y, None, 5, 3, "pareto", True)) for s in (1, 2)]
    assert reps[0]["folds"][0][2].shape[1] < X.shape[1]
    full = [sev._prepared_folds(X, r["splits"], "pareto") for r in reps]
    seeds = [7, 8, 9]
    np.testing.assert_allclose(sev._perm_batch((seeds, y, [r["folds"] for r in reps], 2)),
                               sev._perm_batch((seeds, y, full, 2)), rtol=0, atol=1e-12)


# -- column names through the pipelines; saved models ---------------------------------------


def test_pipelines_keep_column_names_and_predictions() -> None:
    X, y = _concentrations()
    for kw in ({}, {"log": False}):
        Xin = X if kw.get("log", True) else np.log(X)
        pipe = make_pipeline("rf", seed=1, n_estimators=20, **kw).fit(Xin, y)
        assert list(pipe[:-1].transform(Xin).columns) == list(X.columns)
        assert list(pipe.named_steps["clf"].feature_names_in_) == list(X.columns)
        plain = clone(pipe).set_output(transform="default").fit(Xin, y)
        np.testing.assert_array_equal(plain.predict_proba(Xin), pipe.predict_proba(Xin))
        sev = severity_pipeline(2, log=kw.get("log", True)).fit(Xin, np.arange(len(y)) % 7)
        assert list(sev.named_steps["pls"].feature_names_in_) == list(X.columns)


def test_error_of_a_later_step_names_the_analyte() -> None:
    X, y = _concentrations()
    pipe = make_pipeline("logistic").fit(X, y)
    pipe.named_steps["impute"].fill_values_[7] = -1.0  # the log step (after imputation) fails
    bad = X.copy()
    bad.loc[bad.index[0], "a7"] = np.nan
    with pytest.raises(ValueError, match="'a7'"):
        pipe.predict_proba(bad)


@pytest.mark.parametrize("log", [True, False])
def test_saved_models_predict_the_same(tmp_path: Path, log: bool) -> None:
    X, y = _zscores(2, n=60, p=10)
    if log:
        X = np.exp(X)
    res = discriminate(X, y, model="rf", n_estimators=20, cv_repeats=1, permutations=20, seed=1,
                       log=log)
    sev = severity(X, X["z0"].fillna(0).to_numpy() + np.arange(60) % 4, cv_folds=3,
                   cv_repeats=1, permutations=0, seed=1, log=log)
    st = stratify(X, k=2, bootstraps=2, seed=1, log=log)
    for name, result in (("disc", res), ("sev", sev), ("strat", st)):
        folder = save_model(result, tmp_path / name)
        card = json.loads((folder / "model_card.json").read_text())
        assert card["params"]["log"] is log
        loaded = load_model(folder)
        pd.testing.assert_frame_equal(predict(loaded, X), predict(result, X))


# -- projections -----------------------------------------------------------------------------


def test_projections_on_the_additive_scale() -> None:
    X, _ = _zscores(3, n=40, p=8)
    Z = autoscaled(X, log=False)
    assert list(Z.columns) == list(X.columns)
    np.testing.assert_allclose(Z.mean(), 0, atol=1e-12)
    np.testing.assert_allclose(Z.std(ddof=1), 1)
    filled = X["z5"].fillna(X["z5"].median())  # the missing value takes the median
    assert Z.loc["S004", "z5"] == pytest.approx((X["z5"].median() - filled.mean()) / filled.std())
    pos = np.exp(X)
    pd.testing.assert_frame_equal(autoscaled(pos), log2_autoscaled(pos))
    pcs = pca_scores(X, log=False)
    assert pcs.scores.shape == (40, 2) and np.isfinite(pcs.scores.to_numpy()).all()
    assign = pd.DataFrame({"id": X.index, "cluster": np.arange(40) % 2 + 1, "probability": 1.0})
    values, of = cluster_matrix(X, assign, ["z0", "z3"], log=False)
    assert list(values.columns) == ["z0", "z3"] and len(of) == 40
