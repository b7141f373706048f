"""Helpers for tests: reading source files independently of hikisig's readers."""

from __future__ import annotations

import csv
import math
import warnings
from pathlib import Path

import numpy as np
import pandas as pd

from hikisig.cohort.dataset import Dataset


def sacurine_source(path: Path) -> pd.DataFrame:
    """samples x variables from the W4M dataMatrix, parsed with csv + float()."""
    with open(path, newline="") as fh:
        rows = list(csv.reader(fh, delimiter="\t"))
    samples = rows[0][1:]
    data = {r[0]: [float(v) if v not in ("", "NA") else math.nan for v in r[1:]] for r in rows[1:]}
    return pd.DataFrame(data, index=samples)


def gastric_source(path: Path) -> pd.DataFrame:
    """samples x peaks from the CIMCB Data sheet, read with openpyxl directly."""
    import openpyxl

    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)
        wb = openpyxl.load_workbook(path, read_only=True, data_only=True)
        it = wb["Data"].iter_rows(values_only=True)
        header = [str(h) for h in next(it)]
        recs = [list(r) for r in it]
    df = pd.DataFrame(recs, columns=header)
    df = df[df["SampleID"].notna()]
    peaks = [h for h in header if h.startswith("M") and h[1:].isdigit()]
    out = df[peaks].apply(pd.to_numeric)
    out.index = df["SampleID"].astype(str)
    return out


def by_source_name(ds: Dataset) -> pd.DataFrame:
    """The dataset's values with columns renamed to the source column names."""
    return ds.X.rename(columns=dict(zip(ds.var.index, ds.var["source_name"], strict=True)))


def assert_same_values(a: pd.DataFrame, b: pd.DataFrame) -> None:
    """Identical labels and identical float64 values (NaN where NaN)."""
    assert list(a.index) == list(b.index)
    assert sorted(a.columns) == sorted(b.columns)
    b = b[a.columns]
    x, y = a.to_numpy(dtype=float), b.to_numpy(dtype=float)
    assert np.array_equal(np.isnan(x), np.isnan(y))
    assert np.array_equal(x[~np.isnan(x)], y[~np.isnan(y)])
