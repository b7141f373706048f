"""Readers for the tables that labs and analysis tools produce.

Each reader turns one input (wide CSV/TSV/XLSX/Parquet, long CSV, W4M
three-table TSV, CIMCB tidy Excel, AnnData) into a :class:`ParsedTable`: the
samples with their metadata, the variables (analyte columns) with their units,
and a samples x variables block of values with flags. Readers only read and
validate; :mod:`hikisig.cohort.importer` writes to the store. Every problem of
a file is collected and raised together as one :class:`~hikisig.errors.InputError`.
"""

from __future__ import annotations

import hashlib
import re
import warnings
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from hikisig.cohort.cells import (
    CellBlock,
    MissingCodeWarning,
    parse_cells,
    parse_na_values,
    suspect_codes,
    text_columns,
)
from hikisig.cohort.metadata import canonical_field, metadata_mapping, parse_metadata
from hikisig.cohort.xlsx_guard import check_xlsx
from hikisig.errors import HikisigError, InputError, Problem, ProblemCollector

__all__ = [
    "FORMATS",
    "ParsedTable",
    "ReadOptions",
    "detect_format",
    "file_sha256",
    "is_synthetic_file",
    "parse_units",
    "read_measurements",
]

#: Formats accepted by ``hikisig import measurements --format``.
FORMATS = ("auto", "wide", "long", "w4m", "cimcb", "anndata")

_W4M_PARTS = ("dataMatrix", "sampleMetadata", "variableMetadata")


@dataclass
class ReadOptions:
    """Options of a measurement import (the CLI's flags).

    Attributes
    ----------
    id_column : str, optional
        Column holding the sample id (wide); guessed when not given.
    meta_columns : list of str
        Extra metadata (non-analyte) columns of a wide table.
    na_values : tuple of str
        Missing-value codes.
    decimal_comma : bool
        Cells use a decimal comma.
    sheet : str, optional
        Excel sheet to read (wide).
    unit_row : bool
        The first row under the header holds each column's unit (wide).
    units : dict
        Column -> unit; key ``"*"`` applies to every analyte column (wide).
    optional_meta_columns : list of str
        Metadata columns of a wide table when the file has them (no error when absent).
    text_as_metadata : bool
        Columns of a wide table that hold labels, not one number (a study name, a subtype
        A/B), are metadata; otherwise each of their cells is an error. Analyses read tables
        this way; imports into the store do not.
    """

    id_column: str | None = None
    meta_columns: list[str] = field(default_factory=list)
    na_values: tuple[str, ...] = field(default_factory=lambda: parse_na_values(None))
    decimal_comma: bool = False
    sheet: str | None = None
    unit_row: bool = False
    units: dict[str, str] = field(default_factory=dict)
    optional_meta_columns: list[str] = field(default_factory=list)
    text_as_metadata: bool = False


def parse_units(text: str | None) -> dict[str, str]:
    """A ``--units`` option: one unit for every column, or ``COL=unit`` pairs.

    Examples
    --------
    >>> parse_units("Orn=umol/L, UA=mg/dL")
    {'Orn': 'umol/L', 'UA': 'mg/dL'}
    >>> parse_units("umol/L")
    {'*': 'umol/L'}
    """
    if not text:
        return {}
    units: dict[str, str] = {}
    for part in text.split(","):
        if "=" in part:
            col, unit = part.split("=", 1)
            units[col.strip()] = unit.strip()
        elif part.strip():
            units["*"] = part.strip()
    return units


@dataclass
class ParsedTable:
    """One input file, read and validated, ready to be stored.

    Attributes
    ----------
    file : str
        Display name of the input.
    fmt : str
        The format it was read as.
    sha256 : str
        Content hash (of all files for multi-file formats).
    samples : DataFrame
        One row per sample: ``sample``, ``participant``, ``visit``, ``_row`` (file
        row for messages), standard metadata fields, and ``attributes`` (dict).
    variables : DataFrame
        One row per analyte column: ``name`` (as in the file), ``label``
        (a better name where the format has one), ``unit`` (or None),
        ``attributes`` (dict).
    values : ndarray, shape (n_samples, n_variables)
        Values; NaN where empty or flagged.
    flag_rows, flag_cols, flags, raws
        Flagged cells (see :class:`~hikisig.cohort.cells.CellBlock`).
    meta_columns : dict
        The file's metadata columns -> their name in ``samples`` (a standard field such
        as ``sex`` for ``Gender``, else the column's own name).
    synthetic : bool
        The file was written by ``hikisig synth`` (see :func:`is_synthetic_file`).
    """

    file: str
    fmt: str
    sha256: str
    samples: pd.DataFrame
    variables: pd.DataFrame
    values: np.ndarray
    flag_rows: np.ndarray
    flag_cols: np.ndarray
    flags: list[str]
    raws: list[str]
    meta_columns: dict[str, str] = field(default_factory=dict)
    synthetic: bool = False

    @property
    def n_values(self) -> int:
        """Number of non-empty cells (values and flagged cells)."""
        return int(np.count_nonzero(~np.isnan(self.values))) + len(self.flags)


def file_sha256(*paths: Path) -> str:
    """SHA-256 of one file, or of the concatenated hashes of several files."""
    digests = []
    for p in paths:
        h = hashlib.sha256()
        with open(p, "rb") as fh:
            for chunk in iter(lambda: fh.read(1 << 20), b""):
                h.update(chunk)
        digests.append(h.hexdigest())
    if len(digests) == 1:
        return digests[0]
    return hashlib.sha256("".join(digests).encode()).hexdigest()


def _listed(items: Any, pc: ProblemCollector) -> Any:
    """The items a collector still lists; the others are counted ("... and 57 more")."""
    room = max(0, pc.limit - len(pc))
    pc.count(len(items) - min(room, len(items)))
    return items[:room]


def _fail(file: str, message: str, **kw: Any) -> InputError:
    return InputError([Problem(file, message, **kw)])


def _is_excel(p: Path) -> bool:
    return p.suffix.lower() in {".xlsx", ".xlsm", ".xls"}


def _read_excel(path: Path, sheet_name: Any) -> Any:
    """pandas.read_excel with every cell as read and openpyxl's format chatter silenced
    (after :func:`~hikisig.cohort.xlsx_guard.check_xlsx`: no zip bombs)."""
    check_xlsx(path)
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", category=UserWarning, module="openpyxl")
        return pd.read_excel(path, sheet_name=sheet_name, dtype=object)


def _w4m_paths(path: Path) -> dict[str, Path] | None:
    """Find the three W4M files from any one of them or their folder."""
    if path.is_dir():
        found: dict[str, Path] = {}
        for part in _W4M_PARTS:
            hits = sorted(path.glob(f"*{part}*.tsv")) + sorted(path.glob(f"*{part}*.txt"))
            if len(hits) == 1:
                found[part] = hits[0]
        return found if len(found) == 3 else None
    for part in _W4M_PARTS:
        if part in path.name:
            out = {p: path.with_name(path.name.replace(part, p)) for p in _W4M_PARTS}
            return out if all(q.exists() for q in out.values()) else None
    return None


def detect_format(path: Path) -> str:
    """Guess the format of a measurement file.

    Examples
    --------
    >>> detect_format(Path("x_dataMatrix.tsv"))  # doctest: +SKIP
    'w4m'
    """
    if path.is_dir() or any(part in path.name for part in _W4M_PARTS):
        return "w4m"
    suffix = path.suffix.lower()
    if suffix == ".h5ad":
        return "anndata"
    if _is_excel(path):
        check_xlsx(path)
        try:
            with warnings.catch_warnings():
                warnings.filterwarnings("ignore", category=UserWarning, module="openpyxl")
                sheets = pd.ExcelFile(path).sheet_names
        except Exception as exc:
            raise _fail(str(path), f"cannot read as Excel: {exc}") from exc
        return "cimcb" if {"Data", "Peak"} <= set(sheets) else "wide"
    if suffix == ".parquet":
        cols = [c.casefold() for c in _read_parquet_columns(path)]
        return "long" if {"analyte", "value"} <= set(cols) else "wide"
    header = _read_header(path)
    if {"analyte", "value"} <= {h.strip().casefold() for h in header}:
        return "long"
    return "wide"


def _read_parquet_columns(path: Path) -> list[str]:
    import pyarrow.parquet as pq

    return list(pq.read_schema(path).names)


def _sep_for(path: Path, first_line: str) -> str:
    if path.suffix.lower() in {".tsv", ".tab"}:
        return "\t"
    counts = {sep: first_line.count(sep) for sep in ("\t", ";", ",")}
    best = max(counts, key=lambda k: counts[k])
    return best if counts[best] > 0 else ","


def _read_header(path: Path) -> list[str]:
    try:
        with open(path, encoding="utf-8-sig") as fh:
            first = fh.readline().rstrip("\r\n")
    except UnicodeDecodeError as exc:
        raise _fail(str(path), "is not UTF-8 text; save it as UTF-8 CSV") from exc
    return first.split(_sep_for(path, first))


def _read_text_table(path: Path, sep: str | None = None) -> pd.DataFrame:
    """Read a delimited text file with every cell as a string."""
    try:
        if sep is None:
            with open(path, encoding="utf-8-sig") as fh:
                sep = _sep_for(path, fh.readline())
        df = pd.read_csv(path, sep=sep, dtype=str, keep_default_na=False, na_filter=False,
                         encoding="utf-8-sig", skip_blank_lines=True)
    except UnicodeDecodeError as exc:
        raise _fail(str(path), "is not UTF-8 text; save it as UTF-8 CSV") from exc
    except pd.errors.ParserError as exc:
        msg = str(exc)
        m = re.search(r"line (\d+)", msg)
        raise _fail(str(path), f"cannot be read as a table: {msg}",
                    row=int(m.group(1)) if m else None) from exc
    except pd.errors.EmptyDataError as exc:
        raise _fail(str(path), "is empty") from exc
    _check_columns(df, str(path))
    return df


def _check_columns(df: pd.DataFrame, file: str) -> None:
    pc = ProblemCollector(file)
    seen: dict[str, int] = {}
    for i, c in enumerate(df.columns):
        name = str(c)
        base = re.sub(r"\.\d+$", "", name)
        if name.startswith("Unnamed:") or name.strip() == "":
            pc.add("column has no name in the header", row=1, column=f"#{i + 1}")
        elif base in seen and base != name:
            pc.add(f"duplicate column name (also column #{seen[base] + 1})", row=1, column=base)
        seen.setdefault(name, i)
    pc.raise_if_any()


def _read_any_table(path: Path, opts: ReadOptions) -> tuple[pd.DataFrame, int]:
    """Read a wide table; returns the frame and the file row of its first data row."""
    if _is_excel(path):
        try:
            df = _read_excel(path, opts.sheet or 0)
        except ValueError as exc:
            raise _fail(str(path), f"cannot read sheet {opts.sheet!r}: {exc}") from exc
        except Exception as exc:
            raise _fail(str(path), f"cannot read as Excel: {exc}") from exc
        _check_columns(df, str(path))
        return df, 2
    if path.suffix.lower() == ".parquet":
        return pd.read_parquet(path), 2
    return _read_text_table(path), 2


def _guess_id_column(columns: Sequence[str]) -> str:
    """The sample id column: one named like a sample id, else one named ``id``, else one named
    like a participant, else the first column."""
    for c in columns:
        if canonical_field(str(c)) == "sample":
            return str(c)
    for c in columns:
        if str(c).strip().casefold() == "id":
            return str(c)
    for c in columns:
        if canonical_field(str(c)) == "participant":
            return str(c)
    return str(columns[0])


def _finish_samples(meta: pd.DataFrame, ids: list[str], rows: list[int], file: str,
                    pc: ProblemCollector) -> pd.DataFrame:
    """Add sample/participant/visit columns and check sample ids."""
    out = meta.copy()
    out.insert(0, "sample", ids)
    out["_row"] = rows
    first_row: dict[str, int] = {}
    for sid, row in zip(ids, rows, strict=True):
        if sid == "":
            pc.add("empty sample id (expected a unique id in every row)", row=row)
        elif sid in first_row:
            pc.add(f"duplicate sample id (first seen in row {first_row[sid]})", row=row, value=sid)
        else:
            first_row[sid] = row
    if "sample_type" not in out:
        out["sample_type"] = "study"
    out["sample_type"] = out["sample_type"].where(out["sample_type"].notna(), "study")
    if "participant" not in out:
        out["participant"] = None
    if "visit" not in out:
        out["visit"] = None
    is_study = out["sample_type"].eq("study")
    part = out["participant"].where(out["participant"].notna(), out["sample"])
    out["participant"] = part.where(is_study, None)
    out["visit"] = out["visit"].where(out["visit"].notna() | ~is_study, 1).where(is_study, None)
    return out


def _variables(names: list[str], units: list[str | None], labels: list[str] | None = None,
               attributes: list[dict[str, Any]] | None = None,
               rows: list[int] | None = None) -> pd.DataFrame:
    out = pd.DataFrame({
        "name": names,
        "label": labels if labels is not None else names,
        "unit": units,
        "attributes": attributes if attributes is not None else [{} for _ in names],
    })
    if rows is not None:
        out["row"] = rows
    return out


def _table(file: str, fmt: str, sha: str, samples: pd.DataFrame, variables: pd.DataFrame,
           cells: CellBlock, meta_source: Sequence[Any] = ()) -> ParsedTable:
    mapping = metadata_mapping(list(meta_source), exclude=frozenset({"sample"}))
    return ParsedTable(file, fmt, sha, samples.reset_index(drop=True), variables, cells.values,
                       cells.flag_rows, cells.flag_cols, cells.flags, cells.raws,
                       meta_columns={str(c): str(mapping.get(c, c)) for c in meta_source})


# -- wide ------------------------------------------------------------------
def read_wide(path: Path, opts: ReadOptions) -> ParsedTable:
    """Read a wide table: one row per sample, analyte columns plus metadata."""
    file = str(path)
    df, first_row = _read_any_table(path, opts)
    pc = ProblemCollector(file)
    if df.shape[1] < 2:
        raise _fail(file, "has fewer than two columns (expected an id column and analyte columns)")
    columns = [str(c) for c in df.columns]
    df.columns = columns
    id_col = opts.id_column or _guess_id_column(columns)
    if id_col not in columns:
        raise _fail(file, f"no column {id_col!r} (columns: {', '.join(columns[:12])}"
                    f"{', ...' if len(columns) > 12 else ''})", row=1)
    for mc in opts.meta_columns:
        if mc not in columns:
            pc.add(f"metadata column {mc!r} given by --meta-columns is not in the file", row=1)
    pc.raise_if_any()
    named = {*opts.meta_columns, *opts.optional_meta_columns}
    meta_cols = [c for c in columns if c != id_col and (c in named or canonical_field(c))]
    analyte_cols = [c for c in columns if c != id_col and c not in meta_cols]
    if opts.text_as_metadata and analyte_cols:
        body = df.iloc[1:] if opts.unit_row else df
        text = set(text_columns(body[analyte_cols], opts.na_values))
        meta_cols = [c for c in columns if c in meta_cols or c in text]
        analyte_cols = [c for c in analyte_cols if c not in text]
    if not analyte_cols:
        raise _fail(file, "has no analyte columns (every column is the id or metadata)")
    units: dict[str, str | None] = {c: opts.units.get(c, opts.units.get("*")) for c in analyte_cols}
    unknown_unit_cols = [c for c in opts.units if c != "*" and c not in analyte_cols]
    for c in unknown_unit_cols:
        pc.add("a unit is given for this column but it is not an analyte column of the file",
               column=c)
    if opts.unit_row:
        if len(df) == 0:
            raise _fail(file, "--unit-row given but the file has no rows")
        unit_cells = df.iloc[0]
        for c in analyte_cols:
            u = unit_cells[c]
            units[c] = None if pd.isna(u) or str(u).strip() == "" else str(u).strip()
        df = df.iloc[1:].reset_index(drop=True)
        first_row += 1
    rows = list(range(first_row, first_row + len(df)))
    ids = ["" if pd.isna(v) else _id_text(v) for v in df[id_col].tolist()]
    meta = parse_metadata(df[meta_cols], rows, pc)
    samples = _finish_samples(meta, ids, rows, file, pc)
    cells = parse_cells(df[analyte_cols], file=file, rows=rows, problems=pc,
                        na_values=opts.na_values, decimal_comma=opts.decimal_comma)
    pc.raise_if_any()
    variables = _variables(analyte_cols, [units[c] for c in analyte_cols])
    return _table(file, "wide", file_sha256(path), samples, variables, cells, meta_cols)


def _id_text(v: Any) -> str:
    if isinstance(v, float) and v.is_integer():
        return str(int(v))
    return str(v).strip()


# -- long ------------------------------------------------------------------
_LONG_REQUIRED = ("participant", "visit", "analyte", "value")


def read_long(path: Path, opts: ReadOptions) -> ParsedTable:
    """Read a long table: participant, visit, analyte, value, unit (one value per row)."""
    file = str(path)
    if path.suffix.lower() == ".parquet":
        df = pd.read_parquet(path)
    elif _is_excel(path):
        df, _ = _read_any_table(path, opts)
    else:
        df = _read_text_table(path)
    cols = {str(c).strip().casefold(): str(c) for c in df.columns}
    if "participant" not in cols:
        for c in df.columns:
            if canonical_field(str(c)) == "participant":
                cols["participant"] = str(c)
    missing = [c for c in _LONG_REQUIRED if c not in cols and not (c in ("participant", "visit")
                                                                    and "sample" in cols)]
    if missing:
        raise _fail(file, f"missing column(s) {', '.join(missing)} (a long table needs "
                    f"participant, visit, analyte, value and optionally unit, sample)", row=1)
    pc = ProblemCollector(file)
    n = len(df)
    rows = list(range(2, n + 2))
    text = {k: df[v].astype(object).where(df[v].notna(), "").astype(str).str.strip()
            for k, v in cols.items()}
    analyte = text["analyte"]
    unit = text.get("unit", pd.Series([""] * n, index=df.index))
    for r in _listed(np.flatnonzero((analyte == "").to_numpy()), pc):
        pc.add("empty analyte name", row=int(rows[r]), column=cols["analyte"])
    meta_frame = pd.DataFrame({cols[k]: df[cols[k]] for k in cols
                               if k not in ("analyte", "value", "unit")})
    # one sample per (sample) or (participant, visit)
    if "sample" in cols:
        sample_key = text["sample"]
    else:
        visit_txt = text["visit"]
        sample_key = text["participant"] + "_v" + visit_txt.str.lstrip("vV")
    codes, uniq = pd.factorize(sample_key)
    first_idx = pd.Series(np.arange(n)).groupby(codes).first().to_numpy()
    meta_first = meta_frame.iloc[first_idx].reset_index(drop=True)
    meta_rows = [int(rows[i]) for i in first_idx]
    meta = parse_metadata(meta_first, meta_rows, pc, exclude=frozenset())
    # every row of a sample must agree on its metadata
    for col in meta_frame.columns:
        col_text = meta_frame[col].astype(object).where(meta_frame[col].notna(), "").astype(str)
        first_vals = col_text.iloc[first_idx].to_numpy()[codes]
        bad = np.flatnonzero(col_text.to_numpy() != first_vals)
        for r in _listed(bad, pc):
            pc.add(f"differs from row {meta_rows[codes[r]]} of the same sample "
                   f"(expected {first_vals[r]!r})", row=int(rows[r]), column=col,
                   value=col_text.iloc[r])
    ids = [str(u) for u in uniq]
    samples = _finish_samples(meta.drop(columns=["sample"], errors="ignore"), ids, meta_rows,
                              file, pc)
    pairs = pd.DataFrame({"analyte": analyte.to_numpy(), "unit": unit.to_numpy()})
    vcodes = pairs.groupby(["analyte", "unit"], sort=False).ngroup().to_numpy()
    vfirst = pd.Series(np.arange(n)).groupby(vcodes).first().to_numpy()
    n_vars = len(vfirst)
    # duplicates of (sample, analyte)
    pair = pd.Series(codes.astype(np.int64) * (n_vars + 1) + vcodes)
    dup = pair.duplicated(keep="first").to_numpy()
    if dup.any():
        firsts = pd.Series(np.arange(n)).groupby(pair.to_numpy()).transform("first").to_numpy()
        for r in _listed(np.flatnonzero(dup), pc):
            pc.add(f"second value for sample {ids[codes[r]]!r} and analyte {analyte.iloc[r]!r} "
                   f"(first in row {int(rows[firsts[r]])})", row=int(rows[r]), column=cols["value"])
    an_codes = pd.factorize(analyte)[0]
    pair2 = pd.Series(codes.astype(np.int64) * (n + 1) + an_codes)
    dup2 = pair2.duplicated().to_numpy() & ~dup
    for r in _listed(np.flatnonzero(dup2), pc):
        pc.add(f"sample {ids[codes[r]]!r} has analyte {analyte.iloc[r]!r} twice, in different "
               "units", row=int(rows[r]), column=cols.get("unit", cols["value"]))
    cells1 = parse_cells(df[[cols["value"]]], file=file, rows=rows, problems=pc,
                         na_values=opts.na_values, decimal_comma=opts.decimal_comma)
    pc.raise_if_any()
    values = np.full((len(uniq), n_vars), np.nan)
    values[codes, vcodes] = cells1.values[:, 0]
    fr = codes[cells1.flag_rows]
    fc = vcodes[cells1.flag_rows]
    names = [str(analyte.iloc[i]) for i in vfirst]
    vunits: list[str | None] = [str(unit.iloc[i]) or None for i in vfirst]
    variables = _variables(names, vunits, rows=[int(rows[i]) for i in vfirst])
    cells = CellBlock(values, fr.astype(np.int64), fc.astype(np.int64), cells1.flags, cells1.raws)
    return _table(file, "long", file_sha256(path), samples, variables, cells, list(meta_frame.columns))


# -- W4M three tables ---------------------------------------------------------
def read_w4m(path: Path, opts: ReadOptions) -> ParsedTable:
    """Read Workflow4Metabolomics' dataMatrix / sampleMetadata / variableMetadata TSVs.

    ``path`` is any one of the three files or the folder holding them.
    """
    parts = _w4m_paths(path)
    if parts is None:
        raise _fail(str(path), "cannot find the three W4M files (expected *dataMatrix*.tsv, "
                    "*sampleMetadata*.tsv and *variableMetadata*.tsv side by side)")
    dm_path, sm_path, vm_path = parts["dataMatrix"], parts["sampleMetadata"], parts["variableMetadata"]
    dm = _read_text_table(dm_path, "\t")
    sm = _read_text_table(sm_path, "\t")
    vm = _read_text_table(vm_path, "\t")
    pc_dm, pc_sm, pc_vm = (ProblemCollector(str(p)) for p in (dm_path, sm_path, vm_path))
    var_names = dm.iloc[:, 0].str.strip().tolist()
    sample_names = [str(c).strip() for c in dm.columns[1:]]
    sm_ids = sm.iloc[:, 0].str.strip().tolist()
    vm_ids = vm.iloc[:, 0].str.strip().tolist()
    if set(sample_names) != set(sm_ids):
        for s in _listed(sorted(set(sample_names) - set(sm_ids)), pc_sm):
            pc_sm.add("sample of the dataMatrix is missing from sampleMetadata", value=s)
        for s in _listed(sorted(set(sm_ids) - set(sample_names)), pc_dm):
            pc_dm.add("sample of sampleMetadata has no column in the dataMatrix", value=s)
    if set(var_names) != set(vm_ids):
        for s in _listed(sorted(set(var_names) - set(vm_ids)), pc_vm):
            pc_vm.add("variable of the dataMatrix is missing from variableMetadata", value=s)
        for s in _listed(sorted(set(vm_ids) - set(var_names)), pc_dm):
            pc_dm.add("variable of variableMetadata has no row in the dataMatrix", value=s)
    for pc in (pc_dm, pc_sm, pc_vm):
        pc.raise_if_any()
    # samples in sampleMetadata order; the metadata file's rows give the line numbers
    sm_rows = list(range(2, len(sm) + 2))
    meta_cols = [c for c in sm.columns[1:]]
    meta = parse_metadata(sm[meta_cols], sm_rows, pc_sm)
    samples = _finish_samples(meta, sm_ids, sm_rows, str(sm_path), pc_sm)
    pc_sm.raise_if_any()
    # values: dataMatrix is variables x samples; reorder columns to sampleMetadata order
    block = dm.iloc[:, 1:]
    block.columns = sample_names
    block = block[sm_ids].T
    block.columns = var_names
    dm_rows = list(range(2, len(dm) + 2))
    cells = _parse_transposed(block, str(dm_path), dm_rows, sm_ids, opts, pc_dm)
    pc_dm.raise_if_any()
    vm_idx = {v: i for i, v in enumerate(vm_ids)}
    vm_attr_cols = list(vm.columns[1:])
    unit_col = next((c for c in vm_attr_cols if c.strip().casefold() in ("unit", "units")), None)
    attrs: list[dict[str, Any]] = []
    units: list[str | None] = []
    for v in var_names:
        rec = vm.iloc[vm_idx[v]]
        attrs.append({c: rec[c] for c in vm_attr_cols if c != unit_col and str(rec[c]).strip()})
        units.append(str(rec[unit_col]).strip() or None if unit_col else None)
    variables = _variables(var_names, units, attributes=attrs)
    sha = file_sha256(dm_path, sm_path, vm_path)
    return _table(f"{dm_path}", "w4m", sha, samples, variables, cells, meta_cols)


def _parse_transposed(block: pd.DataFrame, file: str, var_rows: list[int], sample_ids: list[str],
                      opts: ReadOptions, pc: ProblemCollector) -> CellBlock:
    """Parse a samples x variables block read from a variables x samples file.

    Problems name the file's row (the variable) and column (the sample).
    """
    tmp = ProblemCollector(file, limit=pc.limit)
    cells = parse_cells(block, file=file, rows=list(range(len(block))), problems=tmp,
                        na_values=opts.na_values, decimal_comma=opts.decimal_comma)
    var_index = {str(c): i for i, c in enumerate(block.columns)}
    for p in tmp.problems:
        sample = sample_ids[p.row] if p.row is not None else None
        row = var_rows[var_index[p.column]] if p.column in var_index else None
        pc.add(p.message, row=row, column=sample, value=p.value)
    pc.extend(tmp)
    return cells


# -- CIMCB tidy Excel ---------------------------------------------------------
def read_cimcb(path: Path, opts: ReadOptions) -> ParsedTable:
    """Read a CIMCB "tidy" workbook: a Data sheet (samples) and a Peak sheet (variables)."""
    file = str(path)
    try:
        book = _read_excel(path, ["Data", "Peak"])
    except ValueError as exc:
        raise _fail(file, f"expected sheets 'Data' and 'Peak': {exc}") from exc
    except Exception as exc:
        raise _fail(file, f"cannot read as Excel: {exc}") from exc
    data, peak = book["Data"], book["Peak"]
    data.columns = [str(c).strip() for c in data.columns]
    peak.columns = [str(c).strip() for c in peak.columns]
    _check_columns(data, f"{file} [Data]")
    pc = ProblemCollector(f"{file} [Data]")
    pk = ProblemCollector(f"{file} [Peak]")
    if "Name" not in peak.columns:
        raise _fail(f"{file} [Peak]", "missing column 'Name' (the Data sheet's peak columns)", row=1)
    names = [str(n).strip() for n in peak["Name"].tolist()]
    for i, n in enumerate(names):
        if n not in data.columns:
            pk.add("peak has no column in the Data sheet", row=i + 2, column="Name", value=n)
    pk.raise_if_any()
    id_col = opts.id_column or ("SampleID" if "SampleID" in data.columns else _guess_id_column(
        list(data.columns)))
    meta_cols = [c for c in data.columns if c not in names and c != id_col]
    rows = list(range(2, len(data) + 2))
    meta = parse_metadata(data[meta_cols], rows, pc)
    ids = ["" if pd.isna(v) else _id_text(v) for v in data[id_col].tolist()]
    qc_col = next((c for c in meta_cols if c.casefold() == "qc"), None)
    if qc_col is not None:  # the CIMCB QC flag (1 for pooled QC samples)
        flag = data[qc_col].map(lambda v: str(v).strip().casefold() in ("1", "1.0", "true", "yes"))
        if "sample_type" not in meta:
            meta["sample_type"] = None
        meta.loc[flag.to_numpy(), "sample_type"] = "qc"
    samples = _finish_samples(meta, ids, rows, file, pc)
    cells = parse_cells(data[names], file=f"{file} [Data]", rows=rows, problems=pc,
                        na_values=opts.na_values, decimal_comma=opts.decimal_comma)
    pc.raise_if_any()
    labels = [str(v).strip() if pd.notna(v) else n for v, n in
              zip(peak.get("Label", pd.Series(names)).tolist(), names, strict=True)]
    extra = [c for c in peak.columns if c not in ("Name", "Label", "Idx")]
    attrs = [{c: _py(peak.iloc[i][c]) for c in extra if pd.notna(peak.iloc[i][c])}
             for i in range(len(peak))]
    unit_col = next((c for c in peak.columns if c.casefold() in ("unit", "units")), None)
    units = [str(peak.iloc[i][unit_col]).strip() if unit_col and pd.notna(peak.iloc[i][unit_col])
             else None for i in range(len(peak))]
    for a in attrs:
        if unit_col:
            a.pop(unit_col, None)
    variables = _variables(names, units, labels=labels, attributes=attrs)
    return _table(file, "cimcb", file_sha256(path), samples, variables, cells, meta_cols)


def _py(v: Any) -> Any:
    return v.item() if hasattr(v, "item") else v


# -- AnnData --------------------------------------------------------------------
def read_anndata(path: Path, opts: ReadOptions) -> ParsedTable:
    """Read an AnnData ``.h5ad`` file (obs = samples, var = analytes)."""
    import anndata as ad

    file = str(path)
    try:
        adata = ad.read_h5ad(path)
    except Exception as exc:
        raise _fail(file, f"cannot read as AnnData: {exc}") from exc
    return parse_anndata(adata, file, file_sha256(path))


def parse_anndata(adata: Any, file: str = "AnnData", sha: str = "") -> ParsedTable:
    """An AnnData object (obs = samples, var = analytes) as a :class:`ParsedTable`, with the
    checks of every reader (ids, metadata values, non-finite values)."""
    pc = ProblemCollector(file)
    obs = adata.obs.copy()
    rows = list(range(1, len(obs) + 1))
    skip = {"participant_attributes", "sample_attributes"}
    meta_cols = [c for c in obs.columns if c not in skip]
    meta = parse_metadata(obs[meta_cols], rows, pc)
    ids = [str(i) for i in obs.index]
    samples = _finish_samples(meta, ids, rows, file, pc)
    x = adata.X
    if hasattr(x, "toarray"):
        x = x.toarray()
    values = np.asarray(x, dtype=np.float64)
    block = pd.DataFrame(values, columns=[str(v) for v in adata.var_names])
    cells = parse_cells(block, file=file, rows=rows, problems=pc, na_values=())
    pc.raise_if_any()
    var = adata.var
    labels = [str(v) for v in var["display_name"]] if "display_name" in var else None
    units: list[str | None] = (
        [None if pd.isna(u) or str(u) == "" else str(u) for u in var["unit"]]
        if "unit" in var else [None] * var.shape[0])
    variables = _variables([str(v) for v in adata.var_names], units, labels=labels)
    table = _table(file, "anndata", sha, samples, variables, cells, meta_cols)
    note = adata.uns.get("hikisig", {})
    table.synthetic = isinstance(note, dict) and str(note.get("synthetic", "")) == "true"
    return table


_READERS = {"wide": read_wide, "long": read_long, "w4m": read_w4m, "cimcb": read_cimcb,
            "anndata": read_anndata}


#: The notice ``hikisig synth`` writes beside its files.
SYNTHETIC_NOTICE = "SYNTHETIC.txt"


def is_synthetic_file(path: str | Path) -> bool:
    """Whether a file was written by ``hikisig synth``: a Parquet file whose ``hikisig``
    metadata says so, or any file with the synthetic notice (``SYNTHETIC.txt``) beside it.

    Examples
    --------
    >>> is_synthetic_file("no/such/file.csv")
    False
    """
    p = Path(path)
    folder = p if p.is_dir() else p.parent
    if (folder / SYNTHETIC_NOTICE).is_file():
        return True
    if p.is_file() and p.suffix.lower() == ".parquet":
        import json

        import pyarrow.parquet as pq

        try:
            meta = pq.read_schema(p).metadata or {}
            return str(json.loads(meta.get(b"hikisig", b"{}")).get("synthetic", "")) == "true"
        except Exception:  # not a readable Parquet file: the reader reports it
            return False
    return False


def read_measurements(path: str | Path, fmt: str = "auto",
                      options: ReadOptions | None = None) -> ParsedTable:
    """Read and validate a measurement file.

    Parameters
    ----------
    path : str or Path
        The file (for W4M: any of the three files, or their folder).
    fmt : {"auto", "wide", "long", "w4m", "cimcb", "anndata"}
        The format; ``auto`` guesses from the name, extension and header.
    options : ReadOptions, optional
        Reader options.

    Returns
    -------
    ParsedTable

    Raises
    ------
    InputError
        With one problem per bad cell, row or column.

    Examples
    --------
    >>> t = read_measurements("sacurine_dataMatrix.tsv")  # doctest: +SKIP
    >>> t.values.shape                                      # doctest: +SKIP
    (183, 109)
    """
    p = Path(path)
    if not p.exists():
        raise _fail(str(path), "file not found")
    if fmt not in FORMATS:
        raise _fail(str(path), f"unknown format {fmt!r} (expected one of {', '.join(FORMATS)})")
    opts = options or ReadOptions()
    chosen = fmt
    try:
        chosen = detect_format(p) if fmt == "auto" else fmt
        if p.is_dir() and chosen != "w4m":
            raise _fail(str(path), "is a folder (only the w4m format reads a folder)")
        table = _READERS[chosen](p, opts)
        table.synthetic = table.synthetic or is_synthetic_file(p)
        names = [str(n) for n in table.variables["name"]]
        for text in suspect_codes(table.values, names, opts.na_values, file=table.file):
            warnings.warn(text, MissingCodeWarning, stacklevel=2)
        return table
    except HikisigError:
        raise
    except Exception as exc:  # a corrupt parquet/gzip/zip/xlsx: the libraries raise many kinds
        detail = (str(exc) or type(exc).__name__).splitlines()[0][:300]
        what = "cannot be read" if chosen == "auto" else f"cannot be read as {chosen}"
        raise _fail(str(path), f"{what}: {detail}") from exc
