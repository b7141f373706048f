"""``hikisig synth``: the synthetic reference study."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from hikisig.cli.app import app
from hikisig.cli.common import options, out, progress_bar
from hikisig.errors import HikisigError

__all__ = ["synth"]


@app.command()
def synth(
    ctx: typer.Context,
    preset_name: Annotated[str, typer.Option("--preset", help="Starting point.")] = "setoyama2021",
    seed: Annotated[int | None, typer.Option(help="Random seed (same seed, same files).")] = None,
    n_cases: Annotated[int | None, typer.Option(help="Number of cases (default 42).")] = None,
    n_controls: Annotated[int | None, typer.Option(help="Number of controls (default 41).")] = None,
    male_share: Annotated[float | None, typer.Option(help="Share of men in both groups (0.75).")] = None,
    visits: Annotated[int | None, typer.Option(help="Visits per participant (follow-up).")] = None,
    treated_share: Annotated[float | None, typer.Option(
        "--treated-share", help="Share of cases that start an intervention after their first "
        "visit, 0-1 (0.5; needs --visits 2 or more).")] = None,
    treatment_effect: Annotated[float | None, typer.Option(
        "--treatment-effect", help="Share of each planted case-control difference (blood and "
        "HQ-25) removed by the last visit in treated cases, 0-1 (0.8).")] = None,
    n_analytes: Annotated[int | None, typer.Option(help="Number of analytes (127).")] = None,
    sites: Annotated[int | None, typer.Option(
        "--sites", help="Recruiting sites, 1-20 (1): each with its own case/control and sex "
        "mix and a laboratory offset per analyte (participants.csv 'site').")] = None,
    out_dir: Annotated[Path | None, typer.Option("--out", help="Write the files into this folder.")] = None,
    fmt: Annotated[str, typer.Option("--format", help="csv|parquet (with --out)")] = "csv",
    db: Annotated[str | None, typer.Option("--db", help="Put the study into this store.")] = None,
    qc_every: Annotated[int | None, typer.Option(help="A pooled QC sample every N samples.")] = None,
    batches: Annotated[int | None, typer.Option(help="Number of analytical batches.")] = None,
    batch_sd: Annotated[float | None, typer.Option(help="Batch effect SD (log scale).")] = None,
    dtype: Annotated[str | None, typer.Option(help="float64|float32 (Parquet values).")] = None,
) -> None:
    """Generate the synthetic reference study, with its planted truth (truth.json).

    Default: 42 cases and 41 controls (75% men), 127 blood analytes, HQ-25,
    PHQ-9, K6 and UCLA-3 answers, and the 2020 criteria inputs. Planted:
    long-chain acylcarnitines higher in cases (d 0.8); ornithine and arginase
    higher, arginine and bilirubin lower in male cases (d 0.8); HQ-25 linear in
    five analytes within cases (R2 0.5); two case subtypes in uric acid and
    cholesterol esters (d 1.5). With --visits N > 1: visits every 3 months with
    realistic within-person variation; --treated-share of the cases start an
    intervention after visit 1 (interventions.csv) and lose --treatment-effect of
    their case-control differences by the last visit. With --sites K > 1: a
    consortium of K sites (participants.csv 'site'), each with its own case share
    and sex mix and a multiplicative laboratory offset per analyte (log offset SD
    0.15) and a scale factor (log SD 0.1); the planted effects are the same at
    every site (truth.json 'sites'). See docs/synthetic.md.

    Example: hikisig synth --seed 7 --out synthetic-study
    Example: hikisig synth --visits 3 --treated-share 0.5 --treatment-effect 0.8 --out follow-up
    Example: hikisig synth --sites 3 --n-cases 150 --n-controls 150 --out consortium
    """
    from pydantic import ValidationError

    from hikisig.config import field_bounds
    from hikisig.synth.config import SynthConfig, preset
    from hikisig.synth.generate import SyntheticStudy
    from hikisig.synth.writers import write_files, write_store

    target_db = db or (options(ctx).db if out_dir is None else None)
    if out_dir is None and target_db is None:
        raise HikisigError("say where the study goes: --out DIR and/or --db URL")
    if fmt not in ("csv", "parquet"):
        raise HikisigError(f"unknown format {fmt!r} (expected csv or parquet)")
    for flag, value in (("--treated-share", treated_share), ("--treatment-effect", treatment_effect)):
        if value is not None and not 0 <= value <= 1:
            raise HikisigError(f"{flag} must be between 0 and 1 (got {value:g})")
    lo, hi = field_bounds(SynthConfig, "sites")
    if sites is not None and not lo <= sites <= hi:  # type: ignore[operator]
        raise HikisigError(f"--sites must be between {lo} and {hi} (got {sites})")
    if (treated_share or treatment_effect) and (visits or 1) < 2:
        raise HikisigError("--treated-share and --treatment-effect need follow-up: "
                           "give --visits 2 or more")
    try:
        config = preset(preset_name, seed=seed, n_cases=n_cases, n_controls=n_controls,
                        male_share=male_share, visits=visits, n_analytes=n_analytes,
                        treated_share=treated_share, treatment_recovery=treatment_effect,
                        sites=sites,
                        qc_every=qc_every, batches=batches, batch_sd=batch_sd, dtype=dtype)
        study = SyntheticStudy(config)
    except ValidationError as exc:
        # a rule of the config (one line: the first problem's message)
        errors = exc.errors()
        if len(errors) == 1 and errors[0]["type"] == "value_error":
            raise HikisigError(str(errors[0]["msg"]).removeprefix("Value error, ")) from exc
        raise HikisigError(str(exc)) from exc
    except ValueError as exc:
        raise HikisigError(str(exc).splitlines()[0] if "validation" not in str(exc) else str(exc)) from exc
    with progress_bar(ctx) as bar:
        task = bar.add_task("generating", total=study.n_chunks)

        def progress(done: int, total: int) -> None:
            bar.update(task, completed=done, total=total)

        if out_dir is not None:
            write_files(study, out_dir, fmt, progress)
            out.print(f"wrote {config.study} ({config.n_participants} participants x "
                      f"{len(study.panel)} analytes) to {out_dir}/")
        if target_db is not None:
            bar.reset(task)
            stored = write_store(study, target_db, progress)
            extra = (f", {stored['interventions']} interventions" if "interventions" in stored
                     else "")
            out.print(f"stored {config.study} in {target_db}: {stored['samples']} samples, "
                      f"{stored['analytes']} analytes, {stored['values']} values{extra}")
