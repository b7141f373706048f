"""Reading a wide analysis table (id, metadata, analytes) for statistics and models."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

from hikisig.errors import InputError, Problem, ProblemCollector

if TYPE_CHECKING:
    import pandas as pd

__all__ = ["analyte_names", "read_wide_table"]


def read_wide_table(path: Path, id_column: str | None, meta: list[str], numeric: list[str]
                    ) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Analytes (catalog ids where the name resolves) and the named metadata of a wide CSV.

    Every column other than the id and the named metadata is an analyte, except columns
    that name a standard metadata field (``visit``, ``age``, ``batch``, ...; see
    :data:`hikisig.cohort.metadata.FIELD_ALIASES`) and text columns (not one value is a
    number, e.g. ``subtype`` = A/B or a study name): those are left out and listed in
    ``obs.attrs["not_analysed"]``, as the Parquet reader does. Every unreadable cell of an
    analyte is reported with its row and column (InputError).
    """
    import pandas as pd

    from hikisig.cohort.cells import parse_cells
    from hikisig.cohort.metadata import canonical_field

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
    rest = [c for c in cols if c not in wanted and c != id_col]
    skipped = [c for c in rest if canonical_field(c) is not None or _is_text(df[c])]
    analytes = [c for c in rest if c not in skipped]
    if not analytes:
        raise InputError([Problem(str(path), "no analyte column (columns other than the id, "
                                  "metadata and text columns)", row=1)])
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
    obs.attrs["not_analysed"] = skipped
    return pd.DataFrame(cells.values, index=obs.index, columns=analyte_names(analytes)), obs


def _is_text(column: pd.Series) -> bool:
    """True when a CSV column holds labels, not measurements: some values, none of them a
    number (``12.5``, ``12,5``), a missing-value code or a censored value (``<LOD``)."""
    import pandas as pd

    from hikisig.cohort.cells import DEFAULT_NA_VALUES

    v = column.astype(str).str.strip()
    v = v[(v != "") & ~v.isin(DEFAULT_NA_VALUES)]
    if not len(v):
        return False
    numeric = pd.to_numeric(v, errors="coerce").notna() | v.str.fullmatch(r"[-+]?\d+,\d+")
    return not numeric.any() and not v.str.match(r"[<>]").any()


def analyte_names(analytes: list[str]) -> list[str]:
    """Catalog ids of analyte columns where the name resolves (``Orn`` -> ``ornithine``),
    else the column name; a name never takes an id another column already has.

    Examples
    --------
    >>> analyte_names(["Orn", "feature_1"])
    ['ornithine', 'feature_1']
    """
    from hikisig.catalog import load_catalog

    cat = load_catalog()
    names: list[str] = []
    for a in analytes:
        hit = cat.resolve(a)
        names.append(hit.id if hit is not None and hit.id not in names and hit.id not in analytes
                     else a)
    return names
