"""Replication of the published signature (hikisig.analysis.compare, hikisig compare)."""

from __future__ import annotations

import io
from pathlib import Path

import pandas as pd
import pytest

from helpers import hikisig
from hikisig.analysis.compare import (
    COMPARE_COLUMNS,
    FINDING_COLUMNS,
    available_references,
    compare,
    reference_findings,
    reference_info,
)
from hikisig.catalog import load_catalog
from hikisig.errors import HikisigError
from hikisig.prep.markers import MARKERS

SIGN_TEST = {"lcac_all", "lcac_men", "lcac_women", "ornithine_men", "arginase_men",
             "arginine_men", "bilirubin_men"}


def _stats(demo_run: Path) -> pd.DataFrame:
    return pd.read_csv(demo_run / "results" / "tables" / "stats.csv")


def test_reference_is_data_with_catalog_ids():
    assert available_references() == ["setoyama2021"]
    f = reference_findings("setoyama2021").set_index("id")
    assert list(reference_findings().columns) == list(FINDING_COLUMNS)
    known = set(load_catalog().ids) | {m.id for m in MARKERS}
    assert set(f["analyte"]) <= known
    published = {(a, s, e, k) for a, s, e, k in f[["analyte", "stratum", "expected", "kind"]]
                 .itertuples(index=False)}
    assert {("ac_long_sum", "all", "higher", "case_control"),
            ("ac_long_sum", "M", "higher", "case_control"),
            ("ac_long_sum", "F", "higher", "case_control"),
            ("ornithine", "M", "higher", "sex_specific"), ("arginase", "M", "higher", "sex_specific"),
            ("arginine", "M", "lower", "sex_specific"),
            ("total_bilirubin", "M", "lower", "sex_specific"),
            ("uric_acid", "cases", "", "stratifier"), ("ce_total", "cases", "", "stratifier")
            } <= published
    assert set(f.index[f["in_sign_test"]]) == SIGN_TEST
    assert f["source"].str.contains("Setoyama").all()
    assert f["published"].str.len().gt(20).all()
    info = reference_info()
    assert info["doi"] == "10.1080/19585969.2022.2046978" and "not" in info["published"]


def test_unknown_reference_lists_available():
    with pytest.raises(HikisigError, match=r"unknown reference 'nope' \(available: setoyama2021\)"):
        reference_findings("nope")
    with pytest.raises(HikisigError, match="available"):
        compare(pd.DataFrame(columns=["analyte", "stratum", "test", "effect", "q"]), "nope")


def test_not_a_stats_table():
    with pytest.raises(HikisigError, match="no column q"):
        compare(pd.DataFrame({"analyte": ["c16"], "stratum": ["all"], "test": ["welch"],
                              "effect": [1.0]}))


def test_demo_agrees_with_planted_directions(demo_run):
    r = compare(_stats(demo_run))
    t = r.table.set_index("finding")
    assert list(r.table.columns) == list(COMPARE_COLUMNS)
    # the demo plants long-chain acylcarnitines higher in both sexes, and in men ornithine
    # and arginase higher, arginine and bilirubin lower (d = 0.8 each)
    assert t.loc["lcac_all", "verdict"] == "agree" and t.loc["lcac_men", "verdict"] == "agree"
    assert t.loc["lcac_all", "test"] == "welch" and t.loc["lcac_all", "effect_type"] == "hedges_g"
    assert not (t["verdict"] == "disagree").any()
    assert set(t["verdict"]) <= {"agree", "inconclusive", "not testable"}
    counted = t[t["in_sign_test"]]
    assert counted["direction_matches"].astype(bool).all()
    assert (counted["observed_direction"] == counted["expected"]).all()
    assert r.sign_test == {"n": 7, "k": 7, "p": pytest.approx(0.5 ** 7)}
    # no group x sex interaction is planted: the findings in men are not shown to be specific
    men = t[t["kind"] == "sex_specific"]
    assert men["interaction_q"].notna().all() and (men["specificity"] == "not shown").all()
    assert men["note"].str.contains("not shown to be specific to men").all()
    assert (t.loc[["uric_acid_subgroups", "cholesterol_esters_subgroups"], "verdict"]
            == "not testable").all()
    assert "7 of 7" in r.summary and "not testable" in r.summary
    assert r.reference["name"] == "setoyama2021" and "Setoyama" in r.reference["citation"]


def test_reversed_signs_disagree(demo_run):
    stats = _stats(demo_run)
    rev = stats.copy()
    rev["effect"] = -stats["effect"]
    rev["effect_ci_low"], rev["effect_ci_high"] = -stats["effect_ci_high"], -stats["effect_ci_low"]
    r = compare(rev)
    t = r.table.set_index("finding")
    assert t.loc["lcac_all", "verdict"] == "disagree" and t.loc["lcac_men", "verdict"] == "disagree"
    assert not (t["verdict"] == "agree").any()
    assert r.sign_test["n"] == 7 and r.sign_test["k"] == 0 and r.sign_test["p"] == pytest.approx(1.0)


def test_missing_analyte_and_stratum(demo_run):
    stats = _stats(demo_run)
    r = compare(stats[stats["analyte"] != "arginase"])
    t = r.table.set_index("finding")
    assert t.loc["arginase_men", "verdict"] == "not measured"
    assert pd.isna(t.loc["arginase_men", "effect"])
    assert r.sign_test["n"] == 6
    assert "1 not measured" in r.summary
    # a table without a sex column: the findings in men are not tested
    overall = compare(stats[stats["stratum"] == "all"]).table.set_index("finding")
    assert (overall.loc[overall["stratum"].isin(["M", "F"]), "verdict"] == "not tested").all()
    assert overall.loc["lcac_all", "verdict"] == "agree"


def _toy(effect_m: float, q_m: float, inter: float, q_inter: float) -> pd.DataFrame:
    return pd.DataFrame({"analyte": ["ornithine", "ornithine"], "stratum": ["M", "interaction"],
                         "test": ["welch", "lm"], "effect": [effect_m, inter], "q": [q_m, q_inter]})


@pytest.mark.parametrize(("effect", "q", "inter", "q_inter", "verdict", "specificity"), [
    (0.9, 0.01, 0.4, 0.01, "agree", "supported"),
    (0.9, 0.01, -0.4, 0.01, "agree", "opposite"),
    (0.9, 0.01, 0.4, 0.2, "agree", "not shown"),
    (-0.9, 0.01, 0.4, 0.2, "disagree", "not shown"),
    (0.9, 0.05, 0.4, 0.01, "inconclusive", "supported"),
])
def test_sex_specific_rules(effect, q, inter, q_inter, verdict, specificity):
    row = compare(_toy(effect, q, inter, q_inter)).table.set_index("finding").loc["ornithine_men"]
    assert (row["verdict"], row["specificity"]) == (verdict, specificity)
    assert row["interaction_q"] == q_inter


def test_falls_back_to_mann_whitney_and_alpha():
    t = pd.DataFrame({"analyte": ["ac_long_sum"], "stratum": ["all"], "test": ["mwu"],
                      "effect": [0.4], "q": [0.08], "effect_type": ["cliffs_delta"]})
    row = compare(t).table.set_index("finding").loc["lcac_all"]
    assert (row["test"], row["verdict"]) == ("mwu", "inconclusive")
    assert compare(t, alpha=0.1).table.set_index("finding").loc["lcac_all", "verdict"] == "agree"
    with pytest.raises(HikisigError, match="alpha"):
        compare(t, alpha=1.5)


def test_cli(demo_run, tmp_path):
    stats = demo_run / "results" / "tables" / "stats.csv"
    r = hikisig("compare", str(stats), "--reference", "setoyama2021")
    assert r.returncode == 0, r.stderr
    table = pd.read_csv(io.StringIO(r.stdout))
    assert list(table.columns) == list(COMPARE_COLUMNS)
    assert "7 of 7" in r.stderr and "doi:10.1080/19585969.2022.2046978" in r.stderr
    out = tmp_path / "compare.csv"
    r = hikisig("compare", str(demo_run / "results"), "--out", str(out))
    assert r.returncode == 0, r.stderr
    assert pd.read_csv(out).equals(table)


def test_cli_errors(demo_run, tmp_path):
    stats = demo_run / "results" / "tables" / "stats.csv"
    r = hikisig("compare", str(stats), "--reference", "nope")
    assert r.returncode == 2
    assert r.stderr.strip() == "error: unknown reference 'nope' (available: setoyama2021)"
    r = hikisig("compare", str(tmp_path / "missing.csv"))
    assert r.returncode == 2 and "no such file" in r.stderr and "Traceback" not in r.stderr


def test_pooled_meta_table_is_compared_without_sex_specificity() -> None:
    from hikisig.analysis.compare import compare

    meta = pd.DataFrame({"analyte": ["ac_long_sum", "ornithine"], "stratum": ["all", "M"],
                         "k": [3, 3], "estimate": [0.25, 0.3], "se": [0.04, 0.05],
                         "ci_low": [0.17, 0.2], "ci_high": [0.33, 0.4], "p": [1e-9, 1e-7],
                         "q": [1e-8, 1e-6]})
    t = compare(meta).table.set_index("finding")
    assert t.loc["lcac_all", "verdict"] == "agree" and t.loc["lcac_all", "test"] == "meta"
    assert t.loc["ornithine_men", "verdict"] == "agree"
    assert t.loc["ornithine_men", "specificity"] == "not tested"
