"""Which columns of a wide CSV are analytes."""

from __future__ import annotations

from pathlib import Path

import pytest

from hikisig.errors import InputError
from hikisig.pipeline.data import read_wide_table


def test_metadata_and_text_columns_are_not_analytes(tmp_path: Path) -> None:
    f = tmp_path / "w.csv"
    f.write_text("id,group,Visit No,injection_order,site,subtype,study,Orn,cer_x,feature_1\n"
                 "P1,case,1,5,Kyushu,A,cohort-2021,12.5,<LOD,1.0\n"
                 "P2,control,1,6,Kyushu,B,cohort-2021,n.d.,<LOD,2.0\n"
                 "P3,case,2,7,,,cohort-2021,13.0,0.4,\n", encoding="utf-8")
    X, obs = read_wide_table(f, None, ["group"], [])
    assert list(X.columns) == ["ornithine", "cer_x", "feature_1"]
    assert obs.attrs["not_analysed"] == ["Visit No", "injection_order", "site", "subtype", "study"]
    assert X["ornithine"].tolist()[::2] == [12.5, 13.0]


def test_a_bad_cell_in_an_analyte_is_still_an_error(tmp_path: Path) -> None:
    f = tmp_path / "w.csv"
    f.write_text("id,group,Orn\nP1,case,1.5\nP2,control,abc\n", encoding="utf-8")
    with pytest.raises(InputError) as exc:
        read_wide_table(f, None, ["group"], [])
    assert "row 3" in str(exc.value) and "Orn" in str(exc.value) and "abc" in str(exc.value)


def test_a_decimal_comma_column_is_still_read_as_numbers(tmp_path: Path) -> None:
    f = tmp_path / "w.csv"
    f.write_text('id,group,Orn\nP1,case,"12,5"\nP2,control,"13,0"\n', encoding="utf-8")
    with pytest.raises(InputError, match="decimal"):
        read_wide_table(f, None, ["group"], [])


def test_no_analyte_column_is_an_error(tmp_path: Path) -> None:
    f = tmp_path / "w.csv"
    f.write_text("id,group,age,sex\nP1,case,30,M\n", encoding="utf-8")
    with pytest.raises(InputError, match="no analyte column"):
        read_wide_table(f, None, ["group"], [])
