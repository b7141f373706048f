"""The analysis view of a study: values, sample metadata and analyte annotations.

A :class:`Dataset` is what every analysis reads: ``X`` (samples x analytes,
float64, NaN where no value), ``obs`` (one row per sample: participant,
visit, group, sex, age, sample type, batch, ... and free-form attributes) and
``var`` (one row per analyte: display name, unit, catalog class, HMDB, ...).
:func:`load_dataset` builds it from the store (every sample), :meth:`Dataset.from_store`
the analysis view of a study, and :func:`hikisig.cohort.tables.read_table` from a file.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd
from sqlalchemy import select
from sqlalchemy.orm import Session

from hikisig.catalog import load_catalog
from hikisig.cohort import schema
from hikisig.cohort.metadata import canonical_field
from hikisig.cohort.store import query_frame
from hikisig.errors import HikisigError, InputError, Problem

if TYPE_CHECKING:
    from hikisig.cohort.store import Store

__all__ = ["MAPPING_COLUMNS", "OBS_COLUMNS", "VAR_COLUMNS", "Dataset", "load_dataset", "participant_label"]


def participant_label() -> Any:
    """A participant's identity in analyses, as a SQL expression over ``participant``.

    Codes are unique per study and site (schema revision 0005). A code used by one
    participant of the study stays the participant's id (``A-001``); a code that two
    or more sites share becomes ``site/code`` (``B/A-001``; no site: ``/A-001``), so that
    existing analyses, criteria, questionnaires and interventions keep their ids and
    only shared codes change. Every reader that joins these by participant uses it.
    """
    from sqlalchemy import case, func, literal
    from sqlalchemy.orm import aliased

    p, other, own = schema.Participant, aliased(schema.Participant), aliased(schema.Site)
    shared = (select(func.count()).select_from(other)
              .where(other.study_id == p.study_id, other.code == p.code).correlate(p).scalar_subquery())
    site = select(own.code).where(own.id == p.site_id).correlate(p).scalar_subquery()
    return case((shared > 1, func.coalesce(site, literal("")) + literal("/") + p.code), else_=p.code)

#: Standard sample metadata columns, in this order, before free-form attributes.
OBS_COLUMNS = ("participant", "visit", "visit_date", "sample_type", "matrix", "batch",
               "injection_order", "group", "sex", "age", "birth_year", "medication_free", "site")
#: Standard analyte annotation columns.
VAR_COLUMNS = ("display_name", "catalog_id", "source_name", "unit", "match", "class", "subclass",
               "chain_length", "double_bonds", "hmdb", "kegg", "loinc")
#: Columns of an analyte mapping (``analyte_mapping.csv``).
MAPPING_COLUMNS = ("source_column", "analyte_id", "name", "class", "match")


@dataclass(eq=False)
class Dataset:
    """Values, sample metadata and analyte annotations of one study.

    Construction checks that sample ids and analyte names are unique, that ``obs`` has
    the index of ``X`` and ``var`` the columns of ``X``, and that every value is a number.

    Attributes
    ----------
    X : DataFrame
        Samples (index: sample id) x analytes (columns: analyte key: the catalog id where
        the name resolves, else the column name), float64, NaN where no value.
    obs : DataFrame
        Sample metadata, same index as ``X``: ``participant``, ``visit``, ``sample_type``,
        ``group``, ``sex``, ``age``, ... and the file's other metadata columns.
    var : DataFrame
        Analyte annotations, index = ``X.columns``: ``display_name``, ``catalog_id``,
        ``source_name`` (the column as named in the file), ``unit``, ``class``, ...
    flags : DataFrame
        Flagged cells: ``sample``, ``analyte``, ``flag``, ``raw``.
    study : str
        Study name.
    synthetic : bool
        Whether the data are synthetic: the store's study record, or a file written by
        ``hikisig synth``.
    source : str or None
        The file or store the data came from.
    source_columns : dict
        The file's metadata columns -> their column in ``obs`` (``Gender`` -> ``sex``,
        ``batch`` -> ``batch``); :meth:`column` accepts either name.

    Examples
    --------
    >>> X = pd.DataFrame({"ornithine": [60.0, 80.0]}, index=["S1", "S2"])
    >>> ds = Dataset(X, pd.DataFrame({"group": ["case", "control"]}, index=X.index))
    >>> ds
    Dataset(study='default': 2 samples x 1 analytes)
    >>> ds.column("group").tolist()
    ['case', 'control']
    """

    X: pd.DataFrame
    obs: pd.DataFrame = field(default_factory=pd.DataFrame)
    var: pd.DataFrame = field(default_factory=pd.DataFrame)
    flags: pd.DataFrame = field(default_factory=lambda: pd.DataFrame(
        columns=["sample", "analyte", "flag", "raw"]))
    study: str = "default"
    synthetic: bool = False
    source: str | None = None
    source_columns: dict[str, str] = field(default_factory=dict)

    def __post_init__(self) -> None:
        where = self.source or f"study {self.study!r}"
        if not isinstance(self.X, pd.DataFrame):
            raise HikisigError(f"{where}: X must be a DataFrame (samples x analytes)")
        self.X = _float_frame(self.X, where)
        _finite(self.X, where)
        _unique(self.X.index, "sample id", where)
        _unique(self.X.columns, "analyte", where)
        if self.obs is None or (self.obs.shape == (0, 0) and len(self.X)):
            self.obs = pd.DataFrame(index=self.X.index)
        if not self.obs.index.equals(self.X.index):
            raise HikisigError(f"{where}: obs must have the samples of X, in the same order "
                               f"(X: {_few(self.X.index)}; obs: {_few(self.obs.index)})")
        if self.var is None or (self.var.shape == (0, 0) and self.X.shape[1]):
            self.var = _var_for(list(self.X.columns))
        if not self.var.index.equals(self.X.columns):
            raise HikisigError(f"{where}: var must have the analytes of X, in the same order "
                               f"(X: {_few(self.X.columns)}; var: {_few(self.var.index)})")

    @property
    def shape(self) -> tuple[int, int]:
        """(n_samples, n_analytes)."""
        return (int(self.X.shape[0]), int(self.X.shape[1]))

    def __repr__(self) -> str:
        kind = ", synthetic" if self.synthetic else ""
        return (f"Dataset(study={self.study!r}{kind}: {self.shape[0]} samples x "
                f"{self.shape[1]} analytes)")

    # -- metadata by name ------------------------------------------------------------------
    def column_name(self, name: str) -> str | None:
        """The ``obs`` column a name stands for (itself, or the field a file column was read
        as, e.g. ``Gender`` -> ``sex``), or None."""
        if name in self.obs.columns:
            return name
        alias = self.source_columns.get(name)
        if alias is not None and alias in self.obs.columns:
            return alias
        field_ = canonical_field(name)
        if field_ is not None and field_ in self.obs.columns:
            return field_
        return None

    def column(self, name: str) -> pd.Series:
        """A metadata column by name (see :meth:`column_name`).

        Raises
        ------
        HikisigError
            No such column; the message lists the columns there are.
        """
        found = self.column_name(name)
        if found is None:
            cols = [str(c) for c in self.obs.columns]
            raise InputError([Problem(self.source or f"study {self.study!r}",
                                      f"no column {name!r} (columns: {_few(cols, 12)})",
                                      column=name)])
        return self.obs[found]

    def analyte_mapping(self) -> pd.DataFrame:
        """How each source column became an analyte: ``source_column``, ``analyte_id`` (the
        catalog id, empty when unmatched), ``name``, ``class`` and ``match`` (``exact``,
        ``synonym`` or ``unmatched``; unmatched columns are analysed under their own name).
        This is ``analyte_mapping.csv`` of a run and of ``hikisig stats``."""
        v = self.var
        return pd.DataFrame({
            "source_column": v["source_name"].to_numpy() if "source_name" in v else v.index,
            "analyte_id": v["catalog_id"].to_numpy() if "catalog_id" in v else None,
            "name": v["display_name"].to_numpy() if "display_name" in v else v.index,
            "class": v["class"].to_numpy() if "class" in v else None,
            "match": v["match"].to_numpy() if "match" in v else "unmatched",
        }, columns=list(MAPPING_COLUMNS))

    def subset(self, samples: Any = None, analytes: Any = None) -> Dataset:
        """A new Dataset with some samples and/or analytes.

        Parameters
        ----------
        samples : boolean mask, boolean Series (aligned by index) or list of sample ids
        analytes : boolean mask or list of analyte keys

        Examples
        --------
        >>> X = pd.DataFrame({"a": [1.0, 2.0, 3.0], "b": [4.0, 5.0, 6.0]}, index=["x", "y", "z"])
        >>> Dataset(X).subset(["z", "x"], ["b"]).X.to_dict()
        {'b': {'z': 6.0, 'x': 4.0}}
        """
        rows = _selection(samples, self.X.index, "sample")
        cols = _selection(analytes, self.X.columns, "analyte")
        flags = self.flags
        if len(flags):
            flags = flags[flags["sample"].isin(rows) & flags["analyte"].isin(cols)]
        return Dataset(self.X.loc[rows, cols], self.obs.loc[rows], self.var.loc[cols],
                       flags.reset_index(drop=True), self.study, self.synthetic, self.source,
                       dict(self.source_columns))

    # -- other forms ---------------------------------------------------------------------------
    @classmethod
    def from_store(cls, db: Any = None, study: str | None = None, visit: int | str | None = None,
                   *, sample_type: str | None = "study") -> Dataset:
        """A study of the store, with each stored questionnaire's total as a column of ``obs``
        (named by the instrument, e.g. ``hq25``) at the sample's visit.

        Parameters
        ----------
        db : str, Path or Store
            The store (SQLite path or database URL; default ``hikisig.db``).
        study : str, optional
            Study name (default: the only study in the store).
        visit : int, "all" or None
            The visit of the study samples: None is each participant's first visit with a
            sample; an int that visit; ``"all"`` every visit.
        sample_type : str or None
            Keep samples of this type (``study``; ``None`` keeps QC and blank samples too,
            which have no visit).

        Examples
        --------
        >>> ds = Dataset.from_store("demo.db")  # doctest: +SKIP
        """
        from hikisig.cohort.store import Store as _Store

        store = db if isinstance(db, _Store) else _Store(db)
        try:
            store.require_ready()
            name = study or store.only_study()
            ds = load_dataset(store, name)
            study_samples = (ds.obs["sample_type"] == "study").to_numpy()
            keep = (np.ones(ds.shape[0], dtype=bool) if sample_type is None
                    else (ds.obs["sample_type"] == sample_type).to_numpy())
            visits = ds.obs["visit"]
            chosen = np.ones(ds.shape[0], dtype=bool)
            if visit is None:
                first = visits[study_samples].groupby(ds.obs["participant"][study_samples]
                                                      ).transform("min")
                chosen = (visits == first.reindex(visits.index)).fillna(False).to_numpy(dtype=bool)
            elif visit != "all":
                if not isinstance(visit, int | np.integer):
                    raise HikisigError(f"visit must be a visit number, 'all' or None; got {visit!r}")
                chosen = (visits == int(visit)).fillna(False).to_numpy(dtype=bool)
            keep &= chosen | ~study_samples  # QC and blank samples have no visit
            ds = ds.subset(keep)
            _add_scores(store, ds)
        finally:
            if store is not db:
                store.dispose()
        return ds

    def to_anndata(self) -> Any:
        """The data as an ``anndata.AnnData`` (obs, var, and ``uns["hikisig"]``: study,
        synthetic, software)."""
        import anndata as ad

        adata = ad.AnnData(X=self.X.to_numpy(dtype=np.float64), obs=_anndata_frame(self.obs),
                           var=_anndata_frame(self.var))
        adata.uns["hikisig"] = study_note(self)
        return adata

    @classmethod
    def from_anndata(cls, adata: Any, *, study: str | None = None) -> Dataset:
        """A Dataset from an ``anndata.AnnData`` (obs = samples, var = analytes), read with
        the checks and catalog rules of every reader (see :func:`hikisig.read_table`)."""
        from hikisig.cohort.readers import parse_anndata
        from hikisig.cohort.tables import dataset_from_table

        note = adata.uns.get("hikisig", {}) if hasattr(adata, "uns") else {}
        name = study or (note.get("study") if isinstance(note, dict) else None) or "default"
        return dataset_from_table(parse_anndata(adata), study=str(name))


def study_note(ds: Dataset) -> dict[str, str]:
    """What an exported file says about its data: study, synthetic, software."""
    from hikisig.versions import __version__

    return {"study": ds.study, "synthetic": "true" if ds.synthetic else "false",
            "software": f"hikisig {__version__}"}


def _few(values: Any, n: int = 5) -> str:
    vals = [str(v) for v in list(values)[:n]]
    return ", ".join(vals) + (", ..." if len(values) > n else "")


def _float_frame(X: pd.DataFrame, where: str) -> pd.DataFrame:
    bad = [str(c) for c, dt in X.dtypes.items()
           if not (pd.api.types.is_numeric_dtype(dt) and not pd.api.types.is_bool_dtype(dt))]
    if bad:
        raise HikisigError(f"{where}: analyte column(s) that are not numbers: {_few(bad)}")
    if all(dt == np.float64 for dt in X.dtypes):
        return X
    return X.astype(np.float64)


def _finite(X: pd.DataFrame, where: str) -> None:
    r, c = np.nonzero(np.isinf(X.to_numpy()))
    if len(r):
        cells = ", ".join(f"{X.columns[j]!r} of sample {X.index[i]!r}" for i, j in zip(r[:5], c[:5],
                                                                                    strict=True))
        more = f" and {len(r) - 5} more" if len(r) > 5 else ""
        raise HikisigError(f"{where}: infinite values are not measurements: {cells}{more}")


def _unique(index: pd.Index, what: str, where: str) -> None:
    dup = index[index.duplicated()]
    if len(dup):
        raise HikisigError(f"{where}: duplicate {what}(s): {_few(pd.unique(dup))}")


def _selection(which: Any, index: pd.Index, what: str) -> pd.Index:
    if which is None:
        return index
    if isinstance(which, pd.Series) and pd.api.types.is_bool_dtype(which.dtype):
        missing = index.difference(which.index)
        if len(missing):
            raise HikisigError(f"the {what} mask lacks {len(missing)} {what}(s): {_few(missing)}")
        return index[which.reindex(index).to_numpy(dtype=bool)]
    arr = np.asarray(which)
    if arr.dtype == bool:
        if len(arr) != len(index):
            raise HikisigError(f"a {what} mask needs {len(index)} entries, not {len(arr)}")
        return index[arr]
    wanted = pd.Index(list(which))
    unknown = wanted.difference(index)
    if len(unknown):
        raise HikisigError(f"unknown {what}(s): {_few(unknown)}")
    return wanted


def _var_for(keys: list[str]) -> pd.DataFrame:
    """Catalog annotations of analyte keys (for data built in memory)."""
    an = pd.DataFrame({"key": keys, "catalog_id": None, "display_name": keys, "source_name": keys,
                       "unit": None, "attributes": [{} for _ in keys]})
    cat = load_catalog()
    resolved = [cat.resolve(k) for k in keys]
    an["catalog_id"] = [a.id if a is not None and a.id == k else None
                        for a, k in zip(resolved, keys, strict=True)]
    an["display_name"] = [cat.get(c).display_name if c else k
                          for c, k in zip(an["catalog_id"], keys, strict=True)]
    return _var(an, pd.Index(keys, name="analyte"))


def _anndata_frame(df: pd.DataFrame) -> pd.DataFrame:
    """Columns storable in h5ad (strings with missing values, numbers)."""
    out = pd.DataFrame(index=df.index.astype(str))
    for col in df.columns:
        s = df[col]
        if pd.api.types.is_bool_dtype(s) or pd.api.types.is_numeric_dtype(s):
            out[str(col)] = s.to_numpy(dtype=float) if s.isna().any() else s.to_numpy()
        else:
            out[str(col)] = pd.Categorical([None if pd.isna(v) else str(v) for v in s])
    return out


def _add_scores(store: Store, ds: Dataset) -> None:
    """Each stored instrument's total as an ``obs`` column, matched on participant and visit."""
    from hikisig.cohort.assessments import load_assessments

    with Session(store.engine) as s:
        st = store.study(s, ds.study)
        names = sorted(set(s.scalars(
            select(schema.Assessment.instrument).join(schema.Visit)
            .join(schema.Participant).where(schema.Participant.study_id == st.id))))
    for iid in names:
        if iid in ds.obs.columns:
            continue
        scores = load_assessments(store, ds.study, iid)
        key = scores.set_index(["id", "visit"])["total"]
        pairs = pd.MultiIndex.from_arrays([ds.obs["participant"].astype(object),
                                           ds.obs["visit"].astype(object)])
        ds.obs[iid] = key.reindex(pairs).to_numpy(dtype=float) if len(key) else np.nan


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
            schema.Visit.visit_date, participant_label().label("participant"),
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
    return Dataset(pd.DataFrame(X, index=index, columns=columns), obs, var, flags, name, synthetic,
                   store.display_url)


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
    if "match" in an:
        var["match"] = an["match"].to_numpy()
    else:  # the store keeps the source name: how it matched is the catalog's answer
        var["match"] = [cat.match(str(n))[1] if isinstance(c, str) else "unmatched"
                        for n, c in zip(an["source_name"], an["catalog_id"], strict=True)]
    recs = []
    for cid in an["catalog_id"].tolist():
        a = cat.get(cid) if isinstance(cid, str) and cid in cat else None
        recs.append({
            "class": a.class_ if a else None,
            "subclass": a.subclass if a else None,
            "chain_length": a.chain_length if a else None,
            "double_bonds": a.double_bonds if a else None,
            "hmdb": a.hmdb if a else None,
            "kegg": a.kegg if a else None,
            "loinc": a.loinc if a else None,
        })
    cat_cols = pd.DataFrame.from_records(recs, index=columns) if recs else pd.DataFrame(
        index=columns, columns=["class", "subclass", "chain_length", "double_bonds", "hmdb", "kegg",
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
