"""The synthetic reference study: reproducible, and it contains what truth.json says."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest

from helpers import hikisig
from hikisig.assess.answers import check_answers
from hikisig.assess.criteria import apply_criteria
from hikisig.assess.definition import load_instrument
from hikisig.assess.scoring import score
from hikisig.synth.config import SynthConfig, preset
from hikisig.synth.generate import SyntheticStudy
from hikisig.synth.writers import write_files


def cohen_d(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    na, nb = len(a), len(b)
    pooled = np.sqrt(((na - 1) * a.var(axis=0, ddof=1) + (nb - 1) * b.var(axis=0, ddof=1)) / (na + nb - 2))
    return (a.mean(axis=0) - b.mean(axis=0)) / pooled


@pytest.fixture(scope="module")
def big():
    study = SyntheticStudy(preset(seed=11, n_cases=10_000, n_controls=10_000, lod=False))
    chunks = list(study.chunks())
    logv = np.log(np.concatenate([c.values for c in chunks]))
    hq = pd.concat([c.responses["hq25"] for c in chunks], ignore_index=True)
    return study, logv, hq


def test_same_seed_byte_identical_files(tmp_path):
    cfg = dict(seed=3, n_cases=20, n_controls=20)
    write_files(SyntheticStudy(preset(**cfg)), tmp_path / "a")
    write_files(SyntheticStudy(preset(**cfg)), tmp_path / "b")
    names = sorted(p.name for p in (tmp_path / "a").iterdir())
    assert names == ["SYNTHETIC.txt", "criteria.csv", "measurements.csv", "participants.csv",
                     "responses_hq25.csv", "responses_k6.csv", "responses_phq9.csv",
                     "responses_ucla3.csv", "truth.json"]
    for n in names:
        assert (tmp_path / "a" / n).read_bytes() == (tmp_path / "b" / n).read_bytes(), n
    write_files(SyntheticStudy(preset(seed=4, n_cases=20, n_controls=20)), tmp_path / "c")
    other = (tmp_path / "c" / "measurements.csv").read_bytes()
    assert other != (tmp_path / "a" / "measurements.csv").read_bytes()


def test_realised_effects_within_0_1_of_planted(big):
    study, logv, _ = big
    p = study.participants
    ids = study.panel["id"].tolist()
    truth = study.truth()
    case = (p["group"] == "case").to_numpy()
    male = (p["sex"] == "M").to_numpy()
    d_all = cohen_d(logv[case], logv[~case])
    d_men = cohen_d(logv[case & male], logv[~case & male])
    d_women = cohen_d(logv[case & ~male], logv[~case & ~male])
    checked = set()
    for eff in truth["effects"]:
        j = ids.index(eff["analyte"])
        checked.add(eff["analyte"])
        if eff["sexes"] == ["M", "F"]:
            assert d_men[j] == pytest.approx(eff["cohen_d"], abs=0.1)
            assert d_women[j] == pytest.approx(eff["cohen_d"], abs=0.1)
        else:
            assert d_men[j] == pytest.approx(eff["cohen_d"], abs=0.1), eff["analyte"]
            assert abs(d_women[j]) < 0.1, eff["analyte"]  # no effect in women
    assert {"c16", "c18_1", "ornithine", "arginine", "arginase", "total_bilirubin"} <= checked
    null = [ids.index(a) for a in truth["null_analytes"]]
    assert len(null) > 60
    assert np.abs(d_all[null]).max() < 0.1 and np.abs(d_men[null]).max() < 0.1
    # subtypes differ by subtype_d (within men: uric acid has a sex difference); cases vs
    # controls do not differ in the subtype analytes
    sub = p["subtype"].to_numpy()
    for a in truth["subtypes"]["analytes"]:
        j = ids.index(a)
        d_sub = cohen_d(logv[(sub == 2) & male][:, [j]], logv[(sub == 1) & male][:, [j]])[0]
        assert d_sub == pytest.approx(1.5, abs=0.1), a
        assert abs(d_men[j]) < 0.1


def test_severity_r2_and_item_level_totals(big):
    study, logv, hq = big
    p = study.participants
    inst = load_instrument("hq25")
    totals = score(check_answers(hq.astype(str), inst), inst)["total"].to_numpy()
    case = (p["group"] == "case").to_numpy()
    sev = study.truth()["severity"]
    ids = study.panel["id"].tolist()
    cols = [ids.index(a) for a in sev["coefficients_per_sd_log"]]
    x = logv[case][:, cols]
    x = np.column_stack([np.ones(len(x)), x])
    # sex shifts some severity analytes (ornithine in men): adjust for sex
    x = np.column_stack([x, (p["sex"] == "M").to_numpy()[case]])
    y = totals[case]
    resid = y - x @ np.linalg.lstsq(x, y, rcond=None)[0]
    r2 = 1 - resid.var() / y.var()
    assert r2 == pytest.approx(0.5, abs=0.05)
    assert y.mean() == pytest.approx(60, abs=1) and totals[~case].mean() == pytest.approx(22, abs=1)


def test_questionnaires_and_criteria_consistent_with_group(tmp_path):
    study = SyntheticStudy(preset(seed=8))
    write_files(study, tmp_path / "s")
    parts = pd.read_csv(tmp_path / "s" / "participants.csv")
    crit = apply_criteria(pd.read_csv(tmp_path / "s" / "criteria.csv", dtype=str))
    merged = parts.merge(crit, on="id")
    assert (merged.loc[merged["group"] == "case", "status"] == "hikikomori").all()
    assert (merged.loc[merged["group"] == "control", "status"] == "not").all()
    assert merged.loc[merged["group"] == "case", "severity"].nunique() == 3
    for iid in ("hq25", "phq9", "k6", "ucla3"):
        inst = load_instrument(iid)
        raw = pd.read_csv(tmp_path / "s" / f"responses_{iid}.csv", dtype=str)
        s = score(check_answers(raw, inst), inst).merge(parts, on="id")
        assert s["total"].notna().all()
        case_mean = s.loc[s["group"] == "case", "total"].mean()
        control_mean = s.loc[s["group"] == "control", "total"].mean()
        assert case_mean > control_mean, iid
    truth = json.loads((tmp_path / "s" / "truth.json").read_text())
    assert truth["synthetic"] and "synthetic" in truth["study"]
    cases = parts[parts["group"] == "case"]
    assert truth["subtypes"]["assignment"] == dict(zip(cases["id"], cases["subtype"].astype(int),
                                                       strict=True))
    assert (tmp_path / "s" / "SYNTHETIC.txt").exists()
    meas = pd.read_csv(tmp_path / "s" / "measurements.csv", dtype=str)
    assert meas.columns[0] == "id" and "c16" in meas.columns and (meas == "<LOD").any().any()


def test_follow_up_visits_drift_toward_controls():
    study = SyntheticStudy(preset(seed=2, n_cases=4000, n_controls=4000, visits=3, lod=False))
    chunks = list(study.chunks())
    logv = np.log(np.concatenate([c.values for c in chunks]))
    samples = pd.concat([c.samples for c in chunks], ignore_index=True)
    p = study.participants.set_index("id").loc[samples["id"]]
    j = study.panel["id"].tolist().index("c16")
    ctrl = (p["group"] == "control").to_numpy()
    for treated, last_d in ((True, 0.8 * 0.2), (False, 0.8)):
        grp = (p["group"] == "case").to_numpy() & (p["treated"].to_numpy() == treated)
        for visit, expected in ((1, 0.8), (3, last_d)):
            sel = samples["visit"].to_numpy() == visit
            d = cohen_d(logv[grp & sel][:, [j]], logv[ctrl & sel][:, [j]])[0]
            assert d == pytest.approx(expected, abs=0.1), (treated, visit)


def test_parquet_chunked_equals_csv(tmp_path):
    cfg = preset(seed=9, n_cases=300, n_controls=300, chunk_cells=10_000)
    study = SyntheticStudy(cfg)
    assert study.n_chunks > 5
    write_files(study, tmp_path / "p", "parquet")
    write_files(SyntheticStudy(cfg), tmp_path / "c", "csv")
    pq = pd.read_parquet(tmp_path / "p" / "measurements.parquet")
    csv = pd.read_csv(tmp_path / "c" / "measurements.csv", na_values=["<LOD"])
    assert pq.shape == csv.shape == (600, 128)
    np.testing.assert_allclose(pq.iloc[:, 1:].to_numpy(), csv.iloc[:, 1:].to_numpy(), rtol=1e-5)
    assert pd.read_parquet(tmp_path / "p" / "responses_hq25.parquet").shape == (600, 26)


def test_scale_columns_beyond_catalog():
    study = SyntheticStudy(preset(n_analytes=400, n_cases=5, n_controls=5))
    ids = study.panel["id"].tolist()
    assert len(ids) == 400 and ids[-1].startswith("syn_feature_")
    small = SyntheticStudy(preset(n_analytes=40, n_cases=5, n_controls=5))
    kept = set(small.panel["id"])
    assert {"ornithine", "arginine", "arginase", "total_bilirubin", "uric_acid", "c16"} <= kept


def test_config_rejects_nonsense():
    with pytest.raises(ValueError):
        SynthConfig(study="real-study")
    with pytest.raises(ValueError):
        SynthConfig(n_cases=0)


def test_cli_synth_db_and_out(tmp_path):
    db = tmp_path / "s.db"
    r = hikisig("synth", "--seed", "1", "--n-cases", "12", "--n-controls", "10", "--out",
                str(tmp_path / "o"), "--db", str(db))
    assert r.returncode == 0, r.stderr
    info = json.loads(hikisig("--db", str(db), "info", "--json").stdout)
    st = info["studies"][0]
    assert st["synthetic"] and st["n_samples"] == 22 and st["n_analytes"] == 127
    assert st["participants_by_group"] == {"case": 12, "control": 10}
    bad = hikisig("synth", env={"HIKISIG_DB": ""})
    assert bad.returncode == 2 and "--out" in bad.stderr
