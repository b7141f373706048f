"""Recognising and validating sample and participant metadata columns.

Files from labs and tools name the same thing differently (``gender`` or
``sex``, ``Class`` or ``group``, ``SampleType`` or ``type``). This module maps
those names onto the store's fields, parses each value, and reports every bad
value with its row and column. Columns it does not recognise are kept as
free-form attributes.
"""

from __future__ import annotations

import datetime as dt
import re
from collections.abc import Callable, Sequence
from typing import Any

import pandas as pd

from hikisig.errors import ProblemCollector

__all__ = [
    "FIELD_ALIASES",
    "PARTICIPANT_FIELDS",
    "SAMPLE_FIELDS",
    "canonical_field",
    "metadata_mapping",
    "parse_metadata",
]

#: Standard field -> accepted column names (compared after :func:`_norm`).
FIELD_ALIASES: dict[str, tuple[str, ...]] = {
    "participant": ("participant", "participantid", "participantcode", "subject", "subjectid",
                    "patient", "patientid", "pid"),
    "sample": ("sample", "sampleid", "samplename", "samplecode"),
    "visit": ("visit", "visitindex", "visitno", "visitnumber"),
    "visit_date": ("visitdate", "date"),
    "sex": ("sex", "gender"),
    "age": ("age",),
    "birth_year": ("birthyear", "yearofbirth"),
    "group": ("group", "grouplabel", "class", "diagnosis", "status", "condition"),
    "medication_free": ("medicationfree", "drugfree"),
    "site": ("site", "sitecode", "centre", "center"),
    "sample_type": ("sampletype", "type"),
    "matrix": ("matrix", "specimen"),
    "batch": ("batch", "batchid", "plate"),
    "injection_order": ("injectionorder", "runorder", "injection"),
}
#: Fields stored on the participant.
PARTICIPANT_FIELDS = ("sex", "age", "birth_year", "group", "medication_free", "site")
#: Fields stored on the sample.
SAMPLE_FIELDS = ("sample_type", "matrix", "batch", "injection_order")

_ALIAS_TO_FIELD = {alias: field for field, aliases in FIELD_ALIASES.items() for alias in aliases}


def _norm(name: str) -> str:
    return re.sub(r"[^0-9a-z]", "", str(name).casefold())


def canonical_field(column: str) -> str | None:
    """Return the standard field a column name stands for, or None.

    Examples
    --------
    >>> canonical_field("Gender"), canonical_field("Sample ID"), canonical_field("bmi")
    ('sex', 'sample', None)
    """
    return _ALIAS_TO_FIELD.get(_norm(column))


_SEX = {"m": "M", "male": "M", "man": "M", "men": "M", "f": "F", "female": "F",
        "woman": "F", "women": "F"}
_BOOL = {"true": True, "yes": True, "y": True, "1": True, "t": True,
         "false": False, "no": False, "n": False, "0": False, "f": False}
_SAMPLE_TYPE = {"sample": "study", "study": "study", "subject": "study", "case": "study",
                "control": "study", "qc": "qc", "pooledqc": "qc", "qcpool": "qc", "pool": "qc",
                "blank": "blank", "solventblank": "blank", "extractionblank": "blank"}


def _p_sex(v: str) -> tuple[Any, str | None]:
    out = _SEX.get(v.casefold())
    return (out, None) if out else (None, "expected M or F (male/female also accepted)")


def _p_float(lo: float, hi: float, what: str) -> Callable[[str], tuple[Any, str | None]]:
    def parse(v: str) -> tuple[Any, str | None]:
        try:
            x = float(v)
        except ValueError:
            return None, f"expected {what} (a number)"
        if not lo <= x <= hi:
            return None, f"expected {what} between {lo:g} and {hi:g}"
        return x, None
    return parse


def _p_int(lo: int, hi: int, what: str, prefix: str = "") -> Callable[[str], tuple[Any, str | None]]:
    def parse(v: str) -> tuple[Any, str | None]:
        s = v[1:] if prefix and v[:1].casefold() == prefix else v
        try:
            x = float(s)
        except ValueError:
            return None, f"expected {what} (a whole number)"
        if x != int(x) or not lo <= x <= hi:
            return None, f"expected {what}: a whole number between {lo} and {hi}"
        return int(x), None
    return parse


def _p_bool(v: str) -> tuple[Any, str | None]:
    out = _BOOL.get(v.casefold())
    return (out, None) if out is not None else (None, "expected yes/no (true/false, 1/0)")


def _p_sample_type(v: str) -> tuple[Any, str | None]:
    out = _SAMPLE_TYPE.get(_norm(v))
    return (out, None) if out else (None, "expected a sample type: sample/study, QC or blank")


def _p_date(v: str) -> tuple[Any, str | None]:
    try:
        return dt.date.fromisoformat(v[:10]), None
    except ValueError:
        return None, "expected a date as YYYY-MM-DD"


def _p_text(v: str) -> tuple[Any, str | None]:
    return v, None


_PARSERS: dict[str, Callable[[str], tuple[Any, str | None]]] = {
    "participant": _p_text,
    "sample": _p_text,
    "visit": _p_int(0, 10_000, "a visit number", prefix="v"),
    "visit_date": _p_date,
    "sex": _p_sex,
    "age": _p_float(0, 130, "an age in years"),
    "birth_year": _p_int(1880, dt.date.today().year, "a birth year"),
    "group": _p_text,
    "medication_free": _p_bool,
    "site": _p_text,
    "sample_type": _p_sample_type,
    "matrix": lambda v: (v.casefold(), None),
    "batch": _p_text,
    "injection_order": _p_int(0, 10_000_000, "an injection order"),
}


def _cell_text(v: Any) -> str:
    if v is None or (isinstance(v, float) and pd.isna(v)) or v is pd.NA:
        return ""
    if isinstance(v, float) and v.is_integer():
        return str(int(v))
    return str(v).strip()


def metadata_mapping(columns: Sequence[Any], fields: dict[str, str] | None = None,
                     exclude: frozenset[str] = frozenset()) -> dict[Any, str]:
    """Column -> standard field, for the columns that name one (the first column of each field
    wins; later ones stay free-form attributes). Fields in ``exclude`` are not assigned (a
    table whose id column gives the sample keeps a ``Sample Name`` column as an attribute).

    Examples
    --------
    >>> metadata_mapping(["Gender", "Class", "status", "bmi"])
    {'Gender': 'sex', 'Class': 'group'}
    """
    mapping: dict[Any, str] = dict(fields or {})
    taken = set(mapping.values())
    for col in columns:
        if col in mapping:
            continue
        field = canonical_field(str(col))
        if field is not None and field not in taken and field not in exclude:
            mapping[col] = field
            taken.add(field)
    return mapping


def parse_metadata(
    frame: pd.DataFrame,
    rows: Sequence[int],
    problems: ProblemCollector,
    *,
    fields: dict[str, str] | None = None,
    exclude: frozenset[str] = frozenset({"sample"}),
) -> pd.DataFrame:
    """Parse metadata columns into standard fields plus free-form attributes.

    Parameters
    ----------
    frame : DataFrame
        Metadata columns as read (any dtype), one row per sample or participant.
    rows : sequence of int
        The file row number of each frame row, for error messages.
    problems : ProblemCollector
        Receives one problem per bad value.
    fields : dict, optional
        Explicit column -> standard field mapping; other columns are recognised
        by name (:data:`FIELD_ALIASES`).
    exclude : set of str
        Standard fields not to assign (default ``sample``: the sample id comes from the id
        column; a further column named like a sample id is an attribute).

    Returns
    -------
    DataFrame
        One column per standard field found (typed values, None where empty) and
        an ``attributes`` column holding a dict of the other columns' values.

    Examples
    --------
    >>> from hikisig.errors import ProblemCollector
    >>> df = pd.DataFrame({"Gender": ["M", "female"], "bmi": ["22.5", ""]})
    >>> out = parse_metadata(df, [2, 3], ProblemCollector("x.csv"))
    >>> out["sex"].tolist(), out["attributes"].tolist()
    (['M', 'F'], [{'bmi': '22.5'}, {}])
    """
    mapping = metadata_mapping(list(frame.columns), fields, exclude)
    out = pd.DataFrame(index=frame.index)
    attr_cols = [c for c in frame.columns if c not in mapping]
    for col, field in mapping.items():
        parser = _PARSERS[field]
        values: list[Any] = []
        for row, raw in zip(rows, frame[col].tolist(), strict=True):
            text = _cell_text(raw)
            if text == "":
                values.append(None)
                continue
            val, err = parser(text)
            if err:
                problems.add(err, row=row, column=str(col), value=text)
            values.append(val)
        out[field] = pd.Series(values, index=frame.index, dtype=object)
    attrs: list[dict[str, Any]] = [{} for _ in range(len(frame))]
    if attr_cols:
        for k, rec in enumerate(frame[attr_cols].itertuples(index=False, name=None)):
            attrs[k] = {str(c): _attr_value(v) for c, v in zip(attr_cols, rec, strict=True)
                        if _cell_text(v) != ""}
    out["attributes"] = pd.Series(attrs, index=frame.index, dtype=object)
    return out


def _attr_value(v: Any) -> Any:
    if isinstance(v, bool | int | str):
        return v.strip() if isinstance(v, str) else v
    if isinstance(v, float):
        return v
    if hasattr(v, "item"):
        return v.item()
    return str(v)
