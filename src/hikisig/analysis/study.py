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
from hikisig.analysis.statistics import case_control
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

__all__ = ["ColumnsNotAnalysedWarning", "MissingAnalytesWarning", "StudyData", "load_study",
           "store_url"]

_LOG_BASES = {"log10": 10.0, "log2": 2.0, "ln": math.e}


class ColumnsNotAnalysedWarning(UserWarning):
    """Metadata or text columns of a file that the design does not use."""


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
        The case and control samples; values on the linear scale; analytes missing in more
        than ``preprocessing.max_missing`` of them left out.
    design : ResolvedDesign
        The design's columns in ``data.obs``.
    preprocessing : Preprocessing
        The settings applied.
    dropped : list of str
        Analytes left out by the missingness filter.
    not_analysed : list of str
        The file's metadata and text columns the design does not use.
    """

    data: Dataset
    design: ResolvedDesign
    preprocessing: Preprocessing = field(default_factory=Preprocessing)
    dropped: list[str] = field(default_factory=list)
    not_analysed: list[str] = field(default_factory=list)

    @property
    def is_case(self) -> pd.Series:
        """True for cases, False for controls (every sample is one or the other)."""
        return self.data.column(self.design.group).astype(str) == self.design.case

    @cached_property
    def markers(self) -> tuple[pd.DataFrame, pd.DataFrame]:
        """Derived markers: values (samples x markers) and annotations (with formulas)."""
        return derived_markers(self.data.X)

    def statistics(self, section: StatsSection | None = None, *, markers: bool = True,
                   quantiles: bool = True, block_cells: int = 4_000_000,
                   engine: Engine | str | None = None) -> pd.DataFrame:
        """The case-control table (see :func:`hikisig.case_control`)."""
        s = section or StatsSection()
        d = self.design
        return case_control(self.data, group=d.group, case=d.case, control=d.control, by=d.sex,
                            covariates=d.covariates, severity=d.severity, tests=s.tests,
                            mwu_method=s.mwu_method, markers=markers, quantiles=quantiles,
                            block_cells=block_cells, engine=engine)

    def discriminate(self, section: DiscriminateSection | None = None, *,
                     prevalence: float = Screening().prevalence, seed: int = RunSection().seed,
                     engine: Engine | str | None = None) -> DiscriminationResult:
        """The discrimination model (see :func:`hikisig.discriminate`)."""
        c, d = section or DiscriminateSection(), self.design
        return discriminate(self.data, group=d.group, case=d.case, control=d.control,
                            participant=d.participant, model=c.model, cv_folds=c.cv_folds,
                            cv_repeats=c.cv_repeats, permutations=c.permutations,
                            permutation_scheme=c.permutation_scheme, n_estimators=c.n_estimators,
                            test_size=c.test_size, inner_cv=c.inner_cv, recalibrate=c.recalibrate,
                            sensitivity_target=c.sensitivity_target, prevalence=prevalence,
                            seed=seed, engine=engine)

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
                        engine=engine)

    def stratify(self, section: StratifySection | None = None, *, seed: int = RunSection().seed,
                 engine: Engine | str | None = None) -> StratificationResult:
        """The stratification of cases (see :func:`hikisig.stratify`)."""
        c, d = section or StratifySection(), self.design
        return stratify(self.data, group=d.group, case=d.case, control=d.control, method=c.method,
                        k=c.k, bootstraps=c.bootstraps, seed=seed, engine=engine)


def _load(source: Source, design: Design, visit: int | str | None, base: Path | None,
          meta_columns: list[str]) -> Dataset:
    if source.file:
        path = Path(source.file)
        if base is not None and not path.is_absolute():
            path = base / path
        names = [design.group, design.sex, *design.covariates, design.severity, design.participant]
        optional = [n for n in dict.fromkeys(names) if n]
        return read_table(path, id_column=source.id_column, meta_columns=meta_columns,
                          optional_meta_columns=optional, study=source.study)
    return Dataset.from_store(store_url(source, base), source.study, visit)


def load_study(source: Source, design: Design | None = None,
               preprocessing: Preprocessing | None = None, *, visit: int | str | None = None,
               base: Path | None = None, meta_columns: list[str] | None = None,
               min_per_group: int = MIN_PER_GROUP_STATS) -> StudyData:
    """Load a study for its analyses.

    Parameters
    ----------
    source : Source
        A table ``file``, or the store ``db`` and ``study``.
    design : Design
        The design's columns; a column named explicitly must exist (see
        :func:`hikisig.analysis.design.resolve_design`).
    preprocessing : Preprocessing
        ``input_scale`` (logged values are brought back to the linear scale) and
        ``max_missing`` (analytes missing in more than this share of the cases and controls
        are left out).
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
    """
    design = design or Design()
    pre = preprocessing or Preprocessing()
    if source.file and visit is not None:
        raise HikisigError("a visit is chosen in the store; a file's rows are analysed as they "
                           "are (leave out --visit, or select the rows first)")
    ds = _load(source, design, visit, base, list(meta_columns or []))
    resolved = resolve_design(ds, design)
    used = set(resolved.columns)
    not_analysed = [src for src, col in ds.source_columns.items()
                    if col not in used and src not in (meta_columns or [])]
    if not_analysed:
        warnings.warn(f"column(s) not analysed (metadata or text): {', '.join(not_analysed[:10])}"
                      f"{', ...' if len(not_analysed) > 10 else ''}", ColumnsNotAnalysedWarning,
                      stacklevel=2)
    mask, case, control = case_mask(ds.column(resolved.group), resolved.case, resolved.control,
                                    column=resolved.group, minimum=min_per_group)
    resolved.case, resolved.control = case, control
    X = ds.X[mask.notna().to_numpy()]
    if pre.input_scale != "linear":
        X = np.power(_LOG_BASES[pre.input_scale], X)
    share = X.isna().mean()
    dropped = [str(c) for c in X.columns[(share > pre.max_missing).to_numpy()]]
    if dropped:
        warnings.warn(f"{len(dropped)} analyte(s) missing in more than {pre.max_missing:.0%} of the "
                      f"cases and controls left out: {', '.join(dropped[:10])}"
                      f"{', ...' if len(dropped) > 10 else ''}", MissingAnalytesWarning, stacklevel=2)
    kept = [c for c in X.columns if c not in set(dropped)]
    sub = ds.subset(mask.notna().to_numpy(), kept)
    prepared = Dataset(X[kept], sub.obs, sub.var, sub.flags, sub.study, sub.synthetic, sub.source,
                       dict(sub.source_columns))
    return StudyData(prepared, resolved, pre, dropped, not_analysed)

