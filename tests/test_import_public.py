"""The shared public datasets import with the right shape and identical values."""

from __future__ import annotations

import pytest

from conftest import GASTRIC, SACURINE
from helpers import assert_same_values, by_source_name, gastric_source, sacurine_source
from hikisig.cohort.dataset import load_dataset
from hikisig.cohort.importer import UncataloguedAnalyteWarning, import_measurements
from hikisig.cohort.info import store_info
from hikisig.cohort.readers import read_measurements


def test_sacurine_w4m(store):
    res = import_measurements(store, read_measurements(SACURINE), "sacurine")
    assert (res.n_samples, res.n_analytes, res.n_samples_new) == (183, 109, 183)
    ds = load_dataset(store, "sacurine")
    assert ds.shape == (183, 109)
    assert_same_values(by_source_name(ds), sacurine_source(SACURINE))
    assert ds.obs["sex"].value_counts().to_dict() == {"M": 100, "F": 83}
    assert ds.obs.loc["HU_011", "age"] == 29
    assert ds.obs.loc["HU_011", "bmi"] == pytest.approx(19.75)
    info = store_info(store, "sacurine")
    assert (info["n_samples"], info["n_participants"], info["n_analytes"]) == (183, 183, 109)


def test_sacurine_format_detected_from_any_file_or_folder(tmp_path):
    for p in (SACURINE, SACURINE.with_name("sacurine_sampleMetadata.tsv"), SACURINE.parent):
        assert read_measurements(p).values.shape == (183, 109)


def test_gastric_cimcb(store):
    res = import_measurements(store, read_measurements(GASTRIC), "gastric")
    assert (res.n_samples, res.n_analytes) == (140, 149)
    ds = load_dataset(store, "gastric")
    assert ds.shape == (140, 149)
    assert_same_values(by_source_name(ds), gastric_source(GASTRIC))
    assert ds.obs["sample_type"].value_counts().to_dict() == {"study": 123, "qc": 17}
    assert ds.obs.loc[ds.obs["sample_type"] == "study", "group"].value_counts().to_dict() == {
        "GC": 43, "BN": 40, "HE": 40}
    # QC samples belong to no participant and keep their class as an attribute
    qc = ds.obs[ds.obs["sample_type"] == "qc"]
    assert qc["participant"].isna().all() and (qc["group"] == "QC").all()
    # the Peak sheet's labels and QC statistics travel with the analytes
    m138 = ds.var[ds.var["source_name"] == "M138"].iloc[0]
    assert m138["display_name"] == "u233"
    assert m138["QC_RSD"] == pytest.approx(float(m138["QC_RSD"]))
    info = store_info(store, "gastric")
    assert (info["n_samples"], info["n_participants"], info["n_analytes"]) == (140, 123, 149)
    assert info["studies"][0]["missingness"]["missing_fraction"] > 0


def test_gastric_labels_resolve_to_catalog(store):
    import_measurements(store, read_measurements(GASTRIC), "gastric")
    ds = load_dataset(store, "gastric")
    alanine = ds.var[ds.var["source_name"] == "M32"]
    assert alanine.index[0] == "alanine"
    assert alanine["catalog_id"].iloc[0] == "alanine"


def test_uncatalogued_columns_warn_not_fail(store):
    with pytest.warns(UncataloguedAnalyteWarning, match="not in the analyte catalog"):
        res = import_measurements(store, read_measurements(SACURINE), "sacurine")
    assert len(res.uncatalogued) > 50
