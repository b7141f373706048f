"""``hikisig meta``: pool the site summaries of ``hikisig export summary``."""

from __future__ import annotations

import datetime as dt
import json
from pathlib import Path
from typing import Annotated, Any

import typer

from hikisig.cli.app import app
from hikisig.cli.common import err, out, progress_bar, write_table
from hikisig.errors import HikisigError

__all__ = ["meta_cmd", "read_summaries"]


def _files(paths: list[Path]) -> list[Path]:
    """The summary files named: a folder of ``export summary`` gives its summary_* files."""
    found: list[Path] = []
    for p in paths:
        if p.is_dir():
            inside = sorted(p.glob("summary_*.parquet")) or sorted(p.glob("summary_*.csv"))
            if not inside:
                raise HikisigError(f"{p}: no summary_*.parquet or summary_*.csv in this folder")
            found += inside
        elif p.is_file():
            found.append(p)
        else:
            raise HikisigError(f"{p}: no such file or folder")
    return found


def _manifest(path: Path) -> dict[str, Any]:
    m = path.parent / "manifest.json"
    if not m.is_file():
        return {}
    try:
        data = json.loads(m.read_text())
    except (OSError, ValueError) as exc:
        raise HikisigError(f"{m}: not a readable manifest ({exc})") from exc
    return data if isinstance(data, dict) else {}


def read_summaries(paths: list[Path]) -> tuple[Any, list[str], list[str]]:
    """The site summaries stacked, the files read, and warnings (versions, strata)."""
    import pandas as pd

    from hikisig.analysis.summary import SUMMARY_COLUMNS

    frames, names, versions = [], [], {}
    seen: dict[str, Path] = {}
    strata: dict[str, list[str]] = {}
    for f in _files(paths):
        try:
            frame = pd.read_parquet(f) if f.suffix.lower() == ".parquet" else \
                pd.read_csv(f, dtype={"analyte": str, "hmdb": str, "stratum": str, "site": str,
                                      "kit": str}, keep_default_na=False, na_values=[""])
        except Exception as exc:
            raise HikisigError(f"{f}: cannot read it as a site summary ({exc})") from exc
        cols = [str(c) for c in frame.columns]
        if cols != list(SUMMARY_COLUMNS):
            missing = [c for c in SUMMARY_COLUMNS if c not in cols]
            extra = [c for c in cols if c not in SUMMARY_COLUMNS]
            what = "; ".join(x for x in (f"missing {', '.join(missing)}" if missing else "",
                                         f"unexpected {', '.join(extra)}" if extra else "") if x)
            raise HikisigError(f"{f}: the columns are not those of hikisig export summary "
                               f"({what or 'in another order'})")
        for site in frame["site"].astype(str).unique():
            if site in seen:
                raise HikisigError(f"{f}: site {site!r} is also in {seen[site]} (the same file "
                                   "twice, or sites to name apart with export summary --site-name)")
            seen[site] = f
            strata[site] = sorted(set(frame.loc[frame["site"].astype(str) == site, "stratum"]))
        man = _manifest(f)
        versions[str(f)] = (str(man.get("hikisig_version", "unknown")),
                            str(man.get("catalog_version", "unknown")))
        frames.append(frame)
        names.append(str(f))
    warns: list[str] = []
    for i, label in enumerate(("hikisig", "catalog")):
        found = {v[i] for v in versions.values()}
        if len(found) > 1:
            warns.append(f"the files come from different {label} versions: "
                         + "; ".join(f"{k}: {v[i]}" for k, v in versions.items()))
    if len({tuple(s) for s in strata.values()}) > 1:
        warns.append("the sites have different strata: "
                     + "; ".join(f"{k}: {', '.join(v)}" for k, v in strata.items()))
    return pd.concat(frames, ignore_index=True), names, warns


@app.command("meta")
def meta_cmd(
    ctx: typer.Context,
    files: Annotated[list[Path], typer.Argument(
        help="Site summaries of hikisig export summary (CSV or Parquet), or their folders.")],
    method: Annotated[str, typer.Option(help="fixed|random: the pooling model.")] = "fixed",
    tau2: Annotated[str, typer.Option(
        help="reml|dl: between-site variance of the random-effects model.")] = "reml",
    estimate: Annotated[str, typer.Option(
        help="effect|log2fc: Hedges' g or the log2 fold change.")] = "effect",
    out_dir: Annotated[Path, typer.Option("--out", help="Output folder.")] = Path("meta"),
    top: Annotated[int, typer.Option(min=0, max=50, help="Forest plots of the analytes with "
                                     "the smallest p in the report.")] = 8,
) -> None:
    """Inverse-variance meta-analysis of per-site summary statistics, every analyte and
    stratum: fixed effect, or random effects with tau2 by REML or DerSimonian-Laird.

    Writes DIR/meta.csv (analyte, stratum, k, estimate, se, ci_low, ci_high, p, q (BH
    within stratum), tau2, i2, q_stat, q_p), DIR/weights.csv (each site's weight, percent)
    and DIR/meta_report.html (forest plots, table, method). Files of different hikisig or
    catalog versions, or sites with different strata, are pooled with a warning. See
    docs/meta.md.

    Example: hikisig meta site_a site_b site_c --method random --tau2 reml --out meta
    """
    from hikisig.prep.markers import MARKERS
    from hikisig.report.meta_html import render_meta_report
    from hikisig.stats.meta import check_meta_options, meta_tables, site_intervals

    check_meta_options(estimate=estimate, method=method, tau2=tau2)  # before reading any file
    with progress_bar(ctx) as bar:
        task = bar.add_task("reading summaries", total=3)
        summaries, names, warns = read_summaries(files)
        for w in warns:
            err.print(f"warning: {w}", markup=False)
        bar.update(task, completed=1, description="pooling")
        meta, weights = meta_tables(summaries, estimate=estimate, method=method, tau2=tau2)
        bar.update(task, completed=2, description="writing the report")
        date = dt.datetime.now(dt.UTC).strftime("%Y-%m-%d %H:%M UTC")
        sites = site_intervals(summaries, estimate=estimate)
        html = render_meta_report(meta, weights, sites, estimate=estimate, method=method,
                                  tau2=tau2, markers=[m.id for m in MARKERS], files=names,
                                  warnings=warns, top=top, date=date)
        out_dir.mkdir(parents=True, exist_ok=True)
        write_table(meta, out_dir / "meta.csv")
        write_table(weights, out_dir / "weights.csv")
        tmp = out_dir / ".meta_report.html.tmp"
        tmp.write_text(html, encoding="utf-8")
        tmp.replace(out_dir / "meta_report.html")
        bar.update(task, completed=3)
    n_sites = summaries["site"].nunique()
    head = meta[meta["stratum"] == "all"] if (meta["stratum"] == "all").any() else meta
    out.print(f"{n_sites} site(s), {meta['analyte'].nunique()} analytes, {len(meta)} pooled "
              f"estimates; {int((head['q'] < 0.05).sum())} with q < 0.05"
              f"{' in stratum all' if head is not meta else ''}")
    out.print(f"report: {out_dir / 'meta_report.html'}")
