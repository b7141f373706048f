"""Writing parsed tables into the cohort store, all or nothing.

:func:`import_measurements` and :func:`import_participants` each run in one
database transaction: on any problem (a unit the catalog does not know, a value
that differs from the stored one, a participant whose sex differs from the
record) nothing is written and every problem is raised together. A file that
was imported before (same SHA-256) is recognised and changes nothing.
"""

from __future__ import annotations

import warnings
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
from sqlalchemy import Connection, delete, insert, select, tuple_, update
from sqlalchemy.orm import Session

from hikisig.catalog import Catalog, load_catalog
from hikisig.cohort import schema
from hikisig.cohort.metadata import PARTICIPANT_FIELDS, canonical_field, parse_metadata
from hikisig.cohort.readers import ParsedTable, _read_text_table, file_sha256, is_synthetic_file
from hikisig.cohort.store import Store, query_frame
from hikisig.cohort.variables import Variable, merge_columns, resolve_variables
from hikisig.errors import HikisigError, InputError, Problem, ProblemCollector

__all__ = [
    "ImportResult",
    "UncataloguedAnalyteWarning",
    "import_measurements",
    "import_participants",
]

#: Rows written per batch (progress is reported per batch).
BATCH = 50_000

Progress = Callable[[int, int], None]


class UncataloguedAnalyteWarning(UserWarning):
    """Some columns are not in the analyte catalog; they are kept as they are."""


@dataclass
class ImportResult:
    """What an import did.

    Attributes
    ----------
    skipped : bool
        The same file was imported before; nothing was changed.
    """

    study: str
    file: str
    fmt: str
    sha256: str
    skipped: bool = False
    import_id: int | None = None
    n_samples: int = 0
    n_samples_new: int = 0
    n_participants_new: int = 0
    n_analytes: int = 0
    n_analytes_new: int = 0
    n_written: int = 0
    n_unchanged: int = 0
    n_replaced: int = 0
    uncatalogued: list[str] = field(default_factory=list)

    def summary(self) -> str:
        """One line for people."""
        if self.skipped:
            return (f"{self.file}: already imported into study {self.study!r} "
                    f"(same sha256 {self.sha256[:12]}...); nothing changed")
        return (f"{self.file}: {self.n_samples} samples ({self.n_samples_new} new), "
                f"{self.n_analytes} analytes ({self.n_analytes_new} new), "
                f"{self.n_written} values written, {self.n_unchanged} unchanged, "
                f"{self.n_replaced} replaced; study {self.study!r}")


def _none(v: Any) -> Any:
    if v is None:
        return None
    if isinstance(v, float) and np.isnan(v):
        return None
    return v


def participant_index(session: Session, study_id: int) -> dict[str, list[tuple[int, str | None]]]:
    """The participants of a study by code: code -> [(id, site code or None), ...].

    A code names one participant per site (schema revision 0005), so a code may have
    several entries when sites share it.
    """
    out: dict[str, list[tuple[int, str | None]]] = {}
    for pid, code, site in session.execute(
            select(schema.Participant.id, schema.Participant.code, schema.Site.code)
            .outerjoin(schema.Site, schema.Site.id == schema.Participant.site_id)
            .where(schema.Participant.study_id == study_id).order_by(schema.Participant.id)).all():
        out.setdefault(code, []).append((int(pid), site))
    return out


def resolve_participant(index: dict[str, list[tuple[int, str | None]]], code: str, site: str | None,
                        study: str) -> tuple[int | None, str | None]:
    """The participant ``code`` (at ``site`` when given) of a study: (id, None), or (None, the
    reason) when there is none or the code is used at several sites and no site was given."""
    found = index.get(code, [])
    if site is not None:
        found = [f for f in found if f[1] == site]
        if not found:
            return None, f"no participant {code!r} at site {site!r} in study {study!r}"
    if not found:
        return None, f"no participant with this code in study {study!r}"
    if len(found) > 1:
        sites = ", ".join(sorted(str(s) for _, s in found))
        return None, (f"participant code {code!r} is used at {len(found)} sites of study {study!r} "
                      f"({sites}): give a site column to say which")
    return found[0][0], None


def _upsert_participants(session: Session, study: schema.Study, people: pd.DataFrame,
                         rows: list[int], replace: bool, pc: ProblemCollector
                         ) -> tuple[list[int | None], int]:
    """Create or check participants; returns each record's participant id and the number created.

    A participant is known by study, site and code (two sites may share a code). A record
    with a site matches the participant of that code at that site, or the one participant
    of that code without a site (who gets the site); otherwise it creates one at that site.
    A record without a site matches the participant of that code; when the code is used at
    several sites, the record is ambiguous: a problem naming the sites is reported and the
    record's id is None. Records without a code get None.
    """
    existing = query_frame(session, select(
        schema.Participant.id, schema.Participant.code, schema.Participant.sex,
        schema.Participant.age, schema.Participant.birth_year, schema.Participant.group_label,
        schema.Participant.medication_free, schema.Participant.site_id,
        schema.Participant.attributes).where(schema.Participant.study_id == study.id))
    by_code: dict[str, list[int]] = {}
    for k, c in enumerate(existing["code"].tolist() if len(existing) else []):
        by_code.setdefault(c, []).append(k)
    sites = {s.code: s.id for s in session.scalars(
        select(schema.Site).where(schema.Site.study_id == study.id))}
    new_rows: list[dict[str, Any]] = []
    columns = {"sex": "sex", "age": "age", "birth_year": "birth_year", "group": "group_label",
               "medication_free": "medication_free"}
    out: list[int | None] = [None] * len(people)
    pending: dict[tuple[str, int | None], list[int]] = {}  # new participants -> their records
    adopted: dict[int, int] = {}  # existing participant without a site -> the site it gets here
    for idx, rec in enumerate(people.to_dict("records")):
        code = rec["participant"]
        if code is None:
            continue
        site_id = None
        site = _none(rec.get("site"))
        if site is not None:
            if str(site) not in sites:
                s = schema.Site(study_id=study.id, code=str(site))
                session.add(s)
                session.flush()
                sites[str(site)] = s.id
            site_id = sites[str(site)]
        key = (code, site_id)
        if key in pending:
            pending[key].append(idx)
            continue
        cands = by_code.get(code, [])
        if site_id is not None:
            match = [k for k in cands if _none(existing["site_id"].iat[k]) == site_id
                     or adopted.get(int(existing["id"].iat[k])) == site_id]
            if not match:
                match = [k for k in cands if _none(existing["site_id"].iat[k]) is None
                         and int(existing["id"].iat[k]) not in adopted][:1]
        else:
            match = cands
        if len(match) > 1:
            names = {v: k for k, v in sites.items()}
            where = ", ".join(sorted(names.get(_none(existing["site_id"].iat[k]), "(no site)")
                                     for k in match))
            pc.add(f"participant code {code!r} is used at {len(match)} sites of study {study.name!r} "
                   f"({where}): give the site column to say which", row=rows[idx], value=code)
            continue
        if not match:
            pending[key] = [idx]
            new_rows.append({"study_id": study.id, "code": code, "site_id": site_id,
                             "attributes": rec.get("attributes") or {},
                             **{col: _none(rec.get(f)) for f, col in columns.items()}})
            continue
        old = existing.iloc[match[0]]
        out[idx] = int(old["id"])
        values = {col: _none(rec.get(f)) for f, col in columns.items()}
        attrs = rec.get("attributes") or {}
        changes: dict[str, Any] = {}
        for col, new in values.items():
            if new is None:
                continue
            cur = _none(old[col])
            if cur is None or (replace and cur != new):
                changes[col] = new
            elif cur != new:
                pc.add(f"participant {code!r} has {col} {cur!r} in the store; the file says "
                       f"{new!r} (use --replace to overwrite)", row=rows[idx], value=new)
        if site_id is not None and _none(old["site_id"]) is None and int(old["id"]) not in adopted:
            changes["site_id"] = site_id
            adopted[int(old["id"])] = site_id
        merged = dict(old["attributes"] or {})
        if any(merged.get(k) != v for k, v in attrs.items()):
            merged.update(attrs)
            changes["attributes"] = merged
        if changes:
            session.execute(update(schema.Participant)
                            .where(schema.Participant.id == int(old["id"])).values(**changes))
    if new_rows:
        session.execute(insert(schema.Participant), new_rows)
        ids = {(c, s): int(i) for i, c, s in session.execute(
            select(schema.Participant.id, schema.Participant.code, schema.Participant.site_id)
            .where(schema.Participant.study_id == study.id)).all()}
        for key, idxs in pending.items():
            for idx in idxs:
                out[idx] = ids[key]
    return out, len(new_rows)


def _already_imported(session: Session, study_id: int, kind: str, sha: str) -> bool:
    return session.scalar(select(schema.ImportLog.id).where(
        schema.ImportLog.study_id == study_id, schema.ImportLog.kind == kind,
        schema.ImportLog.sha256 == sha)) is not None


def _bulk_insert_measurements(conn: Connection, rows: list[tuple[Any, ...]],
                              progress: Progress | None) -> None:
    cols = "sample_id, analyte_id, value, flag, raw, import_id"
    dbapi = conn.connection.dbapi_connection
    if dbapi is None:  # pragma: no cover
        raise RuntimeError("no database connection")
    cur = dbapi.cursor()
    total = len(rows)
    try:
        if conn.dialect.name == "postgresql":
            with cur.copy(f"COPY measurement ({cols}) FROM STDIN") as copy:
                for start in range(0, total, BATCH):
                    for row in rows[start:start + BATCH]:
                        copy.write_row(row)
                    if progress:
                        progress(min(start + BATCH, total), total)
        else:
            mark = "?" if conn.dialect.paramstyle == "qmark" else "%s"
            sql = f"INSERT INTO measurement ({cols}) VALUES ({', '.join([mark] * 6)})"
            for start in range(0, total, BATCH):
                cur.executemany(sql, rows[start:start + BATCH])
                if progress:
                    progress(min(start + BATCH, total), total)
    finally:
        cur.close()


def import_measurements(
    store: Store,
    table: ParsedTable,
    study: str = "default",
    *,
    replace: bool = False,
    catalog: Catalog | None = None,
    progress: Progress | None = None,
    options: dict[str, Any] | None = None,
    dry_run: bool = False,
    before_commit: Callable[[Session, ImportResult], None] | None = None,
) -> ImportResult:
    """Store a parsed measurement table in one transaction.

    Parameters
    ----------
    store : Store
        An initialised store.
    table : ParsedTable
        From :func:`hikisig.cohort.readers.read_measurements`.
    study : str
        Study name (created if new).
    replace : bool
        Overwrite stored values that differ; otherwise a difference is an error.
    catalog : Catalog, optional
        Analyte catalog (default: the shipped one).
    progress : callable, optional
        Called as ``progress(done, total)`` while values are written.
    options : dict, optional
        Import options, recorded in the import log.
    dry_run : bool
        Check everything against the store (units, conflicting values, samples
        of other participants), count what would be written, then roll back.
    before_commit : callable, optional
        Called as ``before_commit(session, result)`` inside the import's
        transaction once everything is written (also when the file was already
        imported and nothing changed; never on a dry run): an audit entry
        written there commits or rolls back with the import.

    Returns
    -------
    ImportResult

    Raises
    ------
    InputError
        Every problem found; nothing was written.

    Examples
    --------
    >>> from hikisig.cohort import Store, read_measurements
    >>> store = Store("demo.db"); store.init()                   # doctest: +SKIP
    >>> import_measurements(store, read_measurements("lab.csv"))  # doctest: +SKIP
    """
    store.require_ready()
    cat = catalog or load_catalog()
    pc = ProblemCollector(table.file)
    result = ImportResult(study=study, file=table.file, fmt=table.fmt, sha256=table.sha256)
    variables = resolve_variables(table, cat, pc)
    values, flag_r, flag_c, flags, raws = merge_columns(table, variables, pc)
    pc.raise_if_any()
    result.uncatalogued = [v.source_name for v in variables if v.catalog_id is None]
    try:
        return _import_checked(store, table, study, result, variables, values, (flag_r, flag_c, flags, raws),
                               pc, replace=replace, progress=progress, options=options, dry_run=dry_run,
                               before_commit=before_commit)
    except _DryRunError:
        return result


class _DryRunError(Exception):
    """Raised inside the transaction of a dry run to roll it back."""


def _import_checked(store: Store, table: ParsedTable, study: str, result: ImportResult,
                    variables: list[Variable], values: np.ndarray, flagged: tuple[Any, Any, Any, Any],
                    pc: ProblemCollector, *, replace: bool, progress: Progress | None,
                    options: dict[str, Any] | None, dry_run: bool,
                    before_commit: Callable[[Session, ImportResult], None] | None = None
                    ) -> ImportResult:
    flag_r, flag_c, flags, raws = flagged
    samples = table.samples
    with store.session() as s:
        st = store.study(s, study, create=True, synthetic=table.synthetic)
        if _already_imported(s, st.id, "measurements", table.sha256):
            result.skipped = True
            if before_commit is not None and not dry_run:
                before_commit(s, result)
            return result
        if result.uncatalogued:
            shown = ", ".join(result.uncatalogued[:8])
            more = f" and {len(result.uncatalogued) - 8} more" if len(result.uncatalogued) > 8 else ""
            warnings.warn(f"{table.file}: {len(result.uncatalogued)} column(s) not in the analyte "
                          f"catalog, kept as uncatalogued analytes: {shown}{more}",
                          UncataloguedAnalyteWarning, stacklevel=2)
        rows = samples["_row"].astype(int).tolist()
        part_ids, result.n_participants_new = _upsert_participants(s, st, samples, rows, replace, pc)
        if any(part_ids[i] is None for i in np.flatnonzero(samples["sample_type"].eq("study").to_numpy())):
            pc.raise_if_any()  # a participant code used at several sites, and no site given
        # visits
        is_study = samples["sample_type"].eq("study").to_numpy()
        visits = query_frame(s, select(schema.Visit.id, schema.Visit.participant_id,
                                  schema.Visit.visit_index, schema.Visit.visit_date)
                        .join(schema.Participant).where(schema.Participant.study_id == st.id))
        visit_map = {(int(p), int(v)): int(i) for i, p, v in
                     zip(visits.get("id", []), visits.get("participant_id", []),
                         visits.get("visit_index", []), strict=True)}
        new_visits: dict[tuple[int, int], dict[str, Any]] = {}
        for si in np.flatnonzero(is_study).tolist():
            pid = part_ids[si]
            if pid is None:  # every study sample was matched to a participant above
                raise HikisigError(f"sample {samples['sample'].iat[si]!r} has no participant")
            key = (pid, int(samples["visit"].iat[si]))
            date = _none(samples["visit_date"].iat[si]) if "visit_date" in samples else None
            if key not in visit_map and key not in new_visits:
                new_visits[key] = {"participant_id": pid, "visit_index": key[1], "visit_date": date}
        if new_visits:
            s.execute(insert(schema.Visit), list(new_visits.values()))
            got = s.execute(select(schema.Visit.id, schema.Visit.participant_id,
                                   schema.Visit.visit_index)
                            .where(schema.Visit.participant_id.in_({k[0] for k in new_visits})))
            visit_map.update({(p, v): i for i, p, v in got.all()})
        # samples
        existing = query_frame(s, select(schema.Sample.id, schema.Sample.code, schema.Sample.visit_id,
                                    schema.Sample.sample_type)
                          .where(schema.Sample.study_id == st.id))
        ex_by_code = {c: k for k, c in enumerate(existing["code"].tolist())} if len(existing) else {}
        new_samples: list[dict[str, Any]] = []
        for i, rec in enumerate(samples.to_dict("records")):
            visit_id = (visit_map[(int(part_ids[i] or -1), int(rec["visit"]))]
                        if rec["sample_type"] == "study" else None)
            attrs = dict(rec.get("attributes") or {})
            if rec["sample_type"] != "study":
                attrs.update({f: rec[f] for f in PARTICIPANT_FIELDS if _none(rec.get(f)) is not None})
            if rec["sample"] in ex_by_code:
                old = existing.iloc[ex_by_code[rec["sample"]]]
                if _none(old["visit_id"]) != visit_id or old["sample_type"] != rec["sample_type"]:
                    pc.add(f"sample {rec['sample']!r} is already stored as a {old['sample_type']} "
                           "sample of another participant or visit", row=rows[i],
                           value=rec["sample"])
                continue
            new_samples.append({
                "study_id": st.id, "code": rec["sample"], "visit_id": visit_id,
                "sample_type": rec["sample_type"], "matrix": _none(rec.get("matrix")),
                "batch": None if _none(rec.get("batch")) is None else str(rec["batch"]),
                "injection_order": _none(rec.get("injection_order")), "attributes": attrs})
        if new_samples:
            s.execute(insert(schema.Sample), new_samples)
        sample_ids_by_code = dict(s.execute(select(schema.Sample.code, schema.Sample.id)
                                            .where(schema.Sample.study_id == st.id)).all())
        sample_ids = np.array([sample_ids_by_code.get(c, -1) for c in samples["sample"]],
                              dtype=np.int64)
        result.n_samples, result.n_samples_new = len(samples), len(new_samples)
        # analytes
        an = {a.key: a for a in s.scalars(select(schema.Analyte)
                                          .where(schema.Analyte.study_id == st.id))}
        new_an = 0
        for v in variables:
            old_a = an.get(v.key)
            if old_a is None:
                a = schema.Analyte(study_id=st.id, key=v.key, catalog_id=v.catalog_id,
                                   display_name=v.display_name, source_name=v.source_name,
                                   unit=v.unit, attributes=v.attributes)
                s.add(a)
                an[v.key] = a
                new_an += 1
            elif old_a.unit != v.unit:
                pc.add(f"analyte {v.key!r} is stored in unit {old_a.unit!r}; this file gives "
                       f"{v.unit!r} (give the unit with --units or --unit-row)",
                       column=v.source_name)
        s.flush()
        analyte_ids = np.array([an[v.key].id for v in variables], dtype=np.int64)
        result.n_analytes, result.n_analytes_new = len(variables), new_an
        pc.raise_if_any()
        # the cells to write
        r, c = np.nonzero(~np.isnan(values))
        new = pd.DataFrame({
            "sample_id": np.concatenate([sample_ids[r], sample_ids[flag_r]]),
            "analyte_id": np.concatenate([analyte_ids[c], analyte_ids[flag_c]]),
            "value": np.concatenate([values[r, c], np.full(len(flag_r), np.nan)]),
            "flag": [None] * len(r) + flags,
            "raw": [None] * len(r) + raws,
            "row_i": np.concatenate([r, flag_r]),
            "col_i": np.concatenate([c, flag_c]),
        })
        replaced_keys: list[tuple[int, int]] = []
        touched = [int(i) for i in sample_ids if int(i) in set(existing.get("id", []))]
        if touched and len(new):
            old_m = _existing_measurements(s, touched, analyte_ids.tolist())
            if len(old_m):
                m = new.merge(old_m, on=["sample_id", "analyte_id"], how="inner",
                              suffixes=("", "_old"))
                same_val = (m["value"] == m["value_old"]) | (m["value"].isna() & m["value_old"].isna())
                same_flag = m["flag"].fillna("") == m["flag_old"].fillna("")
                same = same_val & same_flag
                result.n_unchanged = int(same.sum())
                diff = m[~same]
                if len(diff) and not replace:
                    for rec in diff.head(pc.limit).itertuples(index=False):
                        old_txt = rec.flag_old or rec.value_old
                        new_txt = rec.flag or rec.value
                        pc.add(f"sample {samples['sample'].iat[rec.row_i]!r} already has "
                               f"{variables[rec.col_i].key} = {old_txt!r} in the store; the file has "
                               f"{new_txt!r} (use --replace to overwrite)",
                               row=rows[rec.row_i], column=variables[rec.col_i].source_name)
                    pc.raise_if_any()
                replaced_keys = list(zip(diff["sample_id"].tolist(), diff["analyte_id"].tolist(),
                                         strict=True))
                result.n_replaced = len(replaced_keys)
                keep = new.set_index(["sample_id", "analyte_id"]).index.isin(
                    pd.MultiIndex.from_frame(m.loc[same, ["sample_id", "analyte_id"]]))
                new = new[~keep]
        for start in range(0, len(replaced_keys), 500):
            chunk = replaced_keys[start:start + 500]
            s.execute(delete(schema.Measurement).where(
                tuple_(schema.Measurement.sample_id, schema.Measurement.analyte_id).in_(chunk)))
        log = schema.ImportLog(study_id=st.id, kind="measurements", file_name=Path(table.file).name,
                               sha256=table.sha256, file_format=table.fmt, rows=len(samples),
                               n_values=len(new), options=options or {})
        if dry_run:
            result.n_written = len(new)
            raise _DryRunError
        s.add(log)
        s.flush()
        result.import_id = log.id
        vals = new["value"].to_numpy(dtype=np.float64)
        py_vals = vals.astype(object)
        py_vals[np.isnan(vals)] = None
        out_rows = list(zip(new["sample_id"].astype(int).tolist(),
                            new["analyte_id"].astype(int).tolist(),
                            py_vals.tolist(),
                            new["flag"].tolist(), new["raw"].tolist(),
                            [log.id] * len(new), strict=True))
        _bulk_insert_measurements(s.connection(), out_rows, progress)
        result.n_written = len(out_rows)
        if before_commit is not None:
            before_commit(s, result)
    return result


def _existing_measurements(s: Session, sample_ids: list[int], analyte_ids: list[int]) -> pd.DataFrame:
    frames = []
    for start in range(0, len(sample_ids), 5000):
        chunk = sample_ids[start:start + 5000]
        frames.append(query_frame(s, select(schema.Measurement.sample_id, schema.Measurement.analyte_id,
                                       schema.Measurement.value, schema.Measurement.flag)
                             .where(schema.Measurement.sample_id.in_(chunk))))
    df = pd.concat(frames, ignore_index=True) if frames else pd.DataFrame()
    if len(df):
        df = df[df["analyte_id"].isin(analyte_ids)]
        df["value"] = df["value"].astype(float)
    return df


def import_participants(
    store: Store,
    path: str | Path,
    study: str = "default",
    *,
    replace: bool = False,
    id_column: str | None = None,
) -> ImportResult:
    """Import a participants table (one row per participant) in one transaction.

    Columns are recognised by name: participant code (``participant``,
    ``subject``, ``id``... or the first column), ``sex``, ``age``,
    ``birth_year``, ``group``, ``medication_free``, ``site``; any other column
    becomes a free-form attribute.

    Examples
    --------
    >>> import_participants(store, "participants.csv")  # doctest: +SKIP
    """
    store.require_ready()
    p = Path(path)
    if not p.exists():
        raise InputError([Problem(str(path), "file not found")])
    df = _read_text_table(p)
    file = str(path)
    pc = ProblemCollector(file)
    cols = [str(c) for c in df.columns]
    id_col = id_column or next((c for c in cols if canonical_field(c) == "participant"),
                               next((c for c in cols if c.strip().casefold() in ("id", "code")),
                                    cols[0]))
    if id_col not in cols:
        pc.add(f"no column {id_col!r}", row=1)
        pc.raise_if_any()
    rows = list(range(2, len(df) + 2))
    meta = parse_metadata(df[[c for c in cols if c != id_col]], rows, pc)
    codes = df[id_col].str.strip().tolist()
    site_of = (meta["site"].map(_none).tolist() if "site" in meta.columns else [None] * len(codes))
    seen: dict[tuple[str, Any], int] = {}
    for code, site, row in zip(codes, site_of, rows, strict=True):
        if not code:
            pc.add("empty participant code", row=row, column=id_col)
        elif (code, site) in seen:  # a code names one participant per site
            pc.add(f"duplicate participant code (first in row {seen[(code, site)]})", row=row,
                   column=id_col, value=code)
        else:
            seen[(code, site)] = row
    meta.insert(0, "participant", codes)
    pc.raise_if_any()
    sha = file_sha256(p)
    result = ImportResult(study=study, file=file, fmt="participants", sha256=sha)
    with store.session() as s:
        st = store.study(s, study, create=True, synthetic=is_synthetic_file(p))
        if _already_imported(s, st.id, "participants", sha):
            result.skipped = True
            return result
        _, result.n_participants_new = _upsert_participants(s, st, meta, rows, replace, pc)
        pc.raise_if_any()
        s.add(schema.ImportLog(study_id=st.id, kind="participants", file_name=p.name, sha256=sha,
                               file_format="csv", rows=len(df), n_values=0,
                               options={"replace": replace}))
    result.n_samples = 0
    return result
