"""``hikisig run``: from a study config to tables, models, provenance and the report.

The data are loaded and prepared by :func:`hikisig.analysis.load_study` and every analysis
is the public one (:func:`hikisig.case_control`, :func:`hikisig.discriminate`, ...), so a
run gives the tables ``hikisig stats`` and ``hikisig model`` give on the same data.
"""

from __future__ import annotations

import json
import os
import platform
import shutil
import tempfile
import traceback
import warnings
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from hikisig.analysis.statistics import site_column, study_statistics
from hikisig.analysis.study import StudyData, load_study, store_url
from hikisig.config import StudyConfig, load_config
from hikisig.config import config_sha256 as sha256_of_config
from hikisig.errors import HikisigError, RunFailedError, TooFewSamplesError
from hikisig.models.projection import cluster_matrix, pca_scores
from hikisig.models.result import frame_sha256
from hikisig.prep.markers import marker_status
from hikisig.results import STAGES, PreprocessingStep, Provenance, RunMethods, RunResults
from hikisig.stats.describe import (
    cohort_summary,
    group_summary,
    missingness,
    nonpositive_counts,
    site_counts,
)
from hikisig.versions import package_versions

__all__ = ["STAGES", "execute", "run", "run_study"]

Progress = Callable[[str], None]

#: Warnings about library code, not about the data: not listed in a run's warnings.
_LIBRARY_WARNINGS = (DeprecationWarning, PendingDeprecationWarning, FutureWarning)


def _now() -> str:
    return datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def _questionnaires(config: StudyConfig, base: Path | None, study: str, obs: pd.DataFrame
                    ) -> pd.DataFrame | None:
    """Totals of the design's instruments stored for the analysed participants."""
    if config.source.file or not config.design.instruments:
        return None
    from hikisig.cohort.assessments import load_assessments
    from hikisig.cohort.store import Store

    store = Store(store_url(config.source, base))
    rows = []
    try:
        for iid in config.design.instruments:
            try:
                scores = load_assessments(store, study, iid)
            except HikisigError:
                continue
            if len(scores):
                part = scores[["id", "visit", "total", "band"]].copy()
                part.insert(2, "instrument", iid)
                rows.append(part)
    finally:
        store.dispose()
    if not rows:
        return None
    quest = pd.concat(rows, ignore_index=True)
    idx = obs.drop_duplicates("participant").set_index("participant")
    quest = quest.assign(group=quest["id"].map(idx["group"].to_dict()),
                         sex=quest["id"].map(idx["sex"].to_dict()))
    return quest[quest["group"].notna()].reset_index(drop=True)


def _criteria(config: StudyConfig, base: Path | None, study: str, obs: pd.DataFrame
              ) -> pd.DataFrame | None:
    """The 2020 criteria of the participants: from ``source.criteria`` (a CSV) when set,
    else from the store's visit records (the clinic app's checklist): the record of the
    analysed visit, or the participant's first record when that visit has none."""
    from hikisig.assess.criteria import apply_criteria

    if config.source.criteria:
        from hikisig.assess.answers import read_answers_csv

        cpath = Path(config.source.criteria)
        cpath = cpath if cpath.is_absolute() or base is None else base / cpath
        return apply_criteria(read_answers_csv(cpath), str(cpath))
    if config.source.file:
        return None
    from hikisig.cohort.criteria_records import load_criteria
    from hikisig.cohort.store import Store

    store = Store(store_url(config.source, base))
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


def _standard_obs(study: StudyData) -> pd.DataFrame:
    """group, sex, age, participant and visit of the samples of the statistics, under those
    names."""
    ds, d = study.stats_data, study.design
    obs = pd.DataFrame(index=ds.X.index)
    obs["group"] = ds.column(d.group).astype(str)
    obs["sex"] = ds.column(d.sex).astype(object) if d.sex else None
    age = ds.column_name("age")
    obs["age"] = pd.to_numeric(ds.obs[age], errors="coerce") if age else np.nan
    obs["participant"] = (ds.column(d.participant).astype(str) if d.participant
                          else pd.Series(ds.X.index.astype(str), index=ds.X.index))
    obs["visit"] = ds.obs.get("visit", 1)
    if d.severity:
        obs[d.severity] = pd.to_numeric(ds.column(d.severity), errors="coerce")
    return obs


def _methods(config: StudyConfig, study: StudyData) -> RunMethods:
    pre, d = config.preprocessing, study.design
    steps: list[PreprocessingStep] = []
    additive = pre.input_scale == "z"
    if additive:
        steps.append(PreprocessingStep("additive scale", "values analysed as given (z-scores or "
                                       "already centred): tests on the values, effects as "
                                       "differences of means, no log"))
    elif pre.input_scale != "linear":
        steps.append(PreprocessingStep("back-transformation", f"stored {pre.input_scale} values "
                                       "brought back to the linear scale"))
    q = study.quality
    if q.rsd_max is not None:
        steps.append(PreprocessingStep("QC-RSD filter", f"analytes with an RSD over {q.n_qc} QC "
                                       f"samples above {100 * q.rsd_max:.0f}% removed "
                                       f"({len(q.dropped)} removed)"))
    if q.drift != "none":
        steps.append(PreprocessingStep("drift correction", "QC-robust LOESS within batch along the "
                                       "injection order; batches median-centred"))
    if q.normalise != "none":
        steps.append(PreprocessingStep(f"{q.normalise} normalisation", "of the study samples"))
    r = study.repeats
    if r is not None and r.repeated:
        steps.append(PreprocessingStep("repeated samples", r.describe()))
    steps += [
        PreprocessingStep("missingness filter", f"analytes missing in more than "
                          f"{pre.max_missing:.0%} of samples removed ({len(study.dropped)} removed)"),
        PreprocessingStep("median imputation" if additive else "half-minimum imputation",
                          "per analyte, fitted within each training fold for the models"
                          + ("" if additive else "; values <= 0 imputed like missing values")),
    ]
    if not additive:
        steps.append(PreprocessingStep("log2 transformation"))
    steps += [PreprocessingStep("ComBat harmonisation", text) for text in study.steps]
    if pre.harmonise == "combat":
        steps.append(PreprocessingStep("ComBat in the models", "fitted inside each training fold "
                                       "on the training sites, without labels; a held-out site "
                                       "is centred and scaled on its own samples"))
    steps += [
        PreprocessingStep("autoscaling", "discrimination and stratification, fitted within "
                          "training folds"),
        PreprocessingStep(f"{config.severity.scaling} scaling", "severity (PLS) model, after "
                          "mean-centring"),
    ]
    return RunMethods(preprocessing=steps, input_scale=pre.input_scale, max_missing=pre.max_missing,
                      dropped_analytes=list(study.dropped), tests=list(config.stats.tests),
                      mwu_method=config.stats.mwu_method, by=d.sex, covariates=list(d.covariates),
                      site=site_column(study, config.design.site),
                      severity=d.severity, prevalence=config.screening.prevalence,
                      prevalence_source=config.screening.prevalence_source,
                      matrix=config.design.matrix,
                      seed=config.run.seed, engine=config.run.engine)


def run_study(config: StudyConfig, *, config_sha256: str = "", base: Path | None = None,
              progress: Progress | None = None) -> RunResults:
    """Run every enabled analysis of a study config and return the results (nothing is
    written). Warnings raised during the run are collected in ``RunResults.warnings``.

    Statistics and resampling run on the engine of ``run.engine`` (``run.scheduler``,
    ``run.workers``); a local Dask cluster it starts is closed at the end.
    """
    from hikisig.engine import open_engine

    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        with open_engine(config.run.engine, config.run.scheduler, config.run.workers) as engine:
            results = _run_study(config, engine, config_sha256=config_sha256, base=base,
                                 progress=progress)
    seen: dict[str, None] = {}
    for w in caught:
        if issubclass(w.category, _LIBRARY_WARNINGS):
            continue
        text = str(w.message) if issubclass(w.category, UserWarning) else (
            f"{w.category.__name__}: {w.message}")
        seen.setdefault(text, None)
    results.warnings = list(seen)
    return results


def _run_study(config: StudyConfig, engine: Any, *, config_sha256: str, base: Path | None,
               progress: Progress | None) -> RunResults:
    start = _now()
    say = progress or (lambda _stage: None)
    say("data")
    study = load_study(config.source, config.design, config.preprocessing, base=base)
    ds, d = study.stats_data, study.design
    obs = _standard_obs(study)
    site = site_column(study, config.design.site)
    if site is not None:
        obs["site"] = ds.column(site).astype(object)
    values, notes = study.markers
    per_analyte, per_sample = missingness(ds.X)
    results = RunResults(
        config=config, study=ds.study, synthetic=ds.synthetic, X=ds.X, obs=obs, var=ds.var,
        case_label=d.case, control_label=d.control, markers=values,
        marker_formulas=notes, methods=_methods(config, study),
        cohort=cohort_summary(obs["group"], d.case, d.control, obs["sex"] if d.sex else None,
                              obs["age"]),
        site_counts=(site_counts(obs["group"], d.case, d.control, obs["site"])
                     if site is not None else None),
        missing_by_analyte=per_analyte, missing_by_sample=per_sample,
        nonpositive=nonpositive_counts(ds.X) if not study.additive else None,
        analyte_mapping=study.mapping, quality=study.quality,
        repeats=study.repeats, markers_skipped=_skipped_markers(study))
    running = ["data"]  # the stage in progress, set by _stages
    try:
        _stages(config, study, results, engine, base, say, running)
    except Exception as exc:  # the finished stages are written, with what failed and why
        results.failed_stage = running[0]
        results.error = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
        if not isinstance(exc, HikisigError):
            results.traceback = traceback.format_exc()
    results.detectability = _detectability(results)
    if results.models:
        from hikisig.models.signature import consensus_signature

        results.consensus = consensus_signature(list(results.models.values()))
    results.provenance = Provenance(
        config_sha256=config_sha256 or sha256_of_config(config),
        data_sha256=frame_sha256(ds.X), study=ds.study, synthetic=ds.synthetic,
        seed=config.run.seed, engine=config.run.engine, versions=package_versions(),
        start_time=start, end_time=_now(), platform=platform.platform(),
        failed_stage=results.failed_stage, error=results.error)
    return results


def _detectability(results: RunResults) -> pd.DataFrame | None:
    """What the study's own numbers can detect: per stratum, with BH over the analytes tested
    and the run's AUC (when discrimination ran)."""
    from hikisig.stats.power import cohort_detectability

    if results.cohort is None:
        return None
    st = results.stats
    n_analytes = (int(st.loc[st["stratum"] == "all", "analyte"].nunique())
                  if st is not None and len(st) else results.X.shape[1])
    d = results.discrimination
    auc = float(d.auc) if d is not None and np.isfinite(d.auc) else None
    try:
        return cohort_detectability(results.cohort.table, results.case_label,
                                    results.control_label, n_analytes, auc=auc)
    except HikisigError:
        return None


def _skipped_markers(study: StudyData) -> pd.DataFrame | None:
    """Curated markers that were not computed, with the components the data lack."""
    if study.additive:
        return None
    status = marker_status(study.stats_data.X)
    return status[~status["computed"]].reset_index(drop=True)


def _stages(config: StudyConfig, study: StudyData, results: RunResults, engine: Any,
            base: Path | None, say: Callable[[str], None], running: list[str]) -> None:
    """Everything after the data: each stage's results go into ``results`` as it finishes;
    ``running[0]`` names the stage in progress."""
    ds, d, obs, seed = study.stats_data, study.design, results.obs, config.run.seed
    if ds.X.shape[0] >= 3 and ds.X.shape[1] >= 2:
        results.pca = pca_scores(ds.X, log=not study.additive)
    quest = _questionnaires(config, base, ds.study, obs)
    if quest is not None:
        results.questionnaires = quest
        results.questionnaire_summary = pd.concat(
            [group_summary(sub["total"], sub["group"], [d.control, d.case]).assign(instrument=iid)
             for iid, sub in quest.groupby("instrument", sort=True)], ignore_index=True)
    crit = _criteria(config, base, ds.study, obs)
    if crit is not None:
        crit["group"] = crit["id"].map(obs.drop_duplicates("participant")
                                       .set_index("participant")["group"].to_dict())
        results.criteria = crit
    running[0] = "statistics"
    say("statistics")
    if config.stats.enabled:
        results.stats = study_statistics(study, config.stats, site=config.design.site,
                                         engine=engine)
    else:
        results.skipped["statistics"] = "disabled in the study config (stats.enabled = false)"
    stages: list[tuple[str, str, Callable[[], Any]]] = [
        ("discrimination", "discriminate", lambda: study.discriminate(
            config.discriminate, prevalence=config.screening.prevalence, seed=seed, engine=engine)),
        ("severity", "severity", lambda: study.severity(config.severity, seed=seed, engine=engine)),
        ("stratification", "stratify", lambda: study.stratify(config.stratify, seed=seed,
                                                              engine=engine)),
    ]
    for stage, section, fit in stages:
        running[0] = stage
        say(stage)
        if not getattr(config, section).enabled:
            results.skipped[stage] = f"disabled in the study config ({section}.enabled = false)"
            continue
        try:
            setattr(results, stage, fit())
        except TooFewSamplesError as exc:
            results.skipped[stage] = str(exc)
    st = results.stratification
    if st is not None:
        top = [a for a in st.signature.sort_values("rank", kind="stable")["analyte"].astype(str)
               if a in ds.X.columns][:20]
        results.cluster_values, results.cluster_of = cluster_matrix(
            ds.X, st.tables["assignments"], top, log=not study.additive)
    if config.compare.reference:
        if results.stats is None:
            results.skipped["compare"] = "the statistics did not run"
        else:
            from hikisig.analysis.compare import compare

            results.compare = compare(results.stats, config.compare.reference)
    running[0] = "followup"
    say("followup")
    if not config.followup.enabled:
        results.skipped["followup"] = "disabled in the study config (followup.enabled = false)"
        return
    from hikisig.pipeline.followup import followup_stage

    try:
        results.followup = followup_stage(config, study, results, base)
    except TooFewSamplesError as exc:
        results.skipped["followup"] = str(exc)


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
        tables["derived_markers"] = results.markers.rename_axis("id").reset_index()
        tables["derived_marker_formulas"] = results.marker_formulas.reset_index()
    for kind, res in results.models.items():
        for name, t in res.tables.items():
            tables[f"{kind}_{name}"] = t
    if results.consensus is not None:
        tables["consensus_signature"] = results.consensus
    if results.analyte_mapping is not None:
        tables["analyte_mapping"] = results.analyte_mapping
    if results.detectability is not None:
        tables["detectability"] = results.detectability
    if results.markers_skipped is not None and len(results.markers_skipped):
        tables["derived_markers_skipped"] = results.markers_skipped
    if results.site_counts is not None:
        tables["site_counts"] = results.site_counts
    if results.compare is not None:
        tables["compare"] = results.compare.table
    if results.followup is not None:
        from hikisig.pipeline.followup import followup_tables

        tables.update(followup_tables(results.followup))
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
    from hikisig.report import render_report

    out = Path(out)
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{out.name}.", dir=out.parent))
    try:
        try:
            results = run_study(config, config_sha256=config_sha256, base=base, progress=progress)
        except HikisigError:
            raise
        except Exception as exc:  # a fault while loading the data: the traceback goes to a log
            out.mkdir(parents=True, exist_ok=True)
            (out / "error.log").write_text(traceback.format_exc(), encoding="utf-8")
            raise RunFailedError(f"internal error in the data stage: {exc} (the traceback is in "
                                 f"{out / 'error.log'})", "data", str(out), True) from exc
        names = _write_tables(results, tmp / "tables")
        for kind, res in results.models.items():
            res.save(tmp / "models" / kind)
            res.folder = out / "models" / kind
        if progress:
            progress("report")
        (tmp / "report.html").write_text(render_report(results), encoding="utf-8")
        prov = results.provenance
        if prov is not None:
            prov.tables, prov.models = names, sorted(results.models)
            (tmp / "provenance.json").write_text(json.dumps(prov.to_dict(), indent=2, default=str)
                                                 + "\n")
        if results.traceback:
            (tmp / "error.log").write_text(results.traceback, encoding="utf-8")
        if out.exists():
            shutil.rmtree(out)
        os.replace(tmp, out)
    finally:
        if tmp.exists():
            shutil.rmtree(tmp, ignore_errors=True)
    if results.failed_stage is not None:
        where = f"the finished stages, the report and provenance.json are in {out}"
        if results.traceback:
            failure = RunFailedError(f"internal error in the {results.failed_stage} stage: "
                                     f"{results.error} ({where}; the traceback is in "
                                     f"{out / 'error.log'})", results.failed_stage, str(out), True)
        else:
            failure = RunFailedError(f"the {results.failed_stage} stage failed: {results.error} "
                                     f"({where})", results.failed_stage, str(out))
        failure.results = results
        raise failure
    return results, out


def run(config: StudyConfig | str | Path, out: str | Path | None = None, *,
        progress: Progress | None = None) -> RunResults:
    """Run a study: every enabled analysis of its config, written to a folder.

    Parameters
    ----------
    config : StudyConfig, or the path of a study config (TOML)
        Relative paths in a config file are taken from the file's folder; in a config
        object, from the current folder.
    out : path, optional
        Output folder (default: ``run.out`` of the config). It receives ``report.html``,
        ``tables/`` (CSV and Parquet), ``models/`` (skops + model cards) and
        ``provenance.json``.
    progress : callable, optional
        Called with each stage's name (:data:`hikisig.results.STAGES`).

    Returns
    -------
    RunResults

    Examples
    --------
    >>> results = run("study.toml", out="results")  # doctest: +SKIP
    >>> results.discrimination.auc                  # doctest: +SKIP
    """
    if isinstance(config, StudyConfig):
        cfg, sha, base = config, sha256_of_config(config), Path.cwd()
    else:
        path = Path(config)
        cfg, sha = load_config(path)
        base = path.parent.resolve()
    target = Path(out) if out is not None else base / cfg.run.out
    results, _ = execute(cfg, target, config_sha256=sha, base=base, progress=progress)
    return results
