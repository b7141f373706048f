"""A study's data, ready for its analyses: loaded once, with the design found, samples of
other groups left out and the preprocessing of the study config applied.

``hikisig stats``, ``hikisig model ...``, ``hikisig run`` and the web app's analyses all
start here, so the same data and settings give the same tables on every face.
"""

from __future__ import annotations

import math
import warnings
from dataclasses import dataclass, field
from functools import cached_property
from pathlib import Path

import numpy as np
import pandas as pd

from hikisig.analysis.design import (
    MIN_PER_GROUP_STATS,
    ResolvedDesign,
    case_mask,
    resolve_design,
)
from hikisig.analysis.modelling import discriminate, severity, stratify
from hikisig.analysis.quality import QCSummary, apply_quality_control, sample_types
from hikisig.analysis.repeated import RepeatSummary, one_per_participant
from hikisig.analysis.statistics import case_control, site_column
from hikisig.cohort.dataset import Dataset
from hikisig.cohort.tables import read_table
from hikisig.config import (
    Design,
    DiscriminateSection,
    Preprocessing,
    RunSection,
    Screening,
    SeveritySection,
    Source,
    StatsSection,
    StratifySection,
)
from hikisig.engine import Engine
from hikisig.errors import HikisigError, TooFewSamplesError
from hikisig.models.result import DiscriminationResult, SeverityResult, StratificationResult
from hikisig.prep.markers import derived_markers

__all__ = ["ColumnsNotAnalysedWarning", "MissingAnalytesWarning", "QualityControlWarning",
           "RepeatedSamplesWarning", "StudyData", "load_study", "store_url"]

_LOG_BASES = {"log10": 10.0, "log2": 2.0, "ln": math.e}


class ColumnsNotAnalysedWarning(UserWarning):
    """Metadata or text columns of a file that the design does not use."""


class RepeatedSamplesWarning(UserWarning):
    """Participants with several samples, and how the analyses treat them."""


class QualityControlWarning(UserWarning):
    """QC and blank samples set aside after quality control."""


class MissingAnalytesWarning(UserWarning):
    """Analytes left out because too many of their values are missing."""


def store_url(source: Source, base: Path | None = None) -> str:
    """The store of ``source.db`` (default hikisig.db); a relative path is taken from ``base``."""
    db = source.db or "hikisig.db"
    if "://" in db or Path(db).is_absolute() or base is None:
        return db
    return str(base / db)


@dataclass
class StudyData:
    """Cases and controls of a study, prepared for the analyses.

    Attributes
    ----------
    data : Dataset
        The case and control study samples (every sample of a participant); values on the
        linear scale (or as given on an additive scale); after quality control; analytes
        missing in more than ``preprocessing.max_missing`` of them left out.
    per_participant : Dataset
        The samples the statistics and the stratification use: one per participant by the
        design's ``repeated`` rule (the same as ``data`` without repeats or with ``all``).
    design : ResolvedDesign
        The design's columns in ``data.obs``.
    preprocessing : Preprocessing
        The settings applied.
    dropped : list of str
        Analytes left out by the missingness filter.
    not_analysed : list of str
        The file's metadata and text columns the design does not use.
    repeats : RepeatSummary
        How several samples of a participant were handled.
    quality : QCSummary
        QC and blank samples set aside, and what quality control did.
    mapping : DataFrame or None
        How every analyte column of the source matched the catalog (before any filter):
        ``analyte_mapping.csv``.
    steps : list of str
        Preprocessing steps applied to the data, in words (e.g. the ComBat harmonisation
        of the statistics' data).

    With ``preprocessing.harmonise = "combat"`` ``per_participant`` (the statistics and the
    stratification) holds the ComBat-harmonised values, while ``data`` (the models) keeps
    the values as measured: the models harmonise inside their training folds.
    """

    data: Dataset
    design: ResolvedDesign
    preprocessing: Preprocessing = field(default_factory=Preprocessing)
    dropped: list[str] = field(default_factory=list)
    not_analysed: list[str] = field(default_factory=list)
    per_participant: Dataset | None = None
    repeats: RepeatSummary | None = None
    quality: QCSummary = field(default_factory=QCSummary)
    mapping: pd.DataFrame | None = None
    steps: list[str] = field(default_factory=list)

    def __post_init__(self) -> None:
        if self.per_participant is None:
            self.per_participant = self.data
        if self.repeats is None:
            n = self.data.shape[0]
            self.repeats = RepeatSummary("first", self.design.participant, n, n, 0)
        if self.mapping is None:
            self.mapping = self.data.analyte_mapping()

    @property
    def additive(self) -> bool:
        """Whether values are on an additive scale (``input_scale = "z"``)."""
        return self.preprocessing.input_scale == "z"

    @property
    def is_case(self) -> pd.Series:
        """True for cases, False for controls (every sample is one or the other)."""
        return self.data.column(self.design.group).astype(str) == self.design.case

    @cached_property
    def markers(self) -> tuple[pd.DataFrame, pd.DataFrame]:
        """Derived markers of the statistics' samples: values and annotations (formulas)."""
        if self.additive:
            return pd.DataFrame(index=self.stats_data.X.index), pd.DataFrame()
        return derived_markers(self.stats_data.X)

    @property
    def stats_data(self) -> Dataset:
        """The samples of the statistics and the stratification."""
        return self.per_participant if self.per_participant is not None else self.data

    def statistics(self, section: StatsSection | None = None, *, site: str | None = None,
                   markers: bool = True, quantiles: bool = True, block_cells: int = 4_000_000,
                   engine: Engine | str | None = None) -> pd.DataFrame:
        """The case-control table (see :func:`hikisig.case_control`), one sample per
        participant unless the design says ``repeated = "all"``; the site column (the
        design's, or ``site`` when named) is a categorical covariate of the linear model."""
        s = section or StatsSection()
        d = self.design
        return case_control(self.stats_data, group=d.group, case=d.case, control=d.control,
                            by=d.sex, covariates=d.covariates, site=site_column(self, site),
                            severity=d.severity, tests=s.tests, mwu_method=s.mwu_method,
                            markers=markers and not self.additive, quantiles=quantiles,
                            block_cells=block_cells, engine=engine, additive=self.additive)

    def discriminate(self, section: DiscriminateSection | None = None, *,
                     prevalence: float = Screening().prevalence, seed: int = RunSection().seed,
                     engine: Engine | str | None = None) -> DiscriminationResult:
        """The discrimination model (see :func:`hikisig.discriminate`); all samples, a
        participant's samples in one fold (or one fold per site with ``cv =
        "leave-site-out"``); ComBat inside the training folds with ``harmonise = "combat"``."""
        c, d = section or DiscriminateSection(), self.design
        return discriminate(self.data, group=d.group, case=d.case, control=d.control,
                            participant=d.participant, model=c.model, cv_folds=c.cv_folds,
                            cv_repeats=c.cv_repeats, permutations=c.permutations,
                            permutation_scheme=c.permutation_scheme, n_estimators=c.n_estimators,
                            test_size=c.test_size, inner_cv=c.inner_cv, recalibrate=c.recalibrate,
                            sensitivity_target=c.sensitivity_target, prevalence=prevalence,
                            seed=seed, engine=engine, log=not self.additive, site=d.site,
                            cv=c.cv, harmonise=self.preprocessing.harmonise)

    def severity(self, section: SeveritySection | None = None, *, seed: int = RunSection().seed,
                 engine: Engine | str | None = None) -> SeverityResult:
        """The severity model of the design's severity score (see :func:`hikisig.severity`)."""
        c, d = section or SeveritySection(), self.design
        if d.severity is None:
            raise TooFewSamplesError("the data have no severity score (design.severity)", "severity")
        return severity(self.data, d.severity, group=d.group, case=d.case, control=d.control,
                        cases_only=c.cases_only, participant=d.participant, scaling=c.scaling,
                        max_components=c.max_components, cv_folds=c.cv_folds,
                        cv_repeats=c.cv_repeats, permutations=c.permutations, seed=seed,
                        engine=engine, log=not self.additive, site=d.site, cv=c.cv,
                        harmonise=self.preprocessing.harmonise)

    def stratify(self, section: StratifySection | None = None, *, seed: int = RunSection().seed,
                 engine: Engine | str | None = None) -> StratificationResult:
        """The stratification of cases (see :func:`hikisig.stratify`), one sample per
        participant."""
        c, d = section or StratifySection(), self.design
        return stratify(self.stats_data, group=d.group, case=d.case, control=d.control,
                        method=c.method, k=c.k, bootstraps=c.bootstraps, seed=seed, engine=engine,
                        log=not self.additive)


def _load(source: Source, design: Design, visit: int | str | None, base: Path | None,
          meta_columns: list[str], pre: Preprocessing) -> Dataset:
    if source.file:
        path = Path(source.file)
        if base is not None and not path.is_absolute():
            path = base / path
        names = [design.group, design.sex, *design.covariates, design.severity, design.participant,
                 design.site, pre.sample_type, pre.batch, pre.order]
        optional = [n for n in dict.fromkeys(names) if n]
        return read_table(path, id_column=source.id_column, meta_columns=meta_columns,
                          na_values=source.na_values, optional_meta_columns=optional,
                          study=source.study)
    if source.na_values:
        raise HikisigError("source.na_values is for a file; values in the store were read on "
                           "import (hikisig import measurements --na-values)")
    return Dataset.from_store(store_url(source, base), source.study, visit, sample_type=None)


def _participant(ds: Dataset, design: Design, resolved: ResolvedDesign) -> str | None:
    """The participant column, with the rule for files that have none.

    A file without a participant column takes each sample as a different participant,
    with a note, unless it has several visits: then the participant must be named (or
    ``participant = ""`` declares one sample per participant).
    """
    if resolved.participant is None:
        return None
    from_file = bool(ds.source_columns)
    if not from_file or resolved.participant in ds.source_columns.values() \
            or design.participant != Design().participant:
        return resolved.participant
    visit = ds.obs["visit"] if "visit" in ds.source_columns.values() else None
    if visit is not None and visit.dropna().nunique() > 1:
        raise HikisigError(
            f"{ds.source}: the samples have several visits but the file has no participant "
            "column: name it (design.participant, --participant-column) so that a participant's "
            "samples stay together, or declare one sample per participant with participant = "
            "\"\" (--participant-column none)")
    warnings.warn("no participant column: each sample is taken as a different participant "
                  "(name the participant column if participants have several samples; "
                  "participant = \"\" says there is one sample each)", RepeatedSamplesWarning,
                  stacklevel=3)
    return None


def load_study(source: Source, design: Design | None = None,
               preprocessing: Preprocessing | None = None, *, visit: int | str | None = None,
               base: Path | None = None, meta_columns: list[str] | None = None,
               min_per_group: int = MIN_PER_GROUP_STATS) -> StudyData:
    """Load a study for its analyses.

    Parameters
    ----------
    source : Source
        A table ``file`` (read with ``na_values``), or the store ``db`` and ``study``.
    design : Design
        The design's columns; a column named explicitly must exist (see
        :func:`hikisig.analysis.design.resolve_design`), and ``repeated`` says which samples
        of a participant the statistics use.
    preprocessing : Preprocessing
        ``input_scale`` (logged values are brought back to the linear scale; ``z`` keeps
        additive values as given), the QC steps (``qc_rsd_max``, ``drift``, ``normalise``,
        on the QC samples named by ``sample_type`` / ``qc_label``) and ``max_missing``
        (analytes missing in more than this share of the cases and controls are left out).
    visit : int, "all" or None
        With the store: the visit (default: each participant's first).
    base : Path, optional
        Folder that relative paths of ``source`` start from.
    meta_columns : list of str, optional
        Further metadata columns of the file (not analytes).
    min_per_group : int
        Cases and controls needed (each); the statistics need 2, a stratification of
        cases alone none.

    Warns
    -----
    ColumnsNotAnalysedWarning
        The file's metadata or text columns that the design does not use.
    MissingAnalytesWarning
        Analytes left out by the missingness filter.
    RepeatedSamplesWarning
        Participants with several samples, or no participant column.
    """
    design = design or Design()
    pre = preprocessing or Preprocessing()
    if source.file and visit is not None:
        raise HikisigError("a visit is chosen in the store; a file's rows are analysed as they "
                           "are (leave out --visit, or select the rows first)")
    ds = _load(source, design, visit, base, list(meta_columns or []), pre)
    resolved = resolve_design(ds, design)
    resolved.participant = _participant(ds, design, resolved)
    qc_names = [pre.sample_type, *((pre.batch, pre.order) if pre.drift != "none" else ())]
    used = set(resolved.columns) | {ds.column_name(c) for c in qc_names} - {None}
    not_analysed = [src for src, col in ds.source_columns.items()
                    if col not in used and src not in (meta_columns or [])]
    if not_analysed:
        warnings.warn(f"column(s) not analysed (metadata or text): {', '.join(not_analysed[:10])}"
                      f"{', ...' if len(not_analysed) > 10 else ''}", ColumnsNotAnalysedWarning,
                      stacklevel=2)
    types = sample_types(ds, pre)
    X = ds.X
    if pre.input_scale in _LOG_BASES:
        X = np.power(_LOG_BASES[pre.input_scale], X)
    X, quality = apply_quality_control(ds, X, types, pre)
    if quality.n_qc or quality.n_blank:
        warnings.warn(f"{quality.n_qc} QC and {quality.n_blank} blank sample(s) set aside after "
                      "quality control (the analyses use study samples)", QualityControlWarning,
                      stacklevel=2)
    study = ds.subset((types == "study").to_numpy(), list(X.columns))
    mask, case, control = case_mask(study.column(resolved.group), resolved.case, resolved.control,
                                    column=resolved.group, minimum=min_per_group)
    resolved.case, resolved.control = case, control
    rows = mask.notna().to_numpy()
    X = X[rows]
    share = X.isna().mean()
    dropped = [str(c) for c in X.columns[(share > pre.max_missing).to_numpy()]]
    if dropped:
        warnings.warn(f"{len(dropped)} analyte(s) missing in more than {pre.max_missing:.0%} of the "
                      f"cases and controls left out: {', '.join(dropped[:10])}"
                      f"{', ...' if len(dropped) > 10 else ''}", MissingAnalytesWarning, stacklevel=2)
    kept = [c for c in X.columns if c not in set(dropped)]
    sub = study.subset(rows, kept)
    prepared = Dataset(X[kept], sub.obs, sub.var, sub.flags, sub.study, sub.synthetic, sub.source,
                       dict(sub.source_columns))
    steps: list[str] = []
    analysed = prepared
    if pre.harmonise == "combat":
        analysed, step = _harmonise(prepared, resolved, additive=pre.input_scale == "z")
        steps.append(step)
    per_participant, repeats = one_per_participant(analysed, resolved.participant, design.repeated)
    if repeats.repeated:
        warnings.warn(repeats.describe(), RepeatedSamplesWarning, stacklevel=2)
    return StudyData(prepared, resolved, pre, dropped, not_analysed, per_participant, repeats,
                     quality, ds.analyte_mapping(), steps)


def _harmonise(data: Dataset, design: ResolvedDesign, *, additive: bool = False
               ) -> tuple[Dataset, str]:
    """ComBat of the statistics' data (:func:`hikisig.prep.combat.combat`) once, on log2
    values (exp2 back; values <= 0, below detection, are left as they are), with the site as
    batch and the group (and sex and the numeric covariates, when complete) as covariates
    whose effects are kept. On an additive scale the values are harmonised as given.
    Returns the harmonised Dataset and the step in words."""
    from hikisig.prep.combat import combat

    if design.site is None:
        raise HikisigError("preprocessing.harmonise = \"combat\" needs the site column "
                           "(design.site, --site-column)")
    site = data.column(design.site)
    if site.isna().any():
        raise HikisigError(f"{int(site.isna().sum())} sample(s) have no site in column "
                           f"{design.site!r}: ComBat needs every sample's site")
    site = site.astype(str)
    if site.nunique() < 2:
        raise HikisigError(f"ComBat needs at least 2 sites; column {design.site!r} has 1")
    cov = pd.DataFrame({"group": data.column(design.group).astype(str)}, index=data.X.index)
    skipped = []
    for name in [design.sex, *design.covariates]:
        if name is None or name == design.site:
            continue
        col = data.column(name)
        if col.isna().any():
            skipped.append(name)
            continue
        num = pd.to_numeric(col, errors="coerce")
        cov[name] = num.astype(float) if name != design.sex and num.notna().all() else col.astype(str)
    V = data.X.to_numpy(dtype=np.float64)
    with np.errstate(divide="ignore", invalid="ignore"):
        L = V if additive else np.log2(np.where(V > 0, V, np.nan))
    try:
        H = combat(pd.DataFrame(L, index=data.X.index, columns=data.X.columns), site,
                   covariates=cov).to_numpy(dtype=np.float64)
    except ValueError as exc:
        raise HikisigError(f"ComBat harmonisation of the statistics' data failed: {exc}") from exc
    out = H if additive else np.where(V > 0, np.exp2(H), V)
    X = pd.DataFrame(out, index=data.X.index, columns=data.X.columns)
    harmonised = Dataset(X, data.obs, data.var, data.flags, data.study, data.synthetic, data.source,
                         dict(data.source_columns))
    step = (f"ComBat harmonisation of {site.nunique()} sites (column {design.site!r}) on "
            f"{'the values as given' if additive else 'log2 values'}, keeping the effects of "
            f"{', '.join(cov.columns)}; for the statistics and the stratification (the models "
            "harmonise inside their training folds)"
            + (f"; covariates with missing values not kept: {', '.join(skipped)}" if skipped
               else ""))
    return harmonised, step
