"""ComBat batch harmonisation: agreement with sva::ComBat, fit/transform, planted effects."""

from __future__ import annotations

import warnings
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from sklearn.base import clone
from sklearn.utils.estimator_checks import parametrize_with_checks

from hikisig.errors import AlignmentError
from hikisig.prep import ComBat, combat

REF = Path(__file__).parent / "reference"
TOL = 1e-6


@pytest.fixture(scope="module")
def table() -> pd.DataFrame:
    return pd.read_csv(REF / "combat_input.csv", index_col="sample")


def _analytes(d: pd.DataFrame) -> list[str]:
    return [c for c in d.columns if c.startswith("a")]


def _with_missing(X: pd.DataFrame) -> pd.DataFrame:
    """The 20 missing cells of combat_sva.R's 'missing' variant."""
    X = X.copy()
    k = np.arange(20)
    vals = X.to_numpy(copy=True)
    vals[(k * 7) % 60, (k * 11) % 29] = np.nan
    return pd.DataFrame(vals, index=X.index, columns=X.columns)


def _quiet(fn, *args, **kwargs):
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", "1 analyte\\(s\\) left unadjusted", UserWarning)
        return fn(*args, **kwargs)


# -- agreement with sva::ComBat ------------------------------------------------------------------

VARIANTS = {
    "parametric": ({}, True),
    "nonparametric": ({"parametric": False}, True),
    "meanonly": ({"mean_only": True}, True),
    "nomod": ({}, False),
    "missing": ({}, True),
}


@pytest.mark.parametrize("variant", list(VARIANTS))
def test_equals_sva(table, variant):
    kwargs, with_group = VARIANTS[variant]
    ref = pd.read_csv(REF / f"combat_sva_{variant}.csv", index_col="sample")
    X = table[_analytes(table)]
    if variant == "missing":
        X = _with_missing(X)
    cov = table[["group"]] if with_group else None
    out = _quiet(combat, X, table["site"], cov, **kwargs)
    assert out.index.equals(X.index) and out.columns.equals(X.columns)
    assert np.array_equal(np.isnan(out.to_numpy()), np.isnan(ref.to_numpy()))
    assert np.nanmax(np.abs(out.to_numpy() - ref.to_numpy())) < TOL
    # the transformer gives the same
    Xt = table[["site", "group", *_analytes(table)]].copy() if with_group else table[["site", *X.columns]]
    Xt = Xt.copy()
    Xt[X.columns] = X
    est = ComBat(covariate_columns=("group",) if with_group else (), **kwargs)
    out_t = _quiet(est.fit_transform, Xt)
    assert np.nanmax(np.abs(out_t.to_numpy() - ref.to_numpy())) < TOL


def test_references_differ(table):
    """The variants are different computations (a mix-up of files would show)."""
    p = pd.read_csv(REF / "combat_sva_parametric.csv", index_col="sample")
    for v in ("nonparametric", "meanonly", "nomod"):
        other = pd.read_csv(REF / f"combat_sva_{v}.csv", index_col="sample")
        assert np.abs(p.to_numpy() - other.to_numpy()).max() > 1e-3


def test_constant_analyte_left_unadjusted(table):
    X = table[_analytes(table)]
    with pytest.warns(UserWarning, match="1 analyte\\(s\\) left unadjusted.*a30"):
        out = combat(X, table["site"], table[["group"]])
    assert np.array_equal(out["a30"].to_numpy(), X["a30"].to_numpy())
    est = _quiet(ComBat(covariate_columns=("group",)).fit, table)
    assert est.adjusted_.tolist() == [True] * 29 + [False]


def test_missing_values_pass_through_and_do_not_poison(table):
    X = table[_analytes(table)].iloc[:, :29]
    Xm = X.copy()
    Xm.iloc[3, 2] = np.nan
    a, b = combat(X, table["site"]), combat(Xm, table["site"])
    assert np.isnan(b.iloc[3, 2]) and np.isfinite(b.drop(columns=X.columns[2]).to_numpy()).all()
    # a whole batch missing for one analyte: that analyte is left as it is, the others are adjusted
    Xm.loc[table["site"] == "B", "a05"] = np.nan
    with pytest.warns(UserWarning, match="a05"):
        c = combat(Xm, table["site"])
    assert np.array_equal(c["a05"].to_numpy(), Xm["a05"].to_numpy(), equal_nan=True)
    assert np.isfinite(c.drop(columns=["a03", "a05"]).to_numpy()).all()
    assert np.abs(c["a01"] - a["a01"]).max() < 0.05


def test_batch_aligned_by_index(table):
    X = table[_analytes(table)].iloc[:, :29]
    shuffled = table["site"].sample(frac=1.0, random_state=1)
    assert np.allclose(combat(X, shuffled).to_numpy(), combat(X, table["site"]).to_numpy())
    with pytest.raises(AlignmentError, match="lacks 1 sample id"):
        combat(X, table["site"].iloc[1:])


def test_errors(table):
    X = table[_analytes(table)].iloc[:, :29]
    with pytest.raises(ValueError, match="at least 2 batches"):
        combat(X, pd.Series("A", index=X.index))
    with pytest.raises(ValueError, match="confounded with batch"):
        combat(X, table["site"], table[["site"]].rename(columns={"site": "s2"}))
    with pytest.raises(ValueError, match="missing value"):
        combat(X, table["site"].where(table.index != "S01"))
    cov = table[["group"]].copy()
    cov.iloc[0, 0] = None
    with pytest.raises(ValueError, match="covariate 'group' has missing values"):
        combat(X, table["site"], cov)


def test_single_sample_batch_forces_mean_only(table):
    X = table[_analytes(table)].iloc[:, :29]
    site = table["site"].copy()
    site.iloc[0] = "D"
    with pytest.warns(UserWarning, match="single sample.*mean-only"):
        a = combat(X, site)
    assert np.allclose(a.to_numpy(), combat(X, site, mean_only=True).to_numpy())


# -- fit on training samples, transform held-out samples -----------------------------------------


def test_fit_train_transform_test(table):
    train_mask = np.arange(len(table)) % 4 != 0
    train, test = table[train_mask], table[~train_mask]
    an = _analytes(table)[:29]
    cols = ["site", "group", *an]
    est = ComBat(covariate_columns=("group",)).fit(train[cols])
    direct = combat(train[an], train["site"], train[["group"]])
    assert np.abs(est.transform(train[cols]).to_numpy() - direct.to_numpy()).max() < 1e-12
    assert np.abs(est.fit_transform(train[cols]).to_numpy() - direct.to_numpy()).max() < 1e-12
    out = est.transform(test[cols])
    assert list(out.columns) == an and out.index.equals(test.index)
    # sensible: close to ComBat fitted on all samples, batch means aligned
    full = combat(table[an], table["site"], table[["group"]]).loc[test.index]
    assert np.abs(out.to_numpy() - full.to_numpy()).mean() < 0.1
    raw_spread = test.groupby("site")[an].mean().std().median()
    adj_spread = out.groupby(test["site"]).mean().std().median()
    full_spread = full.groupby(test["site"]).mean().std().median()
    # 5 test samples per site: the site means keep their sampling noise (about 0.2)
    assert adj_spread < 0.6 * raw_spread and abs(adj_spread - full_spread) < 0.1


def test_transform_without_covariates(table):
    """Absent covariate column: the training mean of its effect; the error is (1 - 1/sqrt(delta*))
    times the covariate effect, and the batch shift is unchanged."""
    an = _analytes(table)[:29]
    cols = ["site", "group", *an]
    est = ComBat(covariate_columns=("group",)).fit(table[cols])
    known = est.transform(table[cols])
    blind = est.transform(table[["site", *an]])
    assert list(blind.columns) == an
    # exact form of the difference
    z = (table["group"] == "control").to_numpy(float)[:, None] - est.design_mean_[None, :]
    effect = z @ est.beta_
    codes = pd.Index(est.batches_).get_indexer(table["site"])
    expected = (1.0 - 1.0 / np.sqrt(est.delta_star_[codes])) * effect
    assert np.abs((known - blind).to_numpy() - expected).max() < 1e-10
    assert est.design_columns_ == ["group[control]"]
    # small compared with the correction itself
    correction = np.abs(known.to_numpy() - table[an].to_numpy()).mean()
    assert np.abs((known - blind).to_numpy()).mean() < 0.25 * correction
    # missing cells of a present covariate column take the same mean
    partly = table[cols].copy()
    partly["group"] = partly["group"].where(np.arange(len(table)) % 2 == 0)
    mixed = est.transform(partly)
    odd = np.arange(len(table)) % 2 == 1
    assert np.allclose(mixed[odd].to_numpy(), blind[odd].to_numpy())
    assert np.allclose(mixed[~odd].to_numpy(), known[~odd].to_numpy())


def test_transform_errors(table):
    an = _analytes(table)[:29]
    est = ComBat(covariate_columns=("group",)).fit(table[["site", "group", *an]])
    new = table[["site", "group", *an]].iloc[:3].copy()
    new["site"] = ["A", "Z", "Z"]
    with pytest.raises(ValueError, match="batch\\(es\\) not seen in fit: 'Z'"):
        est.transform(new)
    new["site"] = "A"
    new["group"] = "other"
    with pytest.raises(ValueError, match="level\\(s\\) not seen in fit: 'other'"):
        est.transform(new)
    with pytest.raises(ValueError, match="missing 'a01'"):
        est.transform(table[["site", "group", *an[1:]]])
    with pytest.raises(ValueError, match="no batch column 'batch'"):
        ComBat(batch_column="batch").fit(table[["site", *an]])
    with pytest.raises(ValueError, match="int"):
        ComBat().fit(table[an].to_numpy())


def test_numpy_input_with_positions(table):
    an = _analytes(table)[:29]
    codes = pd.factorize(table["site"])[0].astype(float)
    arr = np.column_stack([codes, table[an].to_numpy()])
    out = ComBat(batch_column=0).fit_transform(arr)
    assert isinstance(out, np.ndarray) and out.shape == (60, 29)
    assert np.allclose(out, combat(table[an], table["site"]).to_numpy())
    est = ComBat(batch_column=0).fit(arr)
    assert est.get_feature_names_out()[:2].tolist() == ["x1", "x2"]
    pd_out = clone(est).set_output(transform="pandas").fit(arr).transform(arr)
    assert list(pd_out.columns[:2]) == ["x1", "x2"]


# -- planted batch and group effects --------------------------------------------------------------


def _anova_r2(Y: np.ndarray, labels: np.ndarray) -> np.ndarray:
    """R^2 of a one-way ANOVA of each column on ``labels``."""
    total = ((Y - Y.mean(axis=0)) ** 2).sum(axis=0)
    within = sum(((Y[labels == g] - Y[labels == g].mean(axis=0)) ** 2).sum(axis=0)
                 for g in np.unique(labels))
    return 1.0 - within / total


def test_planted_effects():
    """Data from the ComBat model: site location and scale offsets, a group effect of 1 on 50
    of 200 analytes, unbalanced across sites."""
    rng = np.random.default_rng(7)
    n_per, p = 40, 200
    site = np.repeat(["s1", "s2", "s3", "s4"], n_per)
    share = np.repeat([0.3, 0.45, 0.55, 0.7], n_per)
    group = np.where(rng.random(site.size) < share, "case", "control")
    case = group == "case"
    effect = np.where(np.arange(p) < 50, 1.0, 0.0)
    X = rng.normal(10.0, 0.5, p) + np.outer(case, effect)
    for k, s in enumerate(np.unique(site)):
        rows = site == s
        noise = rng.normal(0.0, 1.0, (rows.sum(), p)) * rng.uniform(0.6, 1.6, p)
        X[rows] += rng.normal(k - 1.5, 1.0, p) + noise
    frame = pd.DataFrame(X, columns=[f"m{j}" for j in range(p)])
    frame.insert(0, "group", group)
    frame.insert(0, "site", site)
    before = _anova_r2(X, site)
    out = ComBat(covariate_columns=("group",)).fit_transform(frame).to_numpy()
    after = _anova_r2(out, site)
    assert np.median(before) > 0.3
    assert np.median(after) < 0.01
    # the group effect: least squares on group + site (unbiased) before, difference of means after
    D = np.column_stack([case, pd.get_dummies(site).to_numpy(float)])
    oracle = np.linalg.lstsq(D, X[:, :50], rcond=None)[0][0]
    kept = out[case, :50].mean(axis=0) - out[~case, :50].mean(axis=0)
    assert abs(kept.mean() / oracle.mean() - 1.0) < 0.03
    assert abs(oracle.mean() - 1.0) < 0.05


# -- scikit-learn estimator checks ---------------------------------------------------------------

# ComBat declares categorical input (its batch and covariate columns are categorical), so the
# check data are rounded to small integers and column 0, the batch column, has a few levels.
_NAN_BATCH = ("the check puts missing values into column 0, the batch column; a sample without "
              "a batch label cannot be harmonised, so fit names the missing labels")


def _expected_failed_checks(est: ComBat) -> dict[str, str]:
    return {
        "check_estimators_pickle": _NAN_BATCH,
        "check_estimators_pickle(readonly_memmap=True)": _NAN_BATCH,
    }


@parametrize_with_checks([ComBat(batch_column=0), ComBat(batch_column=0, parametric=False)],
                         expected_failed_checks=_expected_failed_checks, xfail_strict=True)
def test_sklearn_compatible(estimator, check):
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", ".*analyte\\(s\\) left unadjusted", UserWarning)
        warnings.filterwarnings("ignore", ".*single sample", UserWarning)
        check(estimator)


def test_skops_round_trip(table):
    """Models are saved with skops (hikisig.models.persist); every type is a hikisig or numpy one."""
    import skops.io as sio
    an = _analytes(table)[:29]
    est = ComBat(covariate_columns=("group",)).fit(table[["site", "group", *an]])
    data = sio.dumps(est)
    untrusted = sio.get_untrusted_types(data=data)
    assert all(t.startswith(("hikisig.", "numpy.", "builtins.")) for t in untrusted)
    back = sio.loads(data, trusted=untrusted)
    new = table[["site", *an]]
    assert np.array_equal(back.transform(new).to_numpy(), est.transform(new).to_numpy())
