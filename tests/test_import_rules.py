"""Import rules: all-or-nothing, collected errors, re-import, conflicts, units, flags."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from hikisig.cohort.dataset import load_dataset
from hikisig.cohort.importer import import_measurements, import_participants
from hikisig.cohort.readers import ReadOptions, read_measurements
from hikisig.errors import InputError


def write(tmp_path: Path, name: str, text: str) -> Path:
    p = tmp_path / name
    p.write_text(text)
    return p


WIDE = """sample,sex,age,group,Orn,Arg,Uric acid
S1,M,30,case,80.5,70.1,6.1
S2,F,25,control,60.25,90,4.4
S3,M,41,case,<LOD,85.5,NA
"""


def test_wide_values_flags_and_metadata(store, tmp_path):
    f = write(tmp_path, "lab.csv", WIDE)
    res = import_measurements(store, read_measurements(f), "s")
    assert res.n_written == 9  # 8 values + <LOD + NA flagged rows
    ds = load_dataset(store, "s")
    assert list(ds.X.columns) == ["ornithine", "arginine", "uric_acid"]
    assert ds.X.loc["S2", "ornithine"] == 60.25
    assert np.isnan(ds.X.loc["S3", "ornithine"])
    flags = ds.flags.set_index(["sample", "analyte"])["flag"].to_dict()
    assert flags == {("S3", "ornithine"): "below_lod", ("S3", "uric_acid"): "missing"}
    assert ds.obs.loc["S1", "sex"] == "M" and ds.obs.loc["S2", "group"] == "control"
    assert ds.obs.loc["S1", "participant"] == "S1" and ds.obs.loc["S1", "visit"] == 1


def test_one_bad_cell_names_row_and_column_and_writes_nothing(store, tmp_path):
    good = write(tmp_path, "good.csv", WIDE)
    import_measurements(store, read_measurements(good), "s")
    before = store.row_counts()
    bad = write(tmp_path, "bad.csv", WIDE.replace("S1", "S9").replace("70.1", "7O.1")
                .replace("S2", "S8").replace("S3", "S7"))
    with pytest.raises(InputError) as exc:
        import_measurements(store, read_measurements(bad), "s")
    (problem,) = exc.value.problems
    assert (problem.row, problem.column, problem.value) == (2, "Arg", "7O.1")
    assert "not a number" in str(problem)
    assert store.row_counts() == before


def test_before_commit_runs_inside_the_import_transaction(store, tmp_path):
    """The hook (the web app's audit entry) commits with the import or takes it down with it."""
    from hikisig.cohort import schema

    f = write(tmp_path, "lab.csv", WIDE)
    before = store.row_counts()

    def fail(s, res):
        assert res.n_written == 9 and s.query(schema.Measurement).count() == 9  # written, not committed
        raise RuntimeError("audit write failed")

    with pytest.raises(RuntimeError, match="audit write failed"):
        import_measurements(store, read_measurements(f), "s", before_commit=fail)
    assert store.row_counts() == before
    seen = []
    res = import_measurements(store, read_measurements(f), "s",
                              before_commit=lambda s, r: seen.append((r.import_id, r.skipped)))
    assert seen == [(res.import_id, False)] and res.import_id is not None
    again = import_measurements(store, read_measurements(f), "s",
                                before_commit=lambda s, r: seen.append((r.import_id, r.skipped)))
    assert again.skipped and seen[-1] == (None, True)
    import_measurements(store, read_measurements(f), "s", dry_run=True,
                        before_commit=lambda s, r: seen.append("dry"))
    assert "dry" not in seen


def test_all_errors_collected(tmp_path):
    f = write(tmp_path, "bad.csv", "sample,sex,Orn,Arg\nS1,X,1,a\nS1,M,b,2\n,F,3,4\n")
    with pytest.raises(InputError) as exc:
        read_measurements(f)
    text = str(exc.value)
    assert "row 2, column 'sex'" in text and "expected M or F" in text
    assert "row 2, column 'Arg'" in text and "row 3, column 'Orn'" in text
    assert "duplicate sample id (first seen in row 2)" in text
    assert "row 4" in text and "empty sample id" in text


def test_decimal_comma(store, tmp_path):
    f = write(tmp_path, "dc.csv", "sample;Orn;Arg\nS1;12,5;3\n")
    with pytest.raises(InputError, match="decimal separator"):
        read_measurements(f)
    import_measurements(store, read_measurements(f, options=ReadOptions(decimal_comma=True)), "s")
    assert load_dataset(store, "s").X.loc["S1", "ornithine"] == 12.5


def test_numeric_missing_codes(store, tmp_path):
    f = write(tmp_path, "na.csv", "sample,Orn,Arg\nS1,-9,3\nS2,-99.0,<LOD\n")
    opts = ReadOptions(na_values=("-9", "-99", "NA", "<LOD"))
    import_measurements(store, read_measurements(f, options=opts), "s")
    ds = load_dataset(store, "s")
    assert ds.X["ornithine"].isna().all()
    flags = ds.flags.sort_values("raw")
    assert flags["raw"].tolist() == ["-9", "-99", "<LOD"]
    assert flags["flag"].tolist() == ["missing", "missing", "below_lod"]


def test_reimport_same_file_does_nothing(store, tmp_path):
    f = write(tmp_path, "lab.csv", WIDE)
    import_measurements(store, read_measurements(f), "s")
    before = store.row_counts()
    res = import_measurements(store, read_measurements(f), "s")
    assert res.skipped and "already imported" in res.summary()
    assert store.row_counts() == before


def test_conflicting_value_is_error_unless_replace(store, tmp_path):
    import_measurements(store, read_measurements(write(tmp_path, "a.csv", WIDE)), "s")
    changed = write(tmp_path, "b.csv", WIDE.replace("80.5", "81.5") + "S4,F,33,control,1,2,3\n")
    before = store.row_counts()
    with pytest.raises(InputError) as exc:
        import_measurements(store, read_measurements(changed), "s")
    assert "S1" in str(exc.value) and "80.5" in str(exc.value) and "--replace" in str(exc.value)
    assert len(exc.value.problems) == 1
    assert store.row_counts() == before
    res = import_measurements(store, read_measurements(changed), "s", replace=True)
    assert res.n_replaced == 1 and res.n_unchanged == 8 and res.n_samples_new == 1
    assert load_dataset(store, "s").X.loc["S1", "ornithine"] == 81.5


def test_units_converted_to_catalog_default(store, tmp_path):
    f = write(tmp_path, "u.csv", "sample,Uric acid,T-Bil,Orn\nunit,umol/L,umol/L,µmol/l\n"
                                 "S1,297.4,17.1,50\n")
    import_measurements(store, read_measurements(f, options=ReadOptions(unit_row=True)), "s")
    ds = load_dataset(store, "s")
    assert ds.X.loc["S1", "uric_acid"] == pytest.approx(5.0, rel=1e-4)
    assert ds.X.loc["S1", "total_bilirubin"] == pytest.approx(1.0, rel=1e-4)
    assert ds.var.loc["uric_acid", "unit"] == "mg/dL"
    assert ds.X.loc["S1", "ornithine"] == 50


def test_unknown_unit_is_error(store, tmp_path):
    f = write(tmp_path, "u.csv", "sample,Uric acid\nS1,5\n")
    with pytest.raises(InputError) as exc:
        import_measurements(store, read_measurements(
            f, options=ReadOptions(units={"Uric acid": "furlongs"})), "s")
    assert "furlongs" in str(exc.value) and "Uric acid" in str(exc.value)
    assert store.row_counts()["measurement"] == 0


def test_long_format(store, tmp_path):
    f = write(tmp_path, "long.csv",
              "participant,visit,analyte,value,unit\nP1,1,Orn,50,umol/L\nP1,1,Uric acid,5,mg/dL\n"
              "P1,2,Orn,55,umol/L\nP2,1,Uric acid,297.4,umol/L\n")
    import_measurements(store, read_measurements(f), "s")
    ds = load_dataset(store, "s")
    assert ds.shape == (3, 2)
    assert ds.X.loc["P2_v1", "uric_acid"] == pytest.approx(5.0, rel=1e-4)
    assert ds.obs.loc["P1_v2", "visit"] == 2 and ds.obs.loc["P1_v2", "participant"] == "P1"


def test_long_duplicates_rejected(tmp_path):
    f = write(tmp_path, "long.csv", "participant,visit,analyte,value\nP1,1,Orn,5\nP1,1,Orn,6\n")
    with pytest.raises(InputError, match=r"row 3.*second value.*first in row 2"):
        read_measurements(f)


def test_participants_then_measurements(store, tmp_path):
    p = write(tmp_path, "p.csv", "participant,sex,age,group,medication_free,site,bmi\n"
                                 "S1,M,30,case,yes,kyushu,22.1\nS2,F,25,control,no,kyushu,\n")
    res = import_participants(store, p, "s")
    assert res.n_participants_new == 2
    import_measurements(store, read_measurements(write(tmp_path, "m.csv", "sample,Orn\nS1,5\n")), "s")
    ds = load_dataset(store, "s")
    assert ds.obs.loc["S1", "site"] == "kyushu" and ds.obs.loc["S1", "medication_free"]
    assert ds.obs.loc["S1", "bmi"] == pytest.approx(22.1)
    # the measurement file disagrees with the participant record
    bad = write(tmp_path, "m2.csv", "sample,sex,Orn\nS2,M,5\n")
    with pytest.raises(InputError, match="participant 'S2' has sex 'F' in the store"):
        import_measurements(store, read_measurements(bad), "s")


def test_xlsx_wide(store, tmp_path):
    import pandas as pd

    f = tmp_path / "w.xlsx"
    pd.DataFrame({"id": ["A", "B"], "Cit": [30.5, "<LOD"], "C16": [0.1, 0.2]}).to_excel(
        f, sheet_name="results", index=False)
    import_measurements(store, read_measurements(f, options=ReadOptions(sheet="results")), "s")
    ds = load_dataset(store, "s")
    assert ds.X.loc["A", "citrulline"] == 30.5 and ds.X.loc["B", "c16"] == 0.2
