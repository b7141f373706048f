"""``hikisig compare``: a study's statistics table against a published signature
(:mod:`hikisig.analysis.compare`)."""

from __future__ import annotations

import math
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer

from hikisig.cli.app import app
from hikisig.cli.common import err, read_result_table, write_table
from hikisig.errors import HikisigError

if TYPE_CHECKING:
    pass

__all__ = ["compare_cmd"]

DEFAULT_REFERENCE = "setoyama2021"


def _stats_path(path: Path) -> Path:
    """The statistics table itself, or ``tables/stats.csv`` of a run folder."""
    if path.is_dir():
        for candidate in (path / "tables" / "stats.csv", path / "tables" / "stats.parquet",
                          path / "results" / "tables" / "stats.csv"):
            if candidate.is_file():
                return candidate
        raise HikisigError(f"{path}: a folder without tables/stats.csv (give the stats table of "
                           "hikisig stats or the folder of hikisig run)")
    if not path.exists():
        raise HikisigError(f"{path}: no such file")
    return path



@app.command("compare")
def compare_cmd(
    stats: Annotated[Path, typer.Argument(
        help="stats.csv of hikisig stats (CSV or Parquet), or a hikisig run folder.")],
    reference: Annotated[str, typer.Option(help="Published findings to compare with.")
                         ] = DEFAULT_REFERENCE,
    alpha: Annotated[float, typer.Option(help="q threshold of agree/disagree and of the group x "
                                         "sex interaction.")] = 0.05,
    out_path: Annotated[Path | None, typer.Option("--out", help="Output .csv or .parquet "
                                                  "(default: CSV on stdout).")] = None,
) -> None:
    """Replication: each published finding of --reference judged on a statistics table.

    For each finding (analyte, stratum all/M/F, expected direction in cases) the Welch row
    of the table gives the effect (Hedges g), its CI and q (BH over the table's analytes);
    verdict agree (expected direction, q < alpha), disagree (opposite direction, q < alpha),
    inconclusive (q >= alpha), not measured (analyte absent), not tested (stratum absent),
    not testable (stratifiers of case subgroups). Findings published in men also get the
    group x sex interaction q: without interaction q < alpha a finding agrees in men but is
    not shown to be specific to men. A one-sided sign test over the findings' directions and
    a summary go to stderr; the table to stdout (CSV) or --out. See docs/compare.md.

    Example: hikisig compare results/tables/stats.csv --reference setoyama2021
    """
    from hikisig.analysis.compare import available_references, compare

    if reference not in available_references():
        raise HikisigError(f"unknown reference {reference!r} (available: "
                           f"{', '.join(available_references())})")
    if not (math.isfinite(alpha) and 0 < alpha < 1):
        raise HikisigError(f"--alpha must be between 0 and 1 (exclusive), not {alpha:g}")
    result = compare(read_result_table(_stats_path(stats)), reference, alpha=alpha)
    info = result.reference
    err.print(f"reference: {info['citation']} doi:{info['doi']}", markup=False, soft_wrap=True)
    err.print(result.summary, markup=False, soft_wrap=True)
    write_table(result.table, out_path)
