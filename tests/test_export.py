"""Exporters: import -> export -> import gives identical values, on both public datasets."""

from __future__ import annotations

import json

import anndata as ad
import numpy as np
import pandas as pd
import pyarrow.parquet as pq
import pytest

from conftest import GASTRIC, SACURINE
from helpers import assert_same_values
from hikisig.cohort.dataset import load_dataset
from hikisig.cohort.exporters import export_dataset
from hikisig.cohort.importer import import_measurements
from hikisig.cohort.readers import ReadOptions, read_measurements
from hikisig.cohort.store import Store
from hikisig.errors import HikisigError


@pytest.fixture(params=[SACURINE, GASTRIC], ids=["sacurine", "gastric"])
def source(request, sqlite_store):
    import_measurements(sqlite_store, read_measurements(request.param), "src")
    return load_dataset(sqlite_store, "src")


def _reimport(tmp_path, path, fmt, opts=None):
    store = Store(tmp_path / "again.db")
    store.init()
    import_measurements(store, read_measurements(path, fmt, opts), "again")
    ds = load_dataset(store, "again")
    store.dispose()
    return ds


@pytest.mark.parametrize("fmt,name,read_fmt", [
    ("w4m", "w4m", "w4m"),
    ("csv", "x.csv", "wide"),
    ("parquet", "x.parquet", "wide"),
    ("anndata", "x.h5ad", "anndata"),
])
def test_roundtrip_identical_values(source, tmp_path, fmt, name, read_fmt):
    out = tmp_path / name
    export_dataset(source, fmt, out)
    opts = None
    if read_fmt == "wide":
        extra = [c for c in source.obs.columns if c not in ("participant", "visit", "sample_type",
                                                            "group", "sex", "age")]
        extra = [c for c in extra if source.obs[c].notna().any()]
        opts = ReadOptions(id_column="sample", meta_columns=extra)
    again = _reimport(tmp_path, out, read_fmt, opts)
    assert_same_values(source.X, again.X)
    for col in ("participant", "sample_type", "sex", "group"):
        a, b = source.obs[col], again.obs[col]
        assert (a.isna() == b.isna()).all() and (a[a.notna()] == b[b.notna()]).all(), col
    assert list(again.var["unit"].fillna("")) == list(source.var["unit"].fillna(""))


def test_parquet_long_roundtrip(source, tmp_path):
    out = tmp_path / "long.parquet"
    export_dataset(source, "parquet", out, layout="long")
    frame = pd.read_parquet(out)
    assert list(frame.columns[:6]) == ["participant", "visit", "sample", "analyte", "value", "unit"]
    assert frame["value"].notna().sum() == int(np.count_nonzero(~np.isnan(source.X.to_numpy())))
    again = _reimport(tmp_path, out, "long")
    assert_same_values(source.X, again.X.reindex(index=source.X.index))


def test_anndata_annotations(source, tmp_path):
    out = tmp_path / "x.h5ad"
    export_dataset(source, "anndata", out)
    adata = ad.read_h5ad(out)
    assert adata.shape == source.shape
    assert {"display_name", "unit", "class", "hmdb"} <= set(adata.var.columns)
    assert {"participant", "sample_type", "sex"} <= set(adata.obs.columns)
    assert adata.uns["hikisig"]["study"] == "src"


def test_parquet_carries_study_note(source, tmp_path):
    out = tmp_path / "x.parquet"
    export_dataset(source, "parquet", out)
    note = json.loads(pq.read_schema(out).metadata[b"hikisig"])
    assert note["study"] == "src" and note["synthetic"] == "false"


def test_failed_export_leaves_nothing(source, tmp_path, monkeypatch):
    import hikisig.cohort.exporters as ex

    def boom(*a, **k):
        raise OSError("disk full")

    monkeypatch.setattr(pd.DataFrame, "to_csv", boom)
    out = tmp_path / "x.csv"
    with pytest.raises(OSError):
        ex.export_dataset(source, "csv", out)
    assert list(tmp_path.glob("*.csv*")) == [] and list(tmp_path.glob(".x.csv*")) == []


def test_unknown_format(source, tmp_path):
    with pytest.raises(HikisigError, match="unknown export format"):
        export_dataset(source, "xml", tmp_path / "x.xml")
