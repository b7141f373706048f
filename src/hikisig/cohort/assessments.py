"""Questionnaire answers in the store: import, load and rescore.

Each assessment row keeps the raw answers, the instrument version, the scores
computed from them and the sha256 of the definition used. When a definition
changes (a corrected reverse-item list, new bands), :func:`rescore_assessments`
recomputes every stored score from the raw answers; :func:`load_assessments`
always returns scores computed with the current definitions.
"""

from __future__ import annotations

import hashlib
import math
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
from sqlalchemy import select
from sqlalchemy.orm import Session

from hikisig.assess.definition import Instrument, load_instrument
from hikisig.assess.scoring import score
from hikisig.cohort import schema
from hikisig.cohort.importer import ImportResult, _already_imported
from hikisig.cohort.store import Store
from hikisig.errors import ProblemCollector

__all__ = ["definition_sha256", "import_responses", "load_assessments", "rescore_assessments"]


def definition_sha256(instrument: Instrument) -> str:
    """A fingerprint of everything in a definition that scoring depends on."""
    return hashlib.sha256(instrument.model_dump_json().encode()).hexdigest()


def _jsonable(v: Any) -> Any:
    if v is None or v is pd.NA:
        return None
    if isinstance(v, float | np.floating):
        return None if math.isnan(float(v)) else float(v)
    if isinstance(v, np.bool_ | bool):
        return bool(v)
    if isinstance(v, np.integer):
        return int(v)
    return v


def _scores_dicts(answers: pd.DataFrame, inst: Instrument) -> list[dict[str, Any]]:
    scored = score(answers, inst).drop(columns=["id", "visit", "date"], errors="ignore")
    return [{k: _jsonable(v) for k, v in rec.items()} for rec in scored.to_dict("records")]


def import_responses(store: Store, answers: pd.DataFrame, instrument: Instrument, *,
                     study: str = "default", file: str = "<answers>", sha256: str = "",
                     fmt: str = "csv", replace: bool = False) -> ImportResult:
    """Store validated answers (from :func:`hikisig.assess.answers.check_answers` or a
    FHIR/REDCap reader) with their scores, in one transaction.

    Participants not yet in the study are created; a row without a visit is
    visit 1. An assessment already stored for the same visit and instrument
    with different answers is an error unless ``replace``.

    Examples
    --------
    >>> import_responses(store, answers, load_instrument("phq9"), study="s")  # doctest: +SKIP
    """
    store.require_ready()
    inst = instrument
    pc = ProblemCollector(file)
    res = ImportResult(study=study, file=file, fmt=fmt, sha256=sha256)
    digest = definition_sha256(inst)
    scores = _scores_dicts(answers, inst)
    kind = f"responses:{inst.id}"
    with store.session() as s:
        st = store.study(s, study, create=True)
        if sha256 and _already_imported(s, st.id, kind, sha256):
            res.skipped = True
            return res
        log = schema.ImportLog(study_id=st.id, kind=kind, file_name=Path(file).name,
                               sha256=sha256 or "-", file_format=fmt, rows=len(answers),
                               n_values=len(answers), options={"replace": replace})
        s.add(log)
        s.flush()
        from hikisig.cohort.importer import participant_index

        index = participant_index(s, st.id)  # code -> [(id, site)]: sites may share a code
        for k, rec in enumerate(answers.to_dict("records")):
            code = str(rec["id"])
            visit_index = 1 if rec.get("visit") is None or pd.isna(rec.get("visit")) else int(rec["visit"])
            site = rec.get("site")
            site = None if site is None or pd.isna(site) or not str(site).strip() else str(site).strip()
            if site is None and code not in index and "/" in code:  # ``site/code`` as analyses name it
                site, code = code.split("/", 1)
            found = [f for f in index.get(code, []) if site is None or f[1] == site]
            if len(found) > 1:
                pc.add(f"participant code {code!r} is used at {len(found)} sites of study {study!r} "
                       f"({', '.join(sorted(str(f[1]) for f in found))}): give a site column or "
                       "site/code to say which", row=k + 2, column="id", value=code)
                continue
            if found:
                p = s.get_one(schema.Participant, found[0][0])
            else:
                site_id = None
                if site is not None:
                    site_id = s.scalar(select(schema.Site.id).where(schema.Site.study_id == st.id,
                                                                    schema.Site.code == site))
                    if site_id is None:
                        pc.add(f"no site {site!r} in study {study!r}", row=k + 2, column="site", value=site)
                        continue
                p = schema.Participant(study_id=st.id, code=code, site_id=site_id, attributes={})
                s.add(p)
                s.flush()
                index.setdefault(code, []).append((p.id, site))
                res.n_participants_new += 1
            v = s.scalar(select(schema.Visit).where(schema.Visit.participant_id == p.id,
                                                    schema.Visit.visit_index == visit_index))
            if v is None:
                v = schema.Visit(participant_id=p.id, visit_index=visit_index)
                s.add(v)
                s.flush()
            item_answers = {c: _jsonable(rec[c]) for c in inst.item_columns}
            old = s.scalar(select(schema.Assessment).where(schema.Assessment.visit_id == v.id,
                                                           schema.Assessment.instrument == inst.id))
            if old is not None:
                if old.answers == item_answers:
                    res.n_unchanged += 1
                    continue
                if not replace:
                    pc.add(f"participant {code!r}, visit {visit_index}: a different {inst.id} is "
                           "already stored for this visit (use --replace to overwrite)", row=k + 2)
                    continue
                s.delete(old)
                s.flush()
                res.n_replaced += 1
            s.add(schema.Assessment(visit_id=v.id, instrument=inst.id, version=inst.version,
                                    answers=item_answers, scores=scores[k],
                                    definition_sha256=digest, import_id=log.id))
            res.n_written += 1
        pc.raise_if_any()
        res.import_id = log.id
    return res


def _rows(s: Session, study_id: int, instrument: str | None) -> list[Any]:
    from hikisig.cohort.dataset import participant_label

    stmt = (select(schema.Assessment, participant_label(), schema.Visit.visit_index)
            .join(schema.Visit, schema.Assessment.visit_id == schema.Visit.id)
            .join(schema.Participant, schema.Visit.participant_id == schema.Participant.id)
            .where(schema.Participant.study_id == study_id)
            .order_by(schema.Participant.code, schema.Visit.visit_index, schema.Assessment.id))
    if instrument:
        stmt = stmt.where(schema.Assessment.instrument == instrument)
    return list(s.execute(stmt).all())


def load_assessments(store: Store, study: str, instrument: str) -> pd.DataFrame:
    """Answers and current scores of one instrument in a study.

    Returns
    -------
    DataFrame
        ``id``, ``visit``, the score columns (total, band, subscales, flags,
        n_missing, note) computed with the current definition, then
        ``item1`` ... ``itemN``.
    """
    inst = load_instrument(instrument)
    with Session(store.engine) as s:
        st = store.study(s, study)
        rows = _rows(s, st.id, inst.id)
    answers = pd.DataFrame({
        "id": [code for _, code, _ in rows],
        "visit": pd.array([vi for _, _, vi in rows], dtype="Int64"),
        **{c: [a.answers.get(c) for a, _, _ in rows] for c in inst.item_columns},
    })
    for c in inst.item_columns:
        answers[c] = pd.to_numeric(answers[c], errors="coerce").astype(float)
    scored = score(answers, inst)
    return pd.concat([scored, answers[inst.item_columns]], axis=1)


def rescore_assessments(store: Store, study: str | None = None) -> int:
    """Recompute stored scores whose definition changed; returns how many rows changed."""
    store.require_ready()
    changed = 0
    with store.session() as s:
        studies = [store.study(s, study)] if study else list(s.scalars(select(schema.Study)))
        for st in studies:
            rows = _rows(s, st.id, None)
            by_inst: dict[str, list[Any]] = {}
            for a, _, _ in rows:
                by_inst.setdefault(a.instrument, []).append(a)
            for iid, items in by_inst.items():
                inst = load_instrument(iid)
                digest = definition_sha256(inst)
                stale = [a for a in items if a.definition_sha256 != digest]
                if not stale:
                    continue
                answers = pd.DataFrame([{c: a.answers.get(c) for c in inst.item_columns}
                                        for a in stale]).astype(float)
                answers.insert(0, "id", [str(a.id) for a in stale])
                for a, sc in zip(stale, _scores_dicts(answers, inst), strict=True):
                    a.scores, a.definition_sha256, a.version = sc, digest, inst.version
                    changed += 1
    return changed
