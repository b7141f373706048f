"""A summary of what a store holds (``hikisig info``)."""

from __future__ import annotations

from typing import Any

import pandas as pd
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from hikisig.catalog import load_catalog
from hikisig.cohort import schema
from hikisig.cohort.store import Store

__all__ = ["store_info"]


def _counts(s: Session, stmt: Any) -> dict[str, int]:
    return {("(none)" if k is None else str(k)): int(v) for k, v in s.execute(stmt).all()}


def _study_info(s: Session, st: schema.Study) -> dict[str, Any]:
    P, V, S, A, M = (schema.Participant, schema.Visit, schema.Sample, schema.Analyte,
                     schema.Measurement)
    n_samples = s.scalar(select(func.count()).select_from(S).where(S.study_id == st.id)) or 0
    n_study = s.scalar(select(func.count()).select_from(S).where(
        S.study_id == st.id, S.sample_type == "study")) or 0
    n_part = s.scalar(select(func.count()).select_from(P).where(P.study_id == st.id)) or 0
    n_an = s.scalar(select(func.count()).select_from(A).where(A.study_id == st.id)) or 0
    per_analyte = pd.DataFrame(s.execute(
        select(A.key, A.catalog_id, func.count(M.value).label("n_values"))
        .outerjoin(M, (M.analyte_id == A.id)).outerjoin(S, S.id == M.sample_id)
        .where(A.study_id == st.id, (S.sample_type == "study") | (S.id.is_(None)))
        .group_by(A.id, A.key, A.catalog_id)).fetchall(), columns=["key", "catalog_id", "n_values"])
    n_meas = s.scalar(select(func.count()).select_from(M).join(S).where(S.study_id == st.id)) or 0
    cat = load_catalog()
    classes: dict[str, int] = {}
    for cid in per_analyte["catalog_id"].tolist():
        k = cat.get(cid).class_ if isinstance(cid, str) and cid in cat else "uncatalogued"
        classes[k] = classes.get(k, 0) + 1
    missing = (1 - per_analyte["n_values"] / n_study) if n_study else per_analyte["n_values"] * 0.0
    per_analyte["missing_fraction"] = missing
    top = per_analyte.sort_values(["missing_fraction", "key"], ascending=[False, True]).head(10)
    cells = n_study * len(per_analyte)
    return {
        "study": st.name,
        "synthetic": bool(st.synthetic),
        "n_samples": int(n_samples),
        "n_participants": int(n_part),
        "n_analytes": int(n_an),
        "n_measurements": int(n_meas),
        "samples_by_type": _counts(s, select(S.sample_type, func.count()).where(
            S.study_id == st.id).group_by(S.sample_type)),
        "participants_by_group": _counts(s, select(P.group_label, func.count()).where(
            P.study_id == st.id).group_by(P.group_label)),
        "participants_by_sex": _counts(s, select(P.sex, func.count()).where(
            P.study_id == st.id).group_by(P.sex)),
        "participants_by_group_and_sex": _counts(s, select(
            func.coalesce(P.group_label, "(none)") + "/" + func.coalesce(P.sex, "(none)"),
            func.count()).where(P.study_id == st.id).group_by(P.group_label, P.sex)),
        "samples_by_visit": _counts(s, select(V.visit_index, func.count()).select_from(S).join(
            V, S.visit_id == V.id).where(S.study_id == st.id).group_by(V.visit_index)),
        "analytes_by_class": dict(sorted(classes.items())),
        "missingness": {
            "study_samples": int(n_study),
            "missing_fraction": float(1 - per_analyte["n_values"].sum() / cells) if cells else 0.0,
            "analytes_over_20pct_missing": int((missing > 0.2).sum()),
            "most_missing": [{"analyte": k, "missing_fraction": round(float(f), 4)} for k, f in
                             zip(top["key"], top["missing_fraction"], strict=True) if f > 0],
        },
        "imports": int(s.scalar(select(func.count()).select_from(schema.ImportLog).where(
            schema.ImportLog.study_id == st.id)) or 0),
    }


def store_info(store: Store, study: str | None = None) -> dict[str, Any]:
    """Counts by group, sex and visit, analytes by class, and missingness.

    Parameters
    ----------
    store : Store
        The store.
    study : str, optional
        One study; by default every study, with totals.

    Returns
    -------
    dict
        ``n_samples``, ``n_participants``, ``n_analytes``, ``n_measurements``
        (totals), ``studies`` (one summary per study) and ``database``.

    Examples
    --------
    >>> store_info(Store("demo.db"))["n_samples"]  # doctest: +SKIP
    183
    """
    store.require_ready()
    with Session(store.engine) as s:
        if study is not None:
            studies = [store.study(s, study)]
        else:
            studies = list(s.scalars(select(schema.Study).order_by(schema.Study.id)))
        per = [_study_info(s, st) for st in studies]
    return {
        "database": store.display_url,
        "schema_revision": store.revision(),
        "n_studies": len(per),
        "n_samples": sum(p["n_samples"] for p in per),
        "n_participants": sum(p["n_participants"] for p in per),
        "n_analytes": sum(p["n_analytes"] for p in per),
        "n_measurements": sum(p["n_measurements"] for p in per),
        "studies": per,
    }
