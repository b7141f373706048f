"""``hikisig stats``: sex-stratified case-control statistics for every analyte.

A table (or the store) is read into memory through :func:`hikisig.analysis.load_study`;
a Parquet file or a folder of Parquet files is analysed out of core
(:func:`hikisig.analysis.parquet.parquet_statistics`). Defaults and rules come from the
core and the study config, so the table equals ``stats.csv`` of ``hikisig run``.
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any

import typer

from hikisig.cli.app import app
from hikisig.cli.common import err, reported_warnings, write_table
from hikisig.cli.options import (
    EngineOpt,
    InputScaleOpt,
    MaxMissingOpt,
    NaValuesOpt,
    SchedulerOpt,
    WorkersOpt,
    design_from,
    preprocessing_from,
    source_from,
    split_codes,
)
from hikisig.config import Preprocessing, StatsSection
from hikisig.errors import HikisigError

__all__ = ["stats_cmd"]

_S = StatsSection()


def _tests(text: str) -> list[str]:
    from hikisig.config import TESTS

    if text.strip().casefold() == "all":
        return list(TESTS)
    tests = [t.strip() for t in text.split(",") if t.strip()]
    bad = [t for t in tests if t not in TESTS]
    if bad or not tests:
        raise HikisigError(f"unknown test {', '.join(bad) or text!r} (expected {', '.join(TESTS)}, "
                           "a comma-separated list of them, or all)")
    return tests


@app.command("stats")
def stats_cmd(
    ctx: typer.Context,
    file: Annotated[Path | None, typer.Argument(
        help="A table (wide CSV/TSV/XLSX, long, W4M, CIMCB, h5ad), or a Parquet file or folder "
             "of Parquet files (analysed out of core); omit to read the store (--db).")] = None,
    group: Annotated[str | None, typer.Option(help="Column with the group labels (default: group).")] = None,
    case: Annotated[str | None, typer.Option(help="Label of cases (default: case).")] = None,
    control: Annotated[str | None, typer.Option(help="Label of controls (default: control).")] = None,
    by: Annotated[str | None, typer.Option(
        help="Stratify by this column (default: sex, which must exist; 'none' for no strata).")] = None,
    covariates: Annotated[str | None, typer.Option(
        help="Covariates of the linear model, comma-separated (default: age if present; "
             "'none' for none).")] = None,
    site_column: Annotated[str | None, typer.Option(
        help="Site column (design.site): a categorical covariate of the linear model, as "
             "treatment-coded dummies, reference the first site sorted (default: none).")] = None,
    severity: Annotated[str | None, typer.Option(
        help="Severity column, or with the store an instrument id, correlated with each analyte "
             "within cases (default: hq25 if present; 'none' for none).")] = None,
    test: Annotated[str, typer.Option(
        help="welch|student|mwu, a comma-separated list, or all.")] = ",".join(_S.tests),
    mwu_method: Annotated[str, typer.Option(help="Mann-Whitney p-value: asymptotic|exact.")] = _S.mwu_method,
    markers: Annotated[bool, typer.Option(help="Add the curated derived markers.")] = True,
    quantiles: Annotated[bool, typer.Option(
        help="Group medians and quartiles (--no-quantiles: NaN; with --test welch or student "
             "the statistics then need no sort, and Parquet data one pass).")] = True,
    visit: Annotated[int | None, typer.Option(help="Visit to analyse (store; default: first).")] = None,
    id_column: Annotated[str | None, typer.Option(
        help="Sample id column (default: a column named like a sample id, else the first).")] = None,
    participant_column: Annotated[str | None, typer.Option(
        help="Participant column (default: participant; 'none': one sample per participant). "
             "With several samples per participant the statistics use one each "
             "(--repeated).")] = None,
    repeated: Annotated[str | None, typer.Option(
        help="first|mean|all: which samples of a participant the statistics use "
             "(default: first, by visit).")] = None,
    na_values: NaValuesOpt = None,
    participants: Annotated[Path | None, typer.Option(
        help="Parquet input: a participants table (CSV or Parquet) with the metadata "
             "columns, joined on the id column (e.g. participants.csv of hikisig synth).")] = None,
    block_size: Annotated[int, typer.Option(
        min=1000, help="Values per block of analytes (memory bound; Parquet: per tile read).")
    ] = 4_000_000,
    max_missing: MaxMissingOpt = Preprocessing().max_missing,
    input_scale: InputScaleOpt = Preprocessing().input_scale,
    engine: EngineOpt = "serial",
    scheduler: SchedulerOpt = None,
    workers: WorkersOpt = None,
    db: Annotated[str | None, typer.Option("--db", help="Read this store (same as the global --db).")] = None,
    out_path: Annotated[Path | None, typer.Option("--out", help="Output .csv or .parquet "
                                                  "(default: CSV on stdout).")] = None,
    mapping: Annotated[Path | None, typer.Option(
        help="Where to write analyte_mapping.csv (source_column, analyte_id, name, class, match; "
             "default: beside --out).")] = None,
) -> None:
    """Case-control statistics for every analyte and derived marker: overall, within each
    sex, and log2(value) ~ group * sex + covariates (group effect per sex, interaction p).
    A covariate whose values are text (no value a number) is categorical; --site-column
    adds the site as a categorical covariate (method: ... + site).

    Output columns: analyte, stratum (all, F, M, interaction, cases), test (welch,
    student, mwu, lm, pearson, spearman), statistic, p, q (BH), effect (Hedges g,
    Cliff's delta, log2 fold change or r) with CI, fold_change, n_case, n_control,
    then p_holm, df, method, descriptives. Samples with other group labels are left out;
    analytes missing in more than --max-missing of the cases and controls too.

    A Parquet file or folder is analysed out of core: metadata read once, analytes in
    blocks of --block-size values (one pass of sums for the t-tests and the linear model,
    column blocks for ranks). --engine dask runs the blocks on a local cluster of
    --workers processes, or on the cluster at --scheduler tcp://host:8786; results do
    not depend on the engine.

    Example: hikisig stats cohort.csv --group group --by sex --covariates age --out stats.csv
    """
    from hikisig.analysis.parquet import is_parquet, parquet_statistics
    from hikisig.analysis.statistics import study_statistics
    from hikisig.analysis.study import load_study
    from hikisig.engine import open_engine

    section = StatsSection.model_validate({"tests": _tests(test),
                                           "mwu_method": _choice(mwu_method, "--mwu-method")})
    design = design_from(group=group, case=case, control=control, sex=by, covariates=covariates,
                         severity=severity, participant=participant_column, repeated=repeated,
                         site=site_column)
    pre = preprocessing_from(max_missing=max_missing, input_scale=input_scale)
    if participants is not None and (file is None or not is_parquet(file)):
        raise HikisigError("--participants is for a Parquet file or folder")

    with reported_warnings(), open_engine(engine, scheduler, workers) as eng:
        if file is not None and is_parquet(file):
            if design.site:
                raise HikisigError("--site-column is not available for Parquet (out-of-core) "
                                   "data yet: read the table into memory (e.g. as CSV)")
            res = parquet_statistics(file, design=design, stats=section, preprocessing=pre,
                                     participants=participants, id_column=id_column,
                                     markers=markers, quantiles=quantiles, block_size=block_size,
                                     engine=eng, na_values=split_codes(na_values))
            table, n_case, n_control = res.table, res.n_case, res.n_control
            analytes = res.mapping
            n_analytes, n_markers = len(res.analytes), len(res.markers)
            err.print(f"{res.n_rows} rows x {n_analytes} analytes in {res.n_files} Parquet file(s), "
                      f"read in blocks of about {block_size} values", markup=False)
        else:
            study = load_study(source_from(ctx, file, db, id_column, na_values), design, pre,
                               visit=visit)
            table = study_statistics(study, section, site=design.site, markers=markers,
                                     quantiles=quantiles, block_cells=block_size, engine=eng)
            is_case = study.stats_data.column(study.design.group).astype(str) == study.design.case
            n_case, n_control = int(is_case.sum()), int((~is_case).sum())
            n_analytes = study.data.shape[1]
            n_markers = int(table["analyte"].nunique()) - n_analytes
            analytes = study.mapping
    formulas = table.loc[table["formula"] != "", "analyte"].unique().tolist()
    if formulas:
        err.print(f"derived markers: {', '.join(formulas)} (formulas in the 'formula' column)",
                  markup=False)
    sig = table[(table["q"] < 0.05) & (table["stratum"] != "cases")]
    unmatched = int((analytes["match"] == "unmatched").sum())
    err.print(f"{n_case} cases, {n_control} controls; {n_analytes} analytes ({unmatched} not in "
              f"the catalog, analysed under their own names) + {n_markers} derived markers; "
              f"{len(sig)} results with q < 0.05", markup=False)
    write_table(table, out_path)
    target = mapping or (out_path.with_name("analyte_mapping.csv") if out_path is not None else None)
    if target is not None:
        write_table(analytes, target)


def _choice(value: str, flag: str) -> Any:
    from hikisig.config import MWU_METHODS

    if value not in MWU_METHODS:
        raise HikisigError(f"{flag} must be {' or '.join(MWU_METHODS)}")
    return value

