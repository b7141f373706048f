"""The follow-up in `hikisig run` on synthetic studies with a planted treatment effect:
untreated people are not flagged more than 5 % of the time, treated cases are, the mixed
model finds the planted markers, and with no effect the arms do not differ."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pandas as pd
import pytest

import hikisig
from helpers import hikisig as cli
from hikisig.config import StudyConfig

ONLY_FOLLOWUP = {"discriminate": {"enabled": False}, "severity": {"enabled": False},
                 "stratify": {"enabled": False}, "followup": {"n_estimators": 100}}


def _study(folder: Path, effect: float, seed: int, n_cases: int = 200,
           n_controls: int = 200) -> Path:
    r = cli("-q", "synth", "--seed", str(seed), "--visits", "3", "--n-cases", str(n_cases),
            "--n-controls", str(n_controls), "--treated-share", "0.5", "--treatment-effect",
            str(effect), "--out", str(folder / "syn"), "--db", str(folder / "s.db"))
    assert r.returncode == 0, r.stderr
    return folder


def _run(folder: Path, **source: str) -> hikisig.RunResults:
    config = StudyConfig.model_validate({"source": {"db": str(folder / "s.db"), **source},
                                         **ONLY_FOLLOWUP})
    return hikisig.run(config, out=folder / "out")


@pytest.fixture(scope="module")
def treated(tmp_path_factory: pytest.TempPathFactory) -> tuple[hikisig.RunResults, Path]:
    folder = _study(tmp_path_factory.mktemp("fu_effect"), 0.8, seed=11)
    return _run(folder), folder


@pytest.fixture(scope="module")
def no_effect(tmp_path_factory: pytest.TempPathFactory) -> tuple[hikisig.RunResults, Path]:
    folder = _study(tmp_path_factory.mktemp("fu_null"), 0.0, seed=12)
    # the intervention log read from a file (source.interventions) instead of the store
    return _run(folder, interventions=str(folder / "syn" / "interventions.csv")), folder


def _rates(results: hikisig.RunResults) -> pd.DataFrame:
    assert results.followup is not None
    rates = results.followup.rates
    print(rates.round(3).to_string())  # the shares and their 95% CIs, in the test output
    return rates.set_index(["measure", "arm"])


def test_tables_keep_their_contract(treated) -> None:
    _, folder = treated
    change = pd.read_csv(folder / "out" / "tables" / "followup_change.csv")
    assert list(change.columns)[:6] == ["participant", "arm", "visit", "measure", "change",
                                        "reliable_change"]
    assert set(change["arm"]) == {"treated", "untreated", "control"}
    assert change["visit"].min() == 2
    lmm = pd.read_csv(folder / "out" / "tables" / "followup_lmm.csv")
    assert list(lmm.columns)[:6] == ["analyte", "term", "estimate", "se", "p", "q"]
    truth = json.loads((folder / "syn" / "truth.json").read_text())
    arms = pd.read_csv(folder / "out" / "tables" / "followup_arms.csv").set_index("participant")
    assert set(arms.index[arms["arm"] == "treated"]) == set(truth["treatment"]["treated"])


def test_untreated_flagged_at_most_five_percent_treated_far_more(treated) -> None:
    results, _ = treated
    rates = _rates(results)
    measures = set(rates.index.get_level_values(0))
    assert {"discrimination_logit", "severity_prediction", "hq25"} <= measures
    for measure in measures:
        for arm in ("untreated", "control"):
            assert rates.loc[(measure, arm), "share"] <= 0.05, (measure, arm)
    for measure in ("discrimination_logit", "hq25"):
        t, u = rates.loc[(measure, "treated")], rates.loc[(measure, "untreated")]
        assert t["share_improve"] > 3 * u["share_improve"], measure
        assert t["improve_ci_low"] > u["improve_ci_high"], measure
    assert rates.loc[("hq25", "treated"), "share_improve"] > 0.5


def test_mixed_model_finds_the_planted_markers(treated) -> None:
    results, folder = treated
    truth = json.loads((folder / "syn" / "truth.json").read_text())
    planted = {e["analyte"] for e in truth["effects"] if e["contrast"] == "case_vs_control"}
    lmm = results.followup.lmm
    term = lmm[lmm["term"] == "visit:arm[treated]"].set_index("analyte")
    found = term.loc[term.index.intersection(sorted(planted)), "q"] < 0.05
    assert found.mean() >= 0.75, found
    null = set(truth["null_analytes"]) & set(term.index)
    assert (term.loc[sorted(null), "q"] < 0.05).mean() <= 0.05


def test_report_section_says_it_in_words(treated) -> None:
    results, folder = treated
    html = (folder / "out" / "report.html").read_text(encoding="utf-8")
    block = html[html.index('<section id="followup">'):]
    block = block[:block.index("</section>")]
    assert "come from models that never saw the participant" in block
    assert re.search(r"signature score \(cross-fitted logit\): a reliable improvement in "
                     r"[\d.]+% \([^)]*\) of the treated cases", block)
    assert "the treated arm improves more often than the untreated arm" in block
    assert 'id="fig-followup"' in block and "visit x treated term" in block
    codes = set(results.followup.arms.index)
    assert not [c for c in codes if re.search(rf"\b{re.escape(c)}\b", block)]
    methods = html[html.index('<section id="methods">'):]
    assert "Follow-up. Participants were assigned to arms" in methods


def test_no_effect_arms_do_not_differ(no_effect) -> None:
    results, _ = no_effect
    assert results.followup.interventions_source == "the intervention log interventions.csv"
    rates = _rates(results)
    for measure in ("discrimination_logit", "hq25"):
        t, u = rates.loc[(measure, "treated")], rates.loc[(measure, "untreated")]
        assert abs(t["share"] - u["share"]) < 0.05, measure
        assert t["ci_low"] <= u["ci_high"] and u["ci_low"] <= t["ci_high"], measure
    term = results.followup.lmm.query("term == 'visit:arm[treated]'")
    assert (term["q"] < 0.05).mean() <= 0.05


def test_single_visit_study_has_no_followup(demo_run: Path) -> None:
    html = (demo_run / "results" / "report.html").read_text(encoding="utf-8")
    assert 'id="followup"' not in html
    assert not (demo_run / "results" / "tables" / "followup_change.csv").exists()


def test_too_few_followed_participants_is_a_reason(tmp_path: Path) -> None:
    folder = _study(tmp_path, 0.8, seed=3, n_cases=12, n_controls=3)
    config = StudyConfig.model_validate({"source": {"db": str(folder / "s.db")},
                                         **ONLY_FOLLOWUP, "stats": {"enabled": False}})
    results = hikisig.run(config, out=folder / "out")
    assert results.followup is None
    assert "at least 5 case and 5 control participants" in results.skipped["followup"]
    html = (folder / "out" / "report.html").read_text(encoding="utf-8")
    assert "The follow-up was not run: the cross-fitted scores need at least 5" in html


def test_test_retest_set_sets_the_thresholds(tmp_path: Path) -> None:
    folder = _study(tmp_path, 0.8, seed=5, n_cases=30, n_controls=30)
    arms_file = pd.read_csv(folder / "syn" / "participants.csv", dtype=str)
    retest = arms_file.loc[arms_file["group"] == "control", ["id"]].rename(
        columns={"id": "participant"}).head(20)
    retest.to_csv(folder / "retest.csv", index=False)
    config = StudyConfig.model_validate({
        "source": {"db": str(folder / "s.db")}, **ONLY_FOLLOWUP,
        "followup": {"n_estimators": 50, "test_retest": str(folder / "retest.csv"),
                     "mixed_model": False}})
    fu = hikisig.run(config, out=folder / "out").followup
    assert fu is not None and fu.reference == "the repeat visits of the 20 test-retest participants"
    assert fu.lmm is None
    # the arms stay the true ones; the thresholds come from the 20 controls only
    assert set(fu.change["arm"]) == {"treated", "untreated", "control"}
    pooled = fu.thresholds[fu.thresholds["stratum"] == "all"]
    assert (pooled["n_people"] <= 20).all() and (pooled["n_people"] > 0).any()
