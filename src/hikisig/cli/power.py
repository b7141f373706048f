"""``hikisig power``: what a study of a given size can detect, and the participants an
effect needs (:mod:`hikisig.stats.power`)."""

from __future__ import annotations

import math
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer

from hikisig.cli.app import app
from hikisig.cli.common import err, read_result_table, write_table
from hikisig.errors import HikisigError

if TYPE_CHECKING:
    import pandas as pd

__all__ = ["power_cmd"]

# The defaults of hikisig.stats.power, repeated so that the command line starts without
# importing scipy (a test checks that they are equal).
DEFAULT_FDR = 0.05
DEFAULT_N_ANALYTES = 127
DEFAULT_POWER = 0.8
DEFAULT_AUC = 0.85
DEFAULT_REFERENCE_D = 0.8


def _open_interval(value: float | None, flag: str) -> None:
    if value is not None and not (math.isfinite(value) and 0 < value < 1):
        raise HikisigError(f"{flag} must be between 0 and 1 (exclusive), not {value:g}")


def _effects_arg(text: str) -> list[float]:
    try:
        values = [float(v) for v in text.split(",") if v.strip()]
    except ValueError:
        raise HikisigError(f"--effect must be a number or a comma-separated list of numbers, "
                           f"not {text!r}") from None
    if not values or not all(math.isfinite(v) and v != 0 for v in values):
        raise HikisigError(f"--effect must be non-zero finite standardised differences, not {text!r}")
    return values



@app.command("power")
def power_cmd(
    n_case: Annotated[int | None, typer.Option(help="Cases of the study (with --n-control).")] = None,
    n_control: Annotated[int | None, typer.Option(help="Controls of the study (with --n-case).")
                         ] = None,
    women_share: Annotated[float | None, typer.Option(
        help="Share of women in each group: adds the strata F and M (women rounded to the "
             "nearest participant).")] = None,
    effects: Annotated[Path | None, typer.Option(
        help="A stats table of hikisig stats or hikisig run (CSV or Parquet): participants "
             "needed for the Hedges' g of every analyte and stratum (Welch rows).")] = None,
    effect: Annotated[str | None, typer.Option(
        help="A standardised difference d, or a comma-separated list: participants needed.")
    ] = None,
    fdr: Annotated[float, typer.Option(help="False discovery rate of the Benjamini-Hochberg "
                                       "correction.")] = DEFAULT_FDR,
    n_analytes: Annotated[int | None, typer.Option(
        help=f"Analytes corrected together (default: {DEFAULT_N_ANALYTES}, or those of "
             "--effects).")] = None,
    power: Annotated[float, typer.Option(help="Target power.")] = DEFAULT_POWER,
    true_share: Annotated[float | None, typer.Option(
        help="Share of analytes with true effects: per-test alpha = BH's threshold over many "
             "analytes instead of the conservative FDR / analytes.")] = None,
    alpha: Annotated[float | None, typer.Option(
        help="Per-test alpha given directly (instead of the one derived from --fdr).")] = None,
    auc: Annotated[float, typer.Option(help="AUC whose expected 95% CI half-width is reported "
                                       "(Hanley & McNeil 1982).")] = DEFAULT_AUC,
    reference_d: Annotated[float, typer.Option(
        help="Standardised difference whose power each stratum's summary states.")
    ] = DEFAULT_REFERENCE_D,
    ratio: Annotated[float, typer.Option(help="Controls per case of the planned study "
                                         "(--effects, --effect).")] = 1.0,
    out_path: Annotated[Path | None, typer.Option("--out", help="Output .csv or .parquet "
                                                  "(default: CSV on stdout).")] = None,
) -> None:
    """Power of the study's design: two-group t-tests of each analyte on a standardised
    difference (Cohen's d, Hedges' g in hikisig stats), corrected by Benjamini-Hochberg.

    With --n-case and --n-control: for each stratum (all; F and M with --women-share) the
    smallest d found with --power at the corrected per-test alpha (min_d) and at 0.05
    (min_d_nominal), the power for --reference-d, and the expected half-width of the 95% CI
    of an AUC of --auc. With --effects (the Welch rows' Hedges' g of a stats table) or
    --effect: the cases and controls needed (n_case_required, n_control_required, rounded
    up; --ratio controls per case).

    Per-test alpha: BH at --fdr over --n-analytes is approximated by FDR / analytes, the
    threshold of BH's first step (conservative: power under BH is at least this); with
    --true-share s, by the threshold BH settles at over many analytes when a share s has
    true effects, FDR * s * power / (1 - FDR (1 - s)); --alpha sets it directly. Power
    is that of the two-sided Student t-test (noncentral t), as R's pwr.t2n.test. A table
    on stdout (CSV) or --out, a summary on stderr. See docs/power.md.

    Example: hikisig power --n-case 42 --n-control 41 --women-share 0.25
    """
    from hikisig.stats.power import (
        bh_alpha,
        required_n_table,
        sex_strata,
        study_detectability,
        welch_effects,
    )

    modes = [n_case is not None or n_control is not None, effects is not None, effect is not None]
    if sum(modes) != 1:
        raise HikisigError("give either --n-case and --n-control, or --effects, or --effect")
    _open_interval(fdr, "--fdr")
    _open_interval(power, "--power")
    _open_interval(true_share, "--true-share")
    _open_interval(alpha, "--alpha")
    if n_analytes is not None and n_analytes < 1:
        raise HikisigError(f"--n-analytes must be at least 1, not {n_analytes}")
    if not (math.isfinite(reference_d) and reference_d > 0):
        raise HikisigError(f"--reference-d must be a positive number, not {reference_d:g}")

    if modes[0]:
        if n_case is None or n_control is None:
            raise HikisigError("give both --n-case and --n-control")
        if n_case < 2 or n_control < 2:
            raise HikisigError(f"--n-case and --n-control must be at least 2 (got {n_case} and "
                               f"{n_control})")
        if women_share is not None and not (math.isfinite(women_share) and 0 < women_share < 1):
            raise HikisigError(f"--women-share must be between 0 and 1 (exclusive), not "
                               f"{women_share:g}")
        _open_interval(auc, "--auc")
        m = n_analytes or DEFAULT_N_ANALYTES
        table = study_detectability(*sex_strata(n_case, n_control, women_share), n_analytes=m,
                                    fdr=fdr, power=power, auc=auc, alpha=alpha,
                                    true_share=true_share, reference_d=reference_d)
        err.print(_alpha_text(table["alpha_rule"].iloc[0], float(table["alpha"].iloc[0]), fdr, m),
                  markup=False)
        for stratum, reading in zip(table["stratum"], table["reading"], strict=True):
            err.print(f"{stratum}: {reading}", markup=False)
        write_table(table, out_path)
        return

    if women_share is not None:
        raise HikisigError("--women-share is for --n-case and --n-control")
    if not (math.isfinite(ratio) and ratio > 0):
        raise HikisigError(f"--ratio must be a positive number, not {ratio:g}")
    if effects is not None:
        frame = welch_effects(read_result_table(effects))
        m = n_analytes or int(frame["analyte"].nunique())
    else:
        import pandas as pd

        frame = pd.DataFrame({"effect": _effects_arg(effect or "")})
        m = n_analytes or DEFAULT_N_ANALYTES
    a = alpha if alpha is not None else bh_alpha(fdr, m, power, true_share)
    if a >= power:
        raise HikisigError(f"--power ({power:g}) must exceed the per-test alpha ({a:.3g})")
    rule = "given" if alpha is not None else ("bh_first_step" if true_share is None
                                              else "bh_asymptotic")
    table = required_n_table(frame, a, power, ratio)
    table.insert(table.columns.get_loc("alpha"), "alpha_rule", rule)
    err.print(_alpha_text(rule, a, fdr, m), markup=False)
    err.print(_needs_text(table, power), markup=False)
    write_table(table, out_path)


def _alpha_text(rule: str, alpha: float, fdr: float, n_analytes: int) -> str:
    if rule == "given":
        return f"per-test alpha {alpha:.3g} (given)"
    how = ("first step of BH, FDR / analytes: conservative" if rule == "bh_first_step"
           else "BH's threshold over many analytes with the given share of true effects")
    return f"per-test alpha {alpha:.3g}: BH at FDR {fdr:g} over {n_analytes} analytes ({how})"


def _needs_text(table: pd.DataFrame, power: float) -> str:
    need = table["n_case_required"]
    known = need.dropna()
    if known.empty:
        return "no effect can be detected (all are zero or missing)"
    text = (f"{len(known)} effect(s): {int(known.min())} to {int(known.max())} cases needed for "
            f"{power:.0%} power (median {float(known.median()):g})")
    if "n_case" in table.columns:
        have = (table["n_case"] >= table["n_case_required"]) & (
            table["n_control"] >= table["n_control_required"])
        text += (f"; {int(have.fillna(False).sum())} of {len(table)} already have enough "
                 "participants in the table's study")
    return text
