"""FHIR R4 exchange of questionnaire answers.

An instrument becomes a FHIR ``Questionnaire`` (:func:`questionnaire`); an
answers frame becomes a ``Bundle`` of ``QuestionnaireResponse`` resources
(:func:`questionnaire_responses`), and such a bundle is read back into an
answers frame (:func:`read_questionnaire_responses`).

An *answers frame* has one row per participant-visit: ``id`` (str), ``visit``
(Int64, may be <NA>), optionally ``date`` (ISO date string or None), then
``item1`` ... ``itemN`` (float64, NaN = unanswered) holding the raw answers.

Conventions (all URIs are URNs, so that nothing depends on a web server):

* Questionnaire canonical URL: ``urn:hikisig:questionnaire:{instrument id}``,
  referenced from a response as ``{url}|{version}`` (the version
  percent-encoded where a URI needs it: ``HQ-25%20(6-month...)``).
* Answer codes: system ``{url}/answers``, code ``str(value)``, display the
  instrument's response label when it has one.
* Items: ``linkId`` ``item1`` ... ``itemN``.
* Participant: ``subject.identifier`` with system ``urn:hikisig:participant``.
* Visit: extension ``urn:hikisig:visit`` (``valueInteger``).
* Date: ``authored``.
* Scores (optional, on export only): extensions ``urn:hikisig:score:{name}``.

Reading validates every resource with plain checks written here (no FHIR
library is needed or trusted for that) and reports every problem at once as
one :class:`~hikisig.errors.InputError`.
"""

from __future__ import annotations

import json
import math
import re
import warnings
from collections.abc import Mapping
from pathlib import Path
from typing import Any
from urllib.parse import quote, unquote

import numpy as np
import pandas as pd

from hikisig.assess.definition import Instrument
from hikisig.errors import InputError, Problem, ProblemCollector

__all__ = [
    "PARTICIPANT_SYSTEM",
    "SCORE_EXTENSION",
    "VISIT_EXTENSION",
    "QuestionnaireVersionWarning",
    "answer_system",
    "questionnaire",
    "questionnaire_canonical",
    "questionnaire_responses",
    "questionnaire_url",
    "read_questionnaire_responses",
]

#: Identifier system of participant codes.
PARTICIPANT_SYSTEM = "urn:hikisig:participant"
#: Extension URL carrying the visit number of a response.
VISIT_EXTENSION = "urn:hikisig:visit"
#: Prefix of the extension URLs carrying scores (``urn:hikisig:score:total``).
SCORE_EXTENSION = "urn:hikisig:score:"

#: Name given to a bundle passed as a dict, in error messages.
_BUNDLE_NAME = "<FHIR bundle>"
#: QuestionnaireResponse statuses whose answers are read.
_READ_STATUSES = frozenset({"completed", "amended", "in-progress", "stopped"})
#: Status of responses that are skipped (recorded by mistake).
_SKIP_STATUS = "entered-in-error"
#: Characters left as they are in the version part of a canonical reference.
_VERSION_SAFE = "!$&'()*+,;=:@/-._~"
_INT_CODE = re.compile(r"[+-]?\d+")
_DATETIME = re.compile(
    r"\d{4}(-\d{2}(-\d{2}(T\d{2}:\d{2}(:\d{2}(\.\d+)?)?(Z|[+-]\d{2}:\d{2})?)?)?)?"
)


class QuestionnaireVersionWarning(UserWarning):
    """A response names another version of the instrument's definition."""


def questionnaire_url(instrument: Instrument) -> str:
    """Canonical URL of the instrument's Questionnaire.

    Examples
    --------
    >>> from hikisig.assess.definition import load_instrument
    >>> questionnaire_url(load_instrument("phq9"))
    'urn:hikisig:questionnaire:phq9'
    """
    return f"urn:hikisig:questionnaire:{instrument.id}"


def questionnaire_canonical(instrument: Instrument) -> str:
    """Versioned canonical reference to the Questionnaire (``{url}|{version}``).

    A canonical is a URI, so characters a URI cannot hold (spaces, ``|``,
    ``%``, non-ASCII) in the version are percent-encoded; :func:`read_questionnaire_responses`
    decodes them.

    Examples
    --------
    >>> from hikisig.assess.definition import load_instrument
    >>> questionnaire_canonical(load_instrument("phq9"))
    'urn:hikisig:questionnaire:phq9|1.0'
    """
    return f"{questionnaire_url(instrument)}|{quote(instrument.version, safe=_VERSION_SAFE)}"


def answer_system(instrument: Instrument) -> str:
    """Code system of the instrument's answer codes (``{url}/answers``).

    Examples
    --------
    >>> from hikisig.assess.definition import load_instrument
    >>> answer_system(load_instrument("phq9"))
    'urn:hikisig:questionnaire:phq9/answers'
    """
    return questionnaire_url(instrument) + "/answers"


def _fhir_id(text: str) -> str:
    """A FHIR ``id`` ([A-Za-z0-9-.]{1,64}) made from ``text``."""
    return re.sub(r"[^A-Za-z0-9.-]", "-", text)[:64] or "questionnaire"


def _fhir_name(text: str) -> str:
    """A computer-friendly FHIR ``name`` (starts with a capital letter)."""
    name = re.sub(r"[^A-Za-z0-9_]", "_", text).upper()
    return name if name[:1].isalpha() else "Q" + name


def _coding(instrument: Instrument, value: int) -> dict[str, Any]:
    coding: dict[str, Any] = {"system": answer_system(instrument), "code": str(value)}
    label = instrument.response_labels.get(str(value))
    if label:
        coding["display"] = label
    return coding


def questionnaire(instrument: Instrument) -> dict[str, Any]:
    """The instrument as a FHIR R4 ``Questionnaire`` resource (a JSON-ready dict).

    Every item is a ``choice`` item whose answer options are the integer
    codes ``response_min`` ... ``response_max`` (with the instrument's
    response labels as display). Item wording is included only where the
    definition stores it (licences permitting); otherwise the text is
    ``"Item n"``.

    Parameters
    ----------
    instrument : Instrument
        The instrument definition.

    Returns
    -------
    dict
        The Questionnaire; ``json.dumps`` it to write a file.

    Examples
    --------
    >>> from hikisig.assess.definition import load_instrument
    >>> q = questionnaire(load_instrument("phq9"))
    >>> q["url"], len(q["item"]), q["item"][0]["answerOption"][1]["valueCoding"]["code"]
    ('urn:hikisig:questionnaire:phq9', 9, '1')
    """
    texts = {it.number: it.text for it in instrument.items if it.text}
    options = [{"valueCoding": _coding(instrument, v)}
               for v in range(instrument.response_min, instrument.response_max + 1)]
    items = [{"linkId": f"item{n}", "text": texts.get(n, f"Item {n}"), "type": "choice",
              "required": False, "answerOption": [dict(o) for o in options]}
             for n in range(1, instrument.n_items + 1)]
    description = f"{instrument.name}; reference period: {instrument.reference_period}."
    if instrument.citation:
        description += f" {instrument.citation}"
    return {
        "resourceType": "Questionnaire",
        "id": _fhir_id(instrument.id),
        "url": questionnaire_url(instrument),
        "version": instrument.version,
        "name": _fhir_name(instrument.id),
        "title": instrument.name,
        "status": "active",
        "subjectType": ["Patient"],
        "description": description,
        "item": items,
    }


# --------------------------------------------------------------------------- export

def _check_answers_frame(instrument: Instrument, answers: pd.DataFrame) -> None:
    """Reject an answers frame that does not fit the instrument (every problem at once)."""
    pc = ProblemCollector("<answers>")
    missing = [c for c in ["id", *instrument.item_columns] if c not in answers.columns]
    if missing:
        pc.add(f"answers frame lacks column(s) {', '.join(missing)} "
               f"(expected id, visit, date, {instrument.item_columns[0]}...)")
        pc.raise_if_any()
    lo, hi = instrument.response_min, instrument.response_max
    for pos, col in enumerate(instrument.item_columns):
        vals = pd.to_numeric(answers[col], errors="coerce").to_numpy(dtype=float)
        raw = answers[col].to_numpy(dtype=object)
        for r in range(len(answers)):
            v = vals[r]
            if np.isnan(v):
                if not _is_missing(raw[r]):
                    pc.add(f"{_where_row(answers, r)}: not a number", column=col, value=raw[r])
                continue
            if v != math.floor(v) or not lo <= v <= hi:
                pc.add(f"{_where_row(answers, r)}: item {pos + 1} answer must be an integer "
                       f"from {lo} to {hi}", column=col, value=raw[r])
    pc.raise_if_any()


def _is_missing(value: object) -> bool:
    if value is None or value is pd.NA:
        return True
    return isinstance(value, float) and math.isnan(value)


def _visit_at(frame: pd.DataFrame, r: int) -> int | None:
    """The visit of row ``r`` (None when absent or missing)."""
    if "visit" not in frame.columns:
        return None
    value = frame["visit"].iloc[r]
    return None if _is_missing(value) else int(value)


def _where_row(frame: pd.DataFrame, r: int) -> str:
    pid = frame["id"].iloc[r]
    return _where(None if _is_missing(pid) else str(pid), _visit_at(frame, r))


def _where(pid: str | None, visit: int | None, entry: int | None = None) -> str:
    who = f"participant {pid!r}" if pid is not None else "participant (unknown)"
    when = f"visit {visit}" if visit is not None else "visit (none)"
    return f"{who}, {when}" + (f" (entry {entry})" if entry is not None else "")


def _iso_date(value: object) -> str | None:
    if _is_missing(value):
        return None
    if isinstance(value, pd.Timestamp):
        return str(value.date().isoformat())
    iso = getattr(value, "isoformat", None)
    if callable(iso):
        return str(iso())
    text = str(value).strip()
    return text or None


def _score_extensions(row: pd.Series) -> list[dict[str, Any]]:
    out: list[dict[str, Any]] = []
    for name, value in row.items():
        if name in ("id", "visit", "date") or _is_missing(value):
            continue
        url = f"{SCORE_EXTENSION}{name}"
        if isinstance(value, bool | np.bool_):
            out.append({"url": url, "valueBoolean": bool(value)})
        elif isinstance(value, int | float | np.integer | np.floating):
            out.append({"url": url, "valueDecimal": float(value)})
        else:
            out.append({"url": url, "valueString": str(value)})
    return out


def _score_lookup(scores: pd.DataFrame) -> dict[tuple[str, int | None], pd.Series]:
    if "id" not in scores.columns:
        raise ValueError("scores must have an 'id' column (and 'visit')")
    lookup: dict[tuple[str, int | None], pd.Series] = {}
    for r in range(len(scores)):
        row = scores.iloc[r]
        key = (str(row["id"]), _visit_at(scores, r))
        if key in lookup:
            raise ValueError(f"scores has two rows for participant {key[0]!r}, visit {key[1]}")
        lookup[key] = row
    return lookup


def questionnaire_responses(
    instrument: Instrument,
    answers: pd.DataFrame,
    scores: pd.DataFrame | None = None,
) -> dict[str, Any]:
    """An answers frame as a FHIR R4 ``Bundle`` (type ``collection``) of QuestionnaireResponses.

    One QuestionnaireResponse per row, status ``completed``, with the
    participant as ``subject.identifier``, the date (when present) as
    ``authored``, the visit (when present) as the ``urn:hikisig:visit``
    extension, and one ``item`` per answered item (unanswered items are left
    out), coded as in :func:`questionnaire`.

    Parameters
    ----------
    instrument : Instrument
        The instrument the answers belong to.
    answers : DataFrame
        An answers frame (raw answers, not reverse-scored).
    scores : DataFrame, optional
        Scores with ``id``, ``visit`` and score columns (e.g. ``total``),
        matched to the answers by participant and visit; each non-missing
        score becomes an extension ``urn:hikisig:score:{column}``
        (``valueDecimal`` for numbers, ``valueBoolean`` for flags,
        ``valueString`` otherwise). Scores are not read back.

    Returns
    -------
    dict
        The Bundle; ``json.dumps`` it to write a file.

    Raises
    ------
    InputError
        An answer is not an integer within the response range, or a column is missing.

    Examples
    --------
    >>> import numpy as np, pandas as pd
    >>> from hikisig.assess.definition import load_instrument
    >>> phq9 = load_instrument("phq9")
    >>> frame = pd.DataFrame({"id": ["P01"], "visit": pd.array([1], dtype="Int64"),
    ...                       **{f"item{i}": [1.0] for i in range(1, 9)}, "item9": [np.nan]})
    >>> bundle = questionnaire_responses(phq9, frame)
    >>> qr = bundle["entry"][0]["resource"]
    >>> qr["questionnaire"], len(qr["item"]), qr["item"][0]["answer"][0]["valueCoding"]["code"]
    ('urn:hikisig:questionnaire:phq9|1.0', 8, '1')
    """
    _check_answers_frame(instrument, answers)
    lookup = _score_lookup(scores) if scores is not None else {}
    canonical = questionnaire_canonical(instrument)
    cols = instrument.item_columns
    values = answers[cols].apply(pd.to_numeric).to_numpy(dtype=float)
    entries: list[dict[str, Any]] = []
    for r in range(len(answers)):
        pid = str(answers["id"].iloc[r])
        visit = _visit_at(answers, r)
        resource: dict[str, Any] = {
            "resourceType": "QuestionnaireResponse",
            "questionnaire": canonical,
            "status": "completed",
            "subject": {"identifier": {"system": PARTICIPANT_SYSTEM, "value": pid}},
        }
        extensions: list[dict[str, Any]] = []
        if visit is not None:
            extensions.append({"url": VISIT_EXTENSION, "valueInteger": visit})
        if (pid, visit) in lookup:
            extensions.extend(_score_extensions(lookup[(pid, visit)]))
        if extensions:
            resource["extension"] = extensions
        date = _iso_date(answers["date"].iloc[r]) if "date" in answers.columns else None
        if date is not None:
            resource["authored"] = date
        items = [{"linkId": col, "answer": [{"valueCoding": _coding(instrument, int(v))}]}
                 for col, v in zip(cols, values[r], strict=True) if not np.isnan(v)]
        if items:
            resource["item"] = items
        entries.append({"resource": resource})
    return {"resourceType": "Bundle", "type": "collection", "entry": entries}


# --------------------------------------------------------------------------- import

def _load(source: str | Path | Mapping[str, Any]) -> tuple[str, Any]:
    if isinstance(source, Mapping):
        return _BUNDLE_NAME, source
    name = str(source)
    try:
        text = Path(source).read_text(encoding="utf-8-sig")
    except FileNotFoundError as exc:
        raise InputError([Problem(name, "file not found")]) from exc
    except (OSError, UnicodeDecodeError) as exc:
        raise InputError([Problem(name, f"cannot read the file: {exc}")]) from exc
    try:
        return name, json.loads(text)
    except json.JSONDecodeError as exc:
        raise InputError([Problem(name, f"not valid JSON (line {exc.lineno}, column {exc.colno}): "
                                        f"{exc.msg}")]) from exc


def _resources(data: Any, pc: ProblemCollector) -> list[tuple[int | None, Any]]:
    """(entry number or None, resource) pairs of a Bundle or a single response."""
    if not isinstance(data, Mapping):
        pc.add("expected a JSON object: a FHIR Bundle or QuestionnaireResponse")
        return []
    rtype = data.get("resourceType")
    if rtype == "QuestionnaireResponse":
        return [(None, data)]
    if rtype != "Bundle":
        pc.add("resourceType must be 'Bundle' (of QuestionnaireResponse resources) or "
               "'QuestionnaireResponse'", column="resourceType", value=rtype)
        return []
    entries = data.get("entry", [])
    if not isinstance(entries, list):
        pc.add("Bundle.entry must be a list", column="entry")
        return []
    out: list[tuple[int | None, Any]] = []
    for k, entry in enumerate(entries, start=1):
        resource = entry.get("resource") if isinstance(entry, Mapping) else None
        if not isinstance(resource, Mapping):
            pc.add(f"entry {k}: has no resource", column="entry")
            continue
        if resource.get("resourceType") != "QuestionnaireResponse":
            pc.add(f"entry {k}: expected only QuestionnaireResponse resources in the bundle",
                   column="resourceType", value=resource.get("resourceType"))
            continue
        out.append((k, resource))
    return out


def _subject(resource: Mapping[str, Any]) -> str | None:
    subject = resource.get("subject")
    ident = subject.get("identifier") if isinstance(subject, Mapping) else None
    value = ident.get("value") if isinstance(ident, Mapping) else None
    if isinstance(value, str) and value.strip():
        return value
    return None


def _visit(resource: Mapping[str, Any], where: str, pc: ProblemCollector) -> int | None:
    extensions = resource.get("extension", [])
    if not isinstance(extensions, list):
        pc.add(f"{where}: extension must be a list", column="extension")
        return None
    found = [e for e in extensions if isinstance(e, Mapping) and e.get("url") == VISIT_EXTENSION]
    if not found:
        return None
    if len(found) > 1:
        pc.add(f"{where}: more than one visit extension", column=VISIT_EXTENSION)
        return None
    value = found[0].get("valueInteger")
    if isinstance(value, bool) or not isinstance(value, int):
        pc.add(f"{where}: the visit extension must have an integer valueInteger",
               column=VISIT_EXTENSION, value=value if value is not None else found[0])
        return None
    return value


def _canonical_ok(instrument: Instrument, canonical: Any, where: str, pc: ProblemCollector,
                  versions: set[str]) -> bool:
    url = questionnaire_url(instrument)
    if not isinstance(canonical, str) or not canonical:
        pc.add(f"{where}: no questionnaire reference (expected {questionnaire_canonical(instrument)})",
               column="questionnaire")
        return False
    base, _, version = canonical.partition("|")
    if base != url:
        pc.add(f"{where}: response to another questionnaire than {instrument.name} "
               f"(expected {questionnaire_canonical(instrument)})", column="questionnaire",
               value=canonical)
        return False
    version = unquote(version)
    if version and version != instrument.version:
        versions.add(version)
    return True


def _answer_value(answer: Any, instrument: Instrument, where: str, link: str,
                  pc: ProblemCollector) -> float:
    """The integer value of one answer, or NaN after recording a problem."""
    lo, hi = instrument.response_min, instrument.response_max
    expected = f"expected one coded answer from {lo} to {hi}"
    if not isinstance(answer, Mapping):
        pc.add(f"{where}: answer is not an object ({expected})", column=link, value=answer)
        return math.nan
    value_keys = [k for k in answer if str(k).startswith("value")]
    if value_keys not in (["valueCoding"], ["valueInteger"]):
        shown = {k: answer[k] for k in value_keys} or answer
        pc.add(f"{where}: answer must be a valueCoding or a valueInteger ({expected})",
               column=link, value=json.dumps(shown, default=str))
        return math.nan
    if value_keys == ["valueInteger"]:
        raw = answer["valueInteger"]
        if isinstance(raw, bool) or not isinstance(raw, int):
            pc.add(f"{where}: valueInteger is not an integer ({expected})", column=link, value=raw)
            return math.nan
        number = raw
    else:
        coding = answer["valueCoding"]
        if not isinstance(coding, Mapping):
            pc.add(f"{where}: valueCoding is not an object ({expected})", column=link, value=coding)
            return math.nan
        system = coding.get("system")
        if system is not None and system != answer_system(instrument):
            pc.add(f"{where}: answer coded in another code system (expected "
                   f"{answer_system(instrument)} or none)", column=link, value=system)
            return math.nan
        code = coding.get("code")
        if not isinstance(code, str) or not _INT_CODE.fullmatch(code):
            pc.add(f"{where}: answer code is not an integer ({expected})", column=link, value=code)
            return math.nan
        number = int(code)
    if not lo <= number <= hi:
        pc.add(f"{where}: answer out of range ({expected})", column=link, value=number)
        return math.nan
    return float(number)


def read_questionnaire_responses(
    source: str | Path | Mapping[str, Any],
    instrument: Instrument,
) -> pd.DataFrame:
    """Read FHIR R4 QuestionnaireResponses of one instrument into an answers frame.

    Parameters
    ----------
    source : str, Path or dict
        A JSON file holding a ``Bundle`` of QuestionnaireResponse resources
        (every entry must be one) or a single QuestionnaireResponse, or the
        already parsed JSON.
    instrument : Instrument
        The instrument the responses must answer.

    Returns
    -------
    DataFrame
        An answers frame in the order of the resources: ``id``, ``visit``
        (Int64, <NA> without the visit extension), ``date`` (only when some
        response has ``authored``; its first ten characters, the date, or the
        partial date as given), ``item1`` ... ``itemN`` (float64, NaN where
        unanswered).

    Raises
    ------
    InputError
        Every problem found, each naming the participant and visit (and entry
        number in a bundle) in its message and the ``linkId`` as its column.
        Problems: not a Bundle/QuestionnaireResponse; a response to another
        questionnaire (the canonical URL must be ``urn:hikisig:questionnaire:{id}``);
        no ``subject.identifier.value``; an unknown or repeated ``linkId``;
        an item with more than one answer; an answer that is not a
        ``valueCoding`` (system absent or the instrument's answer system, code
        an integer) or a ``valueInteger``; an answer outside the response
        range; a malformed visit extension or ``authored``; two responses of
        one participant at the same (known) visit.

    Warns
    -----
    QuestionnaireVersionWarning
        When responses name another version of the definition
        (``url|version``). They are still read: every answer is checked
        against the instrument as loaded, so a response that does not fit it
        is still an error. A reference without a version is accepted silently.

    Notes
    -----
    Responses with status ``entered-in-error`` are skipped; ``completed``,
    ``amended``, ``in-progress`` and ``stopped`` are read (unanswered items
    stay NaN). Nested items (groups) are not supported: each ``linkId`` must
    be one of ``item1`` ... ``itemN`` at the top level.

    Examples
    --------
    >>> import pandas as pd
    >>> from hikisig.assess.definition import load_instrument
    >>> phq9 = load_instrument("phq9")
    >>> frame = pd.DataFrame({"id": ["P01"], "visit": pd.array([2], dtype="Int64"),
    ...                       **{f"item{i}": [0.0] for i in range(1, 10)}})
    >>> back = read_questionnaire_responses(questionnaire_responses(phq9, frame), phq9)
    >>> back.equals(frame)
    True
    """
    file, data = _load(source)
    pc = ProblemCollector(file)
    resources = _resources(data, pc)
    n = instrument.n_items
    links = {f"item{i}": i - 1 for i in range(1, n + 1)}
    ids: list[str] = []
    visits: list[int | None] = []
    dates: list[str | None] = []
    rows: list[list[float]] = []
    seen: dict[tuple[str, int], str] = {}
    versions: set[str] = set()
    for entry, resource in resources:
        pid = _subject(resource)
        visit = _visit(resource, _where(pid, None, entry), pc)
        where = _where(pid, visit, entry)
        status = resource.get("status")
        if status == _SKIP_STATUS:
            continue
        if status not in _READ_STATUSES:
            pc.add(f"{where}: status must be one of {', '.join(sorted(_READ_STATUSES))} "
                   f"(or {_SKIP_STATUS}, which is skipped)", column="status", value=status)
        if pid is None:
            pc.add(f"{where}: no participant: expected subject.identifier.value", column="subject")
        right_questionnaire = _canonical_ok(instrument, resource.get("questionnaire"), where, pc,
                                            versions)
        authored = resource.get("authored")
        date: str | None = None
        if authored is not None:
            if isinstance(authored, str) and _DATETIME.fullmatch(authored):
                date = authored[:10]
            else:
                pc.add(f"{where}: authored must be a FHIR dateTime (YYYY-MM-DD...)",
                       column="authored", value=authored)
        if pid is not None and visit is not None:
            key = (pid, visit)
            if key in seen:
                pc.add(f"{where}: second response of this participant at this visit "
                       f"(first: {seen[key]})", column=VISIT_EXTENSION, value=visit)
            else:
                seen[key] = f"entry {entry}" if entry is not None else "above"
        row = [math.nan] * n
        # the answers of a response to another questionnaire are not checked one by one
        items = resource.get("item", []) if right_questionnaire else []
        if not isinstance(items, list):
            pc.add(f"{where}: item must be a list", column="item")
            items = []
        answered: set[str] = set()
        for item in items:
            link = item.get("linkId") if isinstance(item, Mapping) else None
            if not isinstance(link, str):
                pc.add(f"{where}: item without a linkId", column="item")
                continue
            if link not in links:
                pc.add(f"{where}: unknown linkId (expected item1 ... item{n} of {instrument.name})",
                       column=link, value=link)
                continue
            if link in answered:
                pc.add(f"{where}: linkId given twice", column=link, value=link)
                continue
            answered.add(link)
            if "item" in item:
                pc.add(f"{where}: nested items are not supported", column=link)
                continue
            answers = item.get("answer", [])
            if not isinstance(answers, list):
                pc.add(f"{where}: answer must be a list", column=link)
                continue
            if not answers:
                continue
            if len(answers) > 1:
                pc.add(f"{where}: {len(answers)} answers to one item (expected exactly one)",
                       column=link, value=len(answers))
                continue
            row[links[link]] = _answer_value(answers[0], instrument, where, link, pc)
        ids.append(pid or "")
        visits.append(visit)
        dates.append(date)
        rows.append(row)
    pc.raise_if_any()
    if versions:
        warnings.warn(
            f"{file}: responses name version(s) {', '.join(sorted(versions))} of {instrument.id}; "
            f"read with version {instrument.version} (every answer was checked against it)",
            QuestionnaireVersionWarning, stacklevel=2)
    frame = pd.DataFrame({"id": pd.Series(ids, dtype=object),
                          "visit": pd.array(visits, dtype="Int64")})
    if any(d is not None for d in dates):
        frame["date"] = pd.Series(dates, dtype=object)
    values = np.array(rows, dtype=float).reshape(len(rows), n)
    items_frame = pd.DataFrame(values, columns=instrument.item_columns)
    return pd.concat([frame, items_frame], axis=1)
