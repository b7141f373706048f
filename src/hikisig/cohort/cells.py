"""Vectorised parsing of measurement cells.

A lab table's cells are numbers, missing-value codes (``NA``, ``-9``), or
censored values (``<LOD``, ``< 0.05``, ``>ULOQ``). :func:`parse_cells` turns a
block of cells into float values plus flags in one pass over the whole block
(no Python loop per analyte), and reports every cell it cannot read.
"""

from __future__ import annotations

import contextlib
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import pandas as pd

from hikisig.errors import ProblemCollector

__all__ = ["DEFAULT_NA_VALUES", "SUSPECT_CODES", "CellBlock", "MissingCodeWarning", "parse_cells",
           "parse_na_values", "suspect_codes", "text_columns"]

#: Missing-value codes recognised when the user gives none.
DEFAULT_NA_VALUES = ("NA", "N/A", "NaN", "nan", "NULL", "null", "ND", "n.d.", "-", ".", "#N/A")

#: Numbers that labs and tools often use to mean "missing": a column holding one of them more
#: than once, undeclared, gets a warning.
SUSPECT_CODES = (-9.0, -99.0, -999.0, 999.0, 9999.0)

FLAG_MISSING = "missing"
FLAG_BELOW = "below_lod"
FLAG_ABOVE = "above_uloq"


@dataclass
class CellBlock:
    """Parsed cells of a block of analyte columns.

    Attributes
    ----------
    values : ndarray of float64, shape (n_rows, n_columns)
        The numbers; NaN where a cell is empty or flagged.
    flag_rows, flag_cols : ndarray of int
        Positions of flagged cells.
    flags, raws : list of str
        The flag (``missing``, ``below_lod``, ``above_uloq``) and the text read.
    """

    values: np.ndarray
    flag_rows: np.ndarray
    flag_cols: np.ndarray
    flags: list[str]
    raws: list[str]


def parse_na_values(text: str | Sequence[str] | None) -> tuple[str, ...]:
    """The missing-value codes of a ``--na-values`` option (comma-separated, or a list): the
    codes given, added to the default ones (:data:`DEFAULT_NA_VALUES`).

    Examples
    --------
    >>> parse_na_values("-9, -99,NA")[-2:]
    ('-9', '-99')
    >>> parse_na_values(None) == DEFAULT_NA_VALUES
    True
    """
    if text is None:
        return DEFAULT_NA_VALUES
    items = text.split(",") if isinstance(text, str) else list(text)
    given = [str(s).strip() for s in items if str(s).strip()]
    return tuple(dict.fromkeys([*DEFAULT_NA_VALUES, *given]))


def _to_text(block: pd.DataFrame) -> np.ndarray:
    """Object array of stripped strings ('' for empty) from any-typed cells."""
    arr = block.to_numpy(dtype=object, copy=True)
    flat = arr.ravel()
    isna = pd.isna(flat)
    out = np.empty(flat.shape, dtype=object)
    out[isna] = ""
    keep = ~isna
    if keep.any():
        s = pd.Series(flat[keep], dtype=object)
        is_float = s.map(type).eq(float).to_numpy()
        texts = np.empty(len(s), dtype=object)
        if is_float.any():
            texts[is_float] = [repr(v) for v in s[is_float]]
        if (~is_float).any():
            texts[~is_float] = s[~is_float].astype(str).str.strip().to_numpy()
        out[keep] = texts
    return out.reshape(arr.shape)


class MissingCodeWarning(UserWarning):
    """A column holds a number often used as a missing-value code, and it was not declared."""


def suspect_codes(values: np.ndarray, columns: Sequence[str], declared: Sequence[str], *,
                  file: str = "") -> list[str]:
    """Warnings for undeclared usual missing-value codes (:data:`SUSPECT_CODES`) found more
    than once in a column of parsed values (one message per code).

    Examples
    --------
    >>> print(suspect_codes(np.array([[-9.0], [-9.0], [3.0]]), ["putrescine"], ["NA"])[0][:48])
    column 'putrescine' holds -9 in 2 rows: if it me
    """
    taken = set()
    for d in declared:
        with contextlib.suppress(ValueError):
            taken.add(float(d))
    out = []
    for code in SUSPECT_CODES:
        if code in taken or not values.size:
            continue
        counts = np.count_nonzero(values == code, axis=0)
        hit = np.flatnonzero(counts > 1)
        if not hit.size:
            continue
        text = _fmt(code)
        where = ", ".join(f"{columns[j]!r} ({int(counts[j])})" for j in hit[:5])
        more = f" and {hit.size - 5} more columns" if hit.size > 5 else ""
        head = (f"column {columns[hit[0]]!r} holds {text} in {int(counts[hit[0]])} rows"
                if hit.size == 1 else f"columns {where}{more} hold {text}")
        out.append(f"{file + ': ' if file else ''}{head}: if it means missing, declare it with "
                   f"--na-values {text} (source.na_values in a study config)")
    return out


def text_columns(block: pd.DataFrame, na_values: Sequence[str] = DEFAULT_NA_VALUES) -> list[str]:
    """Columns that hold labels, not measurements: some values, none of them a number
    (``12.5``, ``12,5``), a missing-value code or a censored value (``<LOD``).

    Examples
    --------
    >>> text_columns(pd.DataFrame({"study": ["cohort-2021", "x"], "Orn": ["1.5", "n.d."],
    ...                            "note": ["", "NA"]}))
    ['study']
    """
    cols = [i for i, dtype in enumerate(block.dtypes)
            if not pd.api.types.is_numeric_dtype(dtype) or pd.api.types.is_bool_dtype(dtype)]
    if not cols:
        return []
    txt = _to_text(block.iloc[:, cols])
    s = pd.Series(txt.ravel(), dtype=object)
    given = ((s != "") & ~s.isin(set(na_values))).to_numpy().reshape(txt.shape)
    number = (pd.to_numeric(s, errors="coerce").notna() | s.str.fullmatch(r"[-+]?\d+,\d+")
              | s.str[:1].isin(["<", ">"])).to_numpy(dtype=bool).reshape(txt.shape)
    text = given.any(axis=0) & ~number.any(axis=0)
    return [str(block.columns[cols[k]]) for k in np.flatnonzero(text)]


def parse_cells(
    block: pd.DataFrame,
    *,
    file: str,
    rows: Sequence[int],
    problems: ProblemCollector,
    na_values: Sequence[str] = DEFAULT_NA_VALUES,
    decimal_comma: bool = False,
) -> CellBlock:
    """Parse a block of measurement cells.

    Parameters
    ----------
    block : DataFrame
        Cells, one column per analyte, any dtype (numeric columns pass straight).
    file : str
        File name for messages.
    rows : sequence of int
        File row number of each block row.
    problems : ProblemCollector
        Receives one problem per unreadable cell.
    na_values : sequence of str
        Missing-value codes; numeric codes (``-9``) also match ``-9.0``.
    decimal_comma : bool
        Read ``12,5`` as 12.5.

    Returns
    -------
    CellBlock

    Examples
    --------
    >>> from hikisig.errors import ProblemCollector
    >>> b = parse_cells(pd.DataFrame({"Orn": ["1.5", "<LOD", "NA", ""]}), file="f.csv",
    ...                 rows=[2, 3, 4, 5], problems=ProblemCollector("f.csv"))
    >>> b.values[:, 0].tolist()[:1], b.flags
    ([1.5], ['missing', 'below_lod'])
    """
    n, m = block.shape
    numeric_cols = [i for i, dtype in enumerate(block.dtypes) if pd.api.types.is_numeric_dtype(dtype)
                    and not pd.api.types.is_bool_dtype(dtype)]
    values = np.full((n, m), np.nan, dtype=np.float64)
    flag_r: list[np.ndarray] = []
    flag_c: list[np.ndarray] = []
    flags: list[str] = []
    raws: list[str] = []
    na_text = {s for s in na_values}
    na_num = []
    for s in na_values:
        with contextlib.suppress(ValueError):
            na_num.append(float(s.replace(",", ".") if decimal_comma else s))
    na_num_arr = np.array(na_num, dtype=np.float64)

    if numeric_cols:
        num = block.iloc[:, numeric_cols].to_numpy(dtype=np.float64, na_value=np.nan)
        values[:, numeric_cols] = num
    text_cols = [i for i in range(m) if i not in set(numeric_cols)]
    if text_cols:
        txt = _to_text(block.iloc[:, text_cols])
        flat = txt.ravel()
        s = pd.Series(flat, dtype=object)
        empty = (s == "").to_numpy()
        first = s.str[:1]
        # censored cells keep their meaning even when listed as missing-value codes
        below = (first == "<").to_numpy()
        above = (first == ">").to_numpy()
        is_na = s.isin(na_text).to_numpy() & ~below & ~above
        cand = ~(empty | is_na | below | above)
        num_text = s[cand]
        if decimal_comma:
            num_text = num_text.str.replace(",", ".", regex=False)
        coerced = pd.to_numeric(num_text, errors="coerce")
        ok = coerced.notna().to_numpy()
        parsed = np.full(flat.shape, np.nan)
        cand_idx = np.flatnonzero(cand)
        good_idx = cand_idx[ok]
        if good_idx.size:
            # numpy's conversion is correctly rounded, like float()
            parsed[good_idx] = np.asarray(num_text.to_numpy()[ok], dtype=np.float64)
        bad_idx = cand_idx[~ok]
        ncols = len(text_cols)
        # a column in which no cell is a number holds labels: one line for it, with a hint
        bad_cols = np.bincount(bad_idx % ncols, minlength=ncols) if bad_idx.size else np.zeros(ncols)
        given = np.bincount(cand_idx % ncols, minlength=ncols) if cand_idx.size else np.zeros(ncols)
        labels = (bad_cols > 1) & (bad_cols == given) & ~(below | above).reshape(-1, ncols).any(axis=0)
        for col in np.flatnonzero(labels):
            first = bad_idx[bad_idx % ncols == col][0]
            problems.add(f"holds text in every row, not numbers ({int(bad_cols[col])} cells): if it "
                         "is metadata, name it with --meta-columns", row=int(rows[first // ncols]),
                         column=str(block.columns[text_cols[col]]), value=str(flat[first]))
        cells = bad_idx[~labels[bad_idx % ncols]]
        shown = cells[: max(0, problems.limit - len(problems))]
        for k in shown:
            ri, ci = divmod(int(k), ncols)
            val = str(flat[k])
            hint = "is not a number"
            comma_number = pd.notna(pd.to_numeric(val.replace(",", "."), errors="coerce"))
            if not decimal_comma and "," in val and comma_number:
                hint = "is not a number; use a dot as decimal separator, or --decimal-comma"
            problems.add(hint + " (expected a number, a missing-value code or <LOD/>ULOQ)",
                         row=int(rows[ri]), column=str(block.columns[text_cols[ci]]), value=val)
        problems.count(len(cells) - len(shown))
        block_vals = parsed.reshape(txt.shape)
        values[:, text_cols] = block_vals
        for mask, flag in ((is_na, FLAG_MISSING), (below, FLAG_BELOW), (above, FLAG_ABOVE)):
            idx = np.flatnonzero(mask)
            if idx.size:
                r, c = np.divmod(idx, ncols)
                flag_r.append(r)
                flag_c.append(np.asarray(text_cols)[c])
                flags.extend([flag] * idx.size)
                raws.extend(str(x) for x in flat[idx])
    infinite = np.isinf(values)
    if infinite.any():
        r_inf, c_inf = np.nonzero(infinite)
        room = max(0, problems.limit - len(problems))
        for r, c in zip(r_inf[:room], c_inf[:room], strict=True):
            problems.add("is not a finite number (expected a number, a missing-value code or "
                         "<LOD/>ULOQ)", row=int(rows[r]), column=str(block.columns[c]),
                         value=_fmt(values[r, c]))
        problems.count(len(r_inf) - min(room, len(r_inf)))
        values[infinite] = np.nan
    if na_num_arr.size:
        hit = np.isin(values, na_num_arr)
        if hit.any():
            r, c = np.nonzero(hit)
            flag_r.append(r)
            flag_c.append(c)
            flags.extend([FLAG_MISSING] * r.size)
            raws.extend(_fmt(v) for v in values[r, c])
            values[hit] = np.nan
    if flag_r:
        fr = np.concatenate(flag_r).astype(np.int64)
        fc = np.concatenate(flag_c).astype(np.int64)
    else:
        fr = np.zeros(0, dtype=np.int64)
        fc = np.zeros(0, dtype=np.int64)
    return CellBlock(values, fr, fc, flags, raws)


def _fmt(v: float) -> str:
    f = float(v)
    return str(int(f)) if f.is_integer() else repr(f)
