"""Reading questionnaire answers from a table and checking them against an instrument.

The table has one row per participant-visit: an ``id`` column, an optional
``visit`` (and ``date``) column, and one column per item. Item columns may be
named ``item1`` ... ``itemN`` or by the documented aliases ``item_1``,
``q1``, ``Q1``, ``<instrument>_1`` and ``<instrument>1`` (``phq9_9``).
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from hikisig.assess.definition import Instrument
from hikisig.errors import InputError, Problem, ProblemCollector

__all__ = ["ID_ALIASES", "check_answers", "item_number", "read_answers_csv"]

#: Column names accepted for the participant id.
ID_ALIASES = ("id", "participant", "participant_id", "subject", "subject_id", "record_id")
_VISIT_ALIASES = ("visit", "visit_index", "redcap_event_name")
_DATE_ALIASES = ("date", "visit_date", "authored")


def item_number(column: str, instrument_id: str) -> int | None:
    """The item number a column name stands for, or None.

    Examples
    --------
    >>> item_number("item3", "phq9"), item_number("Q3", "phq9"), item_number("phq9_3", "phq9")
    (3, 3, 3)
    >>> item_number("age", "phq9") is None
    True
    """
    name = column.strip().casefold()
    iid = re.escape(instrument_id.casefold())
    m = re.fullmatch(rf"(?:item|q|{iid})[_ .-]?(\d+)", name)
    return int(m.group(1)) if m else None


def read_answers_csv(path: str | Path) -> pd.DataFrame:
    """Read an answers CSV/TSV with every cell as text."""
    p = Path(path)
    if not p.exists():
        raise InputError([Problem(str(path), "file not found")])
    sep = "\t" if p.suffix.lower() in (".tsv", ".tab") else ","
    try:
        return pd.read_csv(p, sep=sep, dtype=str, keep_default_na=False, encoding="utf-8-sig")
    except (UnicodeDecodeError, pd.errors.ParserError, pd.errors.EmptyDataError) as exc:
        raise InputError([Problem(str(path), f"cannot be read as a table: {exc}")]) from exc


def _parse_number(v: Any) -> float | None:
    if v is None or (isinstance(v, float) and np.isnan(v)):
        return np.nan
    s = str(v).strip()
    if s == "" or s.upper() in ("NA", "N/A", "NAN", "."):
        return np.nan
    try:
        return float(s)
    except ValueError:
        return None


def check_answers(frame: pd.DataFrame, instrument: Instrument, file: str = "<answers>",
                  first_row: int = 2) -> pd.DataFrame:
    """Validate raw answers and return the standard answers frame.

    Parameters
    ----------
    frame : DataFrame
        As read: an id column, optional visit/date columns, item columns.
    instrument : Instrument
        The questionnaire the answers belong to.
    file : str
        File name for messages.
    first_row : int
        File row number of the frame's first row (the header is row 1).

    Returns
    -------
    DataFrame
        ``id`` (str), ``visit`` (Int64), ``date`` (str or None), ``item1`` ...
        ``itemN`` (float64; NaN = unanswered).

    Raises
    ------
    InputError
        Every problem: unknown or missing item columns (which also reveals a
        wrong instrument), answers out of range or not whole numbers, missing
        ids, repeated participant-visits. Each names the row, participant,
        visit and item.

    Examples
    --------
    >>> from hikisig.assess.definition import load_instrument
    >>> df = pd.DataFrame({"id": ["P1"], **{f"item{i}": ["0"] for i in range(1, 10)}})
    >>> check_answers(df, load_instrument("phq9"))["item9"].tolist()
    [0.0]
    """
    pc = ProblemCollector(file)
    inst = instrument
    cols = [str(c) for c in frame.columns]
    lower = {c.strip().casefold(): c for c in cols}
    id_col = next((lower[a] for a in ID_ALIASES if a in lower), None)
    if id_col is None:
        raise InputError([Problem(file, f"no id column (expected one of {', '.join(ID_ALIASES)})",
                                  row=1)])
    visit_col = next((lower[a] for a in _VISIT_ALIASES if a in lower), None)
    date_col = next((lower[a] for a in _DATE_ALIASES if a in lower), None)
    item_cols: dict[int, str] = {}
    for c in cols:
        if c in (id_col, visit_col, date_col):
            continue
        n = item_number(c, inst.id)
        if n is None:
            pc.add(f"unknown column (expected {id_col}, visit, date and item1..item{inst.n_items} "
                   f"of {inst.id})", row=1, column=c)
        elif not 1 <= n <= inst.n_items:
            pc.add(f"unknown item: {inst.id} has items 1..{inst.n_items}", row=1, column=c)
        elif n in item_cols:
            pc.add(f"item {n} appears twice (also column {item_cols[n]!r})", row=1, column=c)
        else:
            item_cols[n] = c
    absent = [n for n in range(1, inst.n_items + 1) if n not in item_cols]
    if absent:
        pc.add(f"missing item column(s) {', '.join(f'item{n}' for n in absent)} of {inst.id}",
               row=1)
    n_found = len(item_cols) + sum(1 for p in pc.problems if "unknown item" in p.message)
    if n_found != inst.n_items and n_found > 0:
        pc.add(f"the file has {n_found} item columns but {inst.id} ({inst.name}) has "
               f"{inst.n_items}: is this another instrument?", row=1)
    pc.raise_if_any()

    n = len(frame)
    rows = np.arange(first_row, first_row + n)
    ids = frame[id_col].astype(str).str.strip().tolist()
    visits: list[Any] = [pd.NA] * n
    if visit_col is not None:
        for k, v in enumerate(frame[visit_col].tolist()):
            text = "" if v is None else str(v).strip()
            if text == "":
                continue
            m = re.search(r"\d+", text)
            if m is None:
                pc.add("expected a visit number", row=int(rows[k]), column=visit_col, value=text)
            else:
                visits[k] = int(m.group(0))
    seen: dict[tuple[str, Any], int] = {}
    for k, (pid, vis) in enumerate(zip(ids, visits, strict=True)):
        if pid == "":
            pc.add("empty participant id", row=int(rows[k]), column=id_col)
            continue
        key = (pid, None if vis is pd.NA else vis)
        if key in seen:
            pc.add(f"participant {pid!r}, visit {key[1]}: second row for the same visit "
                   f"(first in row {seen[key]})", row=int(rows[k]))
        else:
            seen[key] = int(rows[k])
    out = pd.DataFrame({"id": ids, "visit": pd.array(visits, dtype="Int64"),
                        "date": frame[date_col].astype(str).str.strip().replace("", None).tolist()
                        if date_col else [None] * n})
    lo, hi = inst.response_min, inst.response_max
    for num in range(1, inst.n_items + 1):
        col = item_cols[num]
        raw = frame[col].tolist()
        vals = np.array([_parse_number(v) for v in raw], dtype=object)
        bad_text = np.array([v is None for v in vals])
        num_vals = np.array([np.nan if v is None else v for v in vals], dtype=np.float64)
        with np.errstate(invalid="ignore"):
            bad_range = ~np.isnan(num_vals) & ((num_vals < lo) | (num_vals > hi)
                                              | (num_vals != np.round(num_vals)))
        for bad in np.flatnonzero(bad_text | bad_range).tolist():
            vis = visits[bad]
            pc.add(f"participant {ids[bad]!r}, visit {'-' if vis is pd.NA else vis}, item {num}: "
                   f"expected a whole number from {lo} to {hi} (or empty if unanswered)",
                   row=int(rows[bad]), column=col, value=raw[bad])
        out[f"item{num}"] = num_vals
    pc.raise_if_any()
    return out
