"""Follow-up of the synthetic study: treated cases, within-person variation, interventions."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from helpers import hikisig
from hikisig.assess.answers import check_answers
from hikisig.assess.definition import load_instrument
from hikisig.assess.scoring import score
from hikisig.synth import writers
from hikisig.synth.config import SynthConfig, preset
from hikisig.synth.generate import INTERVENTION_KINDS, SyntheticStudy

E = 0.8
N_CASES, N_CONTROLS = 120, 80


def _load(folder: Path) -> dict:
    """Log values (participant x visit x analyte), HQ-25 totals (participant x visit), truth."""
    truth = json.loads((folder / "truth.json").read_text())
    parts = pd.read_csv(folder / "participants.csv", dtype={"subtype": str})
    meas = pd.read_csv(folder / "measurements.csv", na_values=["<LOD"])
    meas = meas.sort_values(["id", "visit"])
    ids = [a["id"] for a in truth["analytes"]]
    n_v = truth["config"]["visits"]
    parts = parts.set_index("id").loc[meas["id"].unique()]
    logv = np.log(meas[ids].to_numpy(float)).reshape(len(parts), n_v, len(ids))
    inst = load_instrument("hq25")
    raw = pd.read_csv(folder / "responses_hq25.csv", dtype=str)
    totals = score(check_answers(raw, inst), inst)["total"].to_numpy(float)
    hq = pd.DataFrame({"id": raw["id"], "visit": raw["visit"].astype(int), "total": totals})
    hq = hq.pivot(index="id", columns="visit", values="total").loc[parts.index].to_numpy()
    return {"truth": truth, "parts": parts, "logv": logv, "hq": hq, "ids": ids}


@pytest.fixture(scope="module")
def follow_up(tmp_path_factory):
    out = tmp_path_factory.mktemp("fu") / "study"
    r = hikisig("synth", "--seed", "5", "--n-cases", str(N_CASES), "--n-controls", str(N_CONTROLS),
                "--visits", "3", "--treated-share", "0.5", "--treatment-effect", str(E),
                "--out", str(out))
    assert r.returncode == 0, r.stderr
    return out, _load(out)


def _groups(d: dict) -> dict[str, np.ndarray]:
    p = d["parts"]
    case = (p["group"] == "case").to_numpy()
    treated = p["treated"].astype(str).str.lower().eq("true").to_numpy()
    return {"treated": case & treated, "untreated": case & ~treated, "control": ~case}


def _planted_change(d: dict, grp: np.ndarray) -> float:
    """Mean change visit 1 -> last visit of the planted analytes, as a share of the planted
    log shift (towards controls is negative: -1 means the whole effect removed)."""
    male = (d["parts"]["sex"] == "M").to_numpy()
    lod_free = {a["id"] for a in d["truth"]["analytes"] if not a["lod_quantile"]}
    shares = []
    for eff in d["truth"]["effects"]:
        if eff["analyte"] not in lod_free:
            continue
        j = d["ids"].index(eff["analyte"])
        rows = grp & (male if eff["sexes"] == ["M"] else True)
        change = d["logv"][rows, -1, j] - d["logv"][rows, 0, j]
        shares.append(change.mean() / eff["log_shift"])
    assert len(shares) >= 4
    return float(np.mean(shares))


@pytest.mark.parametrize("args, message", [
    (["--treated-share", "1.5"], "--treated-share must be between 0 and 1"),
    (["--treatment-effect", "-0.1"], "--treatment-effect must be between 0 and 1"),
    (["--visits", "1", "--treated-share", "0.5"], "need follow-up"),
])
def test_flags_out_of_range_exit_2_one_line(tmp_path, args, message):
    r = hikisig("synth", "--out", str(tmp_path / "s"), "--visits", "3", *args)
    assert r.returncode == 2
    assert message in r.stderr and len(r.stderr.strip().splitlines()) == 1
    assert not (tmp_path / "s").exists()


def test_treatment_effect_alias_keeps_old_key():
    assert SynthConfig(treatment_recovery=0.3).treatment_effect == 0.3
    assert SynthConfig(treatment_effect=0.4).treatment_recovery == 0.4
    assert preset(treatment_effect=0.2).treatment_recovery == 0.2
    with pytest.raises(ValueError):
        SynthConfig(treatment_effect=0.4, treatment_recovery=0.5)


def test_treated_share_and_truth_entry(follow_up):
    _, d = follow_up
    g, truth = _groups(d), d["truth"]
    assert g["treated"].sum() == N_CASES // 2 and not (g["control"] & g["treated"]).any()
    t = truth["treatment"]
    assert t["treated_share"] == 0.5 and t["treatment_effect"] == E
    assert t["n_treated"] == N_CASES // 2
    assert sorted(t["treated"]) == sorted(d["parts"].index[g["treated"]])
    assert t["visits"] == [1, 2, 3]
    assert t["share_removed_by_visit"] == {"1": 0.0, "2": pytest.approx(E / 2), "3": E}
    assert t["severity"]["drop_by_last_visit"] == pytest.approx(E * 38)
    wp = t["within_person"]
    assert wp["participant_icc"] == 0.57 and wp["severity_retest_icc"] == 0.8
    assert set(wp["within_log_sd"]) == set(d["ids"])
    assert wp["within_log_sd"]["c16"] == pytest.approx(
        next(a["log_sd"] for a in truth["analytes"] if a["id"] == "c16") * np.sqrt(0.43), rel=1e-4)
    assert wp["severity_within_sd"]["control"] == pytest.approx(10 * np.sqrt(0.2))
    assert any("Floegel" in s for s in wp["sources"]) and any("Teo" in s for s in wp["sources"])
    assert t["interventions_file"] == "interventions.csv"


def test_treated_cases_move_towards_controls_others_stay(follow_up):
    _, d = follow_up
    g = _groups(d)
    assert _planted_change(d, g["treated"]) == pytest.approx(-E, abs=0.3)
    assert _planted_change(d, g["untreated"]) == pytest.approx(0, abs=0.3)
    # no drift on average in untreated cases and controls, over all analytes (in SD units)
    sd = np.array([a["log_sd"] for a in d["truth"]["analytes"]])
    lod_free = np.array([not a["lod_quantile"] for a in d["truth"]["analytes"]])
    for name in ("untreated", "control"):
        x = d["logv"][g[name]][:, :, lod_free]
        drift = (x[:, -1] - x[:, 0]).mean(axis=0) / sd[lod_free]
        assert abs(drift.mean()) < 0.05, name


def test_within_person_sd_matches_documented_value(follow_up):
    _, d = follow_up
    g = _groups(d)
    wp = d["truth"]["treatment"]["within_person"]
    lod_free = [j for j, a in enumerate(d["truth"]["analytes"]) if not a["lod_quantile"]]
    steady = g["untreated"] | g["control"]
    x = d["logv"][steady][:, :, lod_free]
    observed = np.sqrt(x.var(axis=1, ddof=1).mean(axis=0))
    documented = np.array([wp["within_log_sd"][d["ids"][j]] for j in lod_free])
    assert np.median(observed / documented) == pytest.approx(1.0, abs=0.06)
    # a realistic intra-individual CV: median about 20 % on the log scale
    assert np.median(observed) == pytest.approx(0.20, abs=0.03)
    assert 0.15 < wp["median_within_log_sd"] < 0.25
    # HQ-25 varies within a person too, about as documented
    for name, key, tol in (("control", "control", 0.8), ("untreated", "case", 1.0)):
        hq_sd = np.sqrt(d["hq"][g[name]].var(axis=1, ddof=1).mean())
        assert hq_sd == pytest.approx(wp["severity_within_sd"][key], abs=tol), name


def test_hq25_falls_by_effect_times_case_control_gap(follow_up):
    _, d = follow_up
    g = _groups(d)
    change = d["hq"][:, -1] - d["hq"][:, 0]
    assert change[g["treated"]].mean() == pytest.approx(-E * (60 - 22), abs=3)
    assert change[g["untreated"]].mean() == pytest.approx(0, abs=3)
    assert change[g["control"]].mean() == pytest.approx(0, abs=3)


def test_interventions_file(follow_up):
    out, d = follow_up
    iv = pd.read_csv(out / "interventions.csv", dtype=str, keep_default_na=False)
    assert list(iv.columns) == ["participant", "kind", "start", "end", "detail"]
    assert sorted(iv["participant"]) == sorted(d["truth"]["treatment"]["treated"])
    assert set(iv["kind"]) <= set(INTERVENTION_KINDS) and iv["kind"].nunique() >= 3
    assert iv["start"].str.fullmatch(r"\d{4}-\d{2}-\d{2}").all()
    visits = pd.read_csv(out / "visits.csv", dtype=str)
    assert list(visits.columns) == ["id", "visit", "date"]
    dates = visits.pivot(index="id", columns="visit", values="date")
    dates = dates.apply(pd.to_datetime)
    assert ((dates["2"] - dates["1"]).dt.days == 90).all()
    start = pd.to_datetime(iv["start"]).to_numpy()
    v1 = dates.loc[iv["participant"], "1"].to_numpy()
    v2 = dates.loc[iv["participant"], "2"].to_numpy()
    last = dates.loc[iv["participant"], "3"].to_numpy()
    assert ((start > v1) & (start < v2)).all()
    ended = iv["end"] != ""
    assert 0 < ended.sum() < len(iv)
    assert (pd.to_datetime(iv.loc[ended, "end"]).to_numpy() > last[ended.to_numpy()]).all()
    assert (v1 >= np.datetime64("2025-01-06")).all() and (v1 < np.datetime64("2026-01-06")).all()


def test_treatment_effect_zero_gives_no_change(tmp_path):
    r = hikisig("synth", "--seed", "6", "--n-cases", "80", "--n-controls", "10", "--visits", "3",
                "--treated-share", "1", "--treatment-effect", "0", "--out", str(tmp_path / "z"))
    assert r.returncode == 0, r.stderr
    d = _load(tmp_path / "z")
    g = _groups(d)
    assert g["treated"].sum() == 80
    assert _planted_change(d, g["treated"]) == pytest.approx(0, abs=0.3)
    assert (d["hq"][g["treated"], -1] - d["hq"][g["treated"], 0]).mean() == pytest.approx(0, abs=2)
    assert d["truth"]["treatment"]["severity"]["drop_by_last_visit"] == 0


def test_no_interventions_without_follow_up_or_treatment(tmp_path):
    write = writers.write_files
    write(SyntheticStudy(preset(n_cases=6, n_controls=4)), tmp_path / "one")
    assert not (tmp_path / "one" / "interventions.csv").exists()
    assert not (tmp_path / "one" / "visits.csv").exists()
    assert json.loads((tmp_path / "one" / "truth.json").read_text())["treatment"]["n_treated"] == 0
    write(SyntheticStudy(preset(n_cases=6, n_controls=4, visits=2, treated_share=0)), tmp_path / "no")
    assert not (tmp_path / "no" / "interventions.csv").exists()
    assert (tmp_path / "no" / "visits.csv").exists()


def test_cli_db_imports_interventions(tmp_path):
    r = hikisig("synth", "--seed", "2", "--n-cases", "10", "--n-controls", "4", "--visits", "2",
                "--treated-share", "0.5", "--db", str(tmp_path / "s.db"))
    assert r.returncode == 0, r.stderr
    assert "5 interventions" in r.stdout
    from sqlalchemy import func, select

    from hikisig.cohort import schema
    from hikisig.cohort.store import Store

    store = Store(str(tmp_path / "s.db"))
    with store.session() as s:
        assert s.scalar(select(func.count()).select_from(schema.Intervention)) == 5
    store.dispose()
