"""``hikisig model ...`` and ``hikisig predict``: build, validate, save and apply models.

Each command fills the core's settings from its options (defaults and bounds from the
study config) and calls the same functions as ``hikisig run``.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any, TypeVar

import typer
from pydantic import BaseModel

from hikisig.cli.app import app
from hikisig.cli.common import err, out, reported_warnings, setting, write_table
from hikisig.cli.options import (
    EngineOpt,
    InputScaleOpt,
    MaxMissingOpt,
    NaValuesOpt,
    SchedulerOpt,
    SeedOpt,
    WorkersOpt,
    design_from,
    preprocessing_from,
    source_from,
)
from hikisig.config import (
    Design,
    DiscriminateSection,
    Preprocessing,
    RunSection,
    Screening,
    SeveritySection,
    StratifySection,
)
from hikisig.errors import HikisigError

if TYPE_CHECKING:
    from hikisig.analysis.study import StudyData
    from hikisig.engine import Engine
    from hikisig.models.result import ModelResult

__all__ = ["discriminate_cmd", "predict_cmd", "severity_cmd", "signature_cmd", "stratify_cmd"]

model_app = typer.Typer(help="Build and validate models; each writes a model folder with "
                        "metrics, tables, the skops model and its model card.\n\n"
                        "Example: hikisig model discriminate cohort.csv --group group --out rf",
                        no_args_is_help=True)
app.add_typer(model_app, name="model")

_D, _SV, _ST, _PRE = DiscriminateSection(), SeveritySection(), StratifySection(), Preprocessing()
_SEED = RunSection().seed

FileArg = Annotated[Path | None, typer.Argument(
    help="A table (wide CSV/TSV/XLSX/Parquet, long, W4M, CIMCB, h5ad); omit to read the store "
         "(--db).")]
OutOpt = Annotated[Path, typer.Option("--out", help="Model folder to write.")]
GroupOpt = Annotated[str | None, typer.Option(help="Group column (default: group).")]
CaseOpt = Annotated[str | None, typer.Option(help="Label of cases, the positive class (default: case).")]
ControlOpt = Annotated[str | None, typer.Option(help="Label of controls (default: control).")]
IdOpt = Annotated[str | None, typer.Option(help="Sample id column (file).")]
ParticipantOpt = Annotated[str | None, typer.Option(
    help="Participant column: a participant's samples stay in one CV fold (default: "
         "participant, where the data have it).")]
VisitOpt = Annotated[int | None, typer.Option(help="Visit to analyse (store; default: first).")]
SiteOpt = Annotated[str | None, typer.Option(
    help="Site column: the unit of --cv leave-site-out and the batch of --harmonise combat.")]
HarmoniseOpt = Annotated[str, setting(
    Preprocessing, "harmonise", "none or combat: ComBat of the site (--site-column) on the log "
    "scale, fitted inside each training fold; the model then needs the site to predict.")]


def _preprocessing(max_missing: float, input_scale: str, harmonise: str = _PRE.harmonise
                   ) -> Preprocessing:
    """The preprocessing settings of a model command (validated like the config's)."""
    from pydantic import ValidationError

    pre = preprocessing_from(max_missing, input_scale)
    try:
        pre.harmonise = harmonise  # type: ignore[assignment]
    except ValidationError as exc:
        raise HikisigError("; ".join(f"--harmonise: {e['msg']}" for e in exc.errors())) from exc
    return pre


def _fit(ctx: typer.Context, file: Path | None, read: tuple[str | None, str | None], design: Design,
         pre: tuple[float, str] | tuple[float, str, str], visit: int | None,
         engine: tuple[str, str | None, int | None],
         fit: Callable[[StudyData, Engine], ModelResult], out_dir: Path,
         min_per_group: int = 0) -> None:
    """Load the study as ``hikisig run`` does, fit the model, print its summary, save it
    (each model checks the samples it needs)."""
    from hikisig.analysis.study import load_study
    from hikisig.engine import open_engine

    with reported_warnings(), open_engine(*engine) as eng:
        study = load_study(source_from(ctx, file, None, *read), design,
                           _preprocessing(*pre), visit=visit, min_per_group=min_per_group)
        result = fit(study, eng)
    err.print(result.summary(), markup=False)
    result.save(out_dir)
    out.print(f"wrote {out_dir}/ (model.skops, model_card.md, metrics.json, "
              f"{', '.join(f'{t}.csv' for t in result.tables)})", markup=False)


@model_app.command("discriminate")
def discriminate_cmd(
    ctx: typer.Context,
    file: FileArg = None,
    group: GroupOpt = None,
    case: CaseOpt = None,
    control: ControlOpt = None,
    id_column: IdOpt = None,
    participant_column: ParticipantOpt = None,
    model: Annotated[str, typer.Option(help="rf|logistic|plsda")] = _D.model,
    cv_folds: Annotated[int, setting(DiscriminateSection, "cv_folds", "Folds of the CV.")] = _D.cv_folds,
    cv_repeats: Annotated[int, setting(DiscriminateSection, "cv_repeats",
                                       "Repeats of the CV.")] = _D.cv_repeats,
    permutations: Annotated[int, setting(DiscriminateSection, "permutations",
                                         "Label permutations for the AUC p-value.")] = _D.permutations,
    n_estimators: Annotated[int, setting(DiscriminateSection, "n_estimators",
                                         "Trees of the random forest.")] = _D.n_estimators,
    prevalence: Annotated[float, setting(Screening, "prevalence",
                                         "Population prevalence for PPV/NPV.")] = Screening().prevalence,
    permutation_scheme: Annotated[str, typer.Option(
        help="oof (labels permuted against out-of-fold probabilities) or refit (slow).")
    ] = _D.permutation_scheme,
    test_size: Annotated[float | None, setting(
        DiscriminateSection, "test_size", "Also hold out this share as a test set (e.g. 0.25).")] = None,
    inner_cv: Annotated[bool, typer.Option(help="Tune hyper-parameters by nested CV.")] = _D.inner_cv,
    recalibrate: Annotated[bool, typer.Option(
        help="Recalibrate probabilities (sigmoid) inside each training fold.")] = _D.recalibrate,
    cv: Annotated[str, setting(DiscriminateSection, "cv",
                               "stratified or leave-site-out (one fold per site of "
                               "--site-column: the test of transportability).")] = _D.cv,
    site_column: SiteOpt = None,
    harmonise: HarmoniseOpt = _PRE.harmonise,
    max_missing: MaxMissingOpt = _PRE.max_missing,
    input_scale: InputScaleOpt = _PRE.input_scale,
    visit: VisitOpt = None,
    na_values: NaValuesOpt = None,
    engine: EngineOpt = "serial",
    scheduler: SchedulerOpt = None,
    workers: WorkersOpt = None,
    seed: SeedOpt = _SEED,
    out_dir: OutOpt = Path("model-discriminate"),
) -> None:
    """Case vs control: random forest (default), penalised logistic regression or PLS-DA, with
    repeated stratified 5-fold CV (5 repeats; 200 trees), DeLong and bootstrap AUC CIs, a
    1000-permutation p-value, calibration, thresholds with PPV/NPV at the prevalence (1.57%),
    importances. Samples with other group labels are left out.

    Writes metrics.json (auc, auc_ci_low, auc_ci_high, auc_ci_method, brier, permutation_p,
    cv_scheme, ...) and oof_predictions.csv (id, y_true, y_prob), among others.

    Example: hikisig model discriminate cohort.csv --group group --case case --out rf-model
    """
    section = _section(DiscriminateSection, model=model, cv_folds=cv_folds, cv_repeats=cv_repeats,
                       permutations=permutations, n_estimators=n_estimators,
                       permutation_scheme=permutation_scheme, test_size=test_size,
                       inner_cv=inner_cv, recalibrate=recalibrate, cv=cv)
    design = design_from(group=group, case=case, control=control, participant=participant_column,
                         sex="none", covariates="none", severity="none", site=site_column)
    _fit(ctx, file, (id_column, na_values), design, (max_missing, input_scale, harmonise), visit,
         (engine, scheduler, workers),
         lambda study, eng: study.discriminate(section, prevalence=prevalence, seed=seed, engine=eng),
         out_dir)


@model_app.command("severity")
def severity_cmd(
    ctx: typer.Context,
    file: FileArg = None,
    target: Annotated[str | None, typer.Option(
        help="Severity column (or, with the store, an instrument id; default: hq25).")] = None,
    group: GroupOpt = None,
    case: CaseOpt = None,
    control: ControlOpt = None,
    all_participants: Annotated[bool, typer.Option(
        "--all-participants", help="Use cases and controls, not only cases.")] = False,
    id_column: IdOpt = None,
    participant_column: ParticipantOpt = None,
    scaling: Annotated[str, typer.Option(help="pareto|auto|centre")] = _SV.scaling,
    max_components: Annotated[int, setting(SeveritySection, "max_components",
                                           "Largest number of PLS components tried.")] = _SV.max_components,
    cv_folds: Annotated[int, setting(SeveritySection, "cv_folds", "Folds of the CV.")] = _SV.cv_folds,
    cv_repeats: Annotated[int, setting(SeveritySection, "cv_repeats",
                                       "Repeats of the CV.")] = _SV.cv_repeats,
    permutations: Annotated[int, setting(SeveritySection, "permutations",
                                         "Permutations of the Q2 test.")] = _SV.permutations,
    cv: Annotated[str, setting(SeveritySection, "cv",
                               "stratified or leave-site-out (one fold per site of "
                               "--site-column).")] = _SV.cv,
    site_column: SiteOpt = None,
    harmonise: HarmoniseOpt = _PRE.harmonise,
    max_missing: MaxMissingOpt = _PRE.max_missing,
    input_scale: InputScaleOpt = _PRE.input_scale,
    visit: VisitOpt = None,
    na_values: NaValuesOpt = None,
    engine: EngineOpt = "serial",
    scheduler: SchedulerOpt = None,
    workers: WorkersOpt = None,
    seed: SeedOpt = _SEED,
    out_dir: OutOpt = Path("model-severity"),
) -> None:
    """Severity: PLS regression of a severity score (HQ-25 total within cases by default),
    mean-centred and Pareto-scaled log2 analytes, components by repeated 7-fold CV; R2Y, Q2,
    RMSEE, RMSECV, R2 = squared Spearman r (observed vs CV-predicted), VIP, permutation p.

    Example: hikisig --db study.db model severity --target hq25 --out pls-model
    """
    section = _section(SeveritySection, cases_only=not all_participants, scaling=scaling,
                       max_components=max_components, cv_folds=cv_folds, cv_repeats=cv_repeats,
                       permutations=permutations, cv=cv)
    design = design_from(group=group, case=case, control=control, participant=participant_column,
                         severity=target, sex="none", covariates="none", site=site_column)
    _fit(ctx, file, (id_column, na_values), design, (max_missing, input_scale, harmonise), visit,
         (engine, scheduler, workers),
         lambda study, eng: study.severity(section, seed=seed, engine=eng), out_dir)


@model_app.command("stratify")
def stratify_cmd(
    ctx: typer.Context,
    file: FileArg = None,
    group: GroupOpt = None,
    case: Annotated[str | None, typer.Option(
        help="Label of cases (only cases are stratified; default: case).")] = None,
    control: ControlOpt = None,
    id_column: IdOpt = None,
    method: Annotated[str, typer.Option(help="gmm|kmeans|ward")] = _ST.method,
    k: Annotated[int | None, setting(StratifySection, "k", "Number of strata (default: chosen).")] = None,
    bootstraps: Annotated[int, setting(StratifySection, "bootstraps",
                                       "Bootstrap resamples for stability.")] = _ST.bootstraps,
    max_missing: MaxMissingOpt = _PRE.max_missing,
    input_scale: InputScaleOpt = _PRE.input_scale,
    visit: VisitOpt = None,
    na_values: NaValuesOpt = None,
    engine: EngineOpt = "serial",
    scheduler: SchedulerOpt = None,
    workers: WorkersOpt = None,
    seed: SeedOpt = _SEED,
    out_dir: OutOpt = Path("model-stratify"),
) -> None:
    """Stratification of cases: Gaussian mixture (default), k-means or Ward; k by BIC or
    silhouette; bootstrap stability (mean ARI); cluster profiles and signature.

    Example: hikisig model stratify cohort.csv --group group --case case --out strata
    """
    section = _section(StratifySection, method=method, k=k, bootstraps=bootstraps)
    design = design_from(group=group, case=case, control=control, sex="none", covariates="none",
                         severity="none")
    _fit(ctx, file, (id_column, na_values), design, (max_missing, input_scale), visit,
         (engine, scheduler, workers),
         lambda study, eng: study.stratify(section, seed=seed, engine=eng), out_dir)


S = TypeVar("S", bound=BaseModel)


def _section(cls: type[S], **values: Any) -> S:
    """A config section from command options (validated like the study config)."""
    from pydantic import ValidationError

    try:
        return cls(**values)
    except ValidationError as exc:
        raise HikisigError("; ".join(f"--{str(e['loc'][0]).replace('_', '-')}: {e['msg']}"
                                     for e in exc.errors())) from exc


@model_app.command("signature")
def signature_cmd(
    models: Annotated[list[Path], typer.Argument(help="Model folders.")],
    top: Annotated[int, typer.Option(help="Top-k used to count agreeing models.")] = 20,
    out_path: Annotated[Path | None, typer.Option("--out", help="Output CSV (default: stdout).")] = None,
) -> None:
    """Consensus signature across the validated models: each model's ranks scored 1
    (first) to 0 (last), averaged; with the number of models in whose top-k each analyte
    is. A model that did not validate (``validated: false`` in its metrics.json) is left
    out, with its verdict on stderr; the ``models`` column names those that entered.

    Example: hikisig model signature rf-model pls-model strata --out consensus.csv
    """
    from hikisig.models.persist import load_model
    from hikisig.models.signature import consensus_signature

    table = consensus_signature([load_model(folder) for folder in models], top=top)
    for kind, verdict in table.attrs["excluded"].items():
        err.print(f"left out: the {kind} model did not validate ({verdict})")
    if table.attrs["models"]:
        err.print(f"models in the consensus: {', '.join(table.attrs['models'])}")
    else:
        err.print("no model entered the consensus: the table is empty")
    write_table(table, out_path)


@app.command("predict")
def predict_cmd(
    file: Annotated[Path, typer.Argument(help="A table of new samples (id, analytes, and "
                                         "optionally participant and visit).")],
    model: Annotated[Path, typer.Option("--model", help="Model folder.")],
    id_column: Annotated[str | None, typer.Option(help="Sample id column.")] = None,
    participant_column: Annotated[str | None, typer.Option(
        help="Participant column (with --visit-column: change from baseline per participant).")] = None,
    visit_column: Annotated[str | None, typer.Option(help="Visit column.")] = None,
    site_column: Annotated[str | None, typer.Option(
        help="Site column: needed by a model that harmonises sites (ComBat).")] = None,
    na_values: NaValuesOpt = None,
    out_path: Annotated[Path | None, typer.Option("--out", help="Output CSV (default: stdout).")] = None,
) -> None:
    """Apply a saved model: probability and predicted group (discrimination), predicted
    severity, or stratum, per sample, with a warning column for inputs outside the
    training range; with participant and visit columns, the change from baseline and
    reliable change.

    Example: hikisig predict --model rf-model new_visits.csv --out predictions.csv
    """
    import pandas as pd

    from hikisig.analysis.modelling import load_model, predict
    from hikisig.cohort.tables import read_table
    from hikisig.models.predict import follow_up

    loaded = load_model(model)
    meta = [c for c in (participant_column, visit_column, site_column) if c]
    with reported_warnings():
        ds = read_table(file, id_column=id_column, meta_columns=meta, na_values=na_values)
        pred = predict(loaded, ds, participant=participant_column, site=site_column)
    if participant_column and visit_column:
        if loaded.follow_up_score is None:
            raise HikisigError("follow-up needs a discrimination or severity model")
        pred["participant"] = ds.column(participant_column).astype(str).to_numpy()
        pred["visit"] = pd.to_numeric(ds.column(visit_column), errors="coerce").to_numpy()
        pred = follow_up(pred, loaded.follow_up_score, sem=loaded.follow_up_sem)
        unjudged = int((pred["in_training"].fillna(False).astype(bool)).sum())
        if unjudged:
            err.print(f"warning: reliable change not judged for {unjudged} row(s) of "
                      "participants the model was trained on (their scores are in-sample); "
                      "hikisig run's follow-up scores every visit out of sample", markup=False)
    n_seen = int(pred["in_training"].fillna(False).astype(bool).sum())
    if n_seen:
        err.print(f"warning: {n_seen} row(s) were used to train the model (see 'in_training'): "
                  "their predictions are not an independent test", markup=False)
    n_out = int((pred["out_of_range"] != "").sum())
    if n_out:
        err.print(f"warning: {n_out} row(s) outside the training range (see 'out_of_range')",
                  markup=False)
    write_table(pred, out_path)
