"""The 2020 criteria: the boundaries the issue fixes, and input validation."""

from __future__ import annotations

import pandas as pd
import pytest

from hikisig.assess.criteria import apply_criteria, classify
from hikisig.errors import InputError


@pytest.mark.parametrize("days,room,status,severity", [
    (4, False, "not", ""), (3, False, "hikikomori", "mild"), (2, False, "hikikomori", "mild"),
    (1, False, "hikikomori", "moderate"), (0, False, "hikikomori", "moderate"),
    (0, True, "hikikomori", "severe"), (7, False, "not", ""),
])
def test_days_out_boundaries(days, room, status, severity):
    assert classify(days, room, 12, True, False)[:2] == (status, severity)


@pytest.mark.parametrize("months,status", [(6.0, "hikikomori"), (5.9, "pre-hikikomori"),
                                           (3.0, "pre-hikikomori"), (2.9, "not")])
def test_duration_boundaries(months, status):
    assert classify(1, False, months, False, True)[0] == status


def test_impairment_or_distress_required_also_for_pre():
    assert classify(1, False, 12, False, False)[0] == "not"
    status, _, reasons = classify(1, False, 4, False, False)
    assert status == "not" and "impairment or distress" in reasons


def test_reasons_name_each_failed_criterion():
    _, _, reasons = classify(5, False, 2, False, False)
    assert "4 or more days" in reasons and "< 3" in reasons and "impairment" in reasons


def test_frame_booleans_any_case_and_errors():
    df = pd.DataFrame({"id": ["A", "B"], "days_out_per_week": ["0", "3"],
                       "rarely_leaves_room": ["TRUE", "No"], "months_isolated": ["7", "6"],
                       "impairment": ["Yes", "0"], "distress": ["1", "y"]})
    out = apply_criteria(df)
    assert out.columns.tolist() == ["id", "status", "severity", "reasons"]
    assert out["severity"].tolist() == ["severe", "mild"]
    df.loc[1, "distress"] = "maybe"
    df.loc[0, "days_out_per_week"] = "9"
    with pytest.raises(InputError) as exc:
        apply_criteria(df, "c.csv")
    text = str(exc.value)
    assert "row 3, column 'distress'" in text and "row 2, column 'days_out_per_week'" in text
