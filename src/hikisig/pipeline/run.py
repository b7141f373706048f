"""``hikisig run``: from a study config to tables, models, provenance and the report."""

from __future__ import annotations

import json
import math
import os
import platform
import shutil
import tempfile
import warnings
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from hikisig.errors import HikisigError
from hikisig.models.persist import frame_sha256
from hikisig.pipeline.config import StudyConfig
from hikisig.pipeline.results import RunResults
from hikisig.versions import package_versions

__all__ = ["STAGES", "execute", "run_study"]

#: Stages reported to the progress callback, in order.
STAGES = ("data", "statistics", "discrimination", "severity", "stratification", "report")

Progress = Callable[[str], None]


def _now() -> str:
    return datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def _store_url(config: StudyConfig, base: Path) -> str:
    """The store of ``source.db`` (default hikisig.db), a relative path taken from ``base``."""
    db = config.source.db or "hikisig.db"
    return db if "://" in db or Path(db).is_absolute() else str(base / db)


def _load(config: StudyConfig, base: Path) -> tuple[pd.DataFrame, pd.DataFrame, pd.DataFrame, str,
                                                    bool, pd.DataFrame | None]:
    """X, obs, var, study name, synthetic flag, questionnaire scores."""
    d, src = config.design, config.source
    if src.file:
        from hikisig.catalog import load_catalog
        from hikisig.pipeline.data import read_wide_table

        meta = [c for c in (d.group, d.sex, d.participant) if c]
        path = Path(src.file) if Path(src.file).is_absolute() else base / src.file
        import pandas as pd_

        head = list(pd_.read_csv(path, nrows=0).columns) if path.exists() else []
        meta = [c for c in meta if c in head or c == d.group]
        numeric = [c for c in [*d.covariates, *([d.severity] if d.severity else [])] if c in head]
        X, obs = read_wide_table(path, src.id_column, meta, numeric)
        cat = load_catalog()
        var = pd.DataFrame({
            "display_name": [cat.get(c).display_name if c in cat else c for c in X.columns],
            "class": [cat.get(c).class_ if c in cat else "uncatalogued" for c in X.columns],
            "unit": [None] * X.shape[1]}, index=X.columns)
        name = src.study or path.stem
        return X, obs, var, name, "synthetic" in name.casefold(), None
    from hikisig.cohort.assessments import load_assessments
    from hikisig.cohort.dataset import load_dataset
    from hikisig.cohort.store import Store

    store = Store(_store_url(config, base))
    names = store.study_names()
    study = src.study or (names[0] if len(names) == 1 else None)
    if study is None:
        raise HikisigError(f"the store holds {len(names)} studies: set source.study "
                           f"({', '.join(names)})")
    ds = load_dataset(store, study)
    obs = ds.obs[ds.obs["sample_type"] == "study"]
    first = obs.groupby("participant")["visit"].transform("min")
    obs = obs[obs["visit"] == first].copy()
    rows = []
    for iid in d.instruments:
        try:
            scores = load_assessments(store, study, iid)
        except HikisigError:
            continue
        if len(scores):
            part = scores[["id", "visit", "total", "band"]].copy()
            part.insert(2, "instrument", iid)
            rows.append(part)
    quest = pd.concat(rows, ignore_index=True) if rows else None
    if d.severity and d.severity not in obs.columns and quest is not None:
        key = quest[quest["instrument"] == d.severity].set_index(["id", "visit"])["total"]
        obs[d.severity] = [key.get((p, v), np.nan) for p, v in zip(obs["participant"], obs["visit"],
                                                                   strict=True)]
    store.dispose()
    return ds.X.loc[obs.index], obs, ds.var, study, ds.synthetic, quest


def _criteria(config: StudyConfig, base: Path, study: str, obs: pd.DataFrame
              ) -> pd.DataFrame | None:
    """The 2020 criteria of the participants: from ``source.criteria`` (a CSV) when set,
    else from the store's visit records (the clinic app's checklist): the record of the
    analysed visit, or the participant's first record when that visit has none."""
    from hikisig.assess.criteria import apply_criteria

    if config.source.criteria:
        from hikisig.assess.answers import read_answers_csv

        cpath = Path(config.source.criteria)
        cpath = cpath if cpath.is_absolute() else base / cpath
        return apply_criteria(read_answers_csv(cpath), str(cpath))
    if config.source.file:
        return None
    from hikisig.cohort.criteria_records import load_criteria
    from hikisig.cohort.store import Store

    store = Store(_store_url(config, base))
    try:
        recs = load_criteria(store, study)
    finally:
        store.dispose()
    if not len(recs):
        return None
    analysed = (dict(zip(obs["participant"], obs["visit"], strict=True)) if "visit" in obs else {})
    same = recs["visit"] == recs["id"].map(analysed)
    first = ~recs["id"].isin(recs.loc[same, "id"]) & ~recs["id"].duplicated()
    return recs[same | first].reset_index(drop=True)


def run_study(config: StudyConfig, *, config_sha256: str = "", base: Path | None = None,
              progress: Progress | None = None) -> RunResults:
    """Run every enabled analysis of a study config and return the results.

    Statistics and resampling run on the engine of ``run.engine`` (``run.scheduler``,
    ``run.workers``); a local Dask cluster it starts is closed at the end.
    """
    from hikisig.engine import Engine

    with Engine(config.run.engine, n_jobs=config.run.workers,
                scheduler=config.run.scheduler) as engine:
        return _run_study(config, engine, config_sha256=config_sha256, base=base,
                          progress=progress)


def _run_study(config: StudyConfig, engine: Any, *, config_sha256: str, base: Path | None,
               progress: Progress | None) -> RunResults:
    from hikisig.prep.markers import derived_markers

    start = _now()
    base = base or Path.cwd()
    say = progress or (lambda _stage: None)
    d = config.design
    say("data")
    X, obs, var, study, synthetic, quest = _load(config, base)
    if d.group not in obs.columns:
        raise HikisigError(f"no group column {d.group!r} in the data")
    labels = obs[d.group].astype(str)
    keep = labels.isin([d.case, d.control]).to_numpy()
    X, obs = X[keep], obs[keep].copy()
    obs["group"] = obs[d.group].astype(str)
    # no sex column configured (or sex is the contrast itself): no stratification by sex
    obs["sex"] = obs[d.sex] if d.sex and d.sex in obs.columns and d.sex != d.group else None
    if "age" not in obs.columns:
        obs["age"] = np.nan
    if "participant" not in obs.columns:
        obs["participant"] = obs.index.astype(str)
    if "visit" not in obs.columns:
        obs["visit"] = 1
    scale = config.preprocessing.input_scale
    if scale != "linear":
        base_of = {"log10": 10.0, "log2": 2.0, "ln": math.e}[scale]
        X = np.power(base_of, X)
    missing_share = X.isna().mean()
    dropped = list(X.columns[missing_share > config.preprocessing.max_missing])
    X = X.drop(columns=dropped)
    var = var.reindex(X.columns)
    case = (obs["group"] == d.case).to_numpy()
    n_case, n_control = int(case.sum()), int((~case).sum())
    if n_case < 3 or n_control < 3:
        raise HikisigError(f"need at least 3 {d.case!r} and 3 {d.control!r} samples "
                           f"(found {n_case} and {n_control})")
    markers, formulas = derived_markers(X)
    seed = config.run.seed
    covs = [c for c in d.covariates
            if c in obs.columns and pd.to_numeric(obs[c], errors="coerce").notna().any()]
    steps: list[dict[str, str]] = []
    if scale != "linear":
        steps.append({"name": "back-transformation", "description": f"stored {scale} values "
                      "brought back to the linear scale"})
    steps += [
        {"name": "missingness filter", "description": f"analytes missing in more than "
         f"{config.preprocessing.max_missing:.0%} of samples removed ({len(dropped)} removed)"},
        {"name": "half-minimum imputation", "description": "per analyte, fitted within each "
         "training fold for the models"},
        {"name": "log2 transformation", "description": ""},
        {"name": "autoscaling", "description": "discrimination and stratification, fitted "
         "within training folds"},
        {"name": f"{config.severity.scaling} scaling", "description": "severity (PLS) model, "
         "after mean-centring"},
    ]
    methods: dict[str, Any] = {
        "preprocessing": steps,
        "dropped_analytes": dropped,
        "input_scale": scale,
        "covariates": covs, "seed": seed, "engine": config.run.engine,
        "prevalence": config.screening.prevalence,
        "correction": "Benjamini-Hochberg false discovery rate (q) and Holm",
        "ci": {"AUC": "DeLong and stratified bootstrap", "sensitivity/specificity": "Wilson",
               "fold change": "Welch t on log values", "Hedges g": "Hedges-Olkin normal "
               "approximation", "Cliff's delta": "DeLong variance of the AUC"},
    }
    results = RunResults(config=config.model_dump(), study=study, synthetic=synthetic, X=X,
                         obs=obs, var=var, case_label=d.case, control_label=d.control,
                         markers=markers, marker_formulas=formulas, methods=methods)
    if quest is not None:
        idx = obs.set_index("participant")
        quest = quest.assign(group=quest["id"].map(idx["group"].to_dict()),
                             sex=quest["id"].map(idx["sex"].to_dict()))
        results.questionnaires = quest[quest["group"].notna()].reset_index(drop=True)
    crit = _criteria(config, base, study, obs)
    if crit is not None:
        crit["group"] = crit["id"].map(obs.set_index("participant")["group"].to_dict())
        results.criteria = crit
    say("statistics")
    if config.stats.enabled:
        from hikisig.stats.casecontrol import case_control

        full = X.join(markers)
        sev = obs[d.severity] if d.severity and d.severity in obs.columns else None
        st = case_control(full, case, by=obs["sex"] if obs["sex"].notna().any() else None,
                          covariates=obs[covs].astype(float) if covs else None, severity=sev,
                          tests=config.stats.tests, mwu_method=config.stats.mwu_method,
                          engine=engine)
        st["formula"] = st["analyte"].map(formulas["formula"].to_dict() if len(formulas) else {}).fillna("")
        results.stats = st
        methods["tests"] = list(config.stats.tests)
        methods["mwu_method"] = config.stats.mwu_method
    say("discrimination")
    if config.discriminate.enabled:
        from hikisig.models.discriminate import discriminate

        groups = obs["participant"].astype(str).to_numpy()
        c = config.discriminate
        methods.setdefault("training_ids", {})["discriminate"] = [str(i) for i in X.index]
        results.models["discriminate"] = discriminate(
            X, case, groups=groups if pd.Series(groups).duplicated().any() else None,
            ids=X.index, model=c.model, cv_folds=c.cv_folds, cv_repeats=c.cv_repeats,
            permutations=c.permutations, n_estimators=c.n_estimators,
            prevalence=config.screening.prevalence, seed=seed, engine=engine)
    say("severity")
    if config.severity.enabled and d.severity and d.severity in obs.columns:
        from hikisig.models.severity import severity

        target = pd.to_numeric(obs[d.severity], errors="coerce")
        sel = target.notna().to_numpy() & (case if config.severity.cases_only else True)
        if sel.sum() >= 8:
            c2 = config.severity
            methods.setdefault("training_ids", {})["severity"] = [str(i) for i in X.index[sel]]
            results.models["severity"] = severity(
                X[sel], target[sel].to_numpy(), ids=X.index[sel], scaling=c2.scaling,
                cv_repeats=c2.cv_repeats, permutations=c2.permutations, seed=seed, engine=engine)
    say("stratification")
    if config.stratify.enabled and case.sum() >= 10:
        from hikisig.models.stratify import stratify

        c3 = config.stratify
        methods.setdefault("training_ids", {})["stratify"] = [str(i) for i in X.index[case]]
        results.models["stratify"] = stratify(X[case], ids=X.index[case], method=c3.method, k=c3.k,
                                              bootstraps=c3.bootstraps, seed=seed, engine=engine)
    methods["cv"] = {k: m.metrics.get("cv_scheme") for k, m in results.models.items()
                     if m.metrics.get("cv_scheme")}
    methods["permutations"] = {k: m.metrics.get("permutations") for k, m in results.models.items()
                               if m.metrics.get("permutations") is not None}
    if results.models:
        from hikisig.models.signature import consensus_signature

        results.consensus = consensus_signature(list(results.models.values()))
    results.provenance = {
        "config_sha256": config_sha256, "data_sha256": frame_sha256(X), "study": study,
        "synthetic": synthetic, "seed": seed, "engine": config.run.engine,
        "versions": package_versions(), "start_time": start, "end_time": _now(),
        "platform": platform.platform(),
    }
    return results


def _text_or_none(v: Any) -> str | None:
    if v is None or (isinstance(v, float) and np.isnan(v)):
        return None
    return str(v)


def _write_tables(results: RunResults, folder: Path) -> list[str]:
    tables: dict[str, pd.DataFrame] = {}
    if results.stats is not None:
        tables["stats"] = results.stats
    if results.questionnaires is not None:
        tables["questionnaires"] = results.questionnaires
    if results.criteria is not None:
        tables["criteria"] = results.criteria
    if len(results.markers.columns):
        tables["derived_markers"] = results.markers.reset_index().rename(columns={"index": "id"})
        tables["derived_marker_formulas"] = results.marker_formulas.reset_index()
    for kind, res in results.models.items():
        for name, t in res.tables.items():
            tables[f"{kind}_{name}"] = t
    if results.consensus is not None:
        tables["consensus_signature"] = results.consensus
    folder.mkdir(parents=True, exist_ok=True)
    for name, t in tables.items():
        t.to_csv(folder / f"{name}.csv", index=False, lineterminator="\n")
        safe = t.copy()
        for col in safe.columns:
            if safe[col].dtype == object:
                safe[col] = safe[col].map(_text_or_none)
        safe.to_parquet(folder / f"{name}.parquet", index=False)
    return sorted(tables)


def execute(config: StudyConfig, out: Path, *, config_sha256: str = "", base: Path | None = None,
            progress: Progress | None = None) -> tuple[RunResults, Path]:
    """Run a study and write ``report.html``, ``tables/``, ``models/`` and ``provenance.json``
    into ``out`` (built in a temporary folder and moved into place at the end)."""
    from hikisig.models.persist import save_model

    out = Path(out)
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{out.name}.", dir=out.parent))
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            results = run_study(config, config_sha256=config_sha256, base=base, progress=progress)
        names = _write_tables(results, tmp / "tables")
        for kind, res in results.models.items():
            ids = results.methods.get("training_ids", {}).get(kind, list(results.X.index))
            Xk = results.X.loc[ids]
            yk = results.obs.loc[ids, "group"] if kind == "discriminate" else None
            save_model(res, tmp / "models" / kind, X=Xk, y=yk, study=results.study,
                       synthetic=results.synthetic)
        if progress:
            progress("report")
        from hikisig.report import render_report

        (tmp / "report.html").write_text(render_report(results), encoding="utf-8")
        prov = dict(results.provenance, tables=names, models=sorted(results.models))
        (tmp / "provenance.json").write_text(json.dumps(prov, indent=2, default=str) + "\n")
        if out.exists():
            shutil.rmtree(out)
        os.replace(tmp, out)
        return results, out
    finally:
        if tmp.exists():
            shutil.rmtree(tmp, ignore_errors=True)
