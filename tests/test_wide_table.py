"""Which columns of a wide table are analytes, and what the analyses say about the others."""

from __future__ import annotations

from pathlib import Path

import pytest

from hikisig.analysis.study import ColumnsNotAnalysedWarning, load_study
from hikisig.cohort.tables import read_table
from hikisig.config import Design, Preprocessing, Source
from hikisig.errors import HikisigError, InputError

WIDE = ("id,group,Visit No,injection_order,site,subtype,study,Orn,cer_x,feature_1\n"
        "P1,case,1,5,Kyushu,A,cohort-2021,12.5,<LOD,1.0\n"
        "P2,control,1,6,Kyushu,B,cohort-2021,n.d.,<LOD,2.0\n"
        "P3,case,2,7,,,cohort-2021,13.0,0.4,\n"
        "P4,control,1,8,Kyushu,A,cohort-2021,11.0,0.5,3.0\n")


def test_metadata_and_text_columns_are_not_analytes(tmp_path: Path) -> None:
    f = tmp_path / "w.csv"
    f.write_text(WIDE, encoding="utf-8")
    ds = read_table(f)
    assert list(ds.X.columns) == ["ornithine", "cer_x", "feature_1"]
    assert list(ds.source_columns) == ["group", "Visit No", "injection_order", "site", "subtype",
                                       "study"]
    assert ds.source_columns["Visit No"] == "visit" and ds.column("Visit No").tolist() == [1, 1, 2, 1]
    assert ds.X["ornithine"].tolist()[::2] == [12.5, 13.0]
    with pytest.warns(ColumnsNotAnalysedWarning,
                      match=r"not analysed \(metadata or text\): Visit No, injection_order, site, "
                            r"subtype, study"):
        study = load_study(Source(file=str(f)), Design(sex=None, participant=None))
    assert study.data.shape == (4, 3) and study.dropped == []  # cer_x: 2 of 4 missing, not > 50%
    strict = load_study(Source(file=str(f)), Design(sex=None, participant=None),
                        Preprocessing(max_missing=0.25))
    assert strict.dropped == ["cer_x"] and list(strict.data.X.columns) == ["ornithine", "feature_1"]
    with pytest.raises(HikisigError, match="several visits but the file has no participant column"):
        load_study(Source(file=str(f)), Design(sex=None))  # P3 is at visit 2: whose visit?


def test_a_bad_cell_in_an_analyte_is_still_an_error(tmp_path: Path) -> None:
    f = tmp_path / "w.csv"
    f.write_text("id,group,Orn\nP1,case,1.5\nP2,control,abc\nP3,control,2.0\n", encoding="utf-8")
    with pytest.raises(InputError) as exc:
        read_table(f)
    assert "row 3" in str(exc.value) and "Orn" in str(exc.value) and "abc" in str(exc.value)


def test_a_decimal_comma_column_is_still_read_as_numbers(tmp_path: Path) -> None:
    f = tmp_path / "w.csv"
    f.write_text('id,group,Orn\nP1,case,"12,5"\nP2,control,"13,0"\n', encoding="utf-8")
    with pytest.raises(InputError, match="decimal"):
        read_table(f)
    assert read_table(f, decimal_comma=True).X["ornithine"].tolist() == [12.5, 13.0]


def test_no_analyte_column_is_an_error(tmp_path: Path) -> None:
    f = tmp_path / "w.csv"
    f.write_text("id,group,age,sex\nP1,case,30,M\n", encoding="utf-8")
    with pytest.raises(InputError, match="no analyte column"):
        read_table(f)
