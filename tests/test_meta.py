"""Meta-analysis of site summaries (hikisig.stats.meta) and ``hikisig meta``."""

from __future__ import annotations

import json
import math
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from helpers import hikisig
from hikisig.analysis.summary import site_summary, write_site_summaries
from hikisig.cohort.dataset import Dataset
from hikisig.errors import HikisigError
from hikisig.stats.meta import META_COLUMNS, WEIGHT_COLUMNS, meta_analysis, meta_tables

REF = Path(__file__).parent / "reference"
METHODS = {"FE": ("fixed", "reml"), "DL": ("random", "dl"), "REML": ("random", "reml")}


def test_equals_metafor() -> None:
    d = pd.read_csv(REF / "meta_input.csv")
    d = d.assign(stratum="all", log2fc=d["yi"], log2fc_se=np.sqrt(d["vi"]))
    ref = pd.read_csv(REF / "meta_metafor.csv", comment="#")
    for name, (method, tau2) in METHODS.items():
        ours = meta_analysis(d, estimate="log2fc", method=method, tau2=tau2).set_index("analyte")
        r = ref[ref["method"] == name].set_index("analyte").loc[ours.index]
        assert (ours["k"] == r["k"]).all()
        for a, b in (("estimate", "estimate"), ("se", "se"), ("ci_low", "ci_low"),
                     ("ci_high", "ci_high"), ("p", "p"), ("tau2", "tau2"), ("i2", "I2"),
                     ("q_stat", "QE"), ("q_p", "QEp")):
            assert np.allclose(ours[a], r[b], rtol=0, atol=1e-6), (name, a)
    assert (ref.loc[ref["method"] == "REML", "tau2"] == 0).any()  # the boundary is covered


def _sites(seed: int, effects: np.ndarray, n_sites: int = 3, tau: float = 0.0
           ) -> list[Dataset]:
    """Sites of lognormal data with planted log2 fold changes (``effects`` per analyte)."""
    rng = np.random.default_rng(seed)
    p = len(effects)
    cols = [f"m{j:03d}" for j in range(p)]
    out = []
    for s in range(n_sites):
        n_case, n_control = rng.integers(20, 40), rng.integers(20, 40)
        shift = effects + rng.normal(0, tau, p)
        logs = rng.normal(4.0, 0.5, (n_case + n_control, p))
        logs[:n_case] += shift
        X = pd.DataFrame(2.0**logs, columns=cols,
                         index=[f"S{s}-{i:04d}" for i in range(n_case + n_control)])
        obs = pd.DataFrame({"group": ["case"] * n_case + ["control"] * n_control,
                            "sex": rng.choice(["F", "M"], n_case + n_control),
                            "participant": [f"P{s}-{i:04d}" for i in range(n_case + n_control)]},
                           index=X.index)
        out.append(Dataset(X, obs, study=f"site{s + 1}"))
    return out


def _summaries(sites: list[Dataset], **kw: object) -> pd.DataFrame:
    return pd.concat([site_summary(ds, markers=False, **kw)[0] for ds in sites],  # type: ignore[arg-type]
                     ignore_index=True)


def test_fixed_pool_equals_direct_participant_computation() -> None:
    """Independent check: the fixed-effect pool of the site tables against sums taken
    straight from the participants' values with math.fsum (no hikisig code)."""
    sites = _sites(5, np.linspace(-0.5, 0.5, 7))
    for ds in sites:  # a few missing values and one value below detection
        ds.X.iloc[3, 2] = np.nan
        ds.X.iloc[7, 4] = 0.0
    ours = meta_analysis(_summaries(sites, by=None), estimate="log2fc").set_index("analyte")
    for col in sites[0].X.columns:
        num = den = 0.0
        ys, ws = [], []
        for ds in sites:
            groups = []
            for label in ("case", "control"):
                vals = [math.log2(v) for v, g in zip(ds.X[col], ds.obs["group"], strict=True)
                        if g == label and v == v and v > 0]
                m = math.fsum(vals) / len(vals)
                var = math.fsum((v - m) ** 2 for v in vals) / (len(vals) - 1)
                groups.append((m, var, len(vals)))
            (m1, v1, n1), (m2, v2, n2) = groups
            y, w = m1 - m2, 1.0 / (v1 / n1 + v2 / n2)
            ys.append(y)
            ws.append(w)
        num, den = math.fsum(w * y for w, y in zip(ws, ys, strict=True)), math.fsum(ws)
        direct = num / den
        q = math.fsum(w * (y - direct) ** 2 for w, y in zip(ws, ys, strict=True))
        assert abs(ours.loc[col, "estimate"] - direct) < 1e-10
        assert abs(ours.loc[col, "se"] - 1 / math.sqrt(den)) < 1e-10
        assert abs(ours.loc[col, "q_stat"] - q) < 1e-10


def test_recovers_planted_effects_and_tables() -> None:
    effects = np.r_[np.full(20, 0.6), np.zeros(60)]
    sites = _sites(7, effects, tau=0.05)
    summ = _summaries(sites)
    meta, weights = meta_tables(summ, estimate="log2fc", method="random", tau2="reml")
    assert tuple(meta.columns) == META_COLUMNS and tuple(weights.columns) == WEIGHT_COLUMNS
    assert list(dict.fromkeys(meta["stratum"])) == ["all", "F", "M"]
    assert (meta["k"] == 3).all()
    total = weights.groupby(["analyte", "stratum"])["weight"].sum()
    assert np.allclose(total, 100.0)
    a = meta[meta["stratum"] == "all"].set_index("analyte")
    planted = a.index[:20]
    assert (a.loc[planted, "q"] < 0.05).all()
    assert abs(a.loc[planted, "estimate"].mean() - 0.6) < 0.05
    assert ((a.loc[planted, "ci_low"] < 0.6) & (a.loc[planted, "ci_high"] > 0.6)).mean() >= 0.8
    assert (a.loc[a.index[20:], "q"] >= 0.05).mean() > 0.9
    assert (meta["tau2"] >= 0).all()
    # q is BH within each stratum
    from scipy.stats import false_discovery_control

    for _, part in meta.groupby("stratum"):
        assert np.allclose(part["q"], false_discovery_control(part["p"].to_numpy()))
    # Hedges' g: the planted effect 0.6 log2 units is 0.6 / 0.5 = 1.2 SD
    g = meta_analysis(summ, estimate="effect", method="fixed")
    g_all = g[g["stratum"] == "all"].set_index("analyte")
    assert (g_all.loc[planted, "estimate"] > 0.6).all()


def test_input_checks() -> None:
    s = pd.DataFrame({"analyte": "a", "stratum": "all", "site": ["x", "x"],
                      "log2fc": [0.5, 1.0], "log2fc_se": [0.1, 0.1]})
    with pytest.raises(HikisigError, match="two rows"):
        meta_analysis(s, estimate="log2fc")
    with pytest.raises(HikisigError, match="no column"):
        meta_analysis(s.drop(columns="log2fc_se"), estimate="log2fc")
    with pytest.raises(HikisigError, match="method"):
        meta_analysis(s, estimate="log2fc", method="bayes")
    one = meta_analysis(s.iloc[:1], estimate="log2fc", method="random")
    assert one["k"].iloc[0] == 1 and one["tau2"].iloc[0] == 0 and np.isnan(one["q_p"].iloc[0])


# -- the command --------------------------------------------------------------------------------


def _export(tmp_path: Path, sites: list[Dataset]) -> list[Path]:
    folders = []
    for ds in sites:
        t, s = site_summary(ds)
        folder = tmp_path / ds.study
        write_site_summaries(t, s, folder, settings={"min_n": 5})
        folders.append(folder)
    return folders


def _marker_sites(seed: int) -> list[Dataset]:
    """Sites whose columns include ornithine and arginine: the orn/arg ratio is derived."""
    sites = _sites(seed, np.r_[0.8, np.zeros(9)])
    names = {"m000": "ornithine", "m001": "arginine"}
    return [Dataset(ds.X.rename(columns=names), ds.obs, study=ds.study) for ds in sites]


def test_meta_cli(tmp_path: Path) -> None:
    folders = _export(tmp_path, _marker_sites(3))
    out = tmp_path / "meta"
    r = hikisig("meta", *map(str, folders), "--method", "random", "--tau2", "dl",
                "--estimate", "log2fc", "--out", str(out))
    assert r.returncode == 0, r.stderr
    meta = pd.read_csv(out / "meta.csv")
    assert tuple(meta.columns) == META_COLUMNS
    assert tuple(pd.read_csv(out / "weights.csv").columns) == WEIGHT_COLUMNS
    assert "orn_arg_ratio" in set(meta["analyte"])
    html = (out / "meta_report.html").read_text()
    assert "data:image/png;base64," in html and "forest-orn_arg_ratio" in html
    assert "http://" not in html and "https://" not in html and "<script" not in html
    assert "DerSimonian" in html
    css = (Path(__file__).parents[1] / "src/hikisig/report/templates/report.css").read_text()
    assert css.strip()[:200] in html
    for f in (*out.iterdir(), *(p for d in folders for p in d.iterdir())):
        text = f.read_bytes().decode("latin-1")
        assert "P0-0" not in text and "S0-0" not in text, f  # no participant or sample code
    # the files read directly give the same table
    files = [str(next(d.glob("*.csv"))) for d in folders]
    r2 = hikisig("meta", *files, "--method", "random", "--tau2", "dl", "--estimate", "log2fc",
                 "--out", str(tmp_path / "m2"))
    assert r2.returncode == 0, r2.stderr
    pd.testing.assert_frame_equal(pd.read_csv(tmp_path / "m2" / "meta.csv"), meta)


def test_meta_cli_mismatches(tmp_path: Path) -> None:
    folders = _export(tmp_path, _marker_sites(4))
    bad = tmp_path / "bad.csv"
    pd.read_csv(next(folders[0].glob("*.csv"))).drop(columns="kit").to_csv(bad, index=False)
    r = hikisig("meta", str(bad), str(folders[1]), "--out", str(tmp_path / "x"))
    assert r.returncode == 2 and len(r.stderr.strip().splitlines()) == 1
    assert str(bad) in r.stderr and "missing kit" in r.stderr
    man = folders[2] / "manifest.json"
    m = json.loads(man.read_text())
    man.write_text(json.dumps({**m, "catalog_version": "sha256:0000"}))
    t = pd.read_parquet(next(folders[1].glob("*.parquet")))
    t[t["stratum"] == "all"].to_parquet(next(folders[1].glob("*.parquet")), index=False)
    r = hikisig("meta", *map(str, folders), "--out", str(tmp_path / "y"))
    assert r.returncode == 0, r.stderr
    assert "different catalog versions" in r.stderr and "different strata" in r.stderr
    r = hikisig("meta", str(folders[0]), str(folders[0]), "--out", str(tmp_path / "z"))
    assert r.returncode == 2 and "also in" in r.stderr


@pytest.fixture(scope="module")
def synth_sites(tmp_path_factory: pytest.TempPathFactory) -> list[Path]:
    base = tmp_path_factory.mktemp("fed")
    folders = []
    for seed in (1, 2, 3):
        db = base / f"s{seed}.db"
        assert hikisig("synth", "--db", str(db), "--seed", str(seed)).returncode == 0
        folder = base / f"site{seed}"
        r = hikisig("--db", str(db), "export", "summary", str(folder), "--site-name", f"site{seed}")
        assert r.returncode == 0, r.stderr
        folders.append(folder)
    return folders


def test_three_synthetic_stores(synth_sites: list[Path], tmp_path: Path) -> None:
    """Three synthetic studies (hikisig synth): long-chain acylcarnitines are planted higher
    in cases (d 0.8) and arginine lower in male cases."""
    r = hikisig("meta", *map(str, synth_sites), "--method", "fixed", "--out", str(tmp_path))
    assert r.returncode == 0, r.stderr
    meta = pd.read_csv(tmp_path / "meta.csv").set_index(["analyte", "stratum"])
    assert (meta["k"] == 3).all()
    long_chain = [a for a in ("c14", "c16", "c18") if (a, "all") in meta.index]
    assert long_chain and all(meta.loc[(a, "all"), "estimate"] > 0.3 for a in long_chain)
    assert meta.loc[("arginine", "M"), "estimate"] < -0.3
    assert meta.loc[("arginine", "M"), "q"] < 0.05
