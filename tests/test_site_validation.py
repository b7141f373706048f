"""Sites: leave-site-out validation of the models and ComBat fitted inside training folds."""

from __future__ import annotations

import csv
import importlib
import json
import warnings
from pathlib import Path
from typing import ClassVar

import numpy as np
import pandas as pd
import pytest

from helpers import Ran, hikisig
from hikisig.analysis import modelling
from hikisig.analysis.study import load_study
from hikisig.cohort.dataset import Dataset
from hikisig.config import Design, Preprocessing, Source
from hikisig.errors import HikisigError
from hikisig.models import discriminate as disc
from hikisig.models.persist import load_model
from hikisig.models.severity import severity

combat_module = importlib.import_module("hikisig.prep.combat")

SITES = ("S1", "S2", "S3")


def three_sites(seed: int = 0, sizes: tuple[int, ...] = (20, 16, 14), effect: float = 1.0,
                p: int = 10, offset: float = 1.0, case_share: tuple[float, ...] | None = None
                ) -> tuple[pd.DataFrame, np.ndarray, np.ndarray]:
    """Concentrations of 3 sites: a planted case effect (log scale) on the first 3 analytes and
    a multiplicative offset per site and analyte."""
    rng = np.random.default_rng(seed)
    blocks, ys, sites = [], [], []
    for k, n in enumerate(sizes):
        share = 0.5 if case_share is None else case_share[k]
        y = (np.arange(n) < round(n * share)).astype(int)
        L = rng.normal(size=(n, p))
        L[:, :3] += effect * y[:, None]
        L += rng.normal(0.0, offset, size=p)  # the site's offsets (log scale)
        blocks.append(np.exp(L))
        ys.append(y)
        sites += [SITES[k]] * n
    X = pd.DataFrame(np.vstack(blocks), columns=[f"m{j}" for j in range(p)],
                     index=[f"id{i:03d}" for i in range(sum(sizes))])
    return X, np.concatenate(ys), np.asarray(sites, dtype=object)


def fast(**kw):
    return {"model": "rf", "permutations": 50, "n_estimators": 25, **kw}


@pytest.fixture(scope="module")
def data():
    return three_sites()


@pytest.fixture(scope="module")
def loso(data):
    X, y, s = data
    return disc.discriminate(X, y, sites=s, cv="leave-site-out", **fast())


def test_leave_site_out_one_fold_per_site(data):
    _, y, s = data
    names, folds = disc.site_splits(s, y)
    assert names == list(SITES) and len(folds) == 3
    for name, (tr, te) in zip(names, folds, strict=True):
        assert set(s[te]) == {name} and name not in set(s[tr])
        assert len(tr) + len(te) == len(y)


def test_leave_site_out_discrimination(loso, data):
    y = data[1]
    r = loso
    assert r.cv == "leave-site-out" and r.n_sites == 3
    assert "one fold per site (3 sites" in r.cv_scheme and "no repeats" in r.cv_scheme
    assert r.params["cv_repeats"] == 1 and r.params["cv_folds"] == 3
    assert len(r.tables["per_repeat"]) == 1
    assert r.auc_ci_low <= r.auc <= r.auc_ci_high
    assert "stratified by site and class" in r.auc_ci_method
    oof = r.tables["oof_predictions"]
    assert len(oof) == len(y)
    site = r.tables["per_site"]
    # the headline AUC: within-site pairs, i.e. the per-site AUCs weighted by their pairs
    pairs = site["n_case"] * site["n_control"]
    assert r.auc == pytest.approx(float((site["auc"] * pairs).sum() / pairs.sum()))
    # the pooled AUC: every out-of-site prediction together
    from sklearn.metrics import roc_auc_score
    assert r.auc_pooled == pytest.approx(roc_auc_score(oof["y_true"], oof["y_prob"]))
    assert list(site.columns[:6]) == ["site", "n_case", "n_control", "auc", "auc_ci_low",
                                      "auc_ci_high"]
    assert list(site["site"]) == list(SITES) and len(site) == 3
    assert (site["auc_ci_low"] <= site["auc"]).all() and (site["auc"] <= site["auc_ci_high"]).all()
    assert site["n_case"].sum() + site["n_control"].sum() == len(y)
    m = r.to_metrics()
    assert m["cv"] == "leave-site-out" and m["n_sites"] == 3
    assert "transportability" in r.verdict
    assert r.validated  # the planted effect transports


def test_site_lacking_a_class_gets_nan_with_note():
    X, y, s = three_sites(sizes=(20, 16, 10), case_share=(0.5, 0.5, 0.0))
    r = disc.discriminate(X, y, sites=s, cv="leave-site-out", **fast(permutations=20))
    row = r.tables["per_site"].set_index("site").loc["S3"]
    assert np.isnan(row["auc"]) and "no cases" in row["note"]
    assert np.isfinite(r.auc)


def test_naive_cv_is_optimistic_when_sites_are_confounded_with_cases():
    # no case effect at all; site offsets and case share go together
    X, y, s = three_sites(seed=4, sizes=(30, 30, 30), effect=0.0, offset=1.5,
                          case_share=(0.8, 0.5, 0.2))
    naive = disc.discriminate(X, y, sites=s, cv_repeats=2, **fast(permutations=100))
    site = disc.discriminate(X, y, sites=s, cv="leave-site-out", **fast(permutations=100))
    assert naive.auc > 0.65 and naive.validated
    # labels permuted within sites: the site-driven ranking is not mistaken for transport
    assert not site.validated


def test_leave_site_out_severity(data):
    X, _, s = data
    score = 5 * np.log(X["m0"].to_numpy()) - 5 * np.log(X["m0"]).groupby(s).transform("mean").to_numpy()
    score += np.random.default_rng(1).normal(size=len(score))
    r = severity(X, score, sites=s, cv="leave-site-out", permutations=20)
    assert r.cv == "leave-site-out" and r.n_sites == 3 and "no repeats" in r.cv_scheme
    t = r.tables["per_site"]
    assert list(t.columns[:4]) == ["site", "n", "q2", "rmse"] and list(t["site"]) == list(SITES)
    assert t["n"].sum() == len(score)
    pred = r.tables["observed_predicted"]["predicted_cv"].to_numpy()
    pooled = 1 - ((score - pred) ** 2).sum() / ((score - score.mean()) ** 2).sum()
    assert r.q2 == pytest.approx(pooled)
    assert r.to_metrics()["cv"] == "leave-site-out"


def test_errors_one_site_missing_sites(data):
    X, y, s = data
    with pytest.raises(HikisigError, match="at least 2 sites"):
        disc.discriminate(X, y, sites=np.full(len(y), "A"), cv="leave-site-out", **fast())
    with pytest.raises(HikisigError, match="needs each sample's site"):
        disc.discriminate(X, y, cv="leave-site-out", **fast())
    with pytest.raises(HikisigError, match="needs each sample's site"):
        severity(X, y.astype(float), harmonise="combat")
    with pytest.raises(HikisigError, match="test_size"):
        disc.discriminate(X, y, sites=s, cv="leave-site-out", test_size=0.25, **fast())
    # all cases at one site: the other sites have none to train on
    yy = (s == "S1").astype(int)
    with pytest.raises(HikisigError, match=r"without site 'S1'.*no cases"):
        disc.discriminate(X, yy, sites=s, cv="leave-site-out", **fast())


class _RecordingComBat(combat_module.ComBat):
    fits: ClassVar[list[dict]] = []

    def fit(self, X, y=None):
        type(self).fits.append({"index": list(X.index), "columns": list(X.columns), "y": y,
                                "covariates": tuple(self.covariate_columns)})
        return super().fit(X, y)


def test_combat_in_folds_never_sees_test_rows_or_labels(data, monkeypatch):
    X, y, s = data
    monkeypatch.setattr(combat_module, "ComBat", _RecordingComBat)
    _RecordingComBat.fits = []
    r = disc.discriminate(X, y, sites=s, cv="leave-site-out", harmonise="combat",
                          **fast(permutations=10))
    fits = _RecordingComBat.fits
    site_of = dict(zip(X.index, s, strict=True))
    assert fits
    for f in fits:  # no labels: no y, no covariate, only analytes and the site
        assert f["y"] is None and f["covariates"] == ()
        assert set(f["columns"]) == set(X.columns) | {disc.SITE_COLUMN}
    # each leave-site-out fold's ComBat is fitted on the other sites' samples only
    fold_fits = [f for f in fits if len({site_of[i] for i in f["index"]}) == 2]
    held = {next(iter(set(SITES) - {site_of[i] for i in f["index"]})) for f in fold_fits}
    assert held == set(SITES)
    for f in fold_fits:
        left = set(SITES) - {site_of[i] for i in f["index"]}
        assert not any(site_of[i] in left for i in f["index"])
    assert r.harmonise == "combat" and "ComBat" in " ".join(r.params["preprocessing"])


def test_combat_removes_site_offsets_in_folds():
    X, y, s = three_sites(seed=2, offset=2.0)
    plain = disc.discriminate(X, y, sites=s, cv="leave-site-out", **fast(permutations=20))
    harmonised = disc.discriminate(X, y, sites=s, cv="leave-site-out", harmonise="combat",
                                   **fast(permutations=20))
    assert harmonised.auc > plain.auc


def test_combat_model_features_exclude_site_and_predict_needs_it(data, tmp_path):
    X, y, s = data
    r = disc.discriminate(X, y, sites=s, harmonise="combat", cv_repeats=1,
                          **fast(permutations=10))
    assert disc.SITE_COLUMN not in r.features and r.features == list(X.columns)
    assert disc.SITE_COLUMN not in set(r.tables["importance"]["analyte"])
    assert [f.name for f in r.training.features] == list(X.columns)
    folder = r.save(tmp_path / "m")
    assert disc.SITE_COLUMN not in (folder / "features.json").read_text()
    loaded = load_model(folder)
    assert loaded.harmonise == "combat"
    with pytest.raises(HikisigError, match="give each sample's site"):
        modelling.predict(loaded, X)
    fresh = modelling.predict(r, X, site=pd.Series(s, index=X.index))
    again = modelling.predict(loaded, X, site=pd.Series(s, index=X.index))
    np.testing.assert_allclose(fresh["probability"], again["probability"])
    # a site the model never saw: harmonised by its own location and scale (>= 2 samples)
    new = X.iloc[:6] * 3.0
    out = modelling.predict(loaded, new, site=np.full(6, "S9"))
    assert out["probability"].between(0, 1).all()
    with pytest.raises(HikisigError, match="not among the training sites"):
        modelling.predict(loaded, new.iloc[:1], site=["S9"])


def test_combat_severity_and_unseen_site_location_scale(data):
    X, y, s = data
    score = np.log(X["m1"].to_numpy()) + np.random.default_rng(0).normal(size=len(y))
    r = severity(X, score, sites=s, harmonise="combat", cv="leave-site-out", permutations=10)
    assert r.features == list(X.columns) and "combat" in r.model.named_steps
    step = disc.SiteComBat().fit(disc.with_site(np.log2(X[s != "S3"]), s[s != "S3"]))
    held = np.log2(X[s == "S3"])
    out = step.transform(disc.with_site(held, s[s == "S3"]))
    # the unseen site is brought to the training sites' harmonised mean and spread
    np.testing.assert_allclose(out.mean().to_numpy(), step.mean_, atol=1e-9)
    np.testing.assert_allclose(out.std(ddof=0).to_numpy(), step.scale_, rtol=1e-9)


def dataset(X: pd.DataFrame, y: np.ndarray, s: np.ndarray) -> Dataset:
    obs = pd.DataFrame({"group": np.where(y == 1, "case", "control"), "centre": s}, index=X.index)
    return Dataset(X, obs)


def test_core_on_a_dataset(data):
    X, y, s = data
    ds = dataset(X, y, s)
    r = modelling.discriminate(ds, group="group", case="case", site="centre",
                               cv="leave-site-out", **fast(permutations=10))
    assert len(r.tables["per_site"]) == 3 and r.params["site_column"] == "centre"
    with pytest.raises(HikisigError, match="needs a site column"):
        modelling.discriminate(ds, group="group", case="case", cv="leave-site-out", **fast())
    with pytest.raises(HikisigError, match="nowhere"):
        modelling.discriminate(ds, group="group", case="case", site="nowhere",
                               cv="leave-site-out", **fast())


def write_csv(path: Path, X: pd.DataFrame, y: np.ndarray, s: np.ndarray, score=None) -> Path:
    frame = X.copy()
    frame.insert(0, "site", s)
    frame.insert(0, "group", np.where(y == 1, "case", "control"))
    if score is not None:
        frame.insert(0, "hq25", score)
    frame.index.name = "id"
    frame.to_csv(path)
    return path


def test_load_study_harmonises_the_statistics_only(data, tmp_path):
    X, y, s = data
    path = write_csv(tmp_path / "c.csv", X, y, s)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        study = load_study(Source(file=str(path)), Design(sex="", site="site"),
                           Preprocessing(harmonise="combat"))
    assert study.design.site == "site"
    raw, stats = study.data.X, study.stats_data.X
    np.testing.assert_allclose(raw.to_numpy(), X.loc[raw.index, raw.columns].to_numpy())
    spread = lambda V: np.log2(V).groupby(s).mean().std().mean()  # noqa: E731
    assert spread(stats) < 0.3 * spread(raw)
    assert study.steps and "ComBat" in study.steps[0] and "group" in study.steps[0]
    with pytest.raises(HikisigError, match="nowhere"):
        load_study(Source(file=str(path)), Design(sex="", site="nowhere"))


def run(*args: str, check: bool = True) -> Ran:
    proc = hikisig("-q", *args)
    if check and proc.returncode != 0:
        raise AssertionError(proc.stderr)
    return proc


def test_cli_leave_site_out_and_combat(data, tmp_path):
    X, y, s = data
    score = np.log(X["m0"].to_numpy()) * 5 + 50
    path = write_csv(tmp_path / "c.csv", X, y, s, score)
    out = tmp_path / "loso"
    run("model", "discriminate", str(path), "--cv", "leave-site-out", "--site-column", "site",
        "--n-estimators", "25", "--permutations", "20", "--out", str(out))
    m = json.loads((out / "metrics.json").read_text())
    assert m["cv"] == "leave-site-out" and m["n_sites"] == 3
    with open(out / "per_site.csv") as fh:
        assert [r["site"] for r in csv.DictReader(fh)] == list(SITES)
    sev = tmp_path / "sev"
    run("model", "severity", str(path), "--cv", "leave-site-out", "--site-column", "site",
        "--all-participants", "--permutations", "10", "--out", str(sev))
    assert len(pd.read_csv(sev / "per_site.csv")) == 3
    cb = tmp_path / "cb"
    run("model", "discriminate", str(path), "--harmonise", "combat", "--site-column", "site",
        "--n-estimators", "25", "--cv-repeats", "1", "--permutations", "10", "--out", str(cb))
    bad = run("predict", "--model", str(cb), str(path), check=False)
    assert bad.returncode == 2 and "site" in bad.stderr and "Traceback" not in bad.stderr
    good = run("predict", "--model", str(cb), str(path), "--site-column", "site")
    assert len(pd.read_csv(pd.io.common.StringIO(good.stdout))) == len(y)


def test_cli_errors_are_one_line(data, tmp_path):
    X, y, _ = data
    one = write_csv(tmp_path / "one.csv", X, y, np.full(len(y), "A"))
    r = run("model", "discriminate", str(one), "--cv", "leave-site-out", "--site-column", "site",
            "--out", str(tmp_path / "x"), check=False)
    assert r.returncode == 2 and "at least 2 sites" in r.stderr
    assert len([line for line in r.stderr.splitlines() if line.startswith("error")]) == 1
    r = run("model", "discriminate", str(one), "--cv", "leave-site-out", "--site-column", "nowhere",
            "--out", str(tmp_path / "x"), check=False)
    assert r.returncode == 2 and "nowhere" in r.stderr and "Traceback" not in r.stderr
    r = run("model", "discriminate", str(one), "--cv", "leave-site-out", "--out",
            str(tmp_path / "x"), check=False)
    assert r.returncode == 2 and "site" in r.stderr and "Traceback" not in r.stderr
    r = run("model", "discriminate", str(one), "--cv", "sideways", "--out", str(tmp_path / "x"),
            check=False)
    assert r.returncode == 2 and "--cv" in r.stderr
