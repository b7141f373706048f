"""The 2020 diagnostic criteria for hikikomori (Kato, Kanba & Teo, World Psychiatry 2020).

Hikikomori needs all three of: (1) marked social isolation in one's home,
(2) continuous isolation for at least 6 months, (3) significant functional
impairment or distress associated with it. Going out 4 or more days a week
excludes the diagnosis. Severity: mild = goes out 2-3 days a week; moderate =
1 day a week or less; severe = rarely leaves a single room.

Pre-hikikomori (continuous isolation of at least 3 and under 6 months): the
source does not say whether criteria 1 and 3 must also hold. **hikisig requires
them** (isolation at home, and impairment or distress), so that
pre-hikikomori is hikikomori in every respect but duration; a person isolated
for 4 months without impairment or distress is ``not``. Severity is given for
pre-hikikomori as for hikikomori.

Day counts between the stated values: more than 1 and fewer than 4 days out a
week is mild (the source names 2-3); exactly 1 or fewer is moderate.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd

from hikisig.errors import InputError, Problem, ProblemCollector

__all__ = ["CRITERIA_COLUMNS", "apply_criteria", "classify", "read_criteria_frame"]

#: Input columns of ``hikisig assess criteria``.
CRITERIA_COLUMNS = ("id", "days_out_per_week", "rarely_leaves_room", "months_isolated",
                    "impairment", "distress")

_TRUE = {"true", "yes", "y", "1", "t"}
_FALSE = {"false", "no", "n", "0", "f"}



def classify(days_out_per_week: float, rarely_leaves_room: bool, months_isolated: float,
             impairment: bool, distress: bool) -> tuple[str, str, str]:
    """Apply the criteria to one person.

    Returns
    -------
    tuple of str
        ``status`` (``hikikomori``, ``pre-hikikomori`` or ``not``), ``severity``
        (``mild``, ``moderate``, ``severe``, or "" when not), and ``reasons``: the
        criteria that failed, or the ones that were met.

    Examples
    --------
    >>> classify(3, False, 6.0, True, False)[:2]
    ('hikikomori', 'mild')
    >>> classify(0, True, 5.9, False, True)[:2]
    ('pre-hikikomori', 'severe')
    >>> classify(4, False, 24, True, True)
    ('not', '', 'goes out 4 or more days a week (4 days)')
    """
    failed: list[str] = []
    if days_out_per_week >= 4:
        failed.append(f"goes out 4 or more days a week ({days_out_per_week:g} days)")
    if not (impairment or distress):
        failed.append("no significant functional impairment or distress")
    if months_isolated < 3:
        failed.append(f"continuous isolation {months_isolated:g} months (< 3)")
    if failed:
        return "not", "", "; ".join(failed)
    if rarely_leaves_room:
        severity = "severe"
    elif days_out_per_week <= 1:
        severity = "moderate"
    else:
        severity = "mild"
    met = f"isolated at home ({days_out_per_week:g} days out a week" + (
        ", rarely leaves one room)" if rarely_leaves_room else ")")
    harm = " and ".join(w for w, b in (("impairment", impairment), ("distress", distress)) if b)
    if months_isolated >= 6:
        return "hikikomori", severity, f"all criteria met: {met}; {months_isolated:g} months; {harm}"
    return ("pre-hikikomori", severity,
            f"continuous isolation {months_isolated:g} months (3 to < 6); {met}; {harm}")


def _bool(v: Any) -> bool | None:
    s = str(v).strip().casefold()
    return True if s in _TRUE else False if s in _FALSE else None


def read_criteria_frame(frame: pd.DataFrame, file: str = "<criteria>") -> pd.DataFrame:
    """Validate the criteria input columns; returns typed columns.

    Raises
    ------
    InputError
        Missing columns, or values that are not numbers/booleans in range, each
        named by row, participant and column.
    """
    cols = {str(c).strip().casefold(): c for c in frame.columns}
    missing = [c for c in CRITERIA_COLUMNS if c not in cols]
    if missing:
        raise InputError([Problem(file, f"missing column(s) {', '.join(missing)} (expected "
                                  f"{', '.join(CRITERIA_COLUMNS)})", row=1)])
    pc = ProblemCollector(file)
    out = pd.DataFrame({"id": frame[cols["id"]].astype(str).str.strip()})
    for name, lo, hi in (("days_out_per_week", 0, 7), ("months_isolated", 0, 1200)):
        vals = []
        for k, v in enumerate(frame[cols[name]].tolist()):
            try:
                x = float(str(v).strip())
                if not lo <= x <= hi or np.isnan(x):
                    raise ValueError
            except ValueError:
                pc.add(f"participant {out['id'].iat[k]!r}: expected a number from {lo} to {hi}",
                       row=k + 2, column=cols[name], value=v)
                x = np.nan
            vals.append(x)
        out[name] = vals
    for name in ("rarely_leaves_room", "impairment", "distress"):
        flags = []
        for k, v in enumerate(frame[cols[name]].tolist()):
            b = _bool(v)
            if b is None:
                pc.add(f"participant {out['id'].iat[k]!r}: expected true/false, yes/no or 1/0",
                       row=k + 2, column=cols[name], value=v)
            flags.append(bool(b))
        out[name] = flags
    for k in range(len(out)):
        if out["rarely_leaves_room"].iat[k] and out["days_out_per_week"].iat[k] >= 4:
            pc.add(f"participant {out['id'].iat[k]!r}: rarely leaves one room but goes out "
                   f"{out['days_out_per_week'].iat[k]:g} days a week", row=k + 2,
                   column=cols["rarely_leaves_room"])
        if out["id"].iat[k] == "":
            pc.add("empty participant id", row=k + 2, column=cols["id"])
    pc.raise_if_any()
    return out


def apply_criteria(frame: pd.DataFrame, file: str = "<criteria>") -> pd.DataFrame:
    """Validate and classify every row.

    Returns
    -------
    DataFrame
        ``id``, ``status``, ``severity``, ``reasons``.

    Examples
    --------
    >>> df = pd.DataFrame({"id": ["A"], "days_out_per_week": ["1"], "rarely_leaves_room": ["no"],
    ...                    "months_isolated": ["12"], "impairment": ["yes"], "distress": ["no"]})
    >>> apply_criteria(df)[["status", "severity"]].iloc[0].tolist()
    ['hikikomori', 'moderate']
    """
    x = read_criteria_frame(frame, file)
    res = [classify(*r) for r in x[list(CRITERIA_COLUMNS[1:])].itertuples(index=False, name=None)]
    return pd.DataFrame({"id": x["id"], "status": [r[0] for r in res],
                         "severity": [r[1] for r in res], "reasons": [r[2] for r in res]})
