"""Assessment commands: instruments, scoring, criteria, psychometrics, responses in the store."""

from __future__ import annotations

import json
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer
from rich.table import Table

from hikisig.cli.app import assess_app, import_app
from hikisig.cli.common import err, open_store, options, out, setting, write_table
from hikisig.config import DEFAULT_PREVALENCE, Screening
from hikisig.errors import HikisigError

if TYPE_CHECKING:
    import pandas as pd

    from hikisig.assess.definition import Instrument

__all__ = ["assess_criteria", "assess_list", "assess_psychometrics", "assess_score", "assess_show",
           "import_responses_cmd"]

InstrumentOpt = Annotated[str, typer.Option("--instrument", "-i",
                                            help="Instrument id (see `hikisig assess list`).")]


def _csv_ready(frame: pd.DataFrame) -> pd.DataFrame:
    """Booleans as true/false, missing as empty."""
    import pandas as pd

    out_frame = frame.copy()
    for col in out_frame.columns:
        if isinstance(out_frame[col].dtype, pd.BooleanDtype) or out_frame[col].dtype == bool:
            out_frame[col] = out_frame[col].map({True: "true", False: "false"}).astype(object)
    return out_frame


@assess_app.command("list")
def assess_list() -> None:
    """List the shipped instruments.

    Example: hikisig assess list
    """
    from hikisig.assess.definition import instrument_ids, load_instrument

    t = Table("id", "name", "version", "items", "answers", "period", "unverified facts")
    for iid in instrument_ids():
        inst = load_instrument(iid)
        unverified = [k for k, c in inst.verified.items() if not c.verified]
        t.add_row(inst.id, inst.name, inst.version, str(inst.n_items),
                  f"{inst.response_min}-{inst.response_max}", inst.reference_period,
                  ", ".join(unverified) or "-")
    out.print(t)


@assess_app.command("show")
def assess_show(
    instrument: Annotated[str, typer.Argument(help="Instrument id or a definition .toml file.")],
    as_json: Annotated[bool, typer.Option("--json", help="Print the definition as JSON.")] = False,
) -> None:
    """Show an instrument's scoring rules, sources, and what is unverified or unavailable.

    Example: hikisig assess show hq25
    """
    from hikisig.assess.definition import load_instrument

    inst = load_instrument(instrument)
    if as_json:
        print(inst.model_dump_json(indent=2))
        return
    out.print(f"[bold]{inst.id}[/bold] {inst.name} (version {inst.version}; {inst.reference_period})",
              markup=True)
    out.print(f"{inst.n_items} items, answers {inst.response_min}-{inst.response_max}; total "
              f"{inst.min_total:g}-{inst.max_total:g}", markup=False)
    out.print(f"reverse-scored items: {', '.join(map(str, inst.reverse_items)) or 'none'}", markup=False)
    out.print(f"missing answers: {inst.missing.rule}"
              + (f" (at most {inst.missing.max_missing})" if inst.missing.rule == "prorate" else ""),
              markup=False)
    for sub in inst.subscales:
        out.print(f"subscale {sub.id} ({sub.name}): items {', '.join(map(str, sub.items))}", markup=False)
    for un in inst.unavailable_subscales:
        out.print(f"subscale {un.id} ({un.name}): UNAVAILABLE - {un.reason}", markup=False)
    for b in inst.bands:
        out.print(f"band {b.label}: {b.min:g}-{b.max:g}", markup=False)
    for c in inst.cutoffs:
        alt = f" (also: {', '.join(f'{a:g}' for a in c.alternatives)})" if c.alternatives else ""
        out.print(f"cut-off {c.id}: total {c.direction} {c.default:g}{alt}. {c.description}", markup=False)
    for a in inst.alerts:
        out.print(f"alert {a.id}: item {a.item} > {a.above:g}. {a.description}", markup=False)
    out.print(f"source: {inst.citation}" + (f" doi:{inst.doi}" if inst.doi else ""), markup=False)
    for field, check in inst.verified.items():
        mark = "verified" if check.verified else "UNVERIFIED"
        out.print(f"  {field}: {mark} - {check.source}", markup=False)


def _read_checked(file: Path, instrument: str) -> tuple[pd.DataFrame, Instrument]:
    from hikisig.assess.answers import check_answers, read_answers_csv
    from hikisig.assess.definition import load_instrument

    inst = load_instrument(instrument)
    return check_answers(read_answers_csv(file), inst, str(file)), inst


@assess_app.command("score")
def assess_score(
    file: Annotated[Path, typer.Argument(help="CSV: id, optional visit, item1..itemN.")],
    instrument: InstrumentOpt,
    cutoff: Annotated[float | None, typer.Option(
        help="Cut-off for the screening flag (HQ-25: 42 or 44).")] = None,
    out_path: Annotated[Path | None, typer.Option("--out", help="Output CSV (default: stdout).")] = None,
) -> None:
    """Score questionnaire answers: id, total, band, subscales, flags (CSV).

    Item columns: item1..itemN (aliases: item_1, q1, <instrument>_1).

    Example: hikisig assess score --instrument hq25 answers.csv --cutoff 44 --out scores.csv
    """
    from hikisig.assess.scoring import score

    answers, inst = _read_checked(file, instrument)
    if cutoff is not None and not inst.cutoffs:
        raise HikisigError(f"{instrument} has no cut-off to change")
    for un in inst.unavailable_subscales:
        err.print(f"note: subscale {un.id} is not scored: {un.reason}", markup=False)
    write_table(_csv_ready(score(answers, inst, cutoff=cutoff)), out_path)


@assess_app.command("criteria")
def assess_criteria(
    file: Annotated[Path, typer.Argument(help="CSV: id, days_out_per_week, rarely_leaves_room, "
                                         "months_isolated, impairment, distress.")],
    out_path: Annotated[Path | None, typer.Option("--out", help="Output CSV (default: stdout).")] = None,
) -> None:
    """Apply the 2020 hikikomori criteria: id, status, severity, reasons (CSV).

    Pre-hikikomori (3 to < 6 months) also requires isolation at home and
    impairment or distress.

    Example: hikisig assess criteria criteria.csv --out status.csv
    """
    from hikisig.assess.answers import read_answers_csv
    from hikisig.assess.criteria import apply_criteria

    write_table(apply_criteria(read_answers_csv(file), str(file)), out_path)


@assess_app.command("psychometrics")
def assess_psychometrics(
    file: Annotated[Path, typer.Argument(help="CSV of answers (and a diagnosis column).")],
    instrument: InstrumentOpt,
    diagnosis_column: Annotated[str | None, typer.Option(
        help="Column with the reference diagnosis (true/false, yes/no, 1/0).")] = None,
    prevalence: Annotated[float, setting(Screening, "prevalence",
                                         "Population prevalence for PPV/NPV.")] = DEFAULT_PREVALENCE,
    cutoff: Annotated[float | None, typer.Option(help="Cut-off (default: the instrument's).")] = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print JSON.")] = False,
) -> None:
    """Cronbach's alpha (Feldt CI), item-rest correlations, and screening accuracy.

    Example: hikisig assess psychometrics -i hq25 answers.csv --diagnosis-column diagnosed
    """
    import pandas as pd

    from hikisig.assess.answers import check_answers, read_answers_csv
    from hikisig.assess.definition import load_instrument
    from hikisig.assess.scoring import reverse, score
    from hikisig.stats import cronbach_alpha, item_total, screening_accuracy

    inst = load_instrument(instrument)
    raw = read_answers_csv(file)
    diag = None
    if diagnosis_column is not None:
        if diagnosis_column not in raw.columns:
            raise HikisigError(f"{file}: no column {diagnosis_column!r}")
        mapping = {"true": True, "yes": True, "1": True, "y": True,
                   "false": False, "no": False, "0": False, "n": False}
        text = raw.pop(diagnosis_column).str.strip().str.casefold()
        bad = text[~text.isin(list(mapping)) & (text != "")]
        if len(bad):
            k = int(bad.index[0])
            raise HikisigError(f"{file}: row {k + 2}, column {diagnosis_column!r}: "
                               f"{bad.iloc[0]!r}: expected true/false, yes/no or 1/0")
        diag = text.map(mapping)
    answers = check_answers(raw, inst, str(file))
    items = pd.DataFrame(reverse(inst, answers[inst.item_columns].to_numpy(float)),
                         columns=inst.item_columns)
    alpha = cronbach_alpha(items)
    it = item_total(items)
    result: dict[str, Any] = {"instrument": inst.id, "n_rows": len(answers),
                              "reliability": alpha, "item_total": it.to_dict("records")}
    if diag is not None:
        c = inst.cutoffs[0] if inst.cutoffs else None
        if c is None and cutoff is None:
            raise HikisigError(f"{inst.id} has no cut-off: give one with --cutoff")
        value = float(cutoff if cutoff is not None else c.default if c is not None else 0.0)
        direction = c.direction if c is not None else ">="
        totals = score(answers, inst)["total"].to_numpy()
        acc = screening_accuracy(totals, diag.to_numpy(), value, direction=direction,
                                 prevalence=prevalence)
        result["screening"] = {"cutoff": value, "direction": direction, "prevalence": prevalence,
                               "metrics": acc.to_dict("records")}
    if as_json:
        print(json.dumps(result, indent=2, default=float))
        return
    out.print(f"{inst.id}: {len(answers)} rows; Cronbach's alpha {alpha['alpha']:.3f} "
              f"(95% CI {alpha['lower']:.3f}-{alpha['upper']:.3f}; {alpha['n']} complete rows)",
              markup=False)
    t = Table("item", "mean", "sd", "r item-rest", "alpha if dropped")
    for rec in it.itertuples(index=False):
        t.add_row(rec.item, f"{rec.mean:.2f}", f"{rec.sd:.2f}", f"{rec.r_item_rest:.3f}",
                  f"{rec.alpha_if_dropped:.3f}")
    out.print(t)
    if "screening" in result:
        scr = result["screening"]
        out.print(f"screening at total {scr['direction']} {scr['cutoff']:g} "
                  f"(population prevalence {100 * prevalence:.2f}%)", markup=False)
        t2 = Table("metric", "estimate", "95% CI", "n")
        for m in scr["metrics"]:
            ci = "" if pd.isna(m["lower"]) else f"{m['lower']:.3f}-{m['upper']:.3f}"
            count = m["metric"] in ("tp", "fp", "tn", "fn")
            est = f"{m['estimate']:.0f}" if count else f"{m['estimate']:.3f}"
            t2.add_row(m["metric"], est, ci, str(m["n"]))
        out.print(t2)


@assess_app.command("rescore")
def assess_rescore(ctx: typer.Context) -> None:
    """Recompute stored scores whose instrument definition changed.

    Example: hikisig --db study.db assess rescore
    """
    from hikisig.cohort.assessments import rescore_assessments

    n = rescore_assessments(open_store(ctx), options(ctx).study)
    out.print(f"{n} assessment(s) rescored")


@assess_app.command("questionnaire")
def assess_questionnaire(
    instrument: Annotated[str, typer.Argument(help="Instrument id.")],
    out_path: Annotated[Path | None, typer.Option("--out", help="Output JSON (default: stdout).")] = None,
) -> None:
    """Write an instrument as a FHIR R4 Questionnaire (JSON).

    Example: hikisig assess questionnaire phq9 --out phq9.Questionnaire.json
    """
    from hikisig.assess.definition import load_instrument
    from hikisig.assess.fhir import questionnaire

    text = json.dumps(questionnaire(load_instrument(instrument)), indent=2)
    if out_path is None:
        print(text)
    else:
        out_path.write_text(text + "\n")
        err.print(f"wrote {out_path}")


@import_app.command("responses")
def import_responses_cmd(
    ctx: typer.Context,
    file: Annotated[Path, typer.Argument(help="Answers: CSV, REDCap export CSV, or FHIR JSON.")],
    instrument: InstrumentOpt,
    fmt: Annotated[str, typer.Option("--format", help="csv|redcap|fhir")] = "csv",
    dictionary: Annotated[Path | None, typer.Option(
        help="REDCap data dictionary CSV (needed with --format redcap).")] = None,
    form: Annotated[str | None, typer.Option(help="REDCap form (instrument) name.")] = None,
    replace: Annotated[bool, typer.Option(help="Overwrite a different stored record.")] = False,
) -> None:
    """Import questionnaire responses into the store, scored, in one transaction.

    Example: hikisig --db study.db import responses phq9.csv --instrument phq9
    """
    from hikisig.assess.answers import check_answers, read_answers_csv
    from hikisig.assess.definition import load_instrument
    from hikisig.cohort.assessments import import_responses
    from hikisig.cohort.readers import file_sha256

    inst = load_instrument(instrument)
    if not file.exists():
        raise HikisigError(f"{file}: file not found")
    if fmt == "csv":
        answers = check_answers(read_answers_csv(file), inst, str(file))
        sha = file_sha256(file)
    elif fmt == "redcap":
        from hikisig.assess.redcap import read_redcap

        if dictionary is None:
            raise HikisigError("--format redcap needs --dictionary (the REDCap data dictionary CSV)")
        answers = read_redcap(file, dictionary, inst, form=form)
        sha = file_sha256(file, dictionary)
    elif fmt == "fhir":
        from hikisig.assess.fhir import read_questionnaire_responses

        answers = read_questionnaire_responses(file, inst)
        sha = file_sha256(file)
    else:
        raise HikisigError(f"unknown format {fmt!r} (expected csv, redcap or fhir)")
    st = open_store(ctx)
    res = import_responses(st, answers, inst, study=options(ctx).study or "default", file=str(file),
                           sha256=sha, fmt=fmt, replace=replace)
    if res.skipped:
        out.print(res.summary())
    else:
        out.print(f"{file}: {res.n_written} {inst.id} records stored, {res.n_unchanged} unchanged, "
                  f"{res.n_replaced} replaced, {res.n_participants_new} new participants; "
                  f"study {res.study!r}")
