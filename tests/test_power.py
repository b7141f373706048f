"""Power and sample size (hikisig.stats.power, hikisig power) against R's pwr package
(tests/reference/power_pwr.R) and the Hanley-McNeil formula by hand."""

from __future__ import annotations

import io
import math
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from helpers import hikisig
from hikisig.cli import power as _power_cli  # registers the command in any case
from hikisig.errors import HikisigError
from hikisig.stats.power import (
    DETECTABILITY_COLUMNS,
    auc_ci_half_width,
    bh_alpha,
    detectable_effect,
    hanley_mcneil_se,
    power_two_sample,
    required_n,
    required_n_table,
    sex_strata,
    study_detectability,
    welch_effects,
)

REF = Path(__file__).parent / "reference"
PWR = pd.read_csv(REF / "power_pwr.csv")


def _rows(kind: str) -> pd.DataFrame:
    rows = PWR[PWR["kind"] == kind]
    assert len(rows) >= 6
    return rows


# --- against R pwr ---------------------------------------------------------------------

def test_power_equals_pwr():
    r = _rows("power")
    got = power_two_sample(r["d"].to_numpy(), r["n1"].to_numpy(), r["n2"].to_numpy(),
                           r["alpha"].to_numpy())
    np.testing.assert_allclose(got, r["value"], rtol=0, atol=1e-10)
    for row in r.itertuples():  # scalar calls give the same numbers
        assert power_two_sample(row.d, row.n1, row.n2, row.alpha) == pytest.approx(row.value,
                                                                                   abs=1e-10)


def test_detectable_effect_equals_pwr():
    r = _rows("min_d")
    for row in r.itertuples():
        got = detectable_effect(row.n1, row.n2, row.alpha, row.power)
        assert got == pytest.approx(row.value, abs=1e-8)
        assert got == pytest.approx(row.pwr_value, abs=1e-3)  # pwr's own, uniroot tol ~1e-4


def test_required_n_equals_pwr():
    r = _rows("n_case")
    for row in r.itertuples():
        got = required_n(row.d, row.alpha, row.power, ratio=row.ratio)
        assert got == pytest.approx(row.value, rel=1e-9)
        if not math.isnan(row.pwr_value):
            assert got == pytest.approx(row.pwr_value, abs=1e-3)


def test_vectorised_solvers_match_scalar_calls():
    r = _rows("min_d")
    vec = detectable_effect(r["n1"].to_numpy(), r["n2"].to_numpy(), r["alpha"].to_numpy(), 0.8)
    one = [detectable_effect(n1, n2, a, 0.8) for n1, n2, a in zip(r["n1"], r["n2"], r["alpha"],
                                                                   strict=True)]
    np.testing.assert_allclose(vec, one, rtol=1e-12)
    d = np.array([0.3, 0.8, -1.2, 2.5])
    np.testing.assert_allclose(required_n(d, 0.01), [required_n(x, 0.01) for x in d], rtol=1e-12)


# --- properties --------------------------------------------------------------------------

@pytest.mark.parametrize(("n1", "n2", "alpha", "power"),
                         [(42, 41, 0.05 / 127, 0.8), (11, 10, 0.05, 0.9), (2, 2, 0.05, 0.8),
                          (500, 300, 1e-6, 0.95)])
def test_power_at_detectable_effect_is_the_target(n1, n2, alpha, power):
    d = detectable_effect(n1, n2, alpha, power)
    assert power_two_sample(d, n1, n2, alpha) == pytest.approx(power, abs=1e-10)


@pytest.mark.parametrize(("d", "alpha", "ratio"), [(0.8, 0.05, 1.0), (0.5, 0.05 / 127, 1.0),
                                                   (1.1, 0.01, 2.0), (0.6, 0.05, 0.5)])
def test_required_n_rounded_up_reaches_the_power(d, alpha, ratio):
    n = required_n(d, alpha, 0.8, ratio=ratio)
    assert power_two_sample(d, n, ratio * n, alpha) == pytest.approx(0.8, abs=1e-10)
    t = required_n_table(pd.DataFrame({"effect": [d]}), alpha, 0.8, ratio).iloc[0]
    n1, n2 = int(t["n_case_required"]), int(t["n_control_required"])
    assert n1 == math.ceil(n) and n2 == math.ceil(ratio * n)
    assert power_two_sample(d, n1, n2, alpha) >= 0.8
    assert power_two_sample(d, n1 - 1, ratio * (n1 - 1), alpha) < 0.8
    assert t["n_total_required"] == n1 + n2


def test_required_n_edge_cases():
    # a huge effect needs only the minimum of 2 per group; zero or missing effects have no n
    assert required_n(50.0) == 2.0
    assert required_n(50.0, ratio=0.5) == 4.0  # 2 controls
    n = required_n([0.0, np.nan, 0.5])
    assert np.isnan(n[0]) and np.isnan(n[1]) and n[2] == pytest.approx(63.76561019, abs=1e-6)
    assert np.isnan(required_n(1e-6))  # more than a billion per group


def test_power_is_nan_below_two_per_group_and_symmetric_in_d():
    assert math.isnan(power_two_sample(0.8, 1, 10))
    assert power_two_sample(-0.7, 20, 25) == power_two_sample(0.7, 20, 25)
    assert power_two_sample(0.0, 20, 25, 0.01) == pytest.approx(0.01, abs=1e-12)


def test_bad_parameters_raise():
    with pytest.raises(HikisigError, match="power"):
        detectable_effect(20, 20, alpha=0.05, power=1.0)
    with pytest.raises(HikisigError, match="exceed alpha"):
        required_n(0.5, alpha=0.5, power=0.4)
    with pytest.raises(HikisigError, match="ratio"):
        required_n(0.5, ratio=0)
    with pytest.raises(HikisigError, match="fdr"):
        bh_alpha(0.0, 127)
    with pytest.raises(HikisigError, match="analytes"):
        bh_alpha(0.05, 0)


# --- Hanley & McNeil ---------------------------------------------------------------------

@pytest.mark.parametrize(("auc", "n1", "n2"), [(0.85, 42, 41), (0.85, 11, 10), (0.7, 100, 50),
                                               (0.5, 20, 20)])
def test_hanley_mcneil_by_hand(auc, n1, n2):
    q1 = auc / (2 - auc)
    q2 = 2 * auc * auc / (1 + auc)
    var = (auc * (1 - auc) + (n1 - 1) * (q1 - auc * auc) + (n2 - 1) * (q2 - auc * auc)) / (n1 * n2)
    assert hanley_mcneil_se(auc, n1, n2) == pytest.approx(math.sqrt(var), rel=1e-14)
    z = 1.959963984540054  # qnorm(0.975)
    assert auc_ci_half_width(auc, n1, n2) == pytest.approx(z * math.sqrt(var), rel=1e-14)
    z90 = 1.6448536269514722  # qnorm(0.95)
    assert auc_ci_half_width(auc, n1, n2, level=0.9) == pytest.approx(z90 * math.sqrt(var),
                                                                      rel=1e-14)


def test_hanley_mcneil_study_size():
    # 42 cases, 41 controls, AUC 0.85: SE^2 = (0.1275 + 41 * 0.0166304... + 40 * 0.0583108...) / 1722
    assert auc_ci_half_width(0.85, 42, 41) == pytest.approx(0.0838620236, abs=1e-9)


# --- BH approximation -------------------------------------------------------------------

def test_bh_alpha_first_step_and_jung():
    assert bh_alpha(0.05, 127) == 0.05 / 127
    a = bh_alpha(0.05, 127, power=0.8, true_share=0.1)
    assert a == pytest.approx(0.05 * 0.1 * 0.8 / (1 - 0.05 * 0.9), rel=1e-15)
    # BH's fixed point: the threshold is FDR x the expected share of rejections at it
    assert a == pytest.approx(0.05 * (0.9 * a + 0.1 * 0.8), rel=1e-14)
    # and the expected FDR there is FDR x the share of nulls (BH's guarantee)
    assert 0.9 * a / (0.9 * a + 0.1 * 0.8) == pytest.approx(0.05 * 0.9, rel=1e-12)


# --- the study table ----------------------------------------------------------------------

def test_sex_strata_round_women_half_up():
    assert sex_strata(42, 41, 0.25) == ({"all": 42, "F": 11, "M": 31}, {"all": 41, "F": 10, "M": 31})
    assert sex_strata(42, 41) == ({"all": 42}, {"all": 41})
    with pytest.raises(HikisigError):
        sex_strata(42, 41, 1.5)


def test_cohort_detectability_reads_the_cohort_table():
    from hikisig.stats.describe import cohort_summary
    from hikisig.stats.power import cohort_detectability

    group = pd.Series(["case"] * 21 + ["control"] * 20)
    sex = pd.Series((["F"] * 11 + ["M"] * 10) + (["F"] * 10 + ["M"] * 10))
    with_sex = cohort_detectability(cohort_summary(group, "case", "control", sex).table,
                                    "case", "control", 127, auc=0.8)
    assert list(with_sex["stratum"]) == ["all", "F", "M"]
    assert with_sex.set_index("stratum").loc["F", ["n_case", "n_control"]].tolist() == [11, 10]
    no_sex = cohort_detectability(cohort_summary(group, "case", "control", None).table,
                                  "case", "control", 127)
    assert list(no_sex["stratum"]) == ["all"] and no_sex["auc_ci_half_width"].isna().all()


def test_study_detectability_of_the_study():
    t = study_detectability(*sex_strata(42, 41, 0.25), n_analytes=127, fdr=0.05, power=0.8,
                            auc=0.85)
    assert list(t.columns) == DETECTABILITY_COLUMNS
    assert list(t["stratum"]) == ["all", "F", "M"]
    bh = 0.05 / 127
    md = PWR[PWR["kind"] == "min_d"]

    def ref(key: tuple[int, int, float]) -> float:
        n1, n2, alpha = key
        hit = md[(md["n1"] == n1) & (md["n2"] == n2) & np.isclose(md["alpha"], alpha, rtol=1e-12)]
        return float(hit["value"].iloc[0])

    t = t.set_index("stratum")
    assert t.loc["all", "alpha"] == bh and t.loc["all", "alpha_rule"] == "bh_first_step"
    assert t.loc["all", "min_d"] == pytest.approx(ref((42, 41, bh)), abs=1e-8)
    assert t.loc["all", "min_d_nominal"] == pytest.approx(ref((42, 41, 0.05)), abs=1e-8)
    assert t.loc["M", "min_d"] == pytest.approx(ref((31, 31, bh)), abs=1e-8)
    assert t.loc["F", "min_d"] == pytest.approx(ref((11, 10, bh)), abs=1e-8)
    assert t.loc["all", "power_at_reference_d"] == pytest.approx(
        power_two_sample(0.8, 42, 41, bh), abs=1e-15)
    assert t.loc["F", "auc_ci_half_width"] == pytest.approx(auc_ci_half_width(0.85, 11, 10))
    power = PWR[PWR["kind"] == "power"]
    f_nominal = power[(power["n1"] == 11) & (power["n2"] == 10) & (power["d"] == 0.8)
                      & (power["alpha"] == 0.05)]["value"].iloc[0]
    assert t.loc["F", "power_at_reference_d_nominal"] == pytest.approx(f_nominal, abs=1e-10)
    assert t.loc["M", "reading"] == (
        "with 31 men per group, power is 0.29 for d = 0.8 at alpha = 0.00039 (0.87 at an "
        "uncorrected 0.05); only differences "
        "of d >= 1.18 are found with 80% power (d >= 0.72 at an uncorrected alpha of 0.05); an "
        "AUC of 0.85 is estimated within +/- 0.10")
    assert t.loc["all", "reading"].startswith("with 42 cases and 41 controls, power is 0.48")


def test_study_detectability_options():
    t = study_detectability({"all": 20}, {"all": 20}, alpha=0.01)
    assert t.loc[0, "alpha_rule"] == "given" and t.loc[0, "alpha"] == 0.01
    assert np.isnan(t.loc[0, "auc_ci_half_width"]) and "AUC" not in t.loc[0, "reading"]
    assert t.loc[0, "min_d"] == pytest.approx(detectable_effect(20, 20, 0.01, 0.8))
    j = study_detectability({"all": 20}, {"all": 20}, n_analytes=100, true_share=0.2)
    assert j.loc[0, "alpha_rule"] == "bh_asymptotic"
    assert j.loc[0, "alpha"] == pytest.approx(bh_alpha(0.05, 100, 0.8, 0.2))
    few = study_detectability({"all": 10, "F": 1}, {"all": 10, "F": 3})
    assert np.isnan(few.loc[1, "min_d"]) and "no t-test is possible" in few.loc[1, "reading"]
    with pytest.raises(HikisigError, match="negative"):
        study_detectability({"all": -1}, {"all": 10})
    with pytest.raises(HikisigError, match="same strata"):
        study_detectability({"all": 10, "F": 4}, {"all": 10})


# --- effects of a stats table -------------------------------------------------------------

def _stats_table() -> pd.DataFrame:
    rows = []
    for analyte, g in (("ornithine", 0.55), ("arginine", -0.9), ("c16", 0.0)):
        for stratum, n1, n2 in (("all", 42, 41), ("F", 11, 10), ("M", 31, 31)):
            rows.append({"analyte": analyte, "stratum": stratum, "test": "welch", "effect": g,
                         "effect_type": "hedges_g", "n_case": float(n1), "n_control": float(n2)})
            rows.append({"analyte": analyte, "stratum": stratum, "test": "mwu", "effect": 0.3,
                         "effect_type": "cliffs_delta", "n_case": n1, "n_control": n2})
        rows.append({"analyte": analyte, "stratum": "interaction", "test": "lm", "effect": 0.2,
                     "effect_type": "log2_ratio", "n_case": 42, "n_control": 41})
    return pd.DataFrame(rows)


def test_welch_effects_and_required_n_table():
    e = welch_effects(_stats_table())
    assert list(e.columns) == ["analyte", "stratum", "effect", "n_case", "n_control"]
    assert len(e) == 9 and set(e["stratum"]) == {"all", "F", "M"}
    assert e["n_case"].dtype == "Int64"
    t = required_n_table(e, alpha=0.01)
    row = t[(t["analyte"] == "arginine") & (t["stratum"] == "M")].iloc[0]
    assert row["n_case_exact"] == pytest.approx(required_n(0.9, 0.01), rel=1e-12)
    assert row["n_case_required"] == math.ceil(required_n(0.9, 0.01))
    assert t.loc[t["analyte"] == "c16", "n_case_required"].isna().all()


@pytest.mark.parametrize(("table", "message"), [
    (pd.DataFrame({"analyte": ["a"], "stratum": ["all"], "test": ["mwu"], "effect": [0.2],
                   "n_case": [5], "n_control": [5]}), "no Welch rows"),
    (pd.DataFrame({"analyte": ["a"], "stratum": ["all"], "test": ["welch"], "effect": [0.2],
                   "effect_type": ["mean_difference"], "n_case": [5], "n_control": [5]}),
     "no Welch rows"),
    (pd.DataFrame({"analyte": ["a"], "effect": [0.2]}), "not a table of hikisig stats"),
])
def test_welch_effects_refuses_other_tables(table, message):
    with pytest.raises(HikisigError, match=message):
        welch_effects(table)


# --- command line -------------------------------------------------------------------------

def test_cli_defaults_are_the_library_defaults():
    from hikisig.stats import power as lib

    for name in ("DEFAULT_FDR", "DEFAULT_N_ANALYTES", "DEFAULT_POWER", "DEFAULT_AUC",
                 "DEFAULT_REFERENCE_D"):
        assert getattr(_power_cli, name) == getattr(lib, name), name


def _csv(text: str) -> pd.DataFrame:
    return pd.read_csv(io.StringIO(text))


def test_cli_study_size_table_on_stdout():
    r = hikisig("power", "--n-case", "42", "--n-control", "41", "--women-share", "0.25")
    assert r.returncode == 0, r.stderr
    t = _csv(r.stdout)
    assert list(t.columns) == DETECTABILITY_COLUMNS
    expect = study_detectability(*sex_strata(42, 41, 0.25), n_analytes=127, auc=0.85)
    pd.testing.assert_frame_equal(t, expect, check_dtype=False, rtol=1e-12)
    assert "BH at FDR 0.05 over 127 analytes" in r.stderr
    assert "M: with 31 men per group" in r.stderr
    assert "F: with 11 cases and 10 controls among women" in r.stderr


def test_cli_study_size_options_and_out(tmp_path: Path):
    out = tmp_path / "power.csv"
    r = hikisig("power", "--n-case", "30", "--n-control", "60", "--fdr", "0.1", "--n-analytes",
                "50", "--power", "0.9", "--true-share", "0.2", "--auc", "0.75", "--out", str(out))
    assert r.returncode == 0, r.stderr
    assert r.stdout == "" and f"wrote {out}" in r.stderr
    t = pd.read_csv(out)
    assert list(t["stratum"]) == ["all"]
    a = bh_alpha(0.1, 50, 0.9, 0.2)
    assert t.loc[0, "alpha"] == pytest.approx(a) and t.loc[0, "alpha_rule"] == "bh_asymptotic"
    assert t.loc[0, "min_d"] == pytest.approx(detectable_effect(30, 60, a, 0.9), abs=1e-12)
    assert t.loc[0, "auc_ci_half_width"] == pytest.approx(auc_ci_half_width(0.75, 30, 60))
    g = hikisig("power", "--n-case", "30", "--n-control", "30", "--alpha", "0.001")
    assert g.returncode == 0 and _csv(g.stdout).loc[0, "alpha_rule"] == "given"


def test_cli_effects_table(tmp_path: Path):
    stats = tmp_path / "stats.csv"
    _stats_table().to_csv(stats, index=False)
    out = tmp_path / "needed.csv"
    r = hikisig("power", "--effects", str(stats), "--out", str(out))
    assert r.returncode == 0, r.stderr
    t = pd.read_csv(out)
    assert len(t) == 9
    np.testing.assert_allclose(t["alpha"], 0.05 / 3, rtol=1e-12)  # 3 analytes in the table
    assert {"analyte", "stratum", "effect", "n_case", "n_control", "alpha_rule", "n_case_exact",
            "n_case_required", "n_control_required", "n_total_required"} <= set(t.columns)
    row = t[(t["analyte"] == "ornithine") & (t["stratum"] == "all")].iloc[0]
    assert row["n_case_required"] == math.ceil(required_n(0.55, 0.05 / 3))
    assert "per-test alpha 0.0167" in r.stderr and "cases needed for 80% power" in r.stderr
    # --n-analytes and --ratio
    r2 = hikisig("power", "--effects", str(stats), "--n-analytes", "127", "--ratio", "2")
    t2 = _csv(r2.stdout)
    row2 = t2[(t2["analyte"] == "arginine") & (t2["stratum"] == "F")].iloc[0]
    n = required_n(0.9, 0.05 / 127, 0.8, ratio=2)
    assert row2["n_case_required"] == math.ceil(n) and row2["n_control_required"] == math.ceil(2 * n)


def test_cli_effects_of_a_real_stats_run(tmp_path: Path):
    stats = tmp_path / "stats.csv"
    r = hikisig("stats", str(REF / "casecontrol_data.csv"), "--test", "welch", "--out", str(stats))
    assert r.returncode == 0, r.stderr
    p = hikisig("power", "--effects", str(stats))
    assert p.returncode == 0, p.stderr
    t = _csv(p.stdout)
    src = pd.read_csv(stats)
    welch = src[src["test"] == "welch"]
    assert len(t) == len(welch)
    merged = t.merge(welch[["analyte", "stratum", "effect"]], on=["analyte", "stratum"],
                     suffixes=("", "_stats"))
    np.testing.assert_allclose(merged["effect"], merged["effect_stats"])
    ok = merged["effect"].notna() & (merged["effect"] != 0)
    np.testing.assert_allclose(merged.loc[ok, "n_case_exact"],
                               required_n(merged.loc[ok, "effect"].to_numpy(),
                                          0.05 / welch["analyte"].nunique()), rtol=1e-12)


def test_cli_effect_values():
    r = hikisig("power", "--effect", "0.5,0.8,1.2", "--alpha", "0.05")
    assert r.returncode == 0, r.stderr
    t = _csv(r.stdout)
    assert list(t["n_case_required"]) == [64, 26, 12]
    pwr = PWR[(PWR["kind"] == "n_case") & (PWR["alpha"] == 0.05) & (PWR["ratio"] == 1)
              & PWR["d"].isin([0.5, 0.8])].sort_values("d")["value"]
    assert t["n_case_exact"].tolist() == pytest.approx([*pwr, required_n(1.2)], rel=1e-9)
    assert "3 effect(s): 12 to 64 cases needed for 80% power" in r.stderr
    b = hikisig("power", "--effect", "0.8")  # default: BH over 127 analytes
    assert _csv(b.stdout).loc[0, "n_case_required"] == math.ceil(required_n(0.8, 0.05 / 127))


@pytest.mark.parametrize(("args", "message"), [
    (["--n-case", "-3", "--n-control", "41"], "at least 2"),
    (["--n-case", "42"], "both --n-case and --n-control"),
    (["--n-case", "42", "--n-control", "41", "--fdr", "0"], "--fdr must be between 0 and 1"),
    (["--n-case", "42", "--n-control", "41", "--fdr", "1.5"], "--fdr must be between 0 and 1"),
    (["--n-case", "42", "--n-control", "41", "--power", "1"], "--power must be between 0 and 1"),
    (["--n-case", "42", "--n-control", "41", "--women-share", "1"], "--women-share"),
    (["--n-case", "42", "--n-control", "41", "--auc", "1.2"], "--auc"),
    (["--n-case", "42", "--n-control", "41", "--n-analytes", "0"], "--n-analytes"),
    (["--n-case", "42", "--n-control", "41", "--alpha", "0.9"], "must exceed alpha"),
    (["--n-case", "42", "--n-control", "41", "--effect", "0.5"], "give either"),
    ([], "give either"),
    (["--effect", "abc"], "--effect must be a number"),
    (["--effect", "0"], "non-zero"),
    (["--effect", "0.5", "--ratio", "-1"], "--ratio"),
    (["--effect", "0.5", "--women-share", "0.3"], "--women-share is for"),
    (["--effects", "missing-stats.csv"], "no such file"),
])
def test_cli_bad_input_is_one_line_and_exit_2(args, message, tmp_path: Path):
    r = hikisig("power", *args, cwd=tmp_path)
    assert r.returncode == 2
    assert r.stderr.count("\n") == 1 and r.stderr.startswith("error: "), r.stderr
    assert message in r.stderr
    assert r.stdout == ""


def test_cli_stats_table_without_welch_rows(tmp_path: Path):
    stats = tmp_path / "stats.csv"
    t = _stats_table()
    t[t["test"] != "welch"].to_csv(stats, index=False)
    r = hikisig("power", "--effects", str(stats))
    assert r.returncode == 2
    assert r.stderr == ("error: the table has no Welch rows with Hedges' g (run hikisig stats "
                        "with --test welch on a linear or logged scale)\n")
    other = tmp_path / "other.csv"
    pd.DataFrame({"x": [1, 2]}).to_csv(other, index=False)
    r = hikisig("power", "--effects", str(other))
    assert r.returncode == 2 and r.stderr.count("\n") == 1
    assert "not a table of hikisig stats" in r.stderr
