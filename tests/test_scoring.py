"""The generic scorer: checkable totals, bands, flags, missing-data rules, properties."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from hikisig.assess.answers import check_answers
from hikisig.assess.definition import instrument_ids, load_instrument
from hikisig.assess.scoring import reverse, score
from hikisig.errors import InputError


def frame(inst, rows):
    return pd.DataFrame([{"id": f"P{k}", **{f"item{i + 1}": v for i, v in enumerate(r)}}
                         for k, r in enumerate(rows)])


@pytest.mark.parametrize("iid,value,total", [("hq25m", 0, 24), ("hq25m", 4, 76),
                                             ("ucla3", 1, 47), ("ucla3", 4, 53)])
def test_checkable_totals(iid, value, total):
    inst = load_instrument(iid)
    out = score(frame(inst, [[value] * inst.n_items]), inst)
    assert out.loc[0, "total"] == total


def test_phq9_bands_change_exactly_at_5_10_15_20():
    inst = load_instrument("phq9")
    rows = []
    for t in (4, 5, 9, 10, 14, 15, 19, 20, 27):
        r = [0] * 9
        left = t
        for i in range(9):
            r[i] = min(3, left)
            left -= r[i]
        rows.append(r)
    bands = score(frame(inst, rows), inst)["band"].tolist()
    assert bands == ["minimal", "mild", "mild", "moderate", "moderate", "moderately severe",
                     "moderately severe", "severe", "severe"]


def test_item9_alert_fires_with_total_1():
    inst = load_instrument("phq9")
    out = score(frame(inst, [[0] * 8 + [1], [1] + [0] * 8]), inst)
    assert out["total"].tolist() == [1, 1]
    assert out["item9_alert"].tolist() == [True, False]
    assert out["band"].tolist() == ["minimal", "minimal"]


def test_hq25_cutoff_default_42_and_44_selectable():
    inst = load_instrument("hq25")
    rows = [[2] * 21 + [0] * 4]  # some total near the cut-off, computed below
    a = frame(inst, rows)
    total = score(a, inst)["total"].iloc[0]
    for cut in (total, total + 1):
        flag = score(a, inst, cutoff=cut)["screen_positive"].iloc[0]
        assert flag == (total >= cut)
    assert score(a, inst).columns[:2].tolist() == ["id", "total"]


def test_missing_rule_complete_and_note():
    inst = load_instrument("phq9")
    a = frame(inst, [[1] * 8 + [np.nan]])
    out = score(a, inst)
    assert np.isnan(out.loc[0, "total"]) and out.loc[0, "band"] == ""
    assert "1 of 9 items unanswered" in out.loc[0, "note"]
    assert pd.isna(out.loc[0, "item9_alert"])


def test_output_columns_contract():
    inst = load_instrument("phq9")
    cols = score(frame(inst, [[0] * 9]), inst).columns.tolist()
    assert cols[:3] == ["id", "total", "band"]
    assert cols.index("screen_positive") < cols.index("n_missing")


@pytest.mark.parametrize("iid", instrument_ids())
@settings(max_examples=40, deadline=None)
@given(data=st.data())
def test_properties(iid, data):
    inst = load_instrument(iid)
    lo, hi, k = inst.response_min, inst.response_max, inst.n_items
    rows = data.draw(st.lists(st.lists(st.integers(lo, hi), min_size=k, max_size=k),
                              min_size=1, max_size=5))
    a = frame(inst, rows)
    out = score(a, inst)
    # totals stay in range
    assert ((out["total"] >= inst.min_total) & (out["total"] <= inst.max_total)).all()
    # column order does not change scores
    perm = data.draw(st.permutations(list(a.columns)))
    pd.testing.assert_frame_equal(score(a[perm], inst), out)
    # reversing twice is the identity
    x = a[inst.item_columns].to_numpy(float)
    np.testing.assert_array_equal(reverse(inst, reverse(inst, x)), x)


def test_out_of_range_unknown_item_and_wrong_instrument_named():
    inst = load_instrument("phq9")
    df = pd.DataFrame({"id": ["A", "B"], "visit": ["1", "2"],
                       **{f"item{i}": ["0", "0"] for i in range(1, 10)}})
    df.loc[1, "item4"] = "7"
    with pytest.raises(InputError) as exc:
        check_answers(df, inst, "a.csv")
    p = exc.value.problems[0]
    assert p.row == 3 and p.column == "item4" and "participant 'B', visit 2, item 4" in p.message
    hq = pd.DataFrame({"id": ["A"], **{f"item{i}": ["1"] for i in range(1, 26)}})
    with pytest.raises(InputError, match="is this another instrument"):
        check_answers(hq, inst, "hq.csv")
    with pytest.raises(InputError, match=r"column 'item10'.*unknown item"):
        check_answers(hq, inst, "hq.csv")


def test_aliases_accepted():
    inst = load_instrument("phq9")
    df = pd.DataFrame({"participant": ["A"], **{f"phq9_{i}": ["1"] for i in range(1, 10)}})
    assert score(check_answers(df, inst), inst)["total"].iloc[0] == 9
