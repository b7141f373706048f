"""Real lab data without silent errors: names, missing codes, zeros, scales, repeat visits,
QC samples, failing stages, error lists. Small made-up tables for every case."""

from __future__ import annotations

import json
import warnings
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

import hikisig
from helpers import hikisig as cli
from hikisig.cohort.cells import MissingCodeWarning
from hikisig.config import StudyConfig
from hikisig.errors import HikisigError, InputError

FAST = {"discriminate": {"cv_repeats": 1, "permutations": 10, "n_estimators": 20},
        "severity": {"enabled": False}, "stratify": {"enabled": False}}


def _cohort(n: int = 40, seed: int = 0, **columns: object) -> pd.DataFrame:
    """A small wide table: id, group, sex, age and a few catalogued analytes."""
    rng = np.random.default_rng(seed)
    df = pd.DataFrame({"id": [f"S{i:02d}" for i in range(n)],
                       "group": np.where(np.arange(n) < n // 2, "case", "control"),
                       "sex": np.tile(["M", "F"], n // 2), "age": rng.integers(20, 50, n),
                       "Orn": rng.lognormal(4.0, 0.3, n).round(3),
                       "Arg": rng.lognormal(4.4, 0.3, n).round(3),
                       "Cit": rng.lognormal(3.4, 0.3, n).round(3)})
    for k, v in columns.items():
        df[k] = v
    return df


def _config(path: Path, **sections: dict[str, object]) -> StudyConfig:
    data: dict[str, dict[str, object]] = {"source": {"file": str(path)}, **FAST}
    for k, v in sections.items():
        data[k] = {**data.get(k, {}), **v}
    return StudyConfig.model_validate(data)


# -- names ------------------------------------------------------------------------------------

def test_glucose_and_glutamate_keep_their_own_values(tmp_path: Path) -> None:
    df = _cohort(GLU=np.linspace(80, 120, 40), Glu=np.linspace(20, 60, 40))
    df.to_csv(tmp_path / "kit.csv", index=False)
    ds = hikisig.read_table(tmp_path / "kit.csv")
    assert ds.X["glucose"].tolist() == df["GLU"].tolist()
    assert ds.X["glutamic_acid"].tolist() == df["Glu"].tolist()
    mapping = ds.analyte_mapping().set_index("source_column")
    assert mapping.loc["GLU", "analyte_id"] == "glucose" and mapping.loc["Glu", "analyte_id"] == \
        "glutamic_acid"
    r = cli("stats", str(tmp_path / "kit.csv"), "--participant-column", "none", "--out",
            str(tmp_path / "stats.csv"))
    assert r.returncode == 0, r.stderr
    written = pd.read_csv(tmp_path / "analyte_mapping.csv")
    assert list(written.columns) == ["source_column", "analyte_id", "name", "class", "match"]
    assert set(written["match"]) <= {"exact", "synonym", "unmatched"}
    stats = pd.read_csv(tmp_path / "stats.csv").set_index(["analyte", "stratum", "test"])
    assert stats.loc[("glucose", "all", "welch"), "mean_case"] == pytest.approx(df["GLU"][:20].mean())


def test_two_columns_of_one_analyte_are_never_merged(tmp_path: Path) -> None:
    df = _cohort(Ornithine=np.linspace(50, 90, 40))
    df.to_csv(tmp_path / "w.csv", index=False)
    with pytest.raises(InputError, match=r"columns 'Orn' and 'Ornithine' are both catalog analyte "
                       r"'ornithine'"):
        hikisig.read_table(tmp_path / "w.csv")
    long = pd.DataFrame({"participant": ["P1", "P1", "P2", "P2", "P3"], "visit": 1,
                         "analyte": ["Orn", "Arg", "Orn", "Arg", "Ornithine"],
                         "value": [1.0, 2.0, 3.0, 4.0, 5.0]})
    long.to_csv(tmp_path / "long.csv", index=False)
    with pytest.raises(InputError) as exc:
        hikisig.read_table(tmp_path / "long.csv")
    text = str(exc.value)
    assert "row 6, column 'analyte': 'Ornithine': analyte names 'Orn' (first in row 2) and " \
           "'Ornithine' are both catalog analyte 'ornithine'" in text


# -- missing-value codes ------------------------------------------------------------------------

def test_missing_codes_are_nan_when_declared_and_warned_about_when_not(tmp_path: Path) -> None:
    df = _cohort()
    df["Putrescine"] = np.where(np.arange(40) % 5 == 0, -9, 1.5)
    df.to_csv(tmp_path / "codes.csv", index=False)
    with pytest.warns(MissingCodeWarning, match=r"column 'Putrescine' holds -9 in 8 rows: if it "
                      r"means missing, declare it with --na-values -9"):
        undeclared = hikisig.read_table(tmp_path / "codes.csv")
    assert (undeclared.X["putrescine"] == -9).sum() == 8
    with warnings.catch_warnings():
        warnings.simplefilter("error", MissingCodeWarning)
        declared = hikisig.read_table(tmp_path / "codes.csv", na_values="-9")
    assert declared.X["putrescine"].isna().sum() == 8
    assert declared.X["ornithine"].notna().all()  # the default codes still hold
    r = cli("stats", str(tmp_path / "codes.csv"), "--participant-column", "none", "--na-values", "-9")
    assert r.returncode == 0 and "holds -9" not in r.stderr
    rows = pd.read_csv(__import__("io").StringIO(r.stdout)).set_index(["analyte", "stratum", "test"])
    assert rows.loc[("putrescine", "all", "welch"), "n_case"] == 16
    df.to_parquet(tmp_path / "codes.parquet", index=False)
    r = cli("stats", str(tmp_path / "codes.parquet"), "--na-values", "-9", "--out",
            str(tmp_path / "p.csv"))
    assert r.returncode == 0, r.stderr
    parquet = pd.read_csv(tmp_path / "p.csv").set_index(["analyte", "stratum", "test"])
    assert parquet.loc[("putrescine", "all", "welch"), "n_case"] == 16
    df.assign(Arg=np.where(np.arange(40) == 3, np.inf, df["Arg"])).to_parquet(
        tmp_path / "inf.parquet", index=False)
    r = cli("stats", str(tmp_path / "inf.parquet"))
    assert r.returncode == 2 and "column 'Arg': infinite value in 1 row(s)" in r.stderr
    config = _config(tmp_path / "codes.csv", source={"na_values": ["-9"]},
                     design={"participant": ""})
    results = hikisig.run(config, out=tmp_path / "run")
    assert not any("holds -9" in w for w in results.warnings)


# -- zeros, negatives, scales -----------------------------------------------------------------

def test_zeros_and_z_scores_run_to_a_report(tmp_path: Path) -> None:
    df = _cohort()
    df.loc[::4, "Orn"] = 0.0
    df.to_csv(tmp_path / "zeros.csv", index=False)
    results = hikisig.run(_config(tmp_path / "zeros.csv", design={"participant": ""}),
                          out=tmp_path / "zeros")
    assert results.discrimination is not None and results.failed_stage is None
    orn = results.stats.set_index(["analyte", "stratum", "test"]).loc[("ornithine", "all", "welch")]
    assert np.isfinite(orn["fold_change"])  # from the positive values
    assert results.nonpositive is not None and int(results.nonpositive["ornithine"]) == 10
    html = (tmp_path / "zeros" / "report.html").read_text()
    assert "10 values &lt;= 0 in 1 analyte(s), read as below detection" in html
    z = _cohort()
    rng = np.random.default_rng(3)
    for c in ("Orn", "Arg", "Cit"):
        z[c] = rng.normal(size=40) + np.where(np.arange(40) < 20, 0.8, 0.0)
    z.to_csv(tmp_path / "z.csv", index=False)
    zres = hikisig.run(_config(tmp_path / "z.csv", design={"participant": ""},
                               preprocessing={"input_scale": "z"}), out=tmp_path / "zrun")
    w = zres.stats[(zres.stats["test"] == "welch") & (zres.stats["stratum"] == "all")]
    assert (w["effect_type"] == "mean_difference").all() and w["fold_change"].isna().all()
    orn = w.set_index("analyte").loc["ornithine"]
    assert orn["effect"] == pytest.approx(z["Orn"][:20].mean() - z["Orn"][20:].mean())
    assert zres.discrimination is not None and zres.discrimination.params.get("log") is False
    assert "differences of means" in (tmp_path / "zrun" / "report.html").read_text()
    with pytest.raises(HikisigError, match="infinite values are not measurements: 'a' of sample"):
        hikisig.Dataset(pd.DataFrame({"a": [1.0, np.inf]}, index=["s1", "s2"]))


# -- stages write as they finish -----------------------------------------------------------------

def test_a_failure_in_the_models_stage_leaves_the_statistics(tmp_path: Path,
                                                             monkeypatch: pytest.MonkeyPatch) -> None:
    from hikisig.analysis.study import StudyData

    df = _cohort()
    df.to_csv(tmp_path / "t.csv", index=False)
    config = _config(tmp_path / "t.csv", design={"participant": ""})
    (tmp_path / "study.toml").write_text(hikisig.config.render_config(config))

    def broken(*args: object, **kwargs: object) -> None:
        raise HikisigError("the model could not be fitted")

    monkeypatch.setattr(StudyData, "discriminate", broken)
    r = cli("-q", "run", str(tmp_path / "study.toml"), "--out", str(tmp_path / "out"))
    assert r.returncode == 2
    assert "the discrimination stage failed: the model could not be fitted" in r.stderr
    out = tmp_path / "out"
    assert (out / "tables" / "stats.csv").exists() and not (out / "models").exists()
    prov = json.loads((out / "provenance.json").read_text())
    assert prov["failed_stage"] == "discrimination" and "could not be fitted" in prov["error"]
    assert "The discrimination stage FAILED: the model could not be fitted" in (
        out / "report.html").read_text()

    def bug(*args: object, **kwargs: object) -> None:
        raise ZeroDivisionError("division by zero")

    monkeypatch.setattr(StudyData, "discriminate", bug)
    r = cli("-q", "run", str(tmp_path / "study.toml"), "--out", str(tmp_path / "bug"))
    assert r.returncode == 1 and "Traceback" not in r.stderr
    assert "internal error in the discrimination stage: division by zero" in r.stderr
    log = (tmp_path / "bug" / "error.log").read_text()
    assert "Traceback" in log and "ZeroDivisionError" in log
    assert (tmp_path / "bug" / "tables" / "stats.csv").exists()


# -- repeat visits -------------------------------------------------------------------------------

def _visits(tmp_path: Path, with_participant: bool) -> Path:
    base = _cohort(n=20)
    frames = []
    for visit in (1, 2):
        f = base.copy()
        f["visit"] = visit
        f["participant"] = f["id"]
        f["id"] = f["id"] + f"_v{visit}"
        frames.append(f)
    df = pd.concat(frames, ignore_index=True)
    if not with_participant:
        df = df.drop(columns="participant")
    path = tmp_path / ("rep.csv" if with_participant else "rep_no_participant.csv")
    df.to_csv(path, index=False)
    return path


def test_repeat_visits_need_a_participant_and_count_once(tmp_path: Path) -> None:
    with pytest.raises(HikisigError, match="several visits but the file has no participant column"):
        hikisig.run(_config(_visits(tmp_path, False)), out=tmp_path / "x")
    results = hikisig.run(_config(_visits(tmp_path, True)), out=tmp_path / "rep")
    welch = results.stats[(results.stats["test"] == "welch") & (results.stats["stratum"] == "all")]
    assert (welch["n_case"] + welch["n_control"] == 20).all()  # one sample per participant
    assert results.repeats is not None and results.repeats.set_aside == 20
    d = results.discrimination
    assert d is not None and d.n == 40 and "group-aware: yes" in d.cv_scheme
    html = (tmp_path / "rep" / "report.html").read_text()
    assert "each participant&#39;s first sample by visit (20 later samples set aside)" in html
    every = hikisig.run(_config(_visits(tmp_path, True), design={"repeated": "all"}),
                        out=tmp_path / "all")
    w = every.stats[(every.stats["test"] == "welch") & (every.stats["stratum"] == "all")]
    assert (w["n_case"] + w["n_control"] == 40).all()
    assert any("NOT independent" in t for t in every.warnings)


# -- QC samples in the main job ------------------------------------------------------------------

def test_qc_rsd_drift_and_pqn_in_run_match_the_transformers(tmp_path: Path) -> None:
    from hikisig.prep import PQNormaliser, QCDriftCorrector, QCRSDFilter

    rng = np.random.default_rng(5)
    n_study, n_qc = 40, 10
    df = _cohort(n=n_study)
    df["Noisy"] = rng.lognormal(2.0, 0.2, n_study)
    qc = pd.DataFrame({"id": [f"QC{i}" for i in range(n_qc)], "group": "QC", "sex": "",
                       "age": np.nan, "Orn": rng.normal(60, 1, n_qc), "Arg": rng.normal(80, 1, n_qc),
                       "Cit": rng.normal(30, 1, n_qc), "Noisy": rng.lognormal(2.0, 1.0, n_qc)})
    full = pd.concat([df, qc], ignore_index=True)
    full["sample_type"] = np.where(full["group"] == "QC", "QC", "sample")
    full["injection_order"] = rng.permutation(len(full)) + 1
    full["batch"] = "B1"
    full.to_csv(tmp_path / "qc.csv", index=False)
    results = hikisig.run(_config(tmp_path / "qc.csv", design={"participant": ""},
                                  preprocessing={"qc_rsd_max": 0.3, "drift": "loess",
                                                 "normalise": "pqn"}), out=tmp_path / "qc")
    assert results.quality is not None and results.quality.n_qc == n_qc
    assert results.quality.dropped == ["Noisy"]
    X = full[["Orn", "Arg", "Cit", "Noisy"]].set_axis(["ornithine", "arginine", "citrulline",
                                                       "Noisy"], axis=1).set_axis(full["id"])
    is_qc = (full["sample_type"] == "QC").to_numpy()
    rsd = QCRSDFilter(max_rsd=0.3).fit(X, qc=is_qc)
    X = X.loc[:, rsd.support_]
    X = pd.DataFrame(QCDriftCorrector().fit_transform(X, qc=is_qc, order=full["injection_order"],
                                                      batch=full["batch"]), index=X.index,
                     columns=X.columns)
    X = X[~is_qc]
    expected = pd.DataFrame(PQNormaliser().fit_transform(X), index=X.index, columns=X.columns)
    got = results.X[expected.columns].loc[expected.index]
    np.testing.assert_allclose(got.to_numpy(), expected.to_numpy(), rtol=1e-12)
    html = (tmp_path / "qc" / "report.html").read_text()
    assert 'id="fig-qc-rsd"' in html and 'id="fig-qc-pca"' in html
    assert "10 QC and 0 blank sample(s) in the run" in html


def test_a_cimcb_workbook_with_metabolights_columns_imports(tmp_path: Path) -> None:
    rng = np.random.default_rng(2)
    n = 12
    data = pd.DataFrame({"Idx": range(1, n + 1), "SampleID": [f"S{i}" for i in range(n)],
                         "Sample Name ": [f"name-{i}" for i in range(n)],
                         "Sample type": np.where(np.arange(n) < 3, "QC", "Sample"),
                         "QC": np.where(np.arange(n) < 3, 1, 0), "Batch": 1,
                         "Class": np.where(np.arange(n) < 3, "QC", np.where(np.arange(n) % 2, "GC",
                                                                            "HE")),
                         "M1": rng.lognormal(size=n), "M2": rng.lognormal(size=n)})
    peak = pd.DataFrame({"Idx": [1, 2], "Name": ["M1", "M2"], "Label": ["Creatinine", "Hippurate"]})
    with pd.ExcelWriter(tmp_path / "cimcb.xlsx") as w:
        data.to_excel(w, sheet_name="Data", index=False)
        peak.to_excel(w, sheet_name="Peak", index=False)
    ds = hikisig.read_table(tmp_path / "cimcb.xlsx")
    assert list(ds.X.index) == list(data["SampleID"])
    assert (ds.obs["sample_type"] == "qc").sum() == 3 and ds.obs["Sample Name"].iloc[0] == "name-0"
    assert ds.obs["batch"].iloc[0] == "1"
    db = tmp_path / "s.db"
    assert cli("--db", str(db), "init").returncode == 0
    r = cli("--db", str(db), "import", "measurements", str(tmp_path / "cimcb.xlsx"))
    assert r.returncode == 0, r.stderr
    assert "12 samples" in r.stdout


# -- error lists ----------------------------------------------------------------------------------

def test_error_lists_say_how_many_more_and_hint_at_meta_columns(tmp_path: Path) -> None:
    df = _cohort(n=80)
    df["Hospital"] = "Kyushu"
    df["Arg"] = df["Arg"].astype(object)
    df.loc[:59, "Arg"] = "x"
    df.to_csv(tmp_path / "bad.csv", index=False)
    db = tmp_path / "s.db"
    cli("--db", str(db), "init")
    r = cli("--db", str(db), "import", "measurements", str(tmp_path / "bad.csv"))
    lines = r.stderr.strip().splitlines()
    assert r.returncode == 2
    assert "column 'Hospital': 'Kyushu': holds text in every row, not numbers (80 cells): if it is " \
           "metadata, name it with --meta-columns" in lines[0]
    assert lines[-1] == "error: ... and 11 more problems (fix these and run again)"
    assert len(lines) == 51


def test_a_fault_while_loading_goes_to_a_log(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    import hikisig.pipeline.run as run_module

    _cohort().to_csv(tmp_path / "t.csv", index=False)
    (tmp_path / "study.toml").write_text(hikisig.config.render_config(
        _config(tmp_path / "t.csv", design={"participant": ""})))

    def broken(*args: object, **kwargs: object) -> None:
        raise KeyError("a column that should be there")

    monkeypatch.setattr(run_module, "load_study", broken)
    r = cli("-q", "run", str(tmp_path / "study.toml"), "--out", str(tmp_path / "out"))
    assert r.returncode == 1 and "Traceback" not in r.stderr
    assert "internal error in the data stage" in r.stderr
    assert "KeyError" in (tmp_path / "out" / "error.log").read_text()
