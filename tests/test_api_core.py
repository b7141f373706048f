"""The analysis core and its Python API: one rule per thing, the same answer on every face."""

from __future__ import annotations

import ast
import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from typer.testing import CliRunner

import hikisig
from hikisig.cli import app
from hikisig.config import (
    Design,
    DiscriminateSection,
    RunSection,
    SeveritySection,
    StatsSection,
    StratifySection,
    StudyConfig,
    field_bounds,
    render_config,
)
from hikisig.errors import AlignmentError, HikisigError, TooFewSamplesError

FAST = {"discriminate": {"cv_repeats": 1, "permutations": 20, "n_estimators": 30},
        "severity": {"cv_repeats": 1, "permutations": 5}, "stratify": {"bootstraps": 3}}


@pytest.fixture(scope="module")
def store(tmp_path_factory: pytest.TempPathFactory) -> Path:
    from hikisig.synth import SyntheticStudy, preset, write_store

    d = tmp_path_factory.mktemp("core")
    write_store(SyntheticStudy(preset(seed=11)), str(d / "s.db"))
    return d / "s.db"


@pytest.fixture(scope="module")
def ds(store: Path) -> hikisig.Dataset:
    return hikisig.Dataset.from_store(store)


def _small(n: int = 40, seed: int = 0) -> hikisig.Dataset:
    rng = np.random.default_rng(seed)
    ids = [f"S{i:02d}" for i in range(n)]
    X = pd.DataFrame(rng.lognormal(size=(n, 4)), columns=["ornithine", "arginine", "m1", "m2"],
                     index=ids)
    dx = np.where(np.arange(n) < n // 2, "hikikomori", "healthy")
    X.loc[dx == "hikikomori", "ornithine"] *= 4.0
    obs = pd.DataFrame({"dx": dx, "sex": np.tile(["F", "M"], n // 2),
                        "age": rng.integers(20, 50, n).astype(float)}, index=ids)
    return hikisig.Dataset(X, obs)


# -- alignment by index --------------------------------------------------------------------

def test_a_reordered_series_gives_the_aligned_table_and_missing_ids_are_named() -> None:
    d = _small()
    X, obs = d.X, d.obs
    aligned = hikisig.case_control(X, group=obs["dx"], case="hikikomori", control="healthy",
                                   by=obs["sex"], covariates=obs[["age"]])
    shuffled = obs.sample(frac=1.0, random_state=3)
    assert not shuffled.index.equals(X.index)
    reordered = hikisig.case_control(X, group=shuffled["dx"], case="hikikomori", control="healthy",
                                     by=shuffled["sex"], covariates=shuffled[["age"]])
    pd.testing.assert_frame_equal(reordered, aligned)
    from_dataset = hikisig.case_control(d, group="dx", case="hikikomori", control="healthy",
                                        by="sex", covariates=["age"], markers=False)
    pd.testing.assert_frame_equal(from_dataset.drop(columns="formula"), aligned)
    with pytest.raises(AlignmentError, match=r"by lacks 2 sample id\(s\) of the data: S03, S07"):
        hikisig.case_control(X, group=obs["dx"], case="hikikomori", control="healthy",
                             by=obs["sex"].drop(["S03", "S07"]))
    with pytest.raises(AlignmentError, match="group has 39 values for 40 samples"):
        hikisig.case_control(X, group=obs["dx"].to_numpy()[:-1], case="hikikomori")
    legacy = hikisig.case_control(X, (obs["dx"] == "hikikomori").sample(frac=1.0, random_state=1),
                                  by=obs["sex"], covariates=obs[["age"]])
    pd.testing.assert_frame_equal(legacy, aligned)


# -- the positive class is named, never guessed -----------------------------------------------

def test_case_names_the_positive_class() -> None:
    d = _small()
    hik = hikisig.case_control(d, group="dx", case="hikikomori", control="healthy", markers=False)
    hea = hikisig.case_control(d, group="dx", case="healthy", control="hikikomori", markers=False)
    key = ["analyte", "stratum", "test"]
    a, b = hik.set_index(key), hea.set_index(key)
    orn = ("ornithine", "all", "welch")
    assert a.loc[orn, "effect"] > 0.5 and b.loc[orn, "effect"] == pytest.approx(-a.loc[orn, "effect"])
    assert b.loc[orn, "fold_change"] == pytest.approx(1 / a.loc[orn, "fold_change"])
    assert b.loc[orn, "n_case"] == a.loc[orn, "n_control"]
    kw = {"cv_repeats": 1, "permutations": 10, "model": "logistic"}
    res = hikisig.discriminate(d, group="dx", case="healthy", control="hikikomori", **kw)
    assert (res.case_label, res.control_label) == ("healthy", "hikikomori")
    oof = res.tables["oof_predictions"].set_index("id")
    assert (oof["y_true"] == (d.obs.loc[oof.index, "dx"] == "healthy").astype(int)).all()
    assert res.auc > 0.7  # healthy have the lower ornithine: a good ranking of P(healthy)
    pred = hikisig.predict(res, d)
    assert set(pred["predicted_group"]) <= {"healthy", "hikikomori"}
    assert pred.loc[d.obs["dx"] == "healthy", "probability"].mean() > 0.5
    assert set(res.model.predict(d.X)) <= {"healthy", "hikikomori"}
    with pytest.raises(HikisigError, match="name the case label"):
        hikisig.discriminate(d, group="dx", **kw)
    with pytest.raises(ValueError, match=r"name the case label \(case=...\)"):
        from hikisig.models.discriminate import discriminate

        discriminate(d.X, d.obs["dx"].to_numpy(), **kw)


def test_too_few_samples_and_other_labels_are_said() -> None:
    d = _small(n=12)
    obs = d.obs.copy()
    obs.loc[obs.index[:4], "dx"] = "qc"
    few = hikisig.Dataset(d.X, obs)
    with pytest.raises(TooFewSamplesError, match=r"need at least 3 'hikikomori' and 3 'healthy' "
                       r"samples in column 'dx' \(found 2 and 6; labels: healthy, hikikomori, qc\)"):
        hikisig.discriminate(few, group="dx", case="hikikomori", control="healthy")
    with pytest.raises(TooFewSamplesError, match=r"\(found 0 and 6; 'Hikikomori' is not a label of "
                       r"column 'dx'; labels: healthy, hikikomori, qc\)"):
        hikisig.case_control(few, group="dx", case="Hikikomori", control="healthy")
    with pytest.raises(HikisigError, match=r"'Hikikomori' is not a label of column 'dx' \(labels: "
                       r"healthy, hikikomori, qc\)"):
        hikisig.case_control(few, group="dx", case="Hikikomori")
    with pytest.raises(TooFewSamplesError, match="'control' is not a label of column 'dx'"):
        hikisig.case_control(few, group="dx", case="hikikomori", control="control")
    with pytest.raises(TooFewSamplesError, match="only 6 cases to stratify: the stratification "
                       "needs at least 10"):
        hikisig.stratify(_small(n=12), group="dx", case="hikikomori")
    obs = d.obs.copy()
    obs.loc[["S00", "S11"], "dx"] = "QC"
    with pytest.warns(UserWarning, match=r"2 sample\(s\) with other labels in column 'dx' left "
                      r"out \(neither 'hikikomori' nor 'healthy'\)"):
        t = hikisig.case_control(hikisig.Dataset(d.X, obs), group="dx", case="hikikomori",
                                 control="healthy", markers=False)
    assert t.loc[t["stratum"] == "all", ["n_case", "n_control"]].iloc[0].tolist() == [5, 5]


# -- Dataset ---------------------------------------------------------------------------------

def test_dataset_checks_and_forms(ds: hikisig.Dataset) -> None:
    X = pd.DataFrame({"a": [1.0, 2.0]}, index=["s1", "s1"])
    with pytest.raises(HikisigError, match=r"duplicate sample id\(s\): s1"):
        hikisig.Dataset(X)
    X = pd.DataFrame({"a": [1.0, 2.0]}, index=["s1", "s2"])
    with pytest.raises(HikisigError, match="obs must have the samples of X"):
        hikisig.Dataset(X, pd.DataFrame({"g": [1, 2]}, index=["s2", "s1"]))
    with pytest.raises(HikisigError, match="not numbers: a"):
        hikisig.Dataset(pd.DataFrame({"a": ["x", "y"]}, index=["s1", "s2"]))
    assert ds.synthetic and ds.shape == (83, 127) and "hq25" in ds.obs
    assert ds.var.loc["ornithine", "unit"] == "umol/L"
    sub = ds.subset(ds.obs["sex"] == "F", ["ornithine", "arginine"])
    assert sub.shape == (int((ds.obs["sex"] == "F").sum()), 2) and sub.synthetic
    back = hikisig.Dataset.from_anndata(ds.to_anndata())
    assert back.synthetic and back.study == ds.study
    pd.testing.assert_frame_equal(back.X, ds.X, check_names=False)
    assert back.obs["hq25"].tolist() == ds.obs["hq25"].tolist()


def test_synthetic_is_a_property_of_the_data_not_of_its_name(tmp_path: Path) -> None:
    from hikisig.cohort.importer import import_measurements
    from hikisig.cohort.readers import read_measurements
    from hikisig.cohort.store import Store

    f = tmp_path / "lab.csv"
    f.write_text("sample,Orn,Arg\nS1,60,90\nS2,80,70\n")
    store = Store(tmp_path / "x.db")
    store.init()
    import_measurements(store, read_measurements(f), "synthetic-named-pilot")
    assert not hikisig.Dataset.from_store(store, "synthetic-named-pilot").synthetic
    assert not hikisig.read_table(f).synthetic
    (tmp_path / "SYNTHETIC.txt").write_text("made up\n")
    assert hikisig.read_table(f).synthetic
    import_measurements(store, read_measurements(f), "real-name")
    assert hikisig.Dataset.from_store(store, "real-name").synthetic
    store.dispose()


# -- predictions ----------------------------------------------------------------------------

def test_predict_a_fresh_or_a_saved_model(ds: hikisig.Dataset, tmp_path: Path) -> None:
    res = hikisig.discriminate(ds, group="group", case="case", control="control", cv_repeats=1,
                               permutations=10, n_estimators=20)
    fresh = hikisig.predict(res, ds)
    assert list(fresh.index) == list(ds.X.index) and fresh["id"].tolist() == list(ds.X.index)
    assert set(fresh["predicted_group"]) <= {"case", "control"}
    assert (fresh["predicted_case"] == (fresh["predicted_group"] == "case")).all()
    res.save(tmp_path / "rf")
    loaded = hikisig.load_model(tmp_path / "rf")
    assert type(loaded) is type(res) and loaded.auc == res.auc and loaded.study == ds.study
    pd.testing.assert_frame_equal(hikisig.predict(tmp_path / "rf", ds), fresh)
    card = json.loads((tmp_path / "rf" / "model_card.json").read_text())
    assert card["synthetic"] is True and card["units"]["ornithine"] == "umol/L"
    band = res.tables["roc_band"]
    assert list(band.columns) == ["fpr", "tpr", "tpr_ci_low", "tpr_ci_high"] and len(band) == 101
    assert (band["tpr_ci_low"] <= band["tpr"] + 1e-12).all()
    assert (band["tpr"] <= band["tpr_ci_high"] + 1e-12).all()
    again = hikisig.discriminate(ds, group="group", case="case", control="control", cv_repeats=1,
                                 permutations=10, n_estimators=20)
    pd.testing.assert_frame_equal(again.tables["roc_band"], band)


# -- one core, three faces --------------------------------------------------------------------

def test_stats_model_and_run_give_identical_tables(store: Path, tmp_path: Path) -> None:
    config = StudyConfig.model_validate({"source": {"db": str(store)}, **FAST,
                                         "severity": {"enabled": False},
                                         "stratify": {"enabled": False}})
    (tmp_path / "study.toml").write_text(render_config(config))
    runner = CliRunner()
    r = runner.invoke(app, ["-q", "run", str(tmp_path / "study.toml"), "--out", str(tmp_path / "run")])
    assert r.exit_code == 0, r.output
    r = runner.invoke(app, ["--db", str(store), "stats", "--out", str(tmp_path / "stats.csv")])
    assert r.exit_code == 0, r.output
    tables = tmp_path / "run" / "tables"
    assert (tmp_path / "stats.csv").read_bytes() == (tables / "stats.csv").read_bytes()
    r = runner.invoke(app, ["--db", str(store), "model", "discriminate", "--cv-repeats", "1",
                            "--permutations", "20", "--n-estimators", "30", "--out",
                            str(tmp_path / "rf")])
    assert r.exit_code == 0, r.output
    for name in ("oof_predictions", "thresholds", "signature", "roc_band", "importance"):
        assert ((tmp_path / "rf" / f"{name}.csv").read_bytes()
                == (tables / f"discriminate_{name}.csv").read_bytes()), name
    api = hikisig.run(config, out=tmp_path / "api")
    assert (tmp_path / "api" / "tables" / "stats.csv").read_bytes() == (tables / "stats.csv").read_bytes()
    assert api.discrimination is not None and api.severity is None
    assert api.skipped["severity"] == "disabled in the study config (severity.enabled = false)"


def test_run_collects_warnings_and_says_why_a_stage_did_not_run(store: Path, tmp_path: Path
                                                               ) -> None:
    from hikisig.cohort.store import Store

    s = Store(store)
    keep = hikisig.Dataset.from_store(s)
    s.dispose()
    frame = pd.concat([keep.obs[["group", "sex", "age"]], keep.X], axis=1)
    controls = frame.index[frame["group"] == "control"]
    frame.loc[controls[:4], "group"] = "qc"
    cases = frame.index[frame["group"] == "case"]
    frame = frame.drop(cases[6:])  # 6 cases: too few to stratify
    frame.rename_axis("sample").to_csv(tmp_path / "t.csv")
    config = StudyConfig.model_validate({"source": {"file": str(tmp_path / "t.csv")}, **FAST,
                                         "severity": {"enabled": False}})
    results = hikisig.run(config, out=tmp_path / "out")
    assert "4 sample(s) with other labels in column 'group' left out (neither 'case' nor " \
           "'control')" in results.warnings
    assert results.skipped == {"severity": "disabled in the study config (severity.enabled = false)",
                               "stratification": "only 6 cases to stratify: the stratification "
                                                 "needs at least 10"}
    assert results.discrimination is not None and results.discrimination.n_case == 6
    html = (tmp_path / "out" / "report.html").read_text()
    assert "Stratification did not run: only 6 cases to stratify" in html
    assert "Warning: 4 sample(s) with other labels" in html


# -- defaults and bounds are defined once ------------------------------------------------------

def _params(*path: str) -> dict[str, object]:
    import click
    import typer.main

    cmd = typer.main.get_command(app)
    ctx = click.Context(cmd)
    for name in path:
        cmd = cmd.get_command(ctx, name)  # type: ignore[attr-defined]
    return {p.name: p for p in cmd.params}  # type: ignore[attr-defined]


@pytest.mark.parametrize("path,section,names", [
    (("model", "discriminate"), DiscriminateSection,
     ["cv_folds", "cv_repeats", "permutations", "n_estimators"]),
    (("model", "severity"), SeveritySection, ["max_components", "cv_folds", "cv_repeats",
                                               "permutations"]),
    (("model", "stratify"), StratifySection, ["bootstraps"]),
])
def test_cli_defaults_and_bounds_come_from_the_config(path: tuple[str, ...], section: type,
                                                      names: list[str]) -> None:
    params = _params(*path)
    for name in names:
        p = params[name]
        assert p.default == getattr(section(), name), name
        assert (p.min, p.max) == field_bounds(section, name), name
    assert params["seed"].default == RunSection().seed
    assert _params("stats")["test"].default == ",".join(StatsSection().tests)


def test_web_form_bounds_come_from_the_config() -> None:
    from hikisig.web.analyses import JOB_OPTIONS, form_fields

    for f in form_fields():
        section, name = f["key"].split(".")
        cls = type(getattr(StudyConfig(), section))
        assert f["default"] == getattr(cls(), name)
        lo, hi = field_bounds(cls, name)
        assert (f["min"], f["max"]) == (lo, hi) == JOB_OPTIONS[f["key"]][1:]


def test_no_module_level_cli_state(tmp_path: Path, store: Path) -> None:
    import hikisig.cli.common as common

    assert not hasattr(common, "state")
    runner = CliRunner(env={"HIKISIG_DB": None, "HIKISIG_STUDY": None})
    r = runner.invoke(app, ["--db", str(store), "--study", "nope", "info", "--json"])
    assert isinstance(r.exception, HikisigError) and "no study named 'nope'" in str(r.exception)
    r = runner.invoke(app, ["--db", str(store), "info", "--json"])
    assert r.exit_code == 0, r.output  # the previous --study did not stick
    assert json.loads(r.stdout)["n_studies"] == 1


def test_the_design_rule_is_one_rule(ds: hikisig.Dataset) -> None:
    from hikisig.analysis.design import resolve_design

    d = resolve_design(ds, Design())
    assert (d.sex, d.covariates, d.severity, d.participant) == ("sex", ["age"], "hq25", "participant")
    lenient = resolve_design(ds, Design(severity="hq25"))
    assert lenient.severity == "hq25"
    with pytest.raises(HikisigError, match="no column 'bmi'"):
        resolve_design(ds, Design(covariates=["bmi"]))  # named explicitly: must exist
    assert resolve_design(ds.subset(analytes=[]), Design.model_validate({})).covariates == ["age"]
    no_age = hikisig.Dataset(ds.X, ds.obs.drop(columns=["age"]))
    assert resolve_design(no_age, Design()).covariates == []  # the default: where present
    with pytest.raises(HikisigError, match="no column 'sex'"):
        resolve_design(hikisig.Dataset(ds.X, ds.obs.drop(columns=["sex"])), Design())


# -- layering -----------------------------------------------------------------------------------

SRC = Path(__file__).resolve().parents[1] / "src" / "hikisig"
#: The faces: nothing below them imports them.
FACES = {"cli", "web", "hikisig", "__main__"}
#: The report renders; it may import only these.
REPORT_MAY_IMPORT = {"results", "models", "errors", "versions", "config", "stats"}


def _unit(module: str) -> str:
    parts = module.split(".")
    return "hikisig" if len(parts) == 1 else parts[1]


def _import_graph() -> dict[str, set[str]]:
    graph: dict[str, set[str]] = {}
    for f in SRC.rglob("*.py"):
        rel = f.relative_to(SRC.parent).with_suffix("")
        mod = ".".join(p for p in rel.parts if p != "__init__")
        src = _unit(mod)
        for node in ast.walk(ast.parse(f.read_text())):  # function-level imports count too
            names: list[str] = []
            if isinstance(node, ast.Import):
                names = [a.name for a in node.names]
            elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
                names = [node.module] + ([f"hikisig.{a.name}" for a in node.names]
                                         if node.module == "hikisig" else [])
            for n in names:
                if n.startswith("hikisig") and (dst := _unit(n)) != src:
                    graph.setdefault(src, set()).add(dst)
    return graph


def test_no_import_cycle_between_subpackages() -> None:
    graph = _import_graph()
    assert graph["report"] <= REPORT_MAY_IMPORT, graph["report"]
    for unit, deps in graph.items():
        if unit not in ("hikisig", "__main__", "cli"):
            assert not deps & FACES, f"{unit} imports a face: {deps & FACES}"
    state: dict[str, int] = {}

    def visit(node: str, path: list[str]) -> None:
        state[node] = 1
        for nxt in sorted(graph.get(node, ())):
            if state.get(nxt) == 1:
                raise AssertionError("import cycle: " + " -> ".join([*path, node, nxt]))
            if nxt not in state:
                visit(nxt, [*path, node])
        state[node] = 2

    for unit in sorted(graph):
        if unit not in state:
            visit(unit, [])


def test_model_commands_need_only_what_their_model_needs(tmp_path: Path, ds: hikisig.Dataset
                                                         ) -> None:
    cases = ds.subset(ds.obs["group"] == "case")
    frame = pd.concat([cases.obs[["group"]], cases.X], axis=1).rename_axis("sample")
    frame.to_csv(tmp_path / "cases.csv")
    runner = CliRunner()
    r = runner.invoke(app, ["model", "stratify", str(tmp_path / "cases.csv"), "--bootstraps", "3",
                            "--out", str(tmp_path / "strata")])
    assert r.exit_code == 0, r.output  # a cohort of cases alone can be stratified
    assert json.loads((tmp_path / "strata" / "metrics.json").read_text())["n"] == 42
    r = runner.invoke(app, ["model", "discriminate", str(tmp_path / "cases.csv"), "--out",
                            str(tmp_path / "rf")])
    assert isinstance(r.exception, TooFewSamplesError)
    assert ("need at least 3 'case' and 3 'control' samples in column 'group' (found 42 and 0; "
            "'control' is not a label of column 'group'; labels: case)") in str(r.exception)
    r = runner.invoke(app, ["stats", str(tmp_path / "cases.csv"), "--visit", "2", "--by", "none"])
    assert isinstance(r.exception, HikisigError) and "a visit is chosen in the store" in str(
        r.exception)


def test_models_do_not_depend_on_the_memory_layout(ds: hikisig.Dataset, tmp_path: Path) -> None:
    g = ds.obs["group"]
    values = ds.X.to_numpy()
    runs = []
    for arr in (np.ascontiguousarray(values), np.asfortranarray(values)):
        X = pd.DataFrame(arr, index=ds.X.index, columns=ds.X.columns)
        runs.append(hikisig.stratify(X, group=g, case="case", control="control", bootstraps=3))
    pd.testing.assert_frame_equal(runs[0].tables["assignments"], runs[1].tables["assignments"])
    assert runs[0].to_metrics() == runs[1].to_metrics()
    with pytest.raises(HikisigError, match="is not initialised"):
        hikisig.Dataset.from_store(tmp_path / "absent.db")
