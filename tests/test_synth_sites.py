"""``hikisig synth --sites K``: a synthetic multi-site consortium with laboratory offsets.

Each site has its own case/control and sex mix and a multiplicative offset per analyte;
the planted case-control truth is the same at every site (docs/synthetic.md, "Sites").
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from helpers import hikisig


def _synth(out: Path, *args: str) -> None:
    r = hikisig("synth", "--out", str(out), *args)
    assert r.returncode == 0, r.stderr


@pytest.fixture(scope="module")
def consortium(tmp_path_factory):
    out = tmp_path_factory.mktemp("sites") / "k3"
    _synth(out, "--seed", "31", "--sites", "3", "--n-cases", "750", "--n-controls", "750")
    parts = pd.read_csv(out / "participants.csv", dtype={"subtype": str})
    meas = pd.read_csv(out / "measurements.csv", na_values=["<LOD"]).set_index("id")
    truth = json.loads((out / "truth.json").read_text())
    return out, parts, np.log(meas.loc[parts["id"]]), truth


@pytest.mark.parametrize(("args", "expected"), [
    (("--sites", "0"), "--sites must be between 1 and 20"),
    (("--sites", "21"), "--sites must be between 1 and 20"),
    (("--sites", "5", "--n-cases", "3"), "5 sites need at least 5 cases"),
])
def test_sites_flag_validation(tmp_path, args, expected):
    r = hikisig("synth", "--out", str(tmp_path / "x"), *args)
    assert r.returncode == 2
    assert expected in r.stderr and len(r.stderr.strip().splitlines()) == 1, r.stderr
    assert not (tmp_path / "x").exists()


def test_one_site_is_the_single_site_study(tmp_path):
    _synth(tmp_path / "plain", "--seed", "6", "--n-cases", "15", "--n-controls", "14")
    _synth(tmp_path / "one", "--seed", "6", "--n-cases", "15", "--n-controls", "14", "--sites", "1")
    names = sorted(p.name for p in (tmp_path / "plain").iterdir())
    assert names == sorted(p.name for p in (tmp_path / "one").iterdir())
    for n in names:
        assert (tmp_path / "plain" / n).read_bytes() == (tmp_path / "one" / n).read_bytes(), n
    assert "site" not in pd.read_csv(tmp_path / "one" / "participants.csv").columns
    truth = json.loads((tmp_path / "one" / "truth.json").read_text())
    assert "sites" not in truth and "sites" not in truth["config"]


def test_sites_reproducible(tmp_path):
    for d in ("a", "b"):
        _synth(tmp_path / d, "--seed", "2", "--sites", "4", "--n-cases", "20", "--n-controls", "20")
    for n in ("participants.csv", "measurements.csv", "truth.json"):
        assert (tmp_path / "a" / n).read_bytes() == (tmp_path / "b" / n).read_bytes(), n


def test_site_column_and_mixes_as_recorded(consortium):
    _, parts, _, truth = consortium
    sites = truth["sites"]
    assert sites["n_sites"] == 3 and sites["offset_log_sd"] == 0.15 and sites["rule"]
    assert list(parts.columns) == ["id", "sex", "age", "group", "subtype", "site", "study"]
    assert sorted(parts["site"].unique()) == ["site1", "site2", "site3"]
    sizes = parts["site"].value_counts()
    assert sizes.max() - sizes.min() <= 1
    shares = []
    for name, rec in sites["sites"].items():
        at = parts[parts["site"] == name]
        assert (at["group"] == "case").sum() == rec["n_case"]
        assert (at["group"] == "control").sum() == rec["n_control"]
        assert (at["sex"] == "F").mean() == pytest.approx(rec["women_share"])
        assert rec["case_share"] == pytest.approx(rec["n_case"] / len(at))
        # sex balanced between the groups within a site
        men = at.groupby("group")["sex"].apply(lambda s: (s == "M").mean())
        assert abs(men["case"] - men["control"]) < 0.01
        assert 0.8 < rec["scale"] < 1.25
        shares.append((rec["case_share"], rec["women_share"]))
    assert len({s[0] for s in shares}) == 3 and len({s[1] for s in shares}) == 3
    assert sum(r["n_case"] for r in sites["sites"].values()) == 750


def test_null_analytes_shifted_by_the_recorded_offsets(consortium):
    _, parts, logv, truth = consortium
    rec = truth["sites"]["sites"]
    levels = {a["id"]: a for a in truth["analytes"]}
    null = [a for a in truth["null_analytes"]
            if levels[a]["lod_quantile"] == 0 and levels[a]["male_log_ratio"] == 0]
    assert len(null) > 50
    site = parts["site"].to_numpy()
    ref = logv[null].to_numpy()[site == "site1"]
    checked = 0
    for name in ("site2", "site3"):
        x = logv[null].to_numpy()[site == name]
        observed = x.mean(axis=0) - ref.mean(axis=0)
        expected = np.array([rec[name]["log_offset"][a] - rec["site1"]["log_offset"][a]
                             for a in null])
        se = np.sqrt(x.var(axis=0, ddof=1) / len(x) + ref.var(axis=0, ddof=1) / len(ref))
        assert np.all(np.abs(observed - expected) < 5 * se), name
        assert np.corrcoef(observed, expected)[0, 1] > 0.9
        checked += 1
    assert checked == 2
    spread = np.std([rec[s]["log_offset"][a] for s in rec for a in null])
    assert spread == pytest.approx(0.15, abs=0.03)


def test_planted_case_effect_the_same_at_every_site(consortium):
    _, parts, logv, truth = consortium
    levels = {a["id"]: a for a in truth["analytes"]}
    # long-chain acylcarnitines, both sexes; a few values are below the limit of detection
    # (lowest), so the medians of the log values are compared (normal: median = mean)
    planted = {e["analyte"]: e["log_shift"] for e in truth["effects"]
               if e["sexes"] == ["M", "F"] and levels[e["analyte"]]["lod_quantile"] <= 0.05}
    assert len(planted) >= 5
    cols = list(planted)
    shift = np.array([planted[a] for a in cols])
    x = logv[cols].fillna(-np.inf).to_numpy()
    case = (parts["group"] == "case").to_numpy()
    ratios = {}
    for name in ("site1", "site2", "site3"):
        at = (parts["site"] == name).to_numpy()
        assert np.isfinite(x[at]).mean() > 0.8
        log_ratio = np.median(x[at & case], axis=0) - np.median(x[at & ~case], axis=0)
        ratios[name] = float(np.mean(log_ratio / shift))
    for name, r in ratios.items():
        assert r == pytest.approx(1.0, abs=0.3), (name, ratios)
    assert max(ratios.values()) - min(ratios.values()) < 0.4, ratios


def test_site_reaches_the_store(tmp_path):
    import hikisig as api
    from hikisig.analysis.study import load_study
    from hikisig.config import Source

    db = tmp_path / "s.db"
    _synth(tmp_path / "o", "--seed", "3", "--sites", "3", "--n-cases", "9", "--n-controls", "9",
           "--db", str(db))
    parts = pd.read_csv(tmp_path / "o" / "participants.csv").set_index("id")["site"]
    ds = api.Dataset.from_store(str(db))
    assert ds.obs["site"].tolist() == parts.loc[ds.obs["participant"]].tolist()
    study = load_study(Source(db=str(db)))
    obs = study.data.obs
    assert obs["site"].tolist() == parts.loc[obs["participant"]].tolist()
