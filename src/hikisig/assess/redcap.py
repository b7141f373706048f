"""Read questionnaire answers from a REDCap project.

:func:`read_redcap` takes the two CSV files a REDCap project gives: the *data
dictionary* (Project Setup > Data Dictionary, or the API's metadata export) and
a flat *data export* in raw (coded) form, and returns an answers frame: one row
per participant-visit with ``id``, ``visit`` (Int64), optionally ``date``, and
``item1`` ... ``itemN`` (float64, NaN = unanswered), the raw answers.

The dictionary says which fields hold the instrument's items and how they are
coded. Codes are never shifted: a form whose codes differ from the
instrument's response range (1-4 for a 0-3 instrument, say) is an error, to be
fixed in REDCap or by recoding the export, so that a score is never computed
on answers coded differently than its definition.
"""

from __future__ import annotations

import csv
import math
import re
import warnings
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

import pandas as pd

from hikisig.assess.definition import Instrument
from hikisig.errors import InputError, Problem, ProblemCollector

__all__ = [
    "ITEM_FIELD_TYPES",
    "EventVisitWarning",
    "event_visit_numbers",
    "parse_choices",
    "read_redcap",
]

#: REDCap field types that can hold one item's answer.
ITEM_FIELD_TYPES = ("radio", "dropdown", "text")

#: Dictionary columns: canonical key -> accepted header names (lower case), for
#: the data dictionary download and the API's metadata export.
_DICT_COLUMNS = {
    "field": ("variable / field name", "field_name"),
    "form": ("form name", "form_name"),
    "type": ("field type", "field_type"),
    "choices": ("choices, calculations, or slider labels", "select_choices_or_calculations"),
    "validation": ("text validation type or show slider number",
                   "text_validation_type_or_show_slider_number"),
}
_CHOICES_HEADER = "Choices, Calculations, OR Slider Labels"
_EVENT = "redcap_event_name"
_REPEAT_INSTANCE = "redcap_repeat_instance"
_INT = re.compile(r"[+-]?\d+")
_NUMBER = re.compile(r"[+-]?(\d+\.?\d*|\.\d+)([eE][+-]?\d+)?")
_ISO_DATE = re.compile(r"\d{4}-\d{2}-\d{2}")
_ARM_SUFFIX = re.compile(r"(_arm_\d+|\s*\(arm \d+[^)]*\))\s*$", re.IGNORECASE)


class EventVisitWarning(UserWarning):
    """Event names could not all be numbered from their text; visits follow their order."""


@dataclass(frozen=True)
class _Field:
    name: str
    form: str
    type: str
    choices: str
    validation: str
    line: int


# --------------------------------------------------------------------------- CSV


def _read_csv(path: Path, name: str) -> tuple[list[str], list[tuple[int, list[str]]]]:
    """Header and (line number, cells) of every non-blank record (header = line 1)."""
    try:
        fh = open(path, newline="", encoding="utf-8-sig")  # noqa: SIM115 - closed below
    except FileNotFoundError as exc:
        raise InputError([Problem(name, "file not found")]) from exc
    except OSError as exc:
        raise InputError([Problem(name, f"cannot read the file: {exc}")]) from exc
    with fh:
        reader = csv.reader(fh)
        try:
            header = next(reader, None)
            if header is None:
                raise InputError([Problem(name, "empty file (expected a header line)")])
            rows: list[tuple[int, list[str]]] = []
            start = reader.line_num + 1
            for cells in reader:
                if any(c.strip() for c in cells):
                    rows.append((start, cells))
                start = reader.line_num + 1
        except (csv.Error, UnicodeDecodeError) as exc:
            raise InputError([Problem(name, f"not a readable UTF-8 CSV file: {exc}",
                                      row=reader.line_num or None)]) from exc
    return [h.strip() for h in header], rows


def _check_header(header: list[str], pc: ProblemCollector) -> None:
    seen: dict[str, int] = {}
    for i, h in enumerate(header):
        if not h:
            pc.add("column has no name in the header", row=1, column=f"#{i + 1}")
        elif h in seen:
            pc.add(f"duplicate column name (also column #{seen[h] + 1})", row=1, column=h)
        else:
            seen[h] = i


# --------------------------------------------------------------------------- dictionary


def parse_choices(text: str) -> list[tuple[str, str]]:
    """Split a REDCap choices string into (code, label) pairs.

    Parameters
    ----------
    text : str
        The "Choices, Calculations, OR Slider Labels" cell, e.g.
        ``"0, Not at all | 1, Several days"``.

    Returns
    -------
    list of (str, str)
        Codes and labels, stripped, in order. A choice without a comma gives
        its text as both code and label.

    Examples
    --------
    >>> parse_choices("0, Not at all | 1, Several days, or more")
    [('0', 'Not at all'), ('1', 'Several days, or more')]
    """
    out: list[tuple[str, str]] = []
    for part in text.split("|"):
        part = part.strip()
        if not part:
            continue
        code, sep, label = part.partition(",")
        out.append((code.strip(), label.strip() if sep else code.strip()))
    return out


def _read_dictionary(path: Path, name: str) -> list[_Field]:
    header, rows = _read_csv(path, name)
    pc = ProblemCollector(name)
    _check_header(header, pc)
    lower = {h.lower(): i for i, h in enumerate(header)}
    pos: dict[str, int] = {}
    for key, aliases in _DICT_COLUMNS.items():
        hit = next((lower[a] for a in aliases if a in lower), None)
        if hit is not None:
            pos[key] = hit
        elif key in ("field", "form", "type"):
            pc.add(f"not a REDCap data dictionary: no column {aliases[0].title()!r} "
                   f"(or {aliases[1]!r})", row=1)
    pc.raise_if_any()

    def cell(cells: list[str], key: str) -> str:
        i = pos.get(key)
        return cells[i].strip() if i is not None and i < len(cells) else ""

    fields: list[_Field] = []
    seen: dict[str, int] = {}
    for line, cells in rows:
        fname = cell(cells, "field")
        if not fname:
            pc.add("empty field name", row=line, column=header[pos["field"]])
            continue
        if fname in seen:
            pc.add(f"field defined twice (first in row {seen[fname]})", row=line, column=fname)
            continue
        seen[fname] = line
        fields.append(_Field(fname, cell(cells, "form"), cell(cells, "type").lower(),
                             cell(cells, "choices"), cell(cells, "validation").lower(), line))
    pc.raise_if_any()
    if not fields:
        raise InputError([Problem(name, "the data dictionary defines no fields")])
    return fields


def _norm(text: str) -> str:
    return re.sub(r"[^a-z0-9]", "", text.lower())


def _is_item_field(f: _Field) -> bool:
    if f.type in ("radio", "dropdown"):
        return True
    return f.type == "text" and (not f.validation or f.validation.startswith(("integer", "number")))


def _pick_form(fields: list[_Field], instrument: Instrument, form: str | None,
               name: str) -> str:
    forms = list(dict.fromkeys(f.form for f in fields))
    listing = ", ".join(repr(f) for f in forms)
    if form is not None:
        if form not in forms:
            raise InputError([Problem(name, f"no form {form!r} in the data dictionary "
                                            f"(forms: {listing})", value=form)])
        return form
    target = _norm(instrument.id)
    exact = [f for f in forms if _norm(f) == target]
    hits = exact or [f for f in forms if target in _norm(f)]
    if len(hits) == 1:
        return hits[0]
    if not hits:
        raise InputError([Problem(name, f"no form whose name contains {instrument.id!r} "
                                        f"(forms: {listing}); give the form name or a field map")])
    raise InputError([Problem(name, f"several forms could hold {instrument.id}: "
                                    f"{', '.join(repr(h) for h in hits)}; give the form name "
                                    "or a field map")])


def _item_fields(fields: list[_Field], instrument: Instrument, form: str | None,
                 field_map: Mapping[str, int] | None, name: str) -> list[_Field]:
    """The dictionary field of each item, in item order (problems raised)."""
    n = instrument.n_items
    by_name = {f.name: f for f in fields}
    pc = ProblemCollector(name)
    if field_map is None:
        chosen = _pick_form(fields, instrument, form, name)
        found = [f for f in fields if f.form == chosen and _is_item_field(f)]
        if len(found) != n:
            shown = ", ".join(f.name for f in found) or "none"
            raise InputError([Problem(
                name, f"form {chosen!r} has {len(found)} field(s) of type "
                      f"{'/'.join(ITEM_FIELD_TYPES)} ({shown}) but {instrument.name} has {n} items; "
                      "give a field map (field name -> item number)")])
        return found
    slots: dict[int, str] = {}
    for fname, number in field_map.items():
        f = by_name.get(fname)
        if f is None:
            pc.add("field of the field map is not in the data dictionary", column=fname)
        elif not _is_item_field(f):
            pc.add(f"field of type {f.type!r}{' (' + f.validation + ')' if f.validation else ''} "
                   f"cannot hold an item's answer (expected {'/'.join(ITEM_FIELD_TYPES)})",
                   row=f.line, column=fname, value=f.type)
        if isinstance(number, bool) or not isinstance(number, int) or not 1 <= number <= n:
            pc.add(f"field map gives item {number!r}: expected an item number from 1 to {n}",
                   column=fname, value=number)
        elif number in slots:
            pc.add(f"field map gives item {number} twice (also to {slots[number]!r})",
                   column=fname, value=number)
        else:
            slots[number] = fname
    missing = [i for i in range(1, n + 1) if i not in slots]
    if missing and not pc.full():
        pc.add(f"field map has no field for item(s) {', '.join(map(str, missing))} "
               f"(expected each of the {n} items exactly once)")
    pc.raise_if_any()
    return [by_name[slots[i]] for i in range(1, n + 1)]


def _check_codes(fields: list[_Field], instrument: Instrument, name: str) -> None:
    """Every choice code of the item fields must be an integer in the response range."""
    lo, hi = instrument.response_min, instrument.response_max
    pc = ProblemCollector(name)
    for f in fields:
        if f.type not in ("radio", "dropdown"):
            continue
        choices = parse_choices(f.choices)
        if not choices:
            pc.add(f"{f.type} field without choices (expected codes {lo} to {hi})",
                   row=f.line, column=f.name)
        for code, _label in choices:
            if not _INT.fullmatch(code):
                pc.add(f"choice code is not an integer (expected codes {lo} to {hi}; "
                       f"{_CHOICES_HEADER!r} is {f.choices!r})", row=f.line, column=f.name, value=code)
            elif not lo <= int(code) <= hi:
                pc.add(f"choice code outside the {instrument.name} response range {lo} to {hi}; "
                       "hikisig does not shift codes: recode the form (or its export) to "
                       f"{lo}..{hi}", row=f.line, column=f.name, value=code)
    pc.raise_if_any()


# --------------------------------------------------------------------------- events


def event_visit_numbers(events: list[str]) -> tuple[dict[str, int], bool]:
    """Visit numbers of REDCap event names.

    The arm suffix (``_arm_1``, or `` (Arm 1: ...)`` in label exports) is
    removed first, so the same event in several arms is the same visit. When
    every event name then holds an integer and different events hold
    different integers, the visit is the first integer in the name
    (``visit_2_arm_1`` -> 2, ``month_12_arm_1`` -> 12). Otherwise every event
    is numbered by its order of first appearance, starting at 1.

    Parameters
    ----------
    events : list of str
        Event names, in order of first appearance.

    Returns
    -------
    mapping : dict
        Event name -> visit number.
    by_order : bool
        Whether the order of appearance was used although some names held a number.

    Examples
    --------
    >>> event_visit_numbers(["visit_1_arm_1", "visit_2_arm_1", "visit_1_arm_2"])
    ({'visit_1_arm_1': 1, 'visit_2_arm_1': 2, 'visit_1_arm_2': 1}, False)
    >>> event_visit_numbers(["baseline_arm_1", "followup_arm_1"])
    ({'baseline_arm_1': 1, 'followup_arm_1': 2}, False)
    """
    stems = {e: _ARM_SUFFIX.sub("", e) for e in events}
    numbers: dict[str, int | None] = {}
    for stem in stems.values():
        m = re.search(r"\d+", stem)
        numbers[stem] = int(m.group()) if m else None
    values = list(numbers.values())
    if values and None not in values and len(set(values)) == len(values):
        return {e: int(numbers[s] or 0) for e, s in stems.items()}, False
    order = {stem: k for k, stem in enumerate(dict.fromkeys(stems.values()), start=1)}
    return {e: order[s] for e, s in stems.items()}, any(v is not None for v in values)


# --------------------------------------------------------------------------- export


def _answer(raw: str) -> float | None:
    """The integer value of a cell, NaN when empty, None when not an integer."""
    text = raw.strip()
    if not text:
        return math.nan
    if _INT.fullmatch(text):
        return float(int(text))
    if _NUMBER.fullmatch(text):
        value = float(text)
        return value if value.is_integer() else None
    return None


def read_redcap(
    export_csv: str | Path,
    dictionary_csv: str | Path,
    instrument: Instrument,
    *,
    form: str | None = None,
    field_map: Mapping[str, int] | None = None,
    event_visits: Mapping[str, int] | None = None,
    date_field: str | None = None,
) -> pd.DataFrame:
    """Read one instrument's answers from a REDCap data export and its data dictionary.

    Parameters
    ----------
    export_csv : str or Path
        Flat CSV export in *raw* form (coded values, field names as header).
        The participant is the ``record_id`` column (else the first column);
        ``redcap_event_name`` gives the visit in longitudinal projects.
    dictionary_csv : str or Path
        The project's data dictionary CSV (or the API metadata export).
    instrument : Instrument
        The instrument to read.
    form : str, optional
        The REDCap form (instrument) holding the items. Default: the form
        named like the instrument id (ignoring case and punctuation: ``PHQ_9``
        for ``phq9``), else the only form whose name contains it. Its fields
        of type radio, dropdown or text (plain, integer or number) are the
        items in dictionary order, and there must be exactly ``n_items`` of
        them. Ignored when ``field_map`` is given.
    field_map : dict, optional
        Field name -> item number (1-based), covering every item once.
    event_visits : dict, optional
        Event name -> visit number, replacing the automatic numbering (see
        :func:`event_visit_numbers`); every event holding answers must be listed.
    date_field : str, optional
        A field holding the date of the answers (``YYYY-MM-DD``, as REDCap
        exports dates); it fills a ``date`` column.

    Returns
    -------
    DataFrame
        An answers frame in export order: ``id``, ``visit`` (Int64), ``date``
        (only with ``date_field``), ``item1`` ... ``itemN`` (float64). Rows
        where every item is empty (the form was not filled in at that event,
        or the row belongs to another repeating form) are left out.

    Raises
    ------
    InputError
        Every problem of a file, naming file, row (line, header = 1), field
        and value: an ambiguous or incomplete mapping of fields to items; a
        choice code that is not an integer in the response range; a mapped
        field missing from the export; an answer that is not an integer in
        the response range (e.g. a *labels* export); an empty record id; two
        rows of one record at the same visit.

    Warns
    -----
    EventVisitWarning
        Some event names hold numbers but cannot all be numbered by them, so
        visits follow the order of first appearance (the mapping is shown;
        pass ``event_visits`` to fix it).

    Notes
    -----
    Visits: with ``redcap_event_name``, from the event (``event_visits`` or
    :func:`event_visit_numbers`, applied to every event of the export in order
    of first appearance, so that forms read from one export get the same
    visit numbers). Without events, ``redcap_repeat_instance`` (repeating
    forms) gives the visit where filled in; otherwise the visit is <NA>.

    Examples
    --------
    >>> from hikisig.assess.definition import load_instrument
    >>> answers = read_redcap("export.csv", "dictionary.csv",
    ...                       load_instrument("phq9"))  # doctest: +SKIP
    >>> answers.columns[:3].tolist()  # doctest: +SKIP
    ['id', 'visit', 'item1']
    """
    dict_name, export_name = str(dictionary_csv), str(export_csv)
    fields = _read_dictionary(Path(dictionary_csv), dict_name)
    items = _item_fields(fields, instrument, form, field_map, dict_name)
    _check_codes(items, instrument, dict_name)

    header, rows = _read_csv(Path(export_csv), export_name)
    pc = ProblemCollector(export_name)
    _check_header(header, pc)
    col = {h: i for i, h in reversed(list(enumerate(header)))}
    id_col = "record_id" if "record_id" in col else header[0]
    wanted = [f.name for f in items] + ([date_field] if date_field else [])
    for fname in wanted:
        if fname not in col:
            pc.add(f"field {fname!r} of the data dictionary is not in the export (expected a raw "
                   "export with field names as header)", row=1, column=fname)
    pc.raise_if_any()

    lo, hi = instrument.response_min, instrument.response_max
    has_events = _EVENT in col
    events = list(dict.fromkeys(c[col[_EVENT]].strip() for _, c in rows
                                if has_events and len(c) > col[_EVENT] and c[col[_EVENT]].strip()))
    if event_visits is not None:
        visit_of = dict(event_visits)
    else:
        visit_of, by_order = event_visit_numbers(events)
        if by_order:
            warnings.warn(f"{export_name}: event names cannot all be numbered from their text; "
                          f"visits follow their order of first appearance: {visit_of} "
                          "(give event_visits to choose)", EventVisitWarning, stacklevel=2)

    ids: list[str] = []
    visits: list[int | None] = []
    dates: list[str | None] = []
    values: list[list[float]] = []
    first_row: dict[tuple[str, int | None], int] = {}
    for line, cells in rows:
        if len(cells) != len(header):
            pc.add(f"{len(cells)} cells, expected {len(header)} as in the header", row=line)
            continue
        row: list[float] = []
        ok = True
        for k, f in enumerate(items, start=1):
            raw = cells[col[f.name]]
            value = _answer(raw)
            if value is None or (not math.isnan(value) and not lo <= value <= hi):
                what = "not an integer" if value is None else "out of range"
                pc.add(f"item {k} answer {what}: expected a raw code from {lo} to {hi}"
                       + (" (export raw data, not labels)" if value is None else ""),
                       row=line, column=f.name, value=raw)
                ok = False
                continue
            row.append(value)
        if ok and all(math.isnan(v) for v in row):
            continue
        record = cells[col[id_col]].strip()
        if not record:
            pc.add("empty record id (expected the participant code)", row=line, column=id_col)
            continue
        visit: int | None = None
        key_col = id_col
        if has_events:
            key_col = _EVENT
            event = cells[col[_EVENT]].strip()
            visit = visit_of.get(event)
            if visit is None:
                pc.add("event without a visit number (expected one of event_visits: "
                       f"{', '.join(repr(e) for e in visit_of)})", row=line, column=_EVENT,
                       value=event)
                continue
        elif _REPEAT_INSTANCE in col and cells[col[_REPEAT_INSTANCE]].strip():
            key_col = _REPEAT_INSTANCE
            text = cells[col[_REPEAT_INSTANCE]].strip()
            if not _INT.fullmatch(text):
                pc.add("repeat instance is not an integer", row=line, column=key_col, value=text)
                continue
            visit = int(text)
        date: str | None = None
        if date_field:
            text = cells[col[date_field]].strip()
            if text and _ISO_DATE.match(text):
                date = text[:10]
            elif text:
                pc.add("not a date (expected YYYY-MM-DD as REDCap exports dates)", row=line,
                       column=date_field, value=text)
        key = (record, visit)
        if key in first_row:
            pc.add(f"second row of record {record!r} at visit {visit} (first in row "
                   f"{first_row[key]})", row=line, column=key_col,
                   value=cells[col[key_col]])
            continue
        first_row[key] = line
        if not ok:
            continue
        ids.append(record)
        visits.append(visit)
        dates.append(date)
        values.append(row)
    pc.raise_if_any()

    frame = pd.DataFrame({"id": pd.Series(ids, dtype=object),
                          "visit": pd.array(visits, dtype="Int64")})
    if date_field:
        frame["date"] = pd.Series(dates, dtype=object)
    items_frame = pd.DataFrame(values, columns=instrument.item_columns, dtype=float)
    if items_frame.empty:
        items_frame = pd.DataFrame({c: pd.Series(dtype=float) for c in instrument.item_columns})
    return pd.concat([frame, items_frame], axis=1)
