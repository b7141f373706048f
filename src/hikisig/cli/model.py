"""``hikisig model ...`` and ``hikisig predict``: build, validate, save and apply models."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer

from hikisig.cli.app import app
from hikisig.cli.common import err, out, state, write_table
from hikisig.cli.data import load_table
from hikisig.errors import HikisigError

if TYPE_CHECKING:
    import pandas as pd

__all__ = ["discriminate_cmd", "open_engine", "predict_cmd", "severity_cmd", "signature_cmd",
           "stratify_cmd"]

model_app = typer.Typer(help="Build and validate models; each writes a model folder with "
                        "metrics, tables, the skops model and its model card.\n\n"
                        "Example: hikisig model discriminate cohort.csv --group group --out rf",
                        no_args_is_help=True)
app.add_typer(model_app, name="model")

FileArg = Annotated[Path | None, typer.Argument(
    help="Wide CSV (id, metadata, analytes); omit to read the store (--db).")]
OutOpt = Annotated[Path, typer.Option("--out", help="Model folder to write.")]
EngineOpt = Annotated[str, typer.Option("--engine", help="serial|loky|dask (same results).")]
SchedulerOpt = Annotated[str | None, typer.Option(
    help="Address of an existing Dask scheduler, e.g. tcp://host:8786 (with --engine dask).")]
WorkersOpt = Annotated[int | None, typer.Option(
    min=1, help="Worker processes: loky, or the local Dask cluster started when no --scheduler "
                "is given (default: one per CPU).")]


def open_engine(name: str, scheduler: str | None, workers: int | None = None) -> Any:
    """The :class:`~hikisig.engine.Engine` of ``--engine``, ``--scheduler`` and ``--workers``
    (use it in a ``with`` block: a local Dask cluster it starts is closed at the end)."""
    from hikisig.engine import BACKENDS, Engine

    if name not in BACKENDS:
        raise HikisigError(f"unknown --engine {name!r} (expected {', '.join(BACKENDS)})")
    if scheduler and name != "dask":
        raise HikisigError("--scheduler needs --engine dask")
    if scheduler and workers is not None:
        raise HikisigError("--workers sizes a local Dask cluster: leave it out with --scheduler "
                           "(the cluster's own workers run the tasks)")
    if workers is not None and name == "serial":
        raise HikisigError("--workers needs --engine loky or dask")
    engine = Engine(name, n_jobs=workers, scheduler=scheduler)
    if scheduler:
        engine.client()  # fail now, not after reading the data, if the scheduler is unreachable
    return engine


def _labels(obs: pd.DataFrame, group: str, case: str, control: str) -> pd.Series:
    lab = obs[group].astype(str)
    y = lab.map(lambda v: True if v == case else False if v == control else None)
    n1, n0 = int((y == True).sum()), int((y == False).sum())  # noqa: E712
    if n1 < 3 or n0 < 3:
        raise HikisigError(f"need at least 3 {case!r} and 3 {control!r} in column {group!r} "
                           f"(found {n1} and {n0})")
    return y


def _save(result: Any, out_dir: Path, X: pd.DataFrame, y: Any) -> None:
    from hikisig.models.persist import save_model

    units = _units(X.columns)
    study = state.study or ""
    save_model(result, out_dir, X=X, y=y, units=units, study=study,
               synthetic="synthetic" in study.casefold())
    out.print(f"wrote {out_dir}/ (model.skops, model_card.md, metrics.json, "
              f"{', '.join(f'{t}.csv' for t in result.tables)})")


def _units(columns: Any) -> dict[str, str | None]:
    from hikisig.catalog import load_catalog

    cat = load_catalog()
    return {str(c): (cat.get(str(c)).default_unit if str(c) in cat else None) for c in columns}


def _groups(obs: pd.DataFrame, participant_column: str | None) -> Any:
    col = participant_column or ("participant" if "participant" in obs.columns else None)
    if col is None or col not in obs.columns:
        return None
    g = obs[col].astype(str)
    return g.to_numpy() if g.duplicated().any() else None


@model_app.command("discriminate")
def discriminate_cmd(
    file: FileArg = None,
    group: Annotated[str, typer.Option(help="Group column.")] = "group",
    case: Annotated[str, typer.Option(help="Label of cases.")] = "case",
    control: Annotated[str, typer.Option(help="Label of controls.")] = "control",
    id_column: Annotated[str | None, typer.Option(help="Sample id column (file).")] = None,
    participant_column: Annotated[str | None, typer.Option(
        help="Participant column: a participant's samples stay in one CV fold.")] = None,
    model: Annotated[str, typer.Option(help="rf|logistic|plsda")] = "rf",
    cv_repeats: Annotated[int, typer.Option(help="Repeats of 5-fold CV.")] = 5,
    permutations: Annotated[int, typer.Option(help="Label permutations for the AUC p-value.")] = 1000,
    prevalence: Annotated[float, typer.Option(help="Population prevalence for PPV/NPV.")] = 0.0157,
    permutation_scheme: Annotated[str, typer.Option(
        help="oof (labels permuted against out-of-fold probabilities) or refit (slow).")] = "oof",
    test_size: Annotated[float | None, typer.Option(
        help="Also hold out this share as a test set (e.g. 0.25).")] = None,
    inner_cv: Annotated[bool, typer.Option(help="Tune hyper-parameters by nested CV.")] = False,
    recalibrate: Annotated[bool, typer.Option(
        help="Recalibrate probabilities (sigmoid) inside each training fold.")] = False,
    engine: EngineOpt = "serial",
    scheduler: SchedulerOpt = None,
    workers: WorkersOpt = None,
    seed: Annotated[int, typer.Option(help="Seed of every random step.")] = 0,
    out_dir: OutOpt = Path("model-discriminate"),
) -> None:
    """Case vs control: random forest (default), penalised logistic regression or PLS-DA, with
    repeated stratified 5-fold CV (5 repeats; 200 trees), DeLong and bootstrap AUC CIs, a 1000-permutation
    p-value, calibration, thresholds with PPV/NPV at the prevalence (1.57%), importances.

    Writes metrics.json (auc, auc_ci_low, auc_ci_high, auc_ci_method, brier, permutation_p,
    cv_scheme, ...) and oof_predictions.csv (id, y_true, y_prob), among others.

    Example: hikisig model discriminate cohort.csv --group group --out rf-model
    """
    from hikisig.models.discriminate import discriminate

    meta = [group] + ([participant_column] if participant_column else [])
    X, obs = load_table(file, meta=meta, numeric=[], id_column=id_column)
    y = _labels(obs, group, case, control)
    keep = y.notna().to_numpy()
    X, obs, y = X[keep], obs[keep], y[keep].astype(bool)
    with open_engine(engine, scheduler, workers) as eng:
        res = discriminate(X, y.to_numpy(), groups=_groups(obs, participant_column), ids=X.index,
                           model=model, cv_repeats=cv_repeats, permutations=permutations,
                           permutation_scheme=permutation_scheme, test_size=test_size,
                           inner_cv=inner_cv, recalibrate=recalibrate, prevalence=prevalence,
                           seed=seed, engine=eng)
    m = res.metrics
    err.print(f"AUC {m['auc']:.3f} (95% CI {m['auc_ci_low']:.3f}-{m['auc_ci_high']:.3f}, "
              f"{m['auc_ci_method']}); permutation p {m['permutation_p']:.4f}; "
              f"{m['cv_scheme']}", markup=False)
    _save(res, out_dir, X, y)


@model_app.command("severity")
def severity_cmd(
    file: FileArg = None,
    target: Annotated[str, typer.Option(help="Severity column (or, with the store, an "
                                        "instrument id such as hq25).")] = "hq25",
    group: Annotated[str, typer.Option(help="Group column.")] = "group",
    case: Annotated[str, typer.Option(help="Label of cases.")] = "case",
    all_participants: Annotated[bool, typer.Option(
        "--all-participants", help="Use every participant, not only cases.")] = False,
    id_column: Annotated[str | None, typer.Option(help="Sample id column (file).")] = None,
    participant_column: Annotated[str | None, typer.Option(help="Participant column.")] = None,
    scaling: Annotated[str, typer.Option(help="pareto|auto|centre")] = "pareto",
    cv_repeats: Annotated[int, typer.Option(help="Repeats of 7-fold CV.")] = 5,
    permutations: Annotated[int, typer.Option(help="Permutations of the Q2 test.")] = 200,
    engine: EngineOpt = "serial",
    scheduler: SchedulerOpt = None,
    workers: WorkersOpt = None,
    seed: Annotated[int, typer.Option(help="Seed of every random step.")] = 0,
    out_dir: OutOpt = Path("model-severity"),
) -> None:
    """Severity: PLS regression of a severity score (HQ-25 total within cases by default),
    mean-centred and Pareto-scaled log2 analytes, components by repeated 7-fold CV; R2Y, Q2,
    RMSEE, RMSECV, R2 = squared Spearman r (observed vs CV-predicted), VIP, permutation p.

    Example: hikisig --db study.db model severity --target hq25 --out pls-model
    """
    from hikisig.models.severity import severity

    meta = [group] + ([participant_column] if participant_column else [])
    X, obs = load_table(file, meta=meta, numeric=[target], id_column=id_column)
    keep = obs[target].notna().to_numpy()
    if not all_participants:
        keep &= (obs[group].astype(str) == case).to_numpy()
    if keep.sum() < 8:
        raise HikisigError(f"only {int(keep.sum())} samples with a {target!r} value"
                           f"{'' if all_participants else ' among cases'}: need at least 8")
    X, obs = X[keep], obs[keep]
    y = obs[target].astype(float).to_numpy()
    with open_engine(engine, scheduler, workers) as eng:
        res = severity(X, y, groups=_groups(obs, participant_column), ids=X.index,
                       scaling=scaling, cv_repeats=cv_repeats, permutations=permutations,
                       seed=seed, engine=eng)
    m = res.metrics
    err.print(f"{m['n_components']} components; R2Y {m['r2y']:.3f}, Q2 {m['q2']:.3f}, "
              f"RMSECV {m['rmsecv']:.2f}, R2 (Spearman^2) {m['r2_spearman']:.3f}; "
              f"permutation p {m['permutation_p_q2']:.4f}", markup=False)
    _save(res, out_dir, X, y)


@model_app.command("stratify")
def stratify_cmd(
    file: FileArg = None,
    group: Annotated[str, typer.Option(help="Group column.")] = "group",
    case: Annotated[str, typer.Option(help="Label of cases (only cases are stratified).")] = "case",
    id_column: Annotated[str | None, typer.Option(help="Sample id column (file).")] = None,
    method: Annotated[str, typer.Option(help="gmm|kmeans|ward")] = "gmm",
    k: Annotated[int | None, typer.Option(help="Number of strata (default: chosen).")] = None,
    bootstraps: Annotated[int, typer.Option(help="Bootstrap resamples for stability.")] = 100,
    engine: EngineOpt = "serial",
    scheduler: SchedulerOpt = None,
    workers: WorkersOpt = None,
    seed: Annotated[int, typer.Option(help="Seed of every random step.")] = 0,
    out_dir: OutOpt = Path("model-stratify"),
) -> None:
    """Stratification of cases: Gaussian mixture (default), k-means or Ward; k by BIC or
    silhouette; bootstrap stability (mean ARI); cluster profiles and signature.

    Example: hikisig model stratify cohort.csv --group group --case case --out strata
    """
    from hikisig.models.stratify import stratify

    X, obs = load_table(file, meta=[group], numeric=[], id_column=id_column)
    keep = (obs[group].astype(str) == case).to_numpy()
    if keep.sum() < 10:
        raise HikisigError(f"only {int(keep.sum())} {case!r} samples: need at least 10")
    X = X[keep]
    with open_engine(engine, scheduler, workers) as eng:
        res = stratify(X, ids=X.index, method=method, k=k, bootstraps=bootstraps, seed=seed,
                       engine=eng)
    m = res.metrics
    err.print(f"{m['method']}: k = {m['k']}, sizes {m['cluster_sizes']}, stability ARI "
              f"{m['stability_ari_mean']:.2f}", markup=False)
    _save(res, out_dir, X, None)


@model_app.command("signature")
def signature_cmd(
    models: Annotated[list[Path], typer.Argument(help="Model folders.")],
    top: Annotated[int, typer.Option(help="Top-k used to count agreeing models.")] = 20,
    out_path: Annotated[Path | None, typer.Option("--out", help="Output CSV (default: stdout).")] = None,
) -> None:
    """Consensus signature across models: each model's ranks scored 1 (first) to 0 (last),
    averaged; with the number of models in whose top-k each analyte is.

    Example: hikisig model signature rf-model pls-model strata --out consensus.csv
    """
    import json

    import pandas as pd

    from hikisig.models.result import ModelResult
    from hikisig.models.signature import consensus_signature

    results = []
    for folder in models:
        card_path, sig_path = folder / "model_card.json", folder / "signature.csv"
        if not card_path.exists() or not sig_path.exists():
            raise HikisigError(f"{folder}: not a hikisig model folder (no model_card.json or "
                               "signature.csv)")
        kind = json.loads(card_path.read_text())["kind"]
        results.append(ModelResult(kind, None, [], {}, {"signature": pd.read_csv(sig_path)}))
    write_table(consensus_signature(results, top=top), out_path)


@app.command("predict")
def predict_cmd(
    file: Annotated[Path, typer.Argument(help="Wide CSV of new samples (id, analytes, and "
                                         "optionally participant and visit).")],
    model: Annotated[Path, typer.Option("--model", help="Model folder.")],
    id_column: Annotated[str | None, typer.Option(help="Sample id column.")] = None,
    participant_column: Annotated[str | None, typer.Option(
        help="Participant column (with --visit-column: change from baseline per participant).")] = None,
    visit_column: Annotated[str | None, typer.Option(help="Visit column.")] = None,
    out_path: Annotated[Path | None, typer.Option("--out", help="Output CSV (default: stdout).")] = None,
) -> None:
    """Apply a saved model: probability (discrimination), predicted severity, or stratum, per
    participant-visit, with a warning column for inputs outside the training range; with
    participant and visit columns, the change from baseline and reliable change.

    Example: hikisig predict --model rf-model new_visits.csv --out predictions.csv
    """
    from hikisig.models.persist import load_model
    from hikisig.models.predict import follow_up, predict

    loaded = load_model(model)
    meta = [c for c in (participant_column, visit_column) if c]
    X, obs = load_table(file, meta=meta, numeric=[], id_column=id_column)
    pred = predict(loaded, X)
    if participant_column and visit_column:
        import pandas as pd

        pred["participant"] = obs[participant_column].to_numpy()
        pred["visit"] = pd.to_numeric(obs[visit_column], errors="coerce").to_numpy()
        score = {"discriminate": "logit", "severity": "predicted_severity"}.get(loaded.kind)
        if score is None:
            raise HikisigError("follow-up needs a discrimination or severity model")
        sem = loaded.metrics.get("rmsecv" if loaded.kind == "severity" else "prediction_sem_logit")
        pred = follow_up(pred, score, sem=sem)
    n_warn = int((pred["warning"] != "").sum())
    if n_warn:
        err.print(f"warning: {n_warn} row(s) outside the training range (see 'out_of_range')",
                  markup=False)
    write_table(pred, out_path)
