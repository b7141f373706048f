"""PLS against R (pls::plsr) and against the published ropls numbers on sacurine.

R numbers: tests/reference/pls_r.R on tests/reference/pls_data.csv (committed output pls_r.csv).
ropls numbers: /work/shared/data/sacurine/PROVENANCE.md (ropls unit tests "T" and vignette "V").
ropls defaults: unit-variance ("standard") scaling of X and y (sd with n - 1), NIPALS.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from sklearn.cross_decomposition import PLSRegression
from sklearn.model_selection import KFold

from hikisig.models.pls import OPLS, fit_metrics, pls1_path, vip

REF = Path(__file__).parent / "reference"
SAC = Path(__file__).parent / "data" / "sacurine"


@pytest.fixture(scope="module")
def rdata() -> tuple[np.ndarray, np.ndarray, pd.DataFrame]:
    d = pd.read_csv(REF / "pls_data.csv", float_precision="round_trip")
    r = pd.read_csv(REF / "pls_r.csv", float_precision="round_trip")
    return d.drop(columns="y").to_numpy(), d["y"].to_numpy(), r


def _r(r: pd.DataFrame, kind: str, a: int) -> np.ndarray:
    sel = r[(r.kind == kind) & (r.ncomp == a)].sort_values("index")
    return sel["value"].to_numpy()


@pytest.mark.parametrize("a", [1, 2, 3])
def test_fitted_and_coefficients_match_r(rdata: tuple, a: int) -> None:
    X, y, r = rdata
    m = PLSRegression(n_components=a, scale=False).fit(X, y)
    np.testing.assert_allclose(m.predict(X).ravel(), _r(r, "fitted", a), rtol=0, atol=1e-8)
    np.testing.assert_allclose(m.coef_.ravel(), _r(r, "coefficient", a), rtol=0, atol=1e-8)
    path = pls1_path(X, y, 3)
    np.testing.assert_allclose(path.predict(X, a), _r(r, "fitted", a), rtol=0, atol=1e-8)
    np.testing.assert_allclose(path.vip(a), vip(m), rtol=0, atol=1e-10)


@pytest.mark.parametrize("a", [1, 2, 3])
def test_cv_predictions_match_r_consecutive_segments(rdata: tuple, a: int) -> None:
    """plsr(validation = "CV", segments = 5, segment.type = "consecutive") = KFold(5, shuffle=False)."""
    X, y, r = rdata
    pred = np.zeros_like(y)
    for tr, te in KFold(5, shuffle=False).split(X):
        pred[te] = PLSRegression(n_components=a, scale=False).fit(X[tr], y[tr]).predict(X[te]).ravel()
    np.testing.assert_allclose(pred, _r(r, "cv", a), rtol=0, atol=1e-8)


def test_fit_metrics_definitions() -> None:
    y = np.array([1.0, 2.0, 4.0, 5.0, 8.0])
    f = np.array([1.5, 2.0, 3.5, 5.5, 7.5])
    cv = np.array([2.0, 2.5, 3.0, 6.0, 7.0])
    m = fit_metrics(y, f, cv, 2)
    ss = ((y - 4.0) ** 2).sum()
    assert m["r2y"] == pytest.approx(1 - 1.0 / ss)
    assert m["rmsee"] == pytest.approx(np.sqrt(1.0 / 2))
    assert m["q2"] == pytest.approx(1 - 4.25 / ss)
    assert m["rmsecv"] == pytest.approx(np.sqrt(4.25 / 5))


# ---------------------------------------------------------------- sacurine (ropls)

@pytest.fixture(scope="module")
def sacurine() -> tuple[pd.DataFrame, pd.DataFrame]:
    X = pd.read_csv(SAC / "sacurine_dataMatrix.tsv", sep="\t", index_col=0).T
    meta = pd.read_csv(SAC / "sacurine_sampleMetadata.tsv", sep="\t", index_col=0).loc[X.index]
    return X, meta


def _uv(X: np.ndarray) -> np.ndarray:
    out: np.ndarray = (X - X.mean(axis=0)) / X.std(axis=0, ddof=1)
    return out


def test_sacurine_plsda_gender(sacurine: tuple) -> None:
    """PLS-DA of gender, 3 components (ropls chose 3): VIP of variable 5 = 0.7034828 (T, 1e-7),
    R2Y(cum) 0.73 and RMSEE 0.262 (V, printed rounded). Q2 0.584 is not compared: ropls computes
    Q2 component-wise (SIMCA's cumulative product of per-component PRESS/RSS on its own segments)."""
    X, meta = sacurine
    y = (meta["gender"] == "M").to_numpy(float)
    Xs = _uv(X.to_numpy())
    m = PLSRegression(n_components=3, scale=False).fit(Xs, y)
    assert vip(m)[4] == pytest.approx(0.7034828, abs=1e-6)
    met = fit_metrics(y, m.predict(Xs).ravel(), None, 3)
    assert round(met["r2y"], 2) == 0.73
    assert round(met["rmsee"], 3) == 0.262
    # autoscaling y too (ropls) changes nothing for one response
    m2 = PLSRegression(n_components=3, scale=True).fit(X.to_numpy(), y)
    np.testing.assert_allclose(vip(m2), vip(m), atol=1e-10)


def test_sacurine_opls_age(sacurine: tuple) -> None:
    """OPLS of age, 1 predictive + 1 orthogonal: fitted value of sample 107 = 42.97439 (T);
    R2Y 0.476 and RMSEE 7.53 (V; ropls's RMSEE counts predictive + orthogonal components, A = 2)."""
    X, meta = sacurine
    age = meta["age"].to_numpy(float)
    m = OPLS(n_orthogonal=1).fit(X.to_numpy(), age)
    fitted = m.predict(X.to_numpy())
    assert fitted[106] == pytest.approx(42.97439, abs=1e-4)
    assert round(m.r2y_, 3) == 0.476
    assert round(fit_metrics(age, fitted, None, 2)["rmsee"], 2) == 7.53
    np.testing.assert_allclose((X.to_numpy() - m.x_mean_) @ m.coef_ + m.y_mean_, fitted, atol=1e-9)


def test_sacurine_oplsda_gender(sacurine: tuple) -> None:
    """OPLS-DA of gender 1 + 1 (T): orthogonal score of sample 1 = 4.980604, VIP4,p of variable 2
    = 1.551154, VIP4,o of variable 3 = 1.642173; R2Y 0.668, RMSEE 0.289 (T comment)."""
    X, meta = sacurine
    y = (meta["gender"] == "M").to_numpy(float)
    m = OPLS(n_orthogonal=1).fit(X.to_numpy(), y)
    assert abs(m.x_scores_ortho_[0, 0]) == pytest.approx(4.980604, abs=1e-5)  # sign is arbitrary
    assert m.vip_[1] == pytest.approx(1.551154, abs=1e-6)
    assert m.vip_ortho_[2] == pytest.approx(1.642173, abs=1e-6)
    assert round(m.r2y_, 3) == 0.668
    assert round(fit_metrics(y, m.predict(X.to_numpy()), None, 2)["rmsee"], 3) == 0.289
    np.testing.assert_allclose(m.transform(X.to_numpy())[:, 1], m.x_scores_ortho_[:, 0], atol=1e-9)


def test_sacurine_pls_age_training_half(sacurine: tuple) -> None:
    """PLS of age on samples 1..91 (T): fitted value of sample 90 = 42.94277 and prediction of
    HU_207 = 36.38991. ropls chose the number of components itself; it is not printed in the
    test. One component reproduces both numbers (2-5 components give 43.59, 42.06, 42.41, 46.54)."""
    X, meta = sacurine
    age = meta["age"].to_numpy(float)
    tr = np.arange(91)
    Xv = X.to_numpy()
    m = PLSRegression(n_components=1, scale=True).fit(Xv[tr], age[tr])
    assert m.predict(Xv[tr]).ravel()[89] == pytest.approx(42.94277, abs=1e-5)
    assert m.predict(X.loc[["HU_207"]].to_numpy()).ravel()[0] == pytest.approx(36.38991, abs=1e-5)
