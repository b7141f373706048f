"""The analysis view of a study: values, sample metadata and analyte annotations.

A :class:`Dataset` is what every analysis reads: ``X`` (samples x analytes,
float64, NaN where no value), ``obs`` (one row per sample: participant,
visit, group, sex, age, sample type, batch, ... and free-form attributes) and
``var`` (one row per analyte: display name, unit, catalog class, HMDB, ...).
:func:`load_dataset` builds it from the store.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd
from sqlalchemy import select
from sqlalchemy.orm import Session

from hikisig.catalog import load_catalog
from hikisig.cohort import schema
from hikisig.cohort.store import Store, query_frame

__all__ = ["OBS_COLUMNS", "VAR_COLUMNS", "Dataset", "load_dataset"]

#: Standard sample metadata columns, in this order, before free-form attributes.
OBS_COLUMNS = ("participant", "visit", "visit_date", "sample_type", "matrix", "batch",
               "injection_order", "group", "sex", "age", "birth_year", "medication_free", "site")
#: Standard analyte annotation columns.
VAR_COLUMNS = ("display_name", "catalog_id", "source_name", "unit", "class", "subclass",
               "chain_length", "double_bonds", "hmdb", "loinc")


@dataclass
class Dataset:
    """Values, sample metadata and analyte annotations of one study.

    Attributes
    ----------
    X : DataFrame
        Samples (index: sample code) x analytes (columns: analyte key), float64.
    obs : DataFrame
        Sample metadata, same index as ``X``.
    var : DataFrame
        Analyte annotations, index = ``X.columns``.
    flags : DataFrame
        Flagged cells: ``sample``, ``analyte``, ``flag``, ``raw``.
    study : str
        Study name.
    synthetic : bool
        Whether the data are synthetic.
    """

    X: pd.DataFrame
    obs: pd.DataFrame
    var: pd.DataFrame
    flags: pd.DataFrame = field(default_factory=lambda: pd.DataFrame(
        columns=["sample", "analyte", "flag", "raw"]))
    study: str = "default"
    synthetic: bool = False

    @property
    def shape(self) -> tuple[int, int]:
        """(n_samples, n_analytes)."""
        return (int(self.X.shape[0]), int(self.X.shape[1]))

    def __repr__(self) -> str:
        kind = ", synthetic" if self.synthetic else ""
        return (f"Dataset(study={self.study!r}{kind}: {self.shape[0]} samples x "
                f"{self.shape[1]} analytes)")


def load_dataset(store: Store, study: str) -> Dataset:
    """Load one study from the store.

    Parameters
    ----------
    store : Store
        The cohort store.
    study : str
        Study name.

    Returns
    -------
    Dataset
        Samples in the order they were first imported, analytes likewise.

    Examples
    --------
    >>> ds = load_dataset(Store("demo.db"), "default")  # doctest: +SKIP
    >>> ds.X.shape                                        # doctest: +SKIP
    (183, 109)
    """
    store.require_ready()
    with Session(store.engine) as s:
        st = store.study(s, study)
        smp = query_frame(s, select(
            schema.Sample.id, schema.Sample.code.label("sample"), schema.Sample.sample_type,
            schema.Sample.matrix, schema.Sample.batch, schema.Sample.injection_order,
            schema.Sample.attributes.label("s_attr"), schema.Visit.visit_index.label("visit"),
            schema.Visit.visit_date, schema.Participant.code.label("participant"),
            schema.Participant.group_label.label("group"), schema.Participant.sex,
            schema.Participant.age, schema.Participant.birth_year,
            schema.Participant.medication_free, schema.Site.code.label("site"),
            schema.Participant.attributes.label("p_attr"))
            .outerjoin(schema.Visit, schema.Sample.visit_id == schema.Visit.id)
            .outerjoin(schema.Participant, schema.Visit.participant_id == schema.Participant.id)
            .outerjoin(schema.Site, schema.Participant.site_id == schema.Site.id)
            .where(schema.Sample.study_id == st.id).order_by(schema.Sample.id))
        an = query_frame(s, select(schema.Analyte.id, schema.Analyte.key, schema.Analyte.catalog_id,
                              schema.Analyte.display_name, schema.Analyte.source_name,
                              schema.Analyte.unit, schema.Analyte.attributes)
                    .where(schema.Analyte.study_id == st.id).order_by(schema.Analyte.id))
        meas = query_frame(s, select(schema.Measurement.sample_id, schema.Measurement.analyte_id,
                                schema.Measurement.value, schema.Measurement.flag,
                                schema.Measurement.raw)
                      .join(schema.Sample).where(schema.Sample.study_id == st.id))
        name, synthetic = st.name, bool(st.synthetic)
    if smp.empty:
        smp = pd.DataFrame(columns=["id", "sample", "s_attr", "p_attr", *OBS_COLUMNS])
    if an.empty:
        an = pd.DataFrame(columns=["id", "key", "catalog_id", "display_name", "source_name",
                                   "unit", "attributes"])
    s_pos = pd.Index(smp["id"]).get_indexer(meas["sample_id"]) if len(meas) else np.zeros(0, int)
    a_pos = pd.Index(an["id"]).get_indexer(meas["analyte_id"]) if len(meas) else np.zeros(0, int)
    X = np.full((len(smp), len(an)), np.nan)
    if len(meas):
        X[s_pos, a_pos] = meas["value"].to_numpy(dtype=np.float64, na_value=np.nan)
    index = pd.Index(smp["sample"].astype(str), name="sample")
    columns = pd.Index(an["key"].astype(str), name="analyte")
    obs = _obs(smp, index)
    var = _var(an, columns)
    flagged = meas[meas["flag"].notna()] if len(meas) else meas
    flags = pd.DataFrame({
        "sample": index.to_numpy()[s_pos[flagged.index]] if len(flagged) else [],
        "analyte": columns.to_numpy()[a_pos[flagged.index]] if len(flagged) else [],
        "flag": flagged["flag"].tolist() if len(flagged) else [],
        "raw": flagged["raw"].tolist() if len(flagged) else [],
    })
    return Dataset(pd.DataFrame(X, index=index, columns=columns), obs, var, flags, name, synthetic)


def _obs(smp: pd.DataFrame, index: pd.Index) -> pd.DataFrame:
    obs = pd.DataFrame(index=index)
    for col in OBS_COLUMNS:
        obs[col] = smp[col].to_numpy() if col in smp else None
    obs["visit"] = pd.array(smp["visit"].to_numpy(dtype=object), dtype="Int64")
    obs["injection_order"] = pd.array(smp["injection_order"].to_numpy(dtype=object), dtype="Int64")
    obs["birth_year"] = pd.array(smp["birth_year"].to_numpy(dtype=object), dtype="Int64")
    obs["age"] = pd.to_numeric(smp["age"], errors="coerce").to_numpy(dtype=float)
    attrs: list[dict[str, Any]] = []
    for p, a in zip(smp["p_attr"].tolist(), smp["s_attr"].tolist(), strict=True):
        merged = dict(p or {})
        merged.update(a or {})
        attrs.append(merged)
    extra = pd.DataFrame.from_records(attrs, index=index) if attrs else pd.DataFrame(index=index)
    for col in extra.columns:
        if col in obs.columns:
            # a QC sample keeps participant-level fields (e.g. its class) as attributes
            obs[col] = obs[col].where(obs[col].notna(), extra[col])
        else:
            obs[col] = _maybe_numeric(extra[col])
    return obs


def _maybe_numeric(col: pd.Series) -> pd.Series:
    conv = pd.to_numeric(col, errors="coerce")
    if conv.notna().sum() == col.notna().sum():
        return conv
    return col


def _var(an: pd.DataFrame, columns: pd.Index) -> pd.DataFrame:
    cat = load_catalog()
    var = pd.DataFrame(index=columns)
    var["display_name"] = an["display_name"].to_numpy()
    var["catalog_id"] = an["catalog_id"].to_numpy()
    var["source_name"] = an["source_name"].to_numpy()
    var["unit"] = an["unit"].to_numpy()
    recs = []
    for cid in an["catalog_id"].tolist():
        a = cat.get(cid) if isinstance(cid, str) and cid in cat else None
        recs.append({
            "class": a.class_ if a else None,
            "subclass": a.subclass if a else None,
            "chain_length": a.chain_length if a else None,
            "double_bonds": a.double_bonds if a else None,
            "hmdb": a.hmdb if a else None,
            "loinc": a.loinc if a else None,
        })
    cat_cols = pd.DataFrame.from_records(recs, index=columns) if recs else pd.DataFrame(
        index=columns, columns=["class", "subclass", "chain_length", "double_bonds", "hmdb",
                                "loinc"])
    for col in cat_cols.columns:
        var[col] = cat_cols[col]
    for col in ("chain_length", "double_bonds"):
        var[col] = pd.array(var[col].to_numpy(dtype=object), dtype="Int64")
    extra = pd.DataFrame.from_records([dict(a or {}) for a in an["attributes"].tolist()],
                                      index=columns) if len(an) else pd.DataFrame(index=columns)
    for col in extra.columns:
        if col in var.columns:
            var[col] = var[col].where(var[col].notna(), extra[col])
        else:
            var[col] = _maybe_numeric(extra[col])
    return var
