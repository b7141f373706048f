"""The intervention log: treatments participants received, read, imported and listed.

A file of interventions has one row per treatment episode with the columns
``participant`` (the participant's code in the study), ``kind`` (one of
:data:`KINDS`), ``start`` and ``end`` (``YYYY-MM-DD``; an empty end means the
intervention is ongoing) and ``detail`` (free text, optional). Every row is
checked before anything is written; an import runs in one transaction with its
``import_log`` row and audit entry. A participant has at most one intervention of
a kind starting on a given day, so importing a file again updates end and detail
of the rows it already holds instead of duplicating them.
"""

from __future__ import annotations

import datetime as dt
import getpass
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pandas as pd
from sqlalchemy import select
from sqlalchemy.orm import Session

from hikisig.cohort import schema
from hikisig.cohort.audit import append_event
from hikisig.cohort.readers import _check_columns, _is_excel, _read_excel, _read_text_table, file_sha256
from hikisig.cohort.store import Store, query_frame
from hikisig.errors import HikisigError, InputError, Problem, ProblemCollector

__all__ = ["COLUMNS", "KINDS", "KIND_LABELS", "InterventionError", "InterventionImport", "add_intervention",
           "end_intervention", "import_interventions", "intervention_dict", "interventions_frame",
           "participant_interventions", "read_interventions_file"]

#: The kinds of intervention (``intervention.kind``).
KINDS: tuple[str, ...] = schema.INTERVENTION_KINDS
#: How each kind is shown to people.
KIND_LABELS: dict[str, str] = {
    "psychotherapy": "Psychotherapy",
    "family_support": "Family support",
    "online_programme": "Online programme",
    "social_robot": "Social robot",
    "medication": "Medication",
    "day_programme": "Day programme",
    "other": "Other",
}
#: Columns of an interventions file and of :func:`read_interventions_file`'s frame.
COLUMNS = ("participant", "kind", "start", "end", "detail")
_REQUIRED = ("participant", "kind", "start")
_DATE = "expected a date YYYY-MM-DD"


class InterventionError(HikisigError):
    """An intervention cannot be recorded or ended as asked."""


def _kinds_text() -> str:
    return ", ".join(KINDS)


def _parse_kind(text: str) -> str | None:
    kind = text.strip().casefold().replace(" ", "_").replace("-", "_")
    return kind if kind in KINDS else None


def _cell(value: Any) -> str:
    """A cell as text: dates of an Excel sheet as ``YYYY-MM-DD``, missing as empty."""
    if value is None or (isinstance(value, float) and pd.isna(value)) or value is pd.NaT:
        return ""
    if isinstance(value, dt.datetime | pd.Timestamp):
        if value.time() == dt.time(0):
            return value.date().isoformat()
        return value.isoformat()
    if isinstance(value, dt.date):
        return value.isoformat()
    return str(value)


def _parse_date(text: str) -> dt.date | None:
    try:
        return dt.date.fromisoformat(text.strip())
    except ValueError:
        return None


def read_interventions_file(path: str | Path) -> pd.DataFrame:
    """Read and check an interventions file (CSV/TSV or Excel); nothing is written.

    Parameters
    ----------
    path : str or Path
        The file, with the columns ``participant, kind, start`` and optionally
        ``end, detail`` (other columns are ignored).

    Returns
    -------
    pandas.DataFrame
        Columns ``participant, kind, start, end, detail``; ``start`` and ``end`` are
        ``datetime64`` dates (``end`` NaT while ongoing), ``detail`` None when empty.
        The attribute ``attrs["rows"]`` holds the file row of each record.

    Raises
    ------
    InputError
        Every problem of the file (one line each: file, row, column, value, what was expected).

    Examples
    --------
    >>> read_interventions_file("interventions.csv").columns.tolist()  # doctest: +SKIP
    ['participant', 'kind', 'start', 'end', 'detail']
    """
    p = Path(path)
    file = str(path)
    if not p.is_file():
        raise InputError([Problem(file, "file not found")])
    if _is_excel(p):
        try:
            raw = _read_excel(p, 0)
        except Exception as exc:
            raise InputError([Problem(file, f"cannot read as Excel: {exc}")]) from exc
        _check_columns(raw, file)
        raw = raw.dropna(how="all")
        df = pd.DataFrame({str(c): [_cell(v) for v in raw[c]] for c in raw.columns})
    else:
        df = _read_text_table(p)
    df.columns = [str(c).strip() for c in df.columns]
    by_name = {c.casefold(): c for c in df.columns}
    pc = ProblemCollector(file)
    for name in _REQUIRED:
        if name not in by_name:
            pc.add(f"required column is missing (expected columns {', '.join(COLUMNS)}; end and detail "
                   "may be left out)", row=1, column=name)
    pc.raise_if_any()
    if len(df) == 0:
        raise InputError([Problem(file, "has no data rows (only a header): nothing to import")])

    def cells(name: str) -> list[str]:
        c = by_name.get(name)
        return [""] * len(df) if c is None else [str(v).strip() for v in df[c]]

    codes, kinds, starts, ends, details = (cells(c) for c in COLUMNS)
    sites = cells("site")  # optional: which site's participant, when sites share a code
    rows = list(range(2, len(df) + 2))
    out: dict[str, list[Any]] = {c: [] for c in COLUMNS}
    seen: dict[tuple[str, str, str, dt.date], int] = {}
    for i, row in enumerate(rows):
        code, kind_text = codes[i], kinds[i]
        if not code:
            pc.add("empty participant code", row=row, column=by_name.get("participant", "participant"))
        kind = _parse_kind(kind_text)
        if kind is None:
            if kind_text:
                pc.add(f"unknown intervention kind (expected one of {_kinds_text()})", row=row,
                       column=by_name["kind"], value=kind_text)
            else:
                pc.add(f"empty intervention kind (expected one of {_kinds_text()})", row=row,
                       column=by_name["kind"])
        start = _parse_date(starts[i]) if starts[i] else None
        if not starts[i]:
            pc.add(f"empty start date ({_DATE})", row=row, column=by_name["start"])
        elif start is None:
            pc.add(f"not a date ({_DATE})", row=row, column=by_name["start"], value=starts[i])
        end = _parse_date(ends[i]) if ends[i] else None
        if ends[i] and end is None:
            pc.add(f"not a date ({_DATE}, or empty while ongoing)", row=row, column=by_name["end"],
                   value=ends[i])
        if start is not None and end is not None and end < start:
            pc.add(f"end is before the start {start.isoformat()}", row=row, column=by_name["end"],
                   value=ends[i])
        if code and kind is not None and start is not None:
            key = (code, sites[i], kind, start)
            if key in seen:
                pc.add(f"the same intervention as row {seen[key]} (participant, kind and start)", row=row,
                       column=by_name["participant"], value=code)
            else:
                seen[key] = row
        out["participant"].append(code)
        out["kind"].append(kind)
        out["start"].append(start)
        out["end"].append(end)
        out["detail"].append(details[i] or None)
    pc.raise_if_any()
    frame = pd.DataFrame({
        "participant": pd.Series(out["participant"], dtype=object),
        "kind": pd.Series(out["kind"], dtype=object),
        "start": pd.to_datetime(pd.Series(out["start"], dtype=object)),
        "end": pd.to_datetime(pd.Series(out["end"], dtype=object)),
        "detail": pd.Series(out["detail"], dtype=object),
    })
    if "site" in by_name:
        frame["site"] = pd.Series([v or None for v in sites], dtype=object)
    frame.attrs["rows"] = rows
    return frame


@dataclass
class InterventionImport:
    """What an interventions import did (or, on a dry run, would do).

    A row whose participant, kind and start are already stored is not added again: its
    end and detail are updated when they differ (``n_updated``), else it is unchanged.
    """

    study: str
    file: str
    sha256: str
    n_rows: int = 0
    n_new: int = 0
    n_updated: int = 0
    n_unchanged: int = 0
    dry_run: bool = False
    import_id: int | None = None

    @property
    def n_written(self) -> int:
        """Rows written: new plus updated."""
        return self.n_new + self.n_updated

    def summary(self) -> str:
        """One line for people."""
        verb = "would write" if self.dry_run else "wrote"
        return (f"{self.file}: {self.n_rows} interventions; {verb} {self.n_written} ({self.n_new} new, "
                f"{self.n_updated} updated), {self.n_unchanged} already stored unchanged; "
                f"study {self.study!r}" + (" (dry run: nothing written)" if self.dry_run else ""))


def _date(v: Any) -> dt.date | None:
    return None if v is None or pd.isna(v) else pd.Timestamp(v).date()


def import_interventions(store: Store, path: str | Path, study: str, *, dry_run: bool = False,
                         actor: str | None = None, role: str = "cli") -> InterventionImport:
    """Import an interventions file into a study, all or nothing.

    Parameters
    ----------
    store : Store
        An initialised store.
    path : str or Path
        The file (see :func:`read_interventions_file`).
    study : str
        The study; every participant must already be in it.
    dry_run : bool
        Check everything against the store and count what would be written; write nothing.
    actor, role : str
        Who the audit entry names (default: the operating-system user, role ``cli``).

    Returns
    -------
    InterventionImport

    Raises
    ------
    InputError
        Every problem of the file, or participants not in the study; nothing was written.

    Examples
    --------
    >>> import_interventions(store, "interventions.csv", "pilot").summary()  # doctest: +SKIP
    """
    store.require_ready()
    frame = read_interventions_file(path)
    file = str(path)
    rows: list[int] = frame.attrs["rows"]
    result = InterventionImport(study=study, file=file, sha256=file_sha256(Path(path)), n_rows=len(frame),
                                dry_run=dry_run)
    pc = ProblemCollector(file)
    with store.session() as s:
        st = store.study(s, study)
        from hikisig.cohort.importer import participant_index, resolve_participant

        index = participant_index(s, st.id)
        site_col = frame["site"] if "site" in frame else pd.Series([None] * len(frame), dtype=object)
        pids: list[int] = []
        for code, site, row in zip(frame["participant"], site_col, rows, strict=True):
            pid, why = resolve_participant(index, code, site, study)
            if why is not None:
                pc.add(why, row=row, column="participant", value=code)
            pids.append(pid or 0)
        pc.raise_if_any()
        wanted = set(pids)
        existing = {(e.participant_id, e.kind, e.start): e for e in s.scalars(
            select(schema.Intervention).where(schema.Intervention.participant_id.in_(wanted)))}
        new: list[schema.Intervention] = []
        updates: list[tuple[schema.Intervention, dt.date | None, str | None]] = []
        for pid, rec in zip(pids, frame.itertuples(index=False), strict=True):
            start, end = _date(rec.start), _date(rec.end)
            if start is None:  # checked with the file's rows above
                raise HikisigError(f"{path}: an intervention of {rec.participant} has no start date")
            detail = rec.detail if isinstance(rec.detail, str) else None
            old = existing.get((pid, rec.kind, start))
            if old is None:
                new.append(schema.Intervention(participant_id=pid, kind=rec.kind, start=start, end=end,
                                               detail=detail))
            elif old.end != end or old.detail != detail:
                updates.append((old, end, detail))
            else:
                result.n_unchanged += 1
        result.n_new, result.n_updated = len(new), len(updates)
        if dry_run:  # nothing was added to the session: the transaction ends empty
            return result
        s.add_all(new)
        for old, end, detail in updates:
            old.end, old.detail = end, detail
        log = schema.ImportLog(study_id=st.id, kind="interventions", file_name=Path(path).name,
                               sha256=result.sha256, file_format="xlsx" if _is_excel(Path(path)) else "csv",
                               rows=len(frame), n_values=result.n_written, options={})
        s.add(log)
        s.flush()
        result.import_id = log.id
        append_event(s, actor=actor or _os_user(), role=role, action="import", entity="interventions",
                     entity_id=log.id, study=study,
                     after={"file": Path(path).name, "sha256": result.sha256, "rows": len(frame),
                            "new": result.n_new, "updated": result.n_updated,
                            "unchanged": result.n_unchanged})
    return result


def _os_user() -> str:
    try:
        return getpass.getuser()[:100] or "cli"
    except Exception:  # pragma: no cover - no user name in the environment
        return "cli"


def interventions_frame(store: Store, study: str) -> pd.DataFrame:
    """The interventions of a study, one row each, ordered by participant and start.

    Returns
    -------
    pandas.DataFrame
        Columns ``participant`` (code; ``site/code`` when sites share it),
        ``kind``, ``start``, ``end`` (``datetime64``; NaT while
        ongoing) and ``detail``. Empty (with these columns) when the study has none.

    Examples
    --------
    >>> interventions_frame(store, "pilot").head()  # doctest: +SKIP
    """
    with store.session() as s:
        st = store.study(s, study)
        iv, part = schema.Intervention, schema.Participant
        from hikisig.cohort.dataset import participant_label

        df = query_frame(s, select(participant_label().label("participant"), iv.kind, iv.start, iv.end,
                                   iv.detail)
                         .join(part, part.id == iv.participant_id)
                         .where(part.study_id == st.id)
                         .order_by(part.code, iv.start, iv.kind))
    if df.empty:
        df = pd.DataFrame({c: pd.Series([], dtype=object) for c in COLUMNS})
    df["start"] = pd.to_datetime(df["start"])
    df["end"] = pd.to_datetime(df["end"])
    return df.reset_index(drop=True)


def participant_interventions(session: Session, participant_id: int) -> list[schema.Intervention]:
    """A participant's interventions, oldest first."""
    return list(session.scalars(select(schema.Intervention)
                                .where(schema.Intervention.participant_id == participant_id)
                                .order_by(schema.Intervention.start, schema.Intervention.id)))


def _as_date(value: dt.date | str, what: str) -> dt.date:
    if isinstance(value, dt.datetime):
        return value.date()
    if isinstance(value, dt.date):
        return value
    parsed = _parse_date(str(value)) if str(value).strip() else None
    if parsed is None:
        raise InterventionError(f"{what} {str(value)!r}: {_DATE}")
    return parsed


def add_intervention(session: Session, participant: schema.Participant, kind: str, start: dt.date | str,
                     detail: str | None = None, *, today: dt.date | None = None) -> schema.Intervention:
    """Record that a participant started an intervention (ongoing until ended).

    The caller audits the change (the web app does, in the same transaction).

    Raises
    ------
    InterventionError
        An unknown kind, a start that is not a date or lies in the future, or the same
        kind already recorded for the participant from that start.
    """
    k = _parse_kind(kind or "")
    if k is None:
        raise InterventionError(f"intervention kind {kind!r}: expected one of {_kinds_text()}")
    day = _as_date(start, "start date")
    if day > (today or dt.date.today()):
        raise InterventionError(f"start date {day.isoformat()} is in the future: record an intervention "
                                "once it has started")
    text = (detail or "").strip() or None
    if text is not None and any(ord(ch) < 0x20 and ch not in "\n\r\t" for ch in text):
        raise InterventionError("the detail contains control characters")
    taken = session.scalar(select(schema.Intervention.id).where(
        schema.Intervention.participant_id == participant.id, schema.Intervention.kind == k,
        schema.Intervention.start == day))
    if taken is not None:
        raise InterventionError(f"a {KIND_LABELS[k].lower()} intervention starting {day.isoformat()} is "
                                "already recorded for this participant")
    rec = schema.Intervention(participant_id=participant.id, kind=k, start=day, end=None, detail=text)
    session.add(rec)
    session.flush()
    return rec


def end_intervention(session: Session, intervention_id: int, end: dt.date | str, *,
                     today: dt.date | None = None) -> schema.Intervention:
    """Record the end of an ongoing intervention.

    Raises
    ------
    InterventionError
        No such intervention, already ended, or an end that is not a date, lies before the
        start or in the future.
    """
    rec = session.get(schema.Intervention, intervention_id)
    if rec is None:
        raise InterventionError(f"no intervention {intervention_id}")
    day = _as_date(end, "end date")
    if rec.end is not None:
        raise InterventionError(f"the intervention already ended on {rec.end.isoformat()}")
    if day < rec.start:
        raise InterventionError(f"end date {day.isoformat()} is before the start {rec.start.isoformat()}")
    if day > (today or dt.date.today()):
        raise InterventionError(f"end date {day.isoformat()} is in the future: record the end once it "
                                "has happened")
    rec.end = day
    session.flush()
    return rec


def intervention_dict(rec: schema.Intervention) -> dict[str, Any]:
    """The fields of an intervention (for pages and audit entries)."""
    return {"id": rec.id, "participant": rec.participant_id, "kind": rec.kind,
            "label": KIND_LABELS.get(rec.kind, rec.kind), "start": rec.start.isoformat(),
            "end": rec.end.isoformat() if rec.end else None, "detail": rec.detail}
