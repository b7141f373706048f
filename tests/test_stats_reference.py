"""Statistics against independent implementations (R; scripts in tests/reference/)."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from hikisig.stats import (
    auc_delong,
    cronbach_alpha,
    delong_variance,
    item_total,
    predictive_values,
    screening_accuracy,
)

REF = Path(__file__).parent / "reference"


def test_cronbach_alpha_equals_r_psych():
    ref = json.loads((REF / "alpha_psych.json").read_text())
    x = pd.read_csv(REF / "alpha_items.csv")
    a = cronbach_alpha(x)
    assert a["alpha"] == pytest.approx(ref["alpha"], abs=1e-10)
    assert a["lower"] == pytest.approx(ref["feldt_lower"], abs=1e-10)
    assert a["upper"] == pytest.approx(ref["feldt_upper"], abs=1e-10)
    it = item_total(x)
    np.testing.assert_allclose(it["r_item_rest"], ref["r_drop"], atol=1e-10)
    np.testing.assert_allclose(it["alpha_if_dropped"], ref["alpha_if_dropped"], atol=1e-10)


def test_delong_equals_r_proc():
    ref = json.loads((REF / "delong_proc.json").read_text())
    d = pd.read_csv(REF / "roc_scores.csv")
    auc, var = delong_variance(d["y"].to_numpy(), d["score"].to_numpy())
    assert auc == pytest.approx(ref["auc"], abs=1e-12)
    assert var == pytest.approx(ref["variance"], abs=1e-12)
    r = auc_delong(d["y"].to_numpy(), d["score"].to_numpy())
    assert (r["lower"], r["upper"]) == pytest.approx((ref["lower"], ref["upper"]), abs=1e-10)


def test_auc_ci_clipped():
    y = np.array([0, 0, 0, 1, 1, 1])
    r = auc_delong(y, np.array([0.1, 0.2, 0.3, 0.7, 0.8, 0.9]))
    assert r["auc"] == 1.0 and r["upper"] == 1.0 and 0 <= r["lower"] <= 1


def test_predictive_values_at_prevalence():
    # HQ-25 at 42: Se 94%, Sp 61%; at 1.57% prevalence PPV is tiny, NPV near 1
    ppv, npv = predictive_values(0.94, 0.61, 0.0157)
    assert ppv == pytest.approx(0.94 * 0.0157 / (0.94 * 0.0157 + 0.39 * 0.9843))
    assert npv == pytest.approx(0.61 * 0.9843 / (0.61 * 0.9843 + 0.06 * 0.0157))


def test_screening_accuracy_counts_and_wilson():
    s = np.array([50, 45, 44, 43, 30, 20, 60, 10, 42, 41])
    d = np.array([1, 1, 1, 0, 0, 0, 1, 0, 1, 1])
    t = screening_accuracy(s, d, 42).set_index("metric")
    assert t.loc["tp", "estimate"] == 5 and t.loc["fn", "estimate"] == 1
    assert t.loc["fp", "estimate"] == 1 and t.loc["tn", "estimate"] == 3
    assert t.loc["sensitivity", "estimate"] == pytest.approx(5 / 6)
    # Wilson interval for 5/6 (statsmodels; R: prop.test(5, 6, correct=FALSE)$conf.int)
    assert t.loc["sensitivity", "lower"] == pytest.approx(0.43649, abs=1e-4)
    assert t.loc["sensitivity", "upper"] == pytest.approx(0.96994, abs=1e-4)
    assert t.loc["ppv_at_prevalence", "estimate"] < t.loc["ppv", "estimate"]
    assert "auc" in t.index
