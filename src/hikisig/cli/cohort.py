"""Store commands: init, import participants/measurements, export, info."""

from __future__ import annotations

import json
import warnings
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer
from rich.table import Table

from hikisig.cli.app import app, import_app
from hikisig.cli.common import open_store, options, out, print_warnings, progress_bar, study_for_read
from hikisig.errors import HikisigError

if TYPE_CHECKING:
    from hikisig.cohort.store import Store

__all__ = ["export_cmd", "import_interventions_cmd", "import_measurements_cmd", "import_participants_cmd",
           "info", "init"]


@app.command()
def init(ctx: typer.Context) -> None:
    """Create the store's tables, or upgrade them to this version's schema.

    Example: hikisig --db study.db init
    """
    store = open_store(ctx)
    rev = store.init()
    out.print(f"store ready: {store.display_url} (schema {rev})")


@import_app.command("participants")
def import_participants_cmd(
    ctx: typer.Context,
    file: Annotated[Path, typer.Argument(help="CSV/TSV with one row per participant.")],
    id_column: Annotated[str | None, typer.Option(help="Column with the participant code.")] = None,
    replace: Annotated[bool, typer.Option(help="Overwrite fields that differ from the store.")] = False,
) -> None:
    """Import participants: code, sex, age or birth_year, group, medication_free, site, ...

    Columns are recognised by name; others become free-form attributes.

    Example: hikisig --db study.db import participants participants.csv
    """
    from hikisig.cohort.importer import import_participants

    res = import_participants(open_store(ctx), file, options(ctx).study or "default", replace=replace,
                              id_column=id_column)
    out.print(res.summary() if res.skipped else
              f"{file}: {res.n_participants_new} new participants; study {res.study!r}")


@import_app.command("measurements")
def import_measurements_cmd(
    ctx: typer.Context,
    file: Annotated[Path, typer.Argument(
        help="The table (for w4m: one of the three files or their folder).")],
    fmt: Annotated[str, typer.Option("--format", help="auto|wide|long|w4m|cimcb|anndata")] = "auto",
    id_column: Annotated[str | None, typer.Option(help="Sample id column (wide).")] = None,
    meta_columns: Annotated[str | None, typer.Option(
        help="Comma-separated metadata columns that are not analytes (wide).")] = None,
    na_values: Annotated[str | None, typer.Option(
        help="Comma-separated missing-value codes added to the default ones (NA, ND, ...), "
             "e.g. '-9,-99'.")] = None,
    sheet: Annotated[str | None, typer.Option(help="Excel sheet (wide).")] = None,
    decimal_comma: Annotated[bool, typer.Option(help="Cells use a decimal comma (12,5).")] = False,
    unit_row: Annotated[bool, typer.Option(help="The first row under the header holds units.")] = False,
    units: Annotated[str | None, typer.Option(
        help="Units: 'umol/L' for every column, or 'Orn=umol/L,UA=mg/dL'.")] = None,
    replace: Annotated[bool, typer.Option(help="Overwrite stored values that differ.")] = False,
) -> None:
    """Import a table of measurements in one transaction (all or nothing).

    Formats: wide CSV/TSV/XLSX/Parquet (one row per sample), long CSV
    (participant, visit, analyte, value, unit), W4M three-table TSV, CIMCB
    tidy Excel (Data + Peak sheets), AnnData .h5ad. Values are converted to
    the catalog's default unit when the unit is given.

    Example: hikisig --db study.db import measurements lab.csv --na-values '-9,NA,<LOD'
    """
    from hikisig.cohort.cells import parse_na_values
    from hikisig.cohort.importer import import_measurements
    from hikisig.cohort.readers import ReadOptions, parse_units, read_measurements

    opts = ReadOptions(
        id_column=id_column,
        meta_columns=[c.strip() for c in (meta_columns or "").split(",") if c.strip()],
        na_values=parse_na_values(na_values),
        decimal_comma=decimal_comma, sheet=sheet, unit_row=unit_row, units=parse_units(units))
    store = open_store(ctx)
    store.require_ready()
    with warnings.catch_warnings(record=True) as caught, progress_bar(ctx) as bar:
        warnings.simplefilter("always")
        task = bar.add_task(f"reading {file.name}", total=None)
        table = read_measurements(file, fmt, opts)
        bar.update(task, description=f"writing {file.name}")

        def progress(done: int, total: int) -> None:
            bar.update(task, completed=done, total=total)

        record = {"format": fmt, "id_column": id_column, "meta_columns": opts.meta_columns,
                  "na_values": list(opts.na_values), "decimal_comma": decimal_comma,
                  "sheet": sheet, "unit_row": unit_row, "units": opts.units, "replace": replace}
        res = import_measurements(store, table, options(ctx).study or "default", replace=replace,
                                  progress=progress, options=record)
    print_warnings(caught)
    out.print(res.summary())


@import_app.command("interventions")
def import_interventions_cmd(
    ctx: typer.Context,
    file: Annotated[Path, typer.Argument(
        help="CSV/TSV/XLSX with participant, kind, start, end, detail (dates YYYY-MM-DD).")],
    study: Annotated[str | None, typer.Option(
        "--study", help="Study the participants belong to (default: the global --study, else the only "
                        "study in the store).")] = None,
    dry_run: Annotated[bool, typer.Option(help="Check everything and count; write nothing.")] = False,
) -> None:
    """Import an intervention log: one row per treatment of a participant, in one transaction.

    Kinds: psychotherapy, family_support, online_programme, social_robot, medication,
    day_programme, other. An empty end means ongoing. Rows already stored (same participant,
    kind and start) are updated, not duplicated.

    Example: hikisig --db study.db import interventions interventions.csv --study pilot
    """
    from hikisig.cohort.interventions import import_interventions

    store = open_store(ctx)
    store.require_ready()
    res = import_interventions(store, file, study or study_for_read(ctx, store), dry_run=dry_run)
    out.print(res.summary())


@app.command("export")
def export_cmd(
    ctx: typer.Context,
    fmt: Annotated[str, typer.Argument(help="anndata|parquet|csv|w4m|fhir|summary")],
    out_path: Annotated[Path, typer.Argument(metavar="OUT",
                                             help="Output file (a folder for w4m and summary).")],
    layout: Annotated[str, typer.Option(help="Parquet layout: wide or long.")] = "wide",
    instrument: Annotated[str | None, typer.Option(
        "--instrument", "-i", help="With fhir: the questionnaire whose responses to export.")] = None,
    study_name: Annotated[str | None, typer.Option(
        "--study", help="With summary: the study to summarise (default: the global --study, else "
                        "the only study in the store).")] = None,
    by: Annotated[str, typer.Option(
        help="With summary: strata beside 'all' (a column, e.g. sex; 'none' for none).")] = "sex",
    min_n: Annotated[int, typer.Option(
        min=2, help="With summary: leave out a stratum with fewer participants than this in a "
                    "group (and an analyte with fewer values).")] = 5,
    site_column: Annotated[str | None, typer.Option(
        help="With summary: column naming each participant's site, one file per site (default: "
             "site when the data have one, else one site named after the study; 'none').")] = None,
    site_name: Annotated[str | None, typer.Option(
        help="With summary and no site column: the site's name (default: the study's).")] = None,
) -> None:
    """Export a study: AnnData .h5ad, Parquet (wide or long), wide CSV, W4M three tables,
    one questionnaire's responses as a FHIR R4 Bundle of QuestionnaireResponses (fhir), or
    per-site summary statistics for a federated meta-analysis (summary: OUT/summary_<site>.csv
    and .parquet and OUT/manifest.json; counts, means and SDs of log2 values, Hedges' g and
    log2 fold change with SEs per analyte and stratum; no participant-level data). Pool the
    summaries of several sites with hikisig meta.

    Example: hikisig --db study.db --study pilot export anndata pilot.h5ad
    Example: hikisig --db site_a.db export summary site_a --site-name A --by sex --min-n 5
    """
    from hikisig.cohort.dataset import load_dataset
    from hikisig.cohort.exporters import export_dataset

    if fmt == "summary":
        _export_summary(ctx, out_path, study_name, by, min_n, site_column, site_name)
        return
    store = open_store(ctx)
    if fmt == "fhir":
        _export_fhir(store, study_for_read(ctx, store), out_path, instrument)
        return
    study = study_for_read(ctx, store)
    ds = load_dataset(store, study)
    paths = export_dataset(ds, fmt, out_path, layout=layout)
    paths += _export_interventions(store, study, fmt, out_path)
    for p in paths:
        out.print(f"wrote {p}")
    out.print(f"{ds.shape[0]} samples x {ds.shape[1]} analytes")


def _export_summary(ctx: typer.Context, out_path: Path, study_name: str | None, by: str,
                    min_n: int, site_column: str | None, site_name: str | None) -> None:
    """``export summary``: the study loaded as ``hikisig run`` loads it (default config
    sections), one row per participant, summarised per site."""
    from hikisig.analysis.study import load_study
    from hikisig.analysis.summary import site_summary, write_site_summaries
    from hikisig.cli.common import err, reported_warnings
    from hikisig.cli.options import design_from
    from hikisig.config import Preprocessing, Source

    store = open_store(ctx)
    study = study_name or study_for_read(ctx, store)
    design = design_from(sex=by)
    pre = Preprocessing()
    with reported_warnings(), progress_bar(ctx) as bar:
        task = bar.add_task(f"loading {study}", total=3)
        data = load_study(Source(db=store.url, study=study), design, pre)
        bar.update(task, completed=1, description="summarising")
        d = data.design
        ds = data.stats_data
        if site_column is None:
            site = "site" if "site" in ds.obs.columns and ds.obs["site"].notna().any() else None
        else:
            site = None if site_column.strip().casefold() in ("", "none") else site_column
        table, suppressed = site_summary(ds, group=d.group, case=d.case, control=d.control,
                                         by=d.sex, site=site, min_n=min_n, log=not data.additive,
                                         participant=None, name=site_name or study)
        bar.update(task, completed=2, description=f"writing {out_path}")
        settings = {"design": data.design.__dict__, "preprocessing": pre.model_dump(),
                    "repeated": data.repeats.rule if data.repeats else "first",
                    "by": d.sex, "min_n": min_n, "site_column": site, "study": study}
        paths = write_site_summaries(table, suppressed, out_path, settings=settings)
        bar.update(task, completed=3)
    for p in paths:
        out.print(f"wrote {p}")
    for r in suppressed.itertuples():
        err.print(f"note: site {r.site}, stratum {r.stratum}: {r.n_analytes} analyte(s) not written "
                  f"({r.reason}; {r.n_case} cases, {r.n_control} controls)", markup=False)
    sites = table["site"].nunique() if len(table) else 0
    out.print(f"{sites} site(s), {table['analyte'].nunique() if len(table) else 0} analytes, "
              f"{len(table)} rows; no participant-level data")


def _export_interventions(store: Store, study: str, fmt: str, out_path: Path) -> list[Path]:
    """The study's intervention log beside the export (``interventions.csv`` in a w4m folder)."""
    from hikisig.cohort.exporters import interventions_path, write_interventions
    from hikisig.cohort.interventions import interventions_frame

    frame = interventions_frame(store, study)
    if frame.empty:
        return []
    path = interventions_path(fmt, out_path)
    write_interventions(frame, path)
    return [path]


def _export_fhir(store: Store, study: str, out_path: Path, instrument: str | None) -> None:
    from hikisig.assess.definition import load_instrument
    from hikisig.assess.fhir import questionnaire_responses
    from hikisig.cohort.assessments import load_assessments
    from hikisig.cohort.exporters import write_json

    if instrument is None:
        raise HikisigError("export fhir needs --instrument (e.g. --instrument phq9)")
    inst = load_instrument(instrument)
    table = load_assessments(store, study, inst.id)
    answers = table[["id", "visit", *inst.item_columns]]
    scores = table.drop(columns=inst.item_columns)
    bundle = questionnaire_responses(inst, answers, scores)
    write_json(bundle, out_path)
    out.print(f"wrote {out_path}")
    out.print(f"{len(table)} {inst.id} responses")


@app.command()
def info(
    ctx: typer.Context,
    as_json: Annotated[bool, typer.Option("--json", help="Print JSON.")] = False,
) -> None:
    """Counts by group, sex and visit; analytes by class; missingness.

    Example: hikisig --db study.db info --json
    """
    from hikisig.cohort.info import store_info

    data = store_info(open_store(ctx), options(ctx).study)
    if as_json:
        print(json.dumps(data, indent=2, sort_keys=False))
        return
    studies = "study" if data["n_studies"] == 1 else "studies"
    out.print(f"[bold]{data['database']}[/bold] (schema {data['schema_revision']}): "
              f"{data['n_studies']} {studies}, {data['n_participants']} participants, "
              f"{data['n_samples']} samples, {data['n_analytes']} analytes, "
              f"{data['n_measurements']} values")
    for st in data["studies"]:
        tag = " \\[synthetic]" if st["synthetic"] else ""
        out.print(f"\n[bold]study {st['study']}[/bold]{tag}")
        t = Table("what", "counts", show_header=False, box=None)
        for label, key in (("samples by type", "samples_by_type"),
                           ("participants by group", "participants_by_group"),
                           ("participants by sex", "participants_by_sex"),
                           ("group / sex", "participants_by_group_and_sex"),
                           ("samples by visit", "samples_by_visit"),
                           ("analytes by class", "analytes_by_class")):
            t.add_row(label, ", ".join(f"{k}: {v}" for k, v in st[key].items()) or "-")
        miss = st["missingness"]
        t.add_row("missing cells", f"{100 * miss['missing_fraction']:.1f}% of study samples x "
                  f"analytes; {miss['analytes_over_20pct_missing']} analytes > 20% missing")
        out.print(t)
