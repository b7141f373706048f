"""Preprocessing transformers: scikit-learn conventions and hand-computed results."""

from __future__ import annotations

import warnings

import numpy as np
import pandas as pd
import pytest
import sklearn
from sklearn.base import clone
from sklearn.impute import KNNImputer, SimpleImputer
from sklearn.pipeline import make_pipeline
from sklearn.utils.estimator_checks import parametrize_with_checks

from hikisig.prep import (
    LODImputer,
    LogTransformer,
    MedianNormaliser,
    MinFractionImputer,
    MissingFilter,
    PQNormaliser,
    QCDriftCorrector,
    QCRSDFilter,
    Scaler,
    TotalSumNormaliser,
    glog,
    make_imputer,
)

# -- scikit-learn estimator checks ---------------------------------------------------------------

ESTIMATORS = [
    MissingFilter(),
    MinFractionImputer(),
    MinFractionImputer(nonpositive="keep"),
    LODImputer(),
    LODImputer(nonpositive="missing"),
    PQNormaliser(),
    TotalSumNormaliser(),
    MedianNormaliser(),
    LogTransformer(),
    # The same transformer where the check data are in its domain (see _ZERO_DATA_CHECKS).
    LogTransformer(offset=1.0),
    LogTransformer(base="glog"),
    Scaler(),
    Scaler(method="vast"),
    QCRSDFilter(),
    QCDriftCorrector(),
]

# For estimators tagged positive_only, scikit-learn shifts its check data by X - X.min(), so
# every data set of these checks holds an exact zero. log2(0) is undefined and LogTransformer
# without an offset must reject it (test_log_of_zero_names_the_feature); the same transformer
# with offset=1 or base="glog" passes every check.
_ZERO_DATA_CHECKS = (
    "check_dict_unchanged", "check_dont_overwrite_parameters", "check_dtype_object",
    "check_estimators_dtypes", "check_estimators_fit_returns_self",
    "check_estimators_overwrite_params", "check_estimators_pickle",
    "check_estimators_pickle(readonly_memmap=True)", "check_f_contiguous_array_estimator",
    "check_fit2d_1feature", "check_fit2d_1sample", "check_fit2d_predict1d",
    "check_fit_check_is_fitted", "check_fit_idempotent", "check_fit_score_takes_y",
    "check_methods_sample_order_invariance", "check_methods_subset_invariance",
    "check_n_features_in", "check_n_features_in_after_fitting", "check_pipeline_consistency",
    "check_readonly_memmap_input", "check_transformer_data_not_an_array",
    "check_transformer_general", "check_transformer_general(readonly_memmap=True)",
    "check_transformer_preserve_dtypes",
)


def _expected_failed_checks(est: object) -> dict[str, str]:
    if isinstance(est, Scaler):
        why = ("scikit-learn's sparse-input check special-cases the class name 'Scaler' (the old name "
               "of its StandardScaler) and calls set_params(with_mean=False), a parameter this "
               "Scaler does not have")
        return {"check_estimator_sparse_array": why, "check_estimator_sparse_matrix": why}
    if isinstance(est, QCDriftCorrector):
        why = ("without an explicit `order`, the row position is the injection order, so a "
               "permuted or partial set of rows is a different run with a different correction")
        return {"check_methods_sample_order_invariance": why, "check_methods_subset_invariance": why}
    if isinstance(est, MinFractionImputer | LODImputer) and est.nonpositive == "missing":
        why = ("iris minus its mean has a feature without a positive value; with "
               "nonpositive='missing' values <= 0 are below detection, so there is no minimum to "
               "learn and fit names the feature (nonpositive='keep' passes the check)")
        return {"check_positive_only_tag_during_fit": why}
    if isinstance(est, LogTransformer) and est.base != "glog" and est.offset == 0:
        why = "the check data contain an exact zero, which a plain log without offset must reject"
        return dict.fromkeys(_ZERO_DATA_CHECKS, why)
    return {}


@parametrize_with_checks(ESTIMATORS, expected_failed_checks=_expected_failed_checks, xfail_strict=True)
def test_sklearn_compatible(estimator, check):
    with warnings.catch_warnings():
        # QCRSDFilter drops every feature of the noisy check data (and says so).
        warnings.filterwarnings("ignore", "No features were selected", UserWarning)
        check(estimator)


# -- helpers -------------------------------------------------------------------------------------


def _frame(X: np.ndarray, names: list[str] | None = None) -> pd.DataFrame:
    names = names or [f"m{j}" for j in range(X.shape[1])]
    return pd.DataFrame(X, columns=names, index=[f"s{i}" for i in range(X.shape[0])])


def _lognormal(n: int, p: int, seed: int = 0, missing: float = 0.0) -> np.ndarray:
    rng = np.random.default_rng(seed)
    X = rng.lognormal(3.0, 0.5, size=(n, p))
    if missing:
        X[rng.random((n, p)) < missing] = np.nan
    return X


# -- missing values ------------------------------------------------------------------------------


def test_missing_filter_overall_fraction():
    X = np.array([[1, np.nan, np.nan], [2, 3, np.nan], [3, 4, np.nan], [4, 5, 6.0], [5, 6, 7.0]])
    f = MissingFilter(max_missing=0.2).fit(X)
    np.testing.assert_allclose(f.missing_fraction_, [0.0, 0.2, 0.6])
    np.testing.assert_array_equal(f.support_, [True, True, False])
    assert f.transform(X).shape == (5, 2)
    np.testing.assert_array_equal(f.get_feature_names_out(), ["x0", "x1"])


def test_missing_filter_per_group_keeps_feature_missing_in_one_group_only():
    # m1 is absent in every control but present in every case: 50 % missing overall.
    X = _frame(np.array([[1, np.nan, np.nan], [2, np.nan, 1], [3, np.nan, np.nan], [4, np.nan, 2],
                         [5, 9.0, np.nan], [6, 8.0, 3], [7, 7.0, np.nan], [8, 6.0, 4]]))
    y = ["control"] * 4 + ["case"] * 4
    assert MissingFilter().fit(X).get_feature_names_out().tolist() == ["m0"]
    f = MissingFilter(per_group=True).fit(X, y)
    assert f.get_feature_names_out().tolist() == ["m0", "m1"]
    np.testing.assert_array_equal(f.groups_, ["case", "control"])
    np.testing.assert_allclose(f.group_missing_fraction_, [[0, 0, 0.5], [0, 1, 0.5]])
    with pytest.raises(ValueError, match="group labels"):
        MissingFilter(per_group=True).fit(X)


def test_half_min_imputation():
    X = np.array([[4.0, np.nan], [2.0, 10.0], [np.nan, 8.0], [6.0, np.nan]])
    imp = MinFractionImputer().fit(X)
    np.testing.assert_allclose(imp.min_, [2.0, 8.0])
    np.testing.assert_allclose(imp.transform(X), [[4, 4], [2, 10], [1, 8], [6, 4]])
    # statistics come from the training data only
    np.testing.assert_allclose(imp.transform(np.array([[np.nan, np.nan]])), [[1, 4]])
    np.testing.assert_allclose(MinFractionImputer(fraction=0.2).fit_transform(X)[2, 0], 0.4)


def test_half_min_treats_values_below_detection_as_missing():
    # a kit export: zeros (and a negative value) stand for "below detection"
    X = _frame(np.array([[4.0, 0.0], [2.0, 10.0], [0.0, 8.0], [np.nan, -1.0], [6.0, 12.0]]),
               ["Orn", "Arg"])
    imp = MinFractionImputer().fit(X)
    assert imp.nonpositive == "missing"
    np.testing.assert_allclose(imp.min_, [2.0, 8.0])  # positive training values only
    np.testing.assert_allclose(imp.transform(X), [[4, 4], [2, 10], [1, 8], [1, 4], [6, 12]])
    # new samples: values <= 0 are replaced like NaN, positive values are kept
    new = _frame(np.array([[0.0, -3.0], [0.5, np.nan]]), ["Orn", "Arg"])
    np.testing.assert_allclose(imp.transform(new), [[1, 4], [0.5, 4]])
    # the pipeline of the models: no -inf, no error
    out = make_pipeline(MinFractionImputer(), LogTransformer()).fit_transform(X)
    assert np.isfinite(out).all()
    # the old behaviour on request
    keep = MinFractionImputer(nonpositive="keep").fit(X)
    np.testing.assert_allclose(keep.min_, [0.0, -1.0])
    np.testing.assert_allclose(keep.transform(X)[:, 0], [4, 2, 0, 0, 6])
    np.testing.assert_allclose(keep.transform(X)[:, 1], [0, 10, 8, -1, 12])
    with pytest.raises(ValueError, match="unknown nonpositive 'zero'; valid values: 'missing', 'keep'"):
        MinFractionImputer(nonpositive="zero").fit(X)
    assert make_imputer("half_min", nonpositive="keep").nonpositive == "keep"


def test_imputer_names_features_without_a_positive_value():
    X = _frame(np.array([[1.0, 0.0, np.nan], [2.0, -1.0, np.nan]]), ["Orn", "Arg", "Cit"])
    with pytest.raises(ValueError, match=r"'Cit' are missing in every training sample"):
        MinFractionImputer().fit(X)
    with pytest.raises(ValueError, match=r"'Arg' have no positive value.*nonpositive='keep'"):
        MinFractionImputer().fit(X[["Orn", "Arg"]])
    np.testing.assert_allclose(MinFractionImputer(nonpositive="keep").fit(X[["Orn", "Arg"]]).min_,
                               [1.0, -1.0])
    # LOD imputation: values <= 0 kept by default, replaced with nonpositive="missing"
    Z = _frame(np.array([[10.0, 0.0], [np.nan, 6.0], [12.0, np.nan]]), ["Orn", "Arg"])
    np.testing.assert_allclose(LODImputer(lod={"Orn": 4.0}).fit_transform(Z),
                               [[10, 0], [2, 6], [12, 0]])
    np.testing.assert_allclose(LODImputer(lod={"Orn": 4.0}, nonpositive="missing").fit_transform(Z),
                               [[10, 3], [2, 6], [12, 3]])
    with pytest.raises(ValueError, match="'Arg' have no positive value"):
        LODImputer(lod={"Orn": 4.0}, nonpositive="missing").fit(Z.assign(Arg=[0.0, 0.0, np.nan]))


def test_other_imputers_then_log_name_analyte_and_sample():
    X = _frame(np.array([[4.0, 0.0], [2.0, 10.0], [np.nan, 8.0], [6.0, 12.0]]), ["Orn", "Arg"])
    for imputer in (LODImputer(lod={"Orn": 1.0}), KNNImputer(n_neighbors=2),
                    SimpleImputer(strategy="median")):
        pipe = make_pipeline(imputer, LogTransformer()).set_output(transform="pandas")
        with pytest.raises(ValueError, match=r"log2 needs positive values; values <= 0 in "
                                             r"feature\(s\) 'Arg' in sample\(s\) 's0'"):
            pipe.fit(X)
    # without names: column and row positions, never a made-up name like x1
    with pytest.raises(ValueError, match=r"column 1 in sample\(s\) row 0") as err:
        make_pipeline(SimpleImputer(strategy="median"), LogTransformer()).fit(X)
    assert "x1" not in str(err.value)


def test_imputer_rejects_all_missing_column():
    X = _frame(np.array([[1.0, np.nan], [2.0, np.nan]]), ["Orn", "Arg"])
    with pytest.raises(ValueError, match="'Arg'"):
        MinFractionImputer().fit(X)
    with pytest.raises(ValueError, match="'Arg'"):
        LODImputer(lod={"Orn": 1.0}).fit(X)
    # with a known LOD the column can be filled
    out = LODImputer(lod={"Arg": 3.0}).fit_transform(X)
    np.testing.assert_allclose(out[:, 1], [1.5, 1.5])


def test_lod_imputer_array_dict_and_fallback():
    X = _frame(np.array([[10.0, np.nan, 7.0], [np.nan, 5.0, np.nan], [12.0, 6.0, 9.0]]),
               ["Orn", "Arg", "Cit"])
    imp = LODImputer(lod={"Orn": 4.0, "Arg": 2.0}).fit(X)
    # Cit has no LOD: half its training minimum (7 / 2)
    np.testing.assert_allclose(imp.fill_values_, [2.0, 1.0, 3.5])
    np.testing.assert_allclose(imp.lod_, [4.0, 2.0, np.nan])
    out = imp.transform(X)
    np.testing.assert_allclose(out, [[10, 1, 7], [2, 5, 3.5], [12, 6, 9]])
    series = LODImputer(lod=pd.Series({"Arg": 2.0, "Orn": 4.0})).fit(X)  # matched by name
    np.testing.assert_allclose(series.fill_values_, imp.fill_values_)
    arr = LODImputer(lod=[4.0, 2.0, np.nan], fraction=0.25).fit(X.to_numpy())
    np.testing.assert_allclose(arr.fill_values_, [1.0, 0.5, 1.75])
    with pytest.raises(ValueError, match="unknown feature"):
        LODImputer(lod={"Lys": 1.0}).fit(X)
    with pytest.raises(ValueError, match="one value per feature"):
        LODImputer(lod=[1.0, 2.0]).fit(X)
    with pytest.raises(ValueError, match="positive"):
        LODImputer(lod=[1.0, 0.0, 1.0]).fit(X)


def test_make_imputer():
    assert isinstance(make_imputer("half_min"), MinFractionImputer)
    assert make_imputer("half_min").fraction == 0.5
    assert make_imputer("min_fraction", fraction=0.2).fraction == 0.2
    assert make_imputer("lod", lod={"a": 1.0}).lod == {"a": 1.0}
    knn = make_imputer("knn", n_neighbors=3)
    assert isinstance(knn, KNNImputer) and knn.n_neighbors == 3
    med = make_imputer("median")
    assert isinstance(med, SimpleImputer) and med.strategy == "median"
    with pytest.raises(ValueError, match="'half_min', 'min_fraction', 'lod', 'knn', 'median'"):
        make_imputer("mean")


# -- normalisation -------------------------------------------------------------------------------


def test_pqn_removes_a_dilution():
    a = np.array([3.0, 10.0, 0.5, 40.0, 7.0])
    X = np.vstack([a, a / 2, [2.0, 12.0, 0.4, 30.0, 9.0], [4.0, 9.0, 0.6, 50.0, 6.0]])
    pqn = PQNormaliser().fit(X)
    out = pqn.transform(X)
    np.testing.assert_allclose(out[0], out[1])
    np.testing.assert_allclose(pqn.reference_, np.median(X, axis=0))
    # the quotient median of the diluted sample is half that of the original
    f = pqn.dilution_factors(X)
    assert f[1] == pytest.approx(f[0] / 2)
    np.testing.assert_allclose(out, X / f[:, None])


def test_pqn_hand_computed_with_missing_values():
    X = np.array([[1.0, 2.0, 4.0], [2.0, 4.0, 8.0], [3.0, 2.0, 4.0]])
    pqn = PQNormaliser().fit(X)
    np.testing.assert_allclose(pqn.reference_, [2.0, 2.0, 4.0])
    # quotients of [4, nan, 2] over the reference: 2, (missing), 0.5 -> median 1.25
    new = np.array([[4.0, np.nan, 2.0]])
    np.testing.assert_allclose(pqn.dilution_factors(new), [1.25])
    np.testing.assert_allclose(pqn.transform(new), [[3.2, np.nan, 1.6]])


def test_pqn_reference_from_qc_samples():
    X = np.array([[1.0, 1.0], [1.2, 0.8], [10.0, 20.0], [30.0, 10.0]])
    qc = np.array([True, True, False, False])
    pqn = PQNormaliser(reference="qc").fit(X, qc=qc)
    np.testing.assert_allclose(pqn.reference_, [1.1, 0.9])
    with pytest.raises(ValueError, match="needs the QC mask"):
        PQNormaliser(reference="qc").fit(X)
    with pytest.raises(ValueError, match="no QC samples"):
        PQNormaliser(reference="qc").fit(X, qc=np.zeros(4, dtype=bool))
    with pytest.raises(ValueError, match="only used with"):
        PQNormaliser().fit(X, qc=qc)


def test_normalisers_reject_negative_values():
    X = _frame(np.array([[1.0, 2.0], [3.0, -1.0]]), ["Orn", "Arg"])
    for est in (PQNormaliser(), TotalSumNormaliser(), MedianNormaliser()):
        with pytest.raises(ValueError, match=r"Negative values.*'Arg'"):
            est.fit(X)


def test_total_sum_and_median_normalisers():
    X = np.array([[1.0, 3.0, 4.0], [2.0, 6.0, 8.0], [5.0, 1.0, np.nan]])
    ts = TotalSumNormaliser().fit(X)
    assert ts.target_ == pytest.approx(8.0)  # median of the row sums 8, 16, 6
    out = ts.transform(X)
    np.testing.assert_allclose(out[0], out[1])
    np.testing.assert_allclose(np.nansum(out, axis=1), [8, 8, 8])
    np.testing.assert_allclose(TotalSumNormaliser(target=1.0).fit_transform(X)[0], [1 / 8, 3 / 8, 0.5])
    md = MedianNormaliser().fit(X)
    assert md.target_ == pytest.approx(3.0)  # median of the row medians 3, 6, 3
    np.testing.assert_allclose(md.transform(X), [[1, 3, 4], [1, 3, 4], [5, 1, np.nan]])


# -- log and scaling -----------------------------------------------------------------------------


def test_log_bases_offset_and_inverse():
    X = np.array([[1.0, 8.0], [100.0, np.nan]])
    np.testing.assert_allclose(LogTransformer().fit_transform(X), np.log2(X))
    np.testing.assert_allclose(LogTransformer(base="log10").fit_transform(X), np.log10(X))
    np.testing.assert_allclose(LogTransformer(base="ln").fit_transform(X), np.log(X))
    Z = np.array([[0.0, 3.0], [7.0, 15.0]])
    np.testing.assert_allclose(LogTransformer(offset=1.0).fit_transform(Z), [[0, 2], [3, 4]])
    for base in ("log2", "log10", "ln", "glog"):
        t = LogTransformer(base=base, offset=1.0).fit(Z)
        np.testing.assert_allclose(t.inverse_transform(t.transform(Z)), Z, atol=1e-12)


def test_log_of_zero_names_the_feature():
    X = _frame(np.array([[1.0, 0.0, 3.0], [2.0, 5.0, 0.0]]), ["Orn", "Arg", "Cit"])
    with pytest.raises(ValueError, match=r"feature\(s\) 'Arg' in sample\(s\) 's0'; 'Cit' in "
                                         r"sample\(s\) 's1'.*offset"):
        LogTransformer().fit(X)
    t = LogTransformer().fit(X + 1)
    with pytest.raises(ValueError, match="'Arg' in sample"):
        t.transform(X)
    many = _frame(np.zeros((6, 1)), ["Orn"])
    with pytest.raises(ValueError, match=r"'Orn' in sample\(s\) 's0', 's1', 's2', ... \(6 in all\)"):
        LogTransformer().fit(many)
    LogTransformer(offset=0.5).fit(X)  # an offset makes zeros legal


def test_glog_is_log2_for_large_values():
    x = np.array([1e2, 1e3, 1e4, 1e6])
    np.testing.assert_allclose(glog(x, 1.0), np.log2(x), atol=1e-4)
    assert abs(glog(1e6, 1.0) - np.log2(1e6)) < abs(glog(1e2, 1.0) - np.log2(1e2))
    # finite at zero and below, and monotone
    g = glog(np.array([-5.0, 0.0, 5.0]), 4.0)
    assert np.all(np.isfinite(g)) and np.all(np.diff(g) > 0)
    assert g[1] == pytest.approx(np.log2(2.0 / 2))  # log2(sqrt(lambda) / 2)


def test_glog_lambda_rule():
    X = np.array([[0.0, 2.0], [50.0, -0.5], [np.nan, 3.0]])
    t = LogTransformer(base="glog").fit(X)
    assert t.lambda_ == pytest.approx((0.5 / 10) ** 2)  # (smallest non-zero |x| / 10)^2
    np.testing.assert_allclose(t.transform(X), glog(X, t.lambda_))
    assert LogTransformer(base="glog", glog_lambda=2.0).fit(X).lambda_ == 2.0


SCALE_X = np.array([[2.0, 10.0], [4.0, 20.0], [6.0, 30.0]])  # means 4, 20; SDs (ddof=1) 2, 10


@pytest.mark.parametrize(
    ("method", "expected"),
    [
        ("auto", [[-1, -1], [0, 0], [1, 1]]),
        ("pareto", [[-np.sqrt(2), -np.sqrt(10)], [0, 0], [np.sqrt(2), np.sqrt(10)]]),
        ("range", [[-0.5, -0.5], [0, 0], [0.5, 0.5]]),
        ("vast", [[-2, -2], [0, 0], [2, 2]]),  # scale SD^2 / mean = 1 and 5
        ("centre", [[-2, -10], [0, 0], [2, 10]]),
        ("none", SCALE_X.tolist()),
    ],
)
def test_scaling_methods_hand_computed(method, expected):
    s = Scaler(method=method).fit(SCALE_X)
    np.testing.assert_allclose(s.transform(SCALE_X), expected, atol=1e-12)
    np.testing.assert_allclose(s.mean_, [4, 20])
    np.testing.assert_allclose(s.inverse_transform(s.transform(SCALE_X)), SCALE_X)


def test_scaler_missing_values_and_constant_feature():
    X = np.array([[1.0, 5.0], [np.nan, 5.0], [3.0, 5.0]])
    s = Scaler().fit(X)
    np.testing.assert_allclose(s.mean_, [2.0, 5.0])
    np.testing.assert_allclose(s.scale_, [np.sqrt(2), 1.0])  # constant feature: scale 1
    out = s.transform(X)
    assert np.isnan(out[1, 0])
    np.testing.assert_allclose(out[:, 1], 0.0)


# -- QC ------------------------------------------------------------------------------------------


def test_qc_rsd_numbers():
    X = _frame(np.array([[10.0, 10.0, 1.0], [11.0, 20.0, 1.0], [9.0, 30.0, np.nan], [50.0, 5.0, 8.0]]),
               ["Orn", "Arg", "Cit"])
    qc = np.array([True, True, True, False])
    f = QCRSDFilter().fit(X, qc=qc)
    # Orn: SD 1 / mean 10; Arg: SD 10 / mean 20; Cit: SD 0 / mean 1 (NaN ignored)
    np.testing.assert_allclose(f.rsd_, [0.1, 0.5, 0.0])
    assert f.get_feature_names_out().tolist() == ["Orn", "Cit"]
    assert f.transform(X).shape == (4, 2)
    assert QCRSDFilter(max_rsd=0.5).fit(X, qc=qc).support_.all()
    # without a mask every sample is a QC
    np.testing.assert_allclose(QCRSDFilter().fit(X.iloc[:3]).rsd_, f.rsd_)
    with pytest.raises(ValueError, match="no QC samples"):
        QCRSDFilter().fit(X, qc=np.zeros(4, dtype=bool))
    with pytest.raises(ValueError, match="boolean mask"):
        QCRSDFilter().fit(X, qc=["a", "b", "c", "d"])


def _run(n: int = 61, every: int = 5, seed: int = 1) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """True values of one run: QCs (one pooled profile) every `every` injections, study samples."""
    rng = np.random.default_rng(seed)
    p = 6
    order = np.arange(n)
    qc = order % every == 0
    pooled = rng.lognormal(3.0, 1.0, size=p)
    truth = rng.lognormal(3.0, 1.0, size=p) * rng.lognormal(0.0, 0.3, size=(n, p))
    truth[qc] = pooled
    return truth, qc, order


def test_drift_correction_removes_planted_linear_drift():
    truth, qc, order = _run()
    slope = np.array([0.004, -0.003, 0.01, 0.0, 0.006, -0.005])
    X = truth * (1.0 + slope * order[:, None])
    dc = QCDriftCorrector()
    out = dc.fit_transform(X, qc=qc, order=order)
    ratio = out / truth  # constant per analyte when the drift is gone
    spread = ratio.max(axis=0) / ratio.min(axis=0) - 1
    assert np.all(spread < 0.01)
    qc_spread = out[qc].max(axis=0) / out[qc].min(axis=0) - 1
    assert np.all(qc_spread < 0.01)
    # uncorrected data had up to 60 % drift
    assert (X / truth).max() / (X / truth).min() > 1.5
    assert not dc.uncorrected_.any()


def test_drift_correction_aligns_batches_and_transforms_new_rows():
    truth, qc, order = _run()
    rng = np.random.default_rng(7)
    perm = rng.permutation(np.flatnonzero(~qc))
    truth2 = truth.copy()
    truth2[~qc] = truth[perm]  # same study values in another order: equal batch medians
    X1 = truth * (1.0 + 0.005 * order[:, None])
    X2 = truth2 * 1.4 * (1.0 - 0.004 * order[:, None])
    X = np.vstack([X1, X2])
    t = np.vstack([truth, truth2])
    qcs, orders = np.concatenate([qc, qc]), np.concatenate([order, order])
    batch = np.repeat(["b1", "b2"], order.size)
    dc = QCDriftCorrector()
    out = dc.fit_transform(X, qc=qcs, order=orders, batch=batch)
    ratio = out / t
    assert np.all(ratio.max(axis=0) / ratio.min(axis=0) - 1 < 0.01)
    np.testing.assert_array_equal(dc.batches_, ["b1", "b2"])
    # the fitted correction applies row by row to rows given with their order and batch
    rows = np.array([3, 70, 100, 12])
    np.testing.assert_allclose(dc.transform(X[rows], order=orders[rows], batch=batch[rows]), out[rows])
    with pytest.raises(ValueError, match="batch is needed"):
        dc.transform(X[:2], order=[1, 2])
    with pytest.raises(ValueError, match="not seen in fit"):
        dc.transform(X[:2], order=[1, 2], batch=["b1", "b3"])
    # the within-batch step alone rescales each batch to its median QC level, which keeps the
    # batch offset times the median drift: 1.4 * (1 - 0.004 * 30) / (1 + 0.005 * 30)
    raw = QCDriftCorrector(centre_batches=False).fit_transform(X, qc=qcs, order=orders, batch=batch)
    r = raw / t
    np.testing.assert_allclose(r[order.size:] / r[: order.size], 1.4 * 0.88 / 1.15, rtol=1e-9)


def test_drift_correction_needs_four_qcs_per_batch():
    truth, qc, order = _run(n=40, every=10)
    X = np.vstack([truth, truth[:15]])
    qcs = np.concatenate([qc, qc[:15]])
    orders = np.concatenate([order, order[:15]])
    batch = np.repeat([1, 2], [40, 15])
    with pytest.raises(ValueError, match=r"at least 4 QC samples.*batch 2 has 2 sample"):
        QCDriftCorrector().fit(X, qc=qcs, order=orders, batch=batch)
    with pytest.raises(ValueError, match="no QC samples"):
        QCDriftCorrector().fit(truth, qc=np.zeros(40, dtype=bool))


def test_drift_correction_leaves_sparse_qc_feature_uncorrected():
    truth, qc, order = _run()
    X = truth * (1.0 + 0.005 * order[:, None])
    X[np.flatnonzero(qc)[2:], 0] = np.nan  # analyte 0 seen in only 2 QCs
    with pytest.warns(UserWarning, match="'m0'"):
        dc = QCDriftCorrector().fit(_frame(X), qc=qc, order=order)
    np.testing.assert_array_equal(dc.uncorrected_[0], [True] + [False] * 5)
    out = dc.transform(_frame(X), order=order)
    np.testing.assert_allclose(out[:, 0], X[:, 0])  # single batch: factor 1


# -- fitting on training rows only -------------------------------------------------------------


def test_pipeline_uses_training_statistics_only():
    X = _lognormal(100, 5, seed=3, missing=0.1)
    train, test = X[:50], X[50:]
    pipe = make_pipeline(MinFractionImputer(), LogTransformer(), Scaler()).fit(train)
    fill = 0.5 * np.nanmin(train, axis=0)
    log_train = np.log2(np.where(np.isnan(train), fill, train))
    scaler = pipe[-1]
    np.testing.assert_allclose(scaler.mean_, log_train.mean(axis=0))
    np.testing.assert_allclose(scaler.scale_, log_train.std(axis=0, ddof=1))
    log_test = np.log2(np.where(np.isnan(test), fill, test))
    expected = (log_test - log_train.mean(axis=0)) / log_train.std(axis=0, ddof=1)
    np.testing.assert_allclose(pipe.transform(test), expected)
    full = clone(pipe).fit(X)
    assert not np.allclose(full[-1].mean_, scaler.mean_)


def test_qc_mask_routed_through_pipeline():
    X = _lognormal(20, 4, seed=5)
    qc = np.arange(20) % 4 == 0
    X[qc] = X[0] * np.random.default_rng(0).lognormal(0, 0.05, size=(qc.sum(), 4))
    with sklearn.config_context(enable_metadata_routing=True):
        pipe = make_pipeline(QCRSDFilter().set_fit_request(qc=True),
                             PQNormaliser(reference="qc").set_fit_request(qc=True))
        pipe.fit(X, qc=qc)
    np.testing.assert_allclose(pipe[-1].reference_, np.median(X[qc], axis=0))


# -- pandas output -------------------------------------------------------------------------------


def _pandas_cases() -> list[tuple[object, dict[str, object], list[str]]]:
    cols = ["Orn", "Arg", "Cit", "Trp"]
    n = 24
    qc = np.arange(n) % 4 == 0
    return [
        (MissingFilter(max_missing=0.1), {}, ["Orn", "Arg", "Cit"]),
        (MinFractionImputer(), {}, cols),
        (LODImputer(lod={"Trp": 1.0}), {}, cols),
        (PQNormaliser(), {}, cols),
        (TotalSumNormaliser(), {}, cols),
        (MedianNormaliser(), {}, cols),
        (LogTransformer(), {}, cols),
        (Scaler(method="pareto"), {}, cols),
        (QCRSDFilter(max_rsd=0.3), {"qc": qc}, ["Orn", "Arg", "Cit"]),
        (QCDriftCorrector(), {"qc": qc, "order": np.arange(n)}, cols),
    ]


@pytest.mark.parametrize(("est", "kw", "names"), _pandas_cases(), ids=lambda v: type(v).__name__)
def test_pandas_output_keeps_names_and_index(est, kw, names):
    n = 24
    X = _lognormal(n, 4, seed=11)
    qc = np.arange(n) % 4 == 0
    X[qc] = X[0] * np.random.default_rng(2).lognormal(0, 0.05, size=(qc.sum(), 4))
    X[qc, 3] *= np.random.default_rng(3).lognormal(0, 1.0, size=qc.sum())  # noisy in QCs
    if isinstance(est, MissingFilter | MinFractionImputer | LODImputer):
        X[1:6, 3] = np.nan
        X[7, 0] = np.nan
    df = _frame(X, ["Orn", "Arg", "Cit", "Trp"]).set_axis([f"S{i:03d}" for i in range(n)])
    est = clone(est).set_output(transform="pandas")
    out = est.fit_transform(df, **kw)
    assert isinstance(out, pd.DataFrame)
    assert out.columns.tolist() == names
    assert out.index.equals(df.index)
    assert (out.dtypes == np.float64).all()
    assert est.get_feature_names_out().tolist() == names
    again = est.transform(df, order=kw["order"]) if "order" in kw else est.transform(df)
    pd.testing.assert_frame_equal(again, out)


# -- parameters and dtypes ---------------------------------------------------------------------


@pytest.mark.parametrize(
    ("est", "valid"),
    [
        (Scaler(method="unit"), "'auto', 'pareto', 'range', 'vast', 'centre', 'none'"),
        (LogTransformer(base="log"), "'log2', 'log10', 'ln', 'glog'"),
        (PQNormaliser(reference="mean"), "'median', 'qc'"),
    ],
)
def test_unknown_method_lists_valid_ones(est, valid):
    with pytest.raises(ValueError, match=valid):
        est.fit(SCALE_X)


@pytest.mark.parametrize(
    "est",
    [MissingFilter(max_missing=1.5), MinFractionImputer(fraction=0), LODImputer(fraction=2),
     LogTransformer(offset=-1), LogTransformer(base="glog", glog_lambda=0), TotalSumNormaliser(target=-1),
     QCRSDFilter(max_rsd=0), QCDriftCorrector(frac=0), QCDriftCorrector(robust_iterations=-1)],
    ids=repr,
)
def test_invalid_parameters_raise_in_fit_not_init(est):
    with pytest.raises(ValueError):
        est.fit(SCALE_X)


def test_integer_input_gives_float64():
    X = np.array([[1, 2], [3, 4], [5, 8]], dtype=np.int64)
    for est in (MissingFilter(), MinFractionImputer(), LODImputer(), PQNormaliser(), TotalSumNormaliser(),
                MedianNormaliser(), LogTransformer(), Scaler(), QCRSDFilter(max_rsd=10)):
        assert clone(est).fit_transform(X).dtype == np.float64, est
