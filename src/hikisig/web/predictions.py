"""Predictions of registered models for one participant (the participant page)."""

from __future__ import annotations

import threading
from pathlib import Path
from typing import Any

import pandas as pd
from fastapi import Request
from sqlalchemy import select
from sqlalchemy.orm import Session

from hikisig.cohort import schema
from hikisig.cohort.dataset import participant_label
from hikisig.cohort.store import query_frame
from hikisig.web.services import Found

__all__ = ["latest_predictions", "load_registered", "participant_values"]

_cache: dict[tuple[str, float], Any] = {}
_lock = threading.Lock()


def load_registered(path: str) -> Any:
    """Load a model folder, cached by path and modification time."""
    from hikisig.models.persist import load_model

    folder = Path(path)
    skops = folder / "model.skops"
    key = (str(folder), skops.stat().st_mtime if skops.exists() else 0.0)
    with _lock:
        if key not in _cache:
            _cache[key] = load_model(folder)
        return _cache[key]


def participant_values(s: Session, participant_id: int) -> tuple[pd.DataFrame, int | None]:
    """Values of the participant's latest study sample (one row indexed by the sample code,
    analyte keys as columns)."""
    smp = s.execute(select(schema.Sample.id, schema.Visit.visit_index, schema.Sample.code)
                    .join(schema.Visit, schema.Visit.id == schema.Sample.visit_id)
                    .where(schema.Visit.participant_id == participant_id,
                           schema.Sample.sample_type == "study")
                    .order_by(schema.Visit.visit_index.desc(), schema.Sample.id.desc()).limit(1)).first()
    if smp is None:
        return pd.DataFrame(), None
    vals = query_frame(s, select(schema.Analyte.key, schema.Measurement.value)
                       .join(schema.Analyte, schema.Analyte.id == schema.Measurement.analyte_id)
                       .where(schema.Measurement.sample_id == smp[0]))
    row = pd.DataFrame([dict(zip(vals["key"], vals["value"], strict=True))], index=[str(smp[2])]) \
        if len(vals) else pd.DataFrame()
    return row.astype(float), int(smp[1])


def latest_predictions(request: Request, f: Found) -> list[dict[str, Any]]:
    """For each model kind registered for the participant's study (newest registration),
    its prediction from the latest blood sample, or why there is none."""
    from hikisig.analysis.modelling import predict

    store = request.app.state.store
    with Session(store.engine) as s:
        models = list(s.scalars(select(schema.RegisteredModel)
                                .where(schema.RegisteredModel.study == f.study)
                                .order_by(schema.RegisteredModel.registered_at.desc())))
        X, visit = participant_values(s, f.participant.id)  # flagged when it trained a model
        label = str(s.scalar(select(participant_label()).where(
            schema.Participant.id == f.participant.id)))  # the id analyses gave the participant
    out: list[dict[str, Any]] = []
    seen: set[str] = set()
    for m in models:
        if m.kind in seen:
            continue
        seen.add(m.kind)
        item: dict[str, Any] = {"id": m.id, "name": m.name, "kind": m.kind, "visit": visit}
        if X.empty:
            item["error"] = "no blood sample of this participant in the store"
        else:
            try:
                pred = predict(load_registered(m.path), X, participant=[label],
                               site=[f.site] if f.site else None).iloc[0].to_dict()
                item["prediction"] = {k: v for k, v in pred.items() if k != "id"}
            except Exception as exc:  # a model that cannot score this sample: say why on the page
                item["error"] = str(exc)
        out.append(item)
    return out
