"""Per-site summary statistics (hikisig.analysis.summary) and ``hikisig export summary``."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from helpers import hikisig
from hikisig.analysis.summary import SUMMARY_COLUMNS, SUPPRESSED_COLUMNS, site_summary
from hikisig.cohort.dataset import Dataset
from hikisig.errors import HikisigError
from hikisig.stats import case_control


def _data(seed: int = 0, n_case: int = 30, n_control: int = 28, n_men: int = 20,
          p: int = 6) -> Dataset:
    rng = np.random.default_rng(seed)
    n = n_case + n_control
    cols = ["ornithine", "arginine", "citrulline", "kynurenine", "tryptophan", "M1"][:p]
    X = pd.DataFrame(rng.lognormal(3.0, 0.4, size=(n, p)), columns=cols,
                     index=[f"S{i:03d}" for i in range(n)])
    X.iloc[:n_case, 0] *= 1.6
    sex = np.array(["F"] * n)
    sex[rng.choice(n, n_men, replace=False)] = "M"
    obs = pd.DataFrame({"group": ["case"] * n_case + ["control"] * n_control, "sex": sex,
                        "participant": [f"P{i:03d}" for i in range(n)]}, index=X.index)
    return Dataset(X, obs, study="siteA")


def test_columns_strata_and_direct_values() -> None:
    ds = _data()
    table, suppressed = site_summary(ds, markers=False)
    assert tuple(table.columns) == SUMMARY_COLUMNS
    assert tuple(suppressed.columns) == SUPPRESSED_COLUMNS and suppressed.empty
    assert list(dict.fromkeys(table["stratum"])) == ["all", "F", "M"]
    assert set(table["site"]) == {"siteA"} and set(table["kit"]) == {""}
    hmdb = table.set_index(["analyte", "stratum"])["hmdb"]
    assert hmdb[("ornithine", "all")] == "HMDB0000214" and hmdb[("M1", "all")] == ""
    case = (ds.obs["group"] == "case").to_numpy()
    for stratum, rows in (("all", np.ones(len(case), bool)),
                          ("M", (ds.obs["sex"] == "M").to_numpy())):
        r = table[(table["stratum"] == stratum) & (table["analyte"] == "citrulline")].iloc[0]
        a = np.log2(ds.X["citrulline"].to_numpy()[rows & case])
        b = np.log2(ds.X["citrulline"].to_numpy()[rows & ~case])
        assert r["n_case"] == len(a) and r["n_control"] == len(b)
        assert r["mean_log_case"] == pytest.approx(a.mean(), abs=1e-12)
        assert r["sd_log_control"] == pytest.approx(b.std(ddof=1), abs=1e-12)
        assert r["log2fc"] == pytest.approx(a.mean() - b.mean(), abs=1e-12)
        se = np.sqrt(a.var(ddof=1) / len(a) + b.var(ddof=1) / len(b))
        assert r["log2fc_se"] == pytest.approx(se, abs=1e-12)


def test_effect_is_hikisig_hedges_g() -> None:
    ds = _data(1)
    table, _ = site_summary(ds, markers=False)
    stats = case_control(ds.X, (ds.obs["group"] == "case").to_numpy(), by=ds.obs["sex"],
                         tests=["welch"])
    stats = stats[stats["test"] == "welch"].set_index(["analyte", "stratum"])
    t = table.set_index(["analyte", "stratum"])
    assert np.allclose(t["effect"], stats.loc[t.index, "effect"], rtol=0, atol=1e-12)
    # the large-sample SE: the half-width of hikisig's 95% CI / z
    half = (stats.loc[t.index, "effect_ci_high"] - stats.loc[t.index, "effect_ci_low"]) / 2
    assert np.allclose(t["effect_se"], half / 1.959963984540054, rtol=0, atol=1e-12)
    n1, n2, g = t["n_case"], t["n_control"], t["effect"]
    assert np.allclose(t["effect_se"], np.sqrt((n1 + n2) / (n1 * n2) + g**2 / (2 * (n1 + n2))))


def test_small_strata_and_analytes_are_suppressed() -> None:
    ds = _data(2, n_men=6)  # few men: some group of men has fewer than 5
    ds.X.iloc[:27, 1] = np.nan  # arginine: 3 cases with a value
    table, suppressed = site_summary(ds, min_n=5, markers=False)
    men = ((ds.obs["sex"] == "M") & (ds.obs["group"] == "case")).sum(), \
        ((ds.obs["sex"] == "M") & (ds.obs["group"] == "control")).sum()
    if min(men) < 5:
        assert "M" not in set(table["stratum"])
        row = suppressed[suppressed["stratum"] == "M"].iloc[0]
        assert (row["n_case"], row["n_control"]) == men and row["n_analytes"] == 6
    assert not ((table["analyte"] == "arginine") & (table["stratum"] == "all")).any()
    arg = suppressed[(suppressed["stratum"] == "all")]
    assert arg["n_analytes"].tolist() == [1] and arg["n_case"].tolist() == [3]
    assert "non-missing" in arg["reason"].iloc[0]
    assert "analyte" not in suppressed.columns  # counts only
    assert (table[["n_case", "n_control"]] >= 5).all().all()
    with pytest.raises(HikisigError, match="min_n"):
        site_summary(ds, min_n=1)


def test_one_row_per_participant_and_sites_and_markers() -> None:
    ds = _data(3)
    twice = Dataset(pd.concat([ds.X, ds.X.iloc[:4] * 100]).set_axis(
        [*ds.X.index, "R0", "R1", "R2", "R3"]),
        pd.concat([ds.obs.assign(visit=1), ds.obs.iloc[:4].assign(visit=2)]).set_axis(
            [*ds.X.index, "R0", "R1", "R2", "R3"]), study="siteA")
    a, _ = site_summary(ds, markers=False)
    b, _ = site_summary(twice, markers=False)  # later visits set aside: the same table
    pd.testing.assert_frame_equal(a, b)
    obs = ds.obs.assign(site=np.where(np.arange(len(ds.obs)) % 2, "north", "south"),
                        kit="p180")
    t, _ = site_summary(Dataset(ds.X, obs), site="site", by=None)
    assert sorted(t["site"].unique()) == ["north", "south"] and set(t["stratum"]) == {"all"}
    assert set(t["kit"]) == {"p180"}
    m, _ = site_summary(ds)  # ornithine, arginine, citrulline, kynurenine, tryptophan: ratios
    assert {"orn_arg_ratio", "kyn_trp_ratio"} <= set(m["analyte"])


# -- the command --------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def synth_store(tmp_path_factory: pytest.TempPathFactory) -> Path:
    db = tmp_path_factory.mktemp("site") / "site.db"
    r = hikisig("synth", "--db", str(db), "--seed", "11")
    assert r.returncode == 0, r.stderr
    return db


def test_export_summary_cli_writes_no_codes(synth_store: Path, tmp_path: Path) -> None:
    out = tmp_path / "out"
    r = hikisig("--db", str(synth_store), "export", "summary", str(out), "--site-name", "A",
                "--min-n", "5")
    assert r.returncode == 0, r.stderr
    assert sorted(p.name for p in out.iterdir()) == ["manifest.json", "summary_A.csv",
                                                     "summary_A.parquet"]
    csv = pd.read_csv(out / "summary_A.csv", keep_default_na=False, na_values=[""],
                      dtype={"hmdb": str, "kit": str}).fillna({"hmdb": "", "kit": ""})
    assert tuple(csv.columns) == SUMMARY_COLUMNS
    pd.testing.assert_frame_equal(pd.read_parquet(out / "summary_A.parquet"), csv,
                                  check_dtype=False)
    man = json.loads((out / "manifest.json").read_text())
    assert {"hikisig_version", "catalog_version", "config_sha256", "date", "sites",
            "suppressed"} <= set(man)
    assert man["sites"][0]["site"] == "A"
    ds = Dataset.from_store(str(synth_store), None)
    codes = {str(v) for v in ds.obs["participant"].dropna()} | {str(i) for i in ds.X.index}
    for f in out.iterdir():
        text = f.read_bytes().decode("latin-1")
        hits = [c for c in codes if c in text]
        assert not hits, f"{f.name} holds codes: {hits[:3]}"
    # the same data analysed by hikisig stats give the same Hedges g
    st = tmp_path / "stats.csv"
    assert hikisig("--db", str(synth_store), "stats", "--out", str(st), "--test", "welch").returncode == 0
    s = pd.read_csv(st)
    s = s[s["test"] == "welch"].set_index(["analyte", "stratum"])
    t = csv.set_index(["analyte", "stratum"])
    assert np.allclose(t["effect"], s.loc[t.index, "effect"], rtol=1e-9, atol=1e-12)


def test_export_summary_leaves_nothing_on_failure(synth_store: Path, tmp_path: Path,
                                                  monkeypatch: pytest.MonkeyPatch) -> None:
    taken = tmp_path / "taken"
    taken.mkdir()
    (taken / "notes.txt").write_text("mine")
    r = hikisig("--db", str(synth_store), "export", "summary", str(taken))
    assert r.returncode == 2 and "not an earlier summary export" in r.stderr
    assert [p.name for p in taken.iterdir()] == ["notes.txt"]

    def boom(*a: object, **k: object) -> None:
        raise OSError("disk full")

    monkeypatch.setattr(pd.DataFrame, "to_parquet", boom)
    out = tmp_path / "out"
    r = hikisig("--db", str(synth_store), "export", "summary", str(out))
    assert r.returncode == 2 and "disk full; nothing was written" in r.stderr
    assert not out.exists()
    assert sorted(p.name for p in tmp_path.iterdir()) == ["taken"]  # no temporary folder left


def test_export_summary_site_column_none_by_none(synth_store: Path, tmp_path: Path) -> None:
    out = tmp_path / "o"
    r = hikisig("--db", str(synth_store), "export", "summary", str(out), "--by", "none",
                "--min-n", "30", "--site-column", "none")
    assert r.returncode == 0, r.stderr
    t = pd.concat(pd.read_csv(f) for f in out.glob("summary_*.csv"))
    assert set(t["stratum"]) == {"all"}
    # a second export into the same folder replaces the first
    assert hikisig("--db", str(synth_store), "export", "summary", str(out)).returncode == 0
    t = pd.concat(pd.read_csv(f) for f in out.glob("summary_*.csv"))
    assert {"F", "M"} <= set(t["stratum"])
