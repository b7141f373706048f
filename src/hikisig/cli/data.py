"""Reading an analysis table for the stats and model commands: a wide CSV or the store."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

from hikisig.cli.common import open_store, study_for_read
from hikisig.errors import HikisigError, InputError, Problem, ProblemCollector

if TYPE_CHECKING:
    import pandas as pd

__all__ = ["load_table"]


def _from_file(path: Path, id_column: str | None, meta: list[str], numeric: list[str]
               ) -> tuple[pd.DataFrame, pd.DataFrame]:
    import pandas as pd

    from hikisig.catalog import load_catalog
    from hikisig.cohort.cells import parse_cells

    if not path.exists():
        raise InputError([Problem(str(path), "file not found")])
    sep = "\t" if path.suffix.lower() in (".tsv", ".tab") else ","
    df = pd.read_csv(path, sep=sep, dtype=str, keep_default_na=False, encoding="utf-8-sig")
    cols = list(df.columns)
    wanted = list(dict.fromkeys([*meta, *numeric]))
    missing = [m for m in wanted if m not in cols]
    id_col = id_column or ("id" if "id" in cols else cols[0])
    if id_col not in cols:
        missing.insert(0, id_col)
    if missing:
        raise InputError([Problem(str(path), f"no column {m!r} (columns: {', '.join(cols[:10])}"
                                  f"{', ...' if len(cols) > 10 else ''})", row=1) for m in missing])
    analytes = [c for c in cols if c not in wanted and c != id_col]
    pc = ProblemCollector(str(path))
    rows = list(range(2, len(df) + 2))
    ids = df[id_col].astype(str).str.strip()
    dup = ids[ids.duplicated()]
    for k in dup.index[:10]:
        pc.add("duplicate id", row=rows[k], column=id_col, value=ids[k])
    cells = parse_cells(df[analytes], file=str(path), rows=rows, problems=pc)
    obs = df[wanted].copy()
    obs.index = pd.Index(ids, name="id")
    for c in numeric:
        num = pd.to_numeric(obs[c].replace("", None), errors="coerce")
        bad = [i for i, (a, b) in enumerate(zip(obs[c], num, strict=True)) if a != "" and pd.isna(b)]
        for k in bad[:10]:
            pc.add("expected a number", row=rows[k], column=c, value=obs[c].iat[k])
        obs[c] = num.to_numpy()
    pc.raise_if_any()
    cat = load_catalog()
    names: list[str] = []
    for a in analytes:
        hit = cat.resolve(a)
        names.append(hit.id if hit is not None and hit.id not in names and hit.id not in analytes
                     else a)
    return pd.DataFrame(cells.values, index=obs.index, columns=names), obs


def _from_store(meta: list[str], numeric: list[str], visit: int | None, all_visits: bool
                ) -> tuple[pd.DataFrame, pd.DataFrame]:
    import numpy as np

    from hikisig.cohort.assessments import load_assessments
    from hikisig.cohort.dataset import load_dataset

    store = open_store()
    study = study_for_read(store)
    ds = load_dataset(store, study)
    obs = ds.obs[ds.obs["sample_type"] == "study"]
    if not all_visits:
        if visit is None:
            first = obs.groupby("participant")["visit"].transform("min")
            obs = obs[obs["visit"] == first]
        else:
            obs = obs[obs["visit"] == visit]
    obs = obs.copy()
    for c in [*meta, *numeric]:
        if c in obs.columns:
            continue
        try:
            scores = load_assessments(store, study, c)
        except HikisigError:
            raise HikisigError(f"study {study!r} has no sample/participant field or instrument "
                               f"{c!r}") from None
        key = scores.set_index(["id", "visit"])["total"]
        obs[c] = [key.get((p, v), np.nan) for p, v in zip(obs["participant"], obs["visit"],
                                                          strict=True)]
    return ds.X.loc[obs.index], obs


def load_table(file: Path | None, *, meta: list[str], numeric: list[str],
               id_column: str | None = None, visit: int | None = None, all_visits: bool = False
               ) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Analytes (samples x analytes, catalog ids where resolvable) and the named metadata.

    With a FILE: a wide CSV (id column, metadata columns, analyte columns); otherwise the
    study in the store (first visit by default; a name that is not a field is read as an
    instrument's total score).
    """
    if file is not None:
        return _from_file(file, id_column, meta, numeric)
    return _from_store(meta, numeric, visit, all_visits)
