"""The 2020 criteria as recorded at visits (the clinic app's checklist), read back for analysis."""

from __future__ import annotations

import pandas as pd
from sqlalchemy import select
from sqlalchemy.orm import Session

from hikisig.cohort import schema
from hikisig.cohort.store import Store

__all__ = ["load_criteria"]


def load_criteria(store: Store, study: str) -> pd.DataFrame:
    """The criteria inputs recorded for a study, one row per participant and visit.

    The stored status is not trusted: :func:`hikisig.assess.criteria.apply_criteria`
    classifies the stored inputs again, so a run always applies the current rules.

    Returns
    -------
    DataFrame
        ``id`` (participant code; ``site/code`` when sites share it), ``visit``,
        ``status``, ``severity``, ``reasons``,
        ordered by participant and visit; empty when nothing was recorded.
    """
    from hikisig.assess.criteria import CRITERIA_COLUMNS, apply_criteria
    from hikisig.cohort.dataset import participant_label

    c = schema.CriteriaRecord
    inputs = list(CRITERIA_COLUMNS[1:])
    with Session(store.engine) as s:
        st = store.study(s, study)
        rows = s.execute(
            select(participant_label(), schema.Visit.visit_index,
                   *[getattr(c, name) for name in inputs])
            .join(schema.Visit, c.visit_id == schema.Visit.id)
            .join(schema.Participant, schema.Visit.participant_id == schema.Participant.id)
            .where(schema.Participant.study_id == st.id)
            .order_by(schema.Participant.code, schema.Visit.visit_index)).all()
    if not rows:
        return pd.DataFrame(columns=["id", "visit", "status", "severity", "reasons"])
    frame = pd.DataFrame(rows, columns=["id", "visit", *inputs])
    text = frame[["id"]].copy()
    for name in inputs:
        text[name] = frame[name].map(_as_text)
    crit = apply_criteria(text, f"store study {study!r}")
    crit.insert(1, "visit", frame["visit"].astype(int).to_numpy())
    return crit


def _as_text(value: object) -> str:
    """A stored input as the criteria reader takes it: yes/no, a number, or empty."""
    if value is None:
        return ""
    if isinstance(value, bool):
        return "yes" if value else "no"
    return f"{float(value):g}"  # type: ignore[arg-type]
