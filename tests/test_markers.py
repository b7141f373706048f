"""Derived markers: computed only when every required component is present."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from hikisig.catalog import load_catalog
from hikisig.prep import MARKERS, derived_markers, marker_status
from hikisig.prep.markers import AC_LONG, AC_MEDIUM, AC_SHORT, CE_CORE

STATUS_COLUMNS = ["marker", "display_name", "computed", "components", "missing"]


def _frame(columns: list[str], n: int = 4, seed: int = 0) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    return pd.DataFrame(rng.lognormal(0.0, 0.5, size=(n, len(columns))), columns=columns,
                        index=[f"S{i}" for i in range(n)])


def test_every_required_component_is_a_catalog_id() -> None:
    cat = load_catalog()
    for m in MARKERS:
        assert m.required, m.id
        for c in m.required:
            assert c in cat, (m.id, c)
    for c in AC_SHORT:
        assert cat.get(c).subclass == "short"
    for c in AC_MEDIUM:
        assert cat.get(c).subclass == "medium"
    for c in AC_LONG:
        assert cat.get(c).subclass == "long"
    assert {cat.get(c).class_ for c in CE_CORE} == {"cholesterol_ester"}


def test_total_not_computed_from_c2_alone() -> None:
    X = _frame(["c0", "c2", "c16", "c18", "ornithine", "arginine"])
    values, ann = derived_markers(X)
    assert "ac_total" not in values and "ac_total" not in ann.index
    assert "acyl_free_ratio" not in values and "ac_short_sum" not in values
    # the markers whose components are all there are still computed
    assert {"orn_arg_ratio", "cpt1_ratio"} <= set(values.columns)
    np.testing.assert_allclose(values["cpt1_ratio"], X["c0"] / (X["c16"] + X["c18"]))
    assert ann.loc["cpt1_ratio", "formula"] == "c0 / (c16 + c18)"
    assert list(values.columns) == list(ann.index)


def test_marker_status_lists_the_missing_components() -> None:
    X = _frame(["c0", "c2", "c16", "c18", "ornithine", "arginine", "ce_18_2"])
    s = marker_status(X)
    assert list(s.columns) == STATUS_COLUMNS
    assert s["marker"].tolist() == [m.id for m in MARKERS]
    assert s["computed"].dtype == bool
    s = s.set_index("marker")
    assert not s.loc["ac_total", "computed"]
    assert s.loc["ac_total", "missing"] == "c3,c4,c5,c6,c8,c10,c12,c14"
    assert s.loc["ac_total", "components"] == ""
    assert s.loc["acyl_free_ratio", "missing"] == "c3,c4,c5,c6,c8,c10,c12,c14"
    assert s.loc["ac_long_sum", "missing"] == "c14"
    assert s.loc["ce_total", "missing"] == "ce_16_0,ce_18_1,ce_20_4"
    assert s.loc["arg_bioavailability", "missing"] == "citrulline"
    assert s.loc["kyn_trp_ratio", "missing"] == "kynurenine,tryptophan"
    assert s.loc["cpt1_ratio", "computed"]
    assert s.loc["cpt1_ratio", ["components", "missing"]].tolist() == ["c0,c16,c18", ""]
    assert s.loc["orn_arg_ratio", "components"] == "ornithine,arginine"
    # the same from the column names alone, and what derived_markers computes
    pd.testing.assert_frame_equal(marker_status(list(X.columns)), marker_status(X))
    _, ann = derived_markers(X)
    assert set(ann.index) == set(s.index[s["computed"]])
    for marker, inputs in ann["inputs"].items():
        assert s.loc[marker, "components"] == inputs


def test_class_sums_need_the_core_and_add_further_members() -> None:
    core = [*AC_SHORT, *AC_MEDIUM, *AC_LONG]
    extra = ["c3_dc", "c5_1", "c10_1", "c18_1", "c16_oh"]
    cols = ["c0", *core, *extra, *CE_CORE, "ce_22_6"]
    X = _frame(cols, n=6, seed=3)
    X.iloc[2, cols.index("c4")] = np.nan
    values, ann = derived_markers(X)
    short = ["c2", "c3", "c4", "c5", "c3_dc", "c5_1"]  # order of the data's columns
    np.testing.assert_allclose(values["ac_short_sum"], X[short].sum(axis=1, skipna=False))
    assert ann.loc["ac_short_sum", "formula"] == " + ".join(short)
    assert np.isnan(values["ac_short_sum"].iloc[2])  # a missing input: the sum is missing
    acyl = [c for c in cols if c.startswith("c") and not c.startswith("ce_") and c != "c0"]
    np.testing.assert_allclose(values["ac_total"], X[acyl].sum(axis=1, skipna=False))
    np.testing.assert_allclose(values["acyl_free_ratio"], values["ac_total"] / X["c0"])
    assert ann.loc["acyl_free_ratio", "formula"] == "(" + " + ".join(acyl) + ") / c0"
    assert "c10_1" in ann.loc["ac_medium_sum", "inputs"].split(",")
    assert ann.loc["ac_long_sum", "inputs"].split(",") == ["c14", "c16", "c18", "c18_1", "c16_oh"]
    assert ann.loc["ce_total", "formula"] == " + ".join([*CE_CORE, "ce_22_6"])
    status = marker_status(X).set_index("marker")
    assert status["computed"].loc[["ac_short_sum", "ac_medium_sum", "ac_long_sum", "ac_total",
                                   "acyl_free_ratio", "ce_total", "cpt1_ratio"]].all()
    assert (status.loc[status["computed"], "missing"] == "").all()


@pytest.mark.parametrize("absent", ["c5", "c12", "c14", "ce_20_4"])
def test_one_absent_core_component_skips_the_marker(absent: str) -> None:
    cols = ["c0", *AC_SHORT, *AC_MEDIUM, *AC_LONG, *CE_CORE]
    X = _frame([c for c in cols if c != absent])
    values, _ = derived_markers(X)
    status = marker_status(X).set_index("marker")
    skipped = set(status.index[~status["computed"]])
    expected = {"ce_total"} if absent.startswith("ce_") else {
        "ac_total", "acyl_free_ratio",
        {"c5": "ac_short_sum", "c12": "ac_medium_sum", "c14": "ac_long_sum"}[absent]}
    assert expected <= skipped
    assert not expected & set(values.columns)
    for marker in expected:
        assert status.loc[marker, "missing"] == absent


def test_empty_frame_gives_annotations_without_values() -> None:
    # the out-of-core path asks which markers exist from the column names only
    names = ["c0", *AC_SHORT, *AC_MEDIUM, *AC_LONG, "ornithine"]
    values, ann = derived_markers(pd.DataFrame(np.empty((0, len(names))), columns=names))
    assert values.shape == (0, len(ann))
    assert {"ac_total", "acyl_free_ratio", "cpt1_ratio"} <= set(ann.index)
    assert "orn_arg_ratio" not in ann.index
