"""Words for the pages: display names instead of internal ids, readable option and diff text.

Templates get :func:`label` (and friends) from the routes that render them, so a page shows
"PHQ-9", "Item 9 (self-harm) alert" or "finished" where the store keeps ``phq9``,
``item9_alert`` or the job stage ``done``.
"""

from __future__ import annotations

import json
from typing import Any

__all__ = ["CRITERIA_STATUS", "INSTRUMENT_NAMES", "JOB_STAGES", "LABELS", "audit_changes", "criteria_label",
           "instrument_label", "job_stage_label", "label", "options_text"]

#: Short names of the shipped instruments, as clinicians call them (the definitions' ``short_name``).
INSTRUMENT_NAMES = {"hq25": "HQ-25", "hq25m": "HQ-25M", "phq9": "PHQ-9", "k6": "K6", "k10": "K10",
                    "ucla3": "UCLA-3", "lsns6": "LSNS-6"}

#: Score flags, cut-offs and alerts.
LABELS = {"item9_alert": "Item 9 (self-harm) alert", "screen_positive": "Screen positive",
          "total": "Total", "band": "Band", "note": "Note", "family": "Family subscale",
          "friends": "Friends subscale", "isolation_risk": "At risk of social isolation",
          "serious_distress": "Serious psychological distress", "moderate_distress": "Moderate distress"}

#: The 2020 criteria status words.
CRITERIA_STATUS = {"hikikomori": "Hikikomori", "pre_hikikomori": "Pre-hikikomori",
                   "pre-hikikomori": "Pre-hikikomori", "not": "Not hikikomori",
                   "none": "Not hikikomori", "no": "Not hikikomori"}

#: Analysis job stages and states in words (``jobs.py`` writes the ids).
JOB_STAGES = {"queued": "waiting to start", "running": "running", "done": "finished",
              "failed": "failed", "data": "reading the data", "statistics": "group statistics",
              "discrimination": "discrimination model", "severity": "severity model",
              "stratification": "stratification", "followup": "follow-up",
              "report": "writing the report"}


def instrument_label(iid: str | None) -> str:
    """``phq9`` -> ``PHQ-9``; an unknown id is returned as given.

    Examples
    --------
    >>> instrument_label("hq25"), instrument_label("other")
    ('HQ-25', 'other')
    """
    if not iid:
        return ""
    return INSTRUMENT_NAMES.get(iid, iid)


def label(key: Any) -> str:
    """A display name for an internal id: instrument, flag, criteria status or job stage.

    Examples
    --------
    >>> label("item9_alert"), label("screen_positive"), label("some_flag")
    ('Item 9 (self-harm) alert', 'Screen positive', 'Some flag')
    """
    if key is None:
        return ""
    k = str(key)
    for table in (INSTRUMENT_NAMES, LABELS, CRITERIA_STATUS):
        if k in table:
            return table[k]
    if k.endswith("_alert") and k[:-6].startswith("item") and k[4:-6].isdigit():
        return f"Item {k[4:-6]} alert"
    return k.replace("_", " ").strip().capitalize()


def criteria_label(status: str | None) -> str:
    """``pre_hikikomori`` -> ``Pre-hikikomori``; None -> ``not checked``."""
    if not status:
        return "not checked"
    return CRITERIA_STATUS.get(status, status.replace("_", "-"))


def job_stage_label(stage: str | None) -> str:
    """A job's stage or status in words: ``done`` -> ``finished``."""
    if not stage:
        return ""
    return JOB_STAGES.get(stage, stage.replace("_", " "))


def _value_text(value: Any) -> str:
    if value is None:
        return "–"
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, float):
        return f"{value:g}"
    if isinstance(value, dict):
        return options_text(value)
    if isinstance(value, list):
        return ", ".join(_value_text(v) for v in value)
    return str(value)


def options_text(options: dict[str, Any] | None) -> str:
    """A dict of options as readable text: ``{"n_perm": 100, "seed": 1}`` -> ``n perm 100 · seed 1``.

    Examples
    --------
    >>> options_text({"n_repeats": 5, "shuffle": True})
    'N repeats: 5 · Shuffle: yes'
    """
    if not options:
        return "defaults"
    return " · ".join(f"{label(k)}: {_value_text(v)}" for k, v in options.items())


def _parsed(text: str | None) -> Any:
    if text is None or text == "":
        return None
    try:
        return json.loads(text)
    except ValueError:
        return text


def _flat(value: Any, prefix: str = "") -> dict[str, Any]:
    if isinstance(value, dict):
        out: dict[str, Any] = {}
        for k, v in value.items():
            key = f"{prefix}.{k}" if prefix else str(k)
            if isinstance(v, dict) and v:
                out.update(_flat(v, key))
            else:
                out[key] = v
        return out
    return {prefix or "value": value}


def audit_changes(before: str | None, after: str | None) -> list[dict[str, Any]]:
    """The fields of an audit entry's before/after JSON: field, old, new and whether it changed.

    Changed fields come first; for a create (no ``before``) every field is new, for a delete
    every field is removed.

    Examples
    --------
    >>> [(c["field"], c["old"], c["new"], c["changed"])
    ...  for c in audit_changes('{"end": null, "kind": "x"}', '{"end": "2026-01-02", "kind": "x"}')]
    [('end', '–', '2026-01-02', True), ('kind', 'x', 'x', False)]
    """
    b, a = _parsed(before), _parsed(after)
    fb = _flat(b) if b is not None else {}
    fa = _flat(a) if a is not None else {}
    keys = list(dict.fromkeys([*fb, *fa]))
    rows = [{"field": k, "old": _value_text(fb.get(k)) if k in fb else "–",
             "new": _value_text(fa.get(k)) if k in fa else "–",
             "changed": (k in fb) != (k in fa) or fb.get(k) != fa.get(k)} for k in keys]
    return sorted(rows, key=lambda r: not r["changed"])
