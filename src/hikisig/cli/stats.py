"""``hikisig stats``: sex-stratified case-control statistics for every analyte."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer

from hikisig.cli.app import app
from hikisig.cli.common import err, state, write_table
from hikisig.cli.data import load_table
from hikisig.errors import HikisigError

if TYPE_CHECKING:
    pass

__all__ = ["stats_cmd"]


@app.command("stats")
def stats_cmd(
    file: Annotated[Path | None, typer.Argument(help="Wide CSV (id, metadata, analytes); "
                                                "omit to read the store (--db).")] = None,
    group: Annotated[str, typer.Option(help="Column with the group labels.")] = "group",
    case: Annotated[str, typer.Option(help="Label of cases.")] = "case",
    control: Annotated[str, typer.Option(help="Label of controls.")] = "control",
    by: Annotated[str, typer.Option(help="Stratify by this column ('none' for no strata).")] = "sex",
    covariates: Annotated[str | None, typer.Option(
        help="Covariates of the linear model, comma-separated (default: age if present; "
             "'none' for none).")] = None,
    severity: Annotated[str | None, typer.Option(
        help="Severity column, or with the store an instrument id (e.g. hq25) whose total is "
             "correlated with each analyte within cases.")] = None,
    test: Annotated[str, typer.Option(help="welch|student|mwu|all")] = "all",
    mwu_method: Annotated[str, typer.Option(help="Mann-Whitney p-value: asymptotic|exact.")] = "asymptotic",
    markers: Annotated[bool, typer.Option(help="Add the curated derived markers.")] = True,
    visit: Annotated[int | None, typer.Option(help="Visit to analyse (store; default: first).")] = None,
    db: Annotated[str | None, typer.Option("--db", help="Read this store (same as the global --db).")] = None,
    out_path: Annotated[Path | None, typer.Option("--out", help="Output .csv or .parquet "
                                                  "(default: CSV on stdout).")] = None,
) -> None:
    """Case-control statistics for every analyte and derived marker: overall, within each
    sex, and log2(value) ~ group * sex + covariates (group effect per sex, interaction p).

    Output columns: analyte, stratum (all, F, M, interaction, cases), test (welch,
    student, mwu, lm, pearson, spearman), statistic, p, q (BH), effect (Hedges g,
    Cliff's delta, log2 fold change or r) with CI, fold_change, n_case, n_control,
    then p_holm, df, method, descriptives.

    Example: hikisig stats cohort.csv --group group --by sex --covariates age --out stats.csv
    """
    from hikisig.prep.markers import derived_markers
    from hikisig.stats.casecontrol import TESTS, case_control

    tests = list(TESTS) if test == "all" else [test]
    if test != "all" and test not in TESTS:
        raise HikisigError(f"unknown test {test!r} (expected welch, student, mwu or all)")
    if mwu_method not in ("asymptotic", "exact"):
        raise HikisigError("--mwu-method must be asymptotic or exact")
    by_col = None if by.casefold() == "none" else by
    if db:
        state.db = db
    cov_given = covariates is not None
    cov_list = ([] if covariates is None or covariates.casefold() == "none"
                else [c.strip() for c in covariates.split(",") if c.strip()])
    if not cov_given:
        if file is not None:
            import pandas as pd

            head = pd.read_csv(file, nrows=0).columns if file.exists() else []
            cov_list = ["age"] if "age" in head else []
        else:
            cov_list = ["age"]
    X, obs = load_table(file, meta=[group, *([by_col] if by_col else [])],
                        numeric=[*cov_list, *([severity] if severity else [])], visit=visit)
    if not cov_given and cov_list and obs["age"].isna().all():
        cov_list = []
    labels = obs[group].astype(object)
    is_case = labels.map(lambda v: True if str(v) == case else False if str(v) == control else None)
    n_case, n_control = int((is_case == True).sum()), int((is_case == False).sum())  # noqa: E712
    if n_case < 2 or n_control < 2:
        raise HikisigError(f"need at least 2 {case!r} and 2 {control!r} samples in column {group!r} "
                           f"(found {n_case} and {n_control}; labels: "
                           f"{', '.join(sorted({str(v) for v in labels})[:8])})")
    other = int(is_case.isna().sum())
    if other:
        err.print(f"note: {other} sample(s) with other group labels left out", markup=False)
    n_analytes = X.shape[1]
    formulas: dict[str, str] = {}
    if markers:
        vals, ann = derived_markers(X)
        X = X.join(vals)
        formulas = ann["formula"].to_dict()
        if len(ann):
            err.print(f"derived markers: {', '.join(ann.index)} (formulas in the 'formula' column)",
                      markup=False)
    cov = obs[cov_list].apply(lambda s: s.astype(float)) if cov_list else None
    sev = obs[severity] if severity else None
    result = case_control(X, is_case, by=obs[by_col] if by_col else None, covariates=cov,
                          severity=sev, tests=tests, mwu_method=mwu_method)
    result["formula"] = result["analyte"].map(formulas).fillna("")
    sig = result[(result["q"] < 0.05) & (result["stratum"] != "cases")]
    err.print(f"{n_case} cases, {n_control} controls; {n_analytes} analytes + "
              f"{X.shape[1] - n_analytes} derived markers; {len(sig)} results with q < 0.05",
              markup=False)
    if out_path is not None and out_path.suffix.lower() == ".parquet":
        tmp = out_path.with_name(f".{out_path.name}.tmp")
        result.to_parquet(tmp, index=False)
        tmp.replace(out_path)
        err.print(f"wrote {out_path}", markup=False)
        return
    write_table(result, out_path)
