"""``hikisig stats``: sex-stratified case-control statistics for every analyte.

A CSV (or the store) is read into memory; a Parquet file or a folder of Parquet
files is analysed out of core (:mod:`hikisig.stats.outofcore`): only the row
metadata is loaded, the analytes are read in blocks.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer

from hikisig.cli.app import app
from hikisig.cli.common import err, state, write_table
from hikisig.cli.data import load_table
from hikisig.cli.model import EngineOpt, SchedulerOpt, WorkersOpt, open_engine
from hikisig.errors import HikisigError, InputError, Problem

if TYPE_CHECKING:
    import pandas as pd

    from hikisig.stats.outofcore import ParquetSource

__all__ = ["stats_cmd"]

#: Suffixes read as Parquet (out of core); a folder is read as a Parquet dataset.
PARQUET_SUFFIXES = (".parquet", ".pq", ".parq")


def _is_parquet(file: Path) -> bool:
    return file.is_dir() or file.suffix.lower() in PARQUET_SUFFIXES


def _read_participants(path: Path, id_column: str | None) -> pd.DataFrame:
    """A participants table (CSV/TSV or Parquet) indexed by its id column, as text."""
    import pandas as pd

    if not path.exists():
        raise InputError([Problem(str(path), "file not found")])
    if path.suffix.lower() in PARQUET_SUFFIXES:
        table = pd.read_parquet(path)
    else:
        sep = "\t" if path.suffix.lower() in (".tsv", ".tab") else ","
        table = pd.read_csv(path, sep=sep, dtype=str, keep_default_na=False,
                            encoding="utf-8-sig")
    cols = [str(c) for c in table.columns]
    key = id_column if id_column in cols else ("id" if "id" in cols else cols[0])
    ids = table[key].astype(str).str.strip()
    dup = ids[ids.duplicated()]
    if len(dup):
        raise InputError([Problem(str(path), "duplicate id", row=int(k) + 2, column=key,
                                  value=ids[k]) for k in dup.index[:10]])
    return table.set_axis(pd.Index(ids, name="id"), axis=0)


def _parquet_obs(src: ParquetSource, id_col: str, participants: Path | None,
                 table: pd.DataFrame | None, meta: list[str], numeric: list[str]) -> pd.DataFrame:
    """The row metadata of a Parquet source: its own columns, or a participants table joined
    on the id column."""
    import pandas as pd

    if participants is None or table is None:
        src.require([id_col, *meta, *numeric])
        obs = src.read_frame(list(dict.fromkeys([id_col, *meta, *numeric])))
    else:
        missing = [c for c in dict.fromkeys([*meta, *numeric]) if c not in table.columns]
        if missing:
            raise InputError([Problem(str(participants), f"no column {c!r}", column=c)
                              for c in missing])
        src.require([id_col])
        ids = src.read_frame([id_col])[id_col].astype(str).str.strip()
        unknown = ~ids.isin(table.index)
        if unknown.any():
            raise HikisigError(f"{int(unknown.sum())} id(s) in column {id_col!r} of {src.path} "
                               f"are not in {participants} (e.g. "
                               f"{', '.join(ids[unknown].head(3))})")
        obs = table.loc[ids.to_numpy(), list(dict.fromkeys([*meta, *numeric]))]
        obs = obs.reset_index(drop=True)
    for c in numeric:
        num = pd.to_numeric(obs[c].replace("", None), errors="coerce")
        bad = obs[c].notna() & (obs[c].astype(str) != "") & num.isna()
        if bad.any():
            where = str(participants) if participants is not None else src.path
            k = int(bad.to_numpy().nonzero()[0][0])
            raise InputError([Problem(where, "expected a number", column=c,
                                      value=obs[c].iat[k])])
        obs[c] = num.to_numpy(dtype=float)
    return obs


def _parquet_markers(src: ParquetSource, columns: list[str], names: list[str], block: int
                     ) -> tuple[pd.DataFrame | None, dict[str, str]]:
    """Derived markers of a Parquet source, computed row group by row group (they are
    row-wise sums and ratios), reading only their input columns."""
    import numpy as np
    import pandas as pd

    from hikisig.prep.markers import derived_markers

    _, ann = derived_markers(pd.DataFrame(np.empty((0, len(names))), columns=names))
    if not len(ann):
        return None, {}
    wanted = {i for inputs in ann["inputs"] for i in str(inputs).split(",")}
    pos = [k for k, n in enumerate(names) if n in wanted]  # file order: same sums as in memory
    parts = []
    for _, vals in src.iter_values([columns[k] for k in pos], max_cells=block):
        v, _ = derived_markers(pd.DataFrame(vals, columns=[names[k] for k in pos]))
        parts.append(v)
    values = pd.concat(parts, ignore_index=True)
    return values, ann["formula"].to_dict()


def _case_labels(obs: pd.DataFrame, group: str, case: str, control: str) -> pd.Series:
    import numpy as np
    import pandas as pd

    lab = obs[group].astype(str)
    flags = np.full(len(lab), None, dtype=object)
    flags[(lab == control).to_numpy()] = False
    flags[(lab == case).to_numpy()] = True
    is_case = pd.Series(flags, index=obs.index, dtype=object)
    n_case, n_control = int((is_case == True).sum()), int((is_case == False).sum())  # noqa: E712
    if n_case < 2 or n_control < 2:
        raise HikisigError(f"need at least 2 {case!r} and 2 {control!r} samples in column {group!r} "
                           f"(found {n_case} and {n_control}; labels: "
                           f"{', '.join(sorted(set(lab.unique()))[:8])})")
    other = int(is_case.isna().sum())
    if other:
        err.print(f"note: {other} sample(s) with other group labels left out", markup=False)
    return is_case


@app.command("stats")
def stats_cmd(
    file: Annotated[Path | None, typer.Argument(
        help="Wide CSV (id, metadata, analytes), or a Parquet file or folder of Parquet files "
             "(analysed out of core); omit to read the store (--db).")] = None,
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
    quantiles: Annotated[bool, typer.Option(
        help="Group medians and quartiles (--no-quantiles: NaN; with --test welch or student "
             "the statistics then need no sort, and Parquet data one pass).")] = True,
    visit: Annotated[int | None, typer.Option(help="Visit to analyse (store; default: first).")] = None,
    id_column: Annotated[str | None, typer.Option(
        help="Sample id column (default: 'id' if present, else the first column).")] = None,
    participants: Annotated[Path | None, typer.Option(
        help="Parquet input: a participants table (CSV or Parquet) with the metadata "
             "columns, joined on the id column (e.g. participants.csv of hikisig synth).")] = None,
    block_size: Annotated[int, typer.Option(
        min=1000, help="Values per block of analytes (memory bound; Parquet: per tile read).")
    ] = 4_000_000,
    engine: EngineOpt = "serial",
    scheduler: SchedulerOpt = None,
    workers: WorkersOpt = None,
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

    A Parquet file or folder is analysed out of core: metadata read once, analytes in
    blocks of --block-size values (one pass of sums for the t-tests and the linear model,
    column blocks for ranks). --engine dask runs the blocks on a local cluster of
    --workers processes, or on the cluster at --scheduler tcp://host:8786; results do
    not depend on the engine.

    Example: hikisig stats cohort.csv --group group --by sex --covariates age --out stats.csv
    """
    from hikisig.stats.casecontrol import TESTS

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
    if participants is not None and (file is None or not _is_parquet(file)):
        raise HikisigError("--participants is for a Parquet file or folder")
    with open_engine(engine, scheduler, workers) as eng:
        if file is not None and _is_parquet(file):
            result, n_case, n_control, n_analytes, n_markers = _stats_parquet(
                file, participants, id_column, group, case, control, by_col, cov_list, cov_given,
                severity, tests, mwu_method, markers, quantiles, block_size, eng)
        else:
            result, n_case, n_control, n_analytes, n_markers = _stats_memory(
                file, id_column, group, case, control, by_col, cov_list, cov_given, severity,
                visit, tests, mwu_method, markers, quantiles, block_size, eng)
    sig = result[(result["q"] < 0.05) & (result["stratum"] != "cases")]
    err.print(f"{n_case} cases, {n_control} controls; {n_analytes} analytes + "
              f"{n_markers} derived markers; {len(sig)} results with q < 0.05",
              markup=False)
    if out_path is not None and out_path.suffix.lower() == ".parquet":
        tmp = out_path.with_name(f".{out_path.name}.tmp")
        result.to_parquet(tmp, index=False)
        tmp.replace(out_path)
        err.print(f"wrote {out_path}", markup=False)
        return
    write_table(result, out_path)


def _note_markers(formulas: dict[str, str]) -> None:
    if formulas:
        err.print(f"derived markers: {', '.join(formulas)} (formulas in the 'formula' column)",
                  markup=False)


def _stats_memory(file: Path | None, id_column: str | None, group: str, case: str, control: str,
                  by_col: str | None, cov_list: list[str], cov_given: bool,
                  severity: str | None, visit: int | None, tests: list[str], mwu_method: str,
                  markers: bool, quantiles: bool, block_size: int, eng: Any
                  ) -> tuple[pd.DataFrame, int, int, int, int]:
    from hikisig.prep.markers import derived_markers
    from hikisig.stats.casecontrol import case_control

    if not cov_given:
        if file is not None:
            import pandas as pd

            head = pd.read_csv(file, nrows=0).columns if file.exists() else []
            cov_list = ["age"] if "age" in head else []
        else:
            cov_list = ["age"]
    X, obs = load_table(file, meta=[group, *([by_col] if by_col else [])],
                        numeric=[*cov_list, *([severity] if severity else [])],
                        id_column=id_column, visit=visit)
    if not cov_given and cov_list and obs["age"].isna().all():
        cov_list = []
    is_case = _case_labels(obs, group, case, control)
    n_analytes = X.shape[1]
    formulas: dict[str, str] = {}
    if markers:
        vals, ann = derived_markers(X)
        X = X.join(vals)
        formulas = ann["formula"].to_dict()
        _note_markers(formulas)
    cov = obs[cov_list].apply(lambda s: s.astype(float)) if cov_list else None
    sev = obs[severity] if severity else None
    result = case_control(X, is_case, by=obs[by_col] if by_col else None, covariates=cov,
                          severity=sev, tests=tests, mwu_method=mwu_method,
                          block_cells=block_size, quantiles=quantiles, engine=eng)
    result["formula"] = result["analyte"].map(formulas).fillna("")
    n_case, n_control = int((is_case == True).sum()), int((is_case == False).sum())  # noqa: E712
    return result, n_case, n_control, n_analytes, X.shape[1] - n_analytes


def _stats_parquet(file: Path, participants: Path | None, id_column: str | None, group: str,
                   case: str, control: str, by_col: str | None, cov_list: list[str],
                   cov_given: bool, severity: str | None, tests: list[str], mwu_method: str,
                   markers: bool, quantiles: bool, block_size: int, eng: Any
                   ) -> tuple[pd.DataFrame, int, int, int, int]:
    from hikisig.cohort.metadata import canonical_field
    from hikisig.pipeline.data import analyte_names
    from hikisig.stats.outofcore import ParquetSource, case_control_parquet

    src = ParquetSource(file)
    id_col = id_column or ("id" if "id" in src.columns else src.columns[0])
    src.require([id_col])
    table = _read_participants(participants, id_col) if participants is not None else None
    if not cov_given:
        cov_list = ["age"] if "age" in (src.columns if table is None else table.columns) else []
    meta = [group, *([by_col] if by_col else [])]
    numeric = [*cov_list, *([severity] if severity else [])]
    obs = _parquet_obs(src, id_col, participants, table, meta, numeric)
    if not cov_given and cov_list and obs["age"].isna().all():
        cov_list = []
    is_case = _case_labels(obs, group, case, control)
    used = {id_col, *meta, *numeric}
    analytes = [c for c in src.columns
                if c not in used and src.is_numeric(c) and canonical_field(c) is None]
    skipped = [c for c in src.columns if c not in used and c not in analytes]
    if skipped:
        err.print(f"note: column(s) not analysed (metadata or not numbers): "
                  f"{', '.join(skipped[:10])}{', ...' if len(skipped) > 10 else ''}", markup=False)
    if not analytes:
        raise HikisigError(f"{file}: no analyte column (numeric columns other than the id and "
                           "metadata)")
    names = analyte_names(analytes)
    extra, formulas = (_parquet_markers(src, analytes, names, block_size) if markers
                       else (None, {}))
    _note_markers(formulas)
    err.print(f"{src.n_rows} rows x {len(analytes)} analytes in {len(src.files)} Parquet file(s), "
              f"read in blocks of about {block_size} values", markup=False)
    cov = obs[cov_list] if cov_list else None
    result = case_control_parquet(
        src, analytes, is_case, by=obs[by_col] if by_col else None, covariates=cov,
        severity=obs[severity] if severity else None, names=names, extra=extra, tests=tests,
        mwu_method=mwu_method, block_cells=block_size, quantiles=quantiles, engine=eng)
    result["formula"] = result["analyte"].map(formulas).fillna("")
    n_case, n_control = int((is_case == True).sum()), int((is_case == False).sum())  # noqa: E712
    return result, n_case, n_control, len(analytes), 0 if extra is None else extra.shape[1]
