"""What a study run produces (:func:`hikisig.run`): every table, model and fact the report,
the tables folder and the provenance need, as named attributes.

This module computes nothing: the pipeline fills it, the report renders it.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any

import pandas as pd

from hikisig.analysis.compare import CompareResult
from hikisig.analysis.quality import QCSummary
from hikisig.analysis.repeated import RepeatSummary
from hikisig.config import DEFAULT_PREVALENCE, StudyConfig
from hikisig.models.projection import PCAScores
from hikisig.models.result import (
    DiscriminationResult,
    ModelResult,
    SeverityResult,
    StratificationResult,
)
from hikisig.stats.describe import CohortSummary

__all__ = ["STAGES", "FollowupResults", "PreprocessingStep", "Provenance", "RunMethods",
           "RunResults"]

#: Stages of a run, in order (reported to progress callbacks).
STAGES = ("data", "statistics", "discrimination", "severity", "stratification", "followup",
          "report")


@dataclass
class PreprocessingStep:
    """One step applied to the data, in order."""

    name: str
    description: str = ""


@dataclass
class RunMethods:
    """The facts the Methods section is written from.

    Attributes
    ----------
    preprocessing : list of PreprocessingStep
    input_scale : str
        Scale of the stored values (``linear`` or a log).
    max_missing : float
        Missingness filter threshold.
    dropped_analytes : list of str
        Analytes removed by it.
    tests : list of str
        Two-group tests of the statistics (``welch``, ``student``, ``mwu``).
    mwu_method : str
    by : str or None
        The stratifying (sex) column; None when the statistics were not stratified.
    covariates : list of str
        Covariates of the linear model.
    site : str or None
        The site column, a categorical covariate of the linear model (``design.site``).
    severity : str or None
        Severity score correlated with each analyte within cases.
    correction : str
        Multiple testing correction.
    prevalence : float
        Population prevalence of PPV and NPV.
    prevalence_source : str
        Where the prevalence comes from.
    matrix : str
        What was measured (blood, serum, urine, ...).
    seed : int
    engine : str
    """

    preprocessing: list[PreprocessingStep] = field(default_factory=list)
    input_scale: str = "linear"
    max_missing: float = 0.5
    dropped_analytes: list[str] = field(default_factory=list)
    tests: list[str] = field(default_factory=list)
    mwu_method: str = "asymptotic"
    by: str | None = None
    covariates: list[str] = field(default_factory=list)
    site: str | None = None
    severity: str | None = None
    correction: str = ("Benjamini-Hochberg false discovery rate (q values) and Holm "
                       "(p_holm), within each stratum and test")
    prevalence: float = DEFAULT_PREVALENCE
    prevalence_source: str = ""
    matrix: str = "blood"
    seed: int = 0
    engine: str = "serial"


@dataclass
class Provenance:
    """Where a run's numbers come from (``provenance.json``)."""

    config_sha256: str
    data_sha256: str
    study: str
    synthetic: bool
    seed: int
    engine: str
    versions: dict[str, str]
    start_time: str
    end_time: str
    platform: str
    tables: list[str] = field(default_factory=list)
    models: list[str] = field(default_factory=list)
    failed_stage: str | None = None
    error: str | None = None

    def to_dict(self) -> dict[str, Any]:
        """The JSON record."""
        return asdict(self)


@dataclass
class FollowupResults:
    """The follow-up of participants with several visits (:mod:`hikisig.analysis.followup`).

    Attributes
    ----------
    arms : Series
        Participant -> ``treated`` / ``untreated`` / ``control``.
    interventions_source : str
        Where the intervention log came from (a file, the store, or none).
    visits : list of int
        The visits in the data.
    scores : DataFrame
        Cross-fitted scores at every visit (``sample, participant, visit, fold, measure,
        value``): no participant is scored by a model that saw them.
    values : DataFrame
        Every measure followed: ``participant, visit, measure, value`` (the scores, the
        log2 derived markers and the severity score).
    change : DataFrame
        ``participant, arm, visit, measure, change, reliable_change, direction``
        (``followup_change.csv``).
    thresholds : DataFrame
        ``measure, sem, threshold, n_people, df``: the reliable-change thresholds from the
        within-person variation of the reference people.
    rates : DataFrame
        Share of follow-up visits with a reliable change and with a reliable improvement,
        per measure and arm, with Wilson 95% CIs.
    lmm : DataFrame or None
        ``analyte, term, estimate, se, p, q, ...`` (``followup_lmm.csv``).
    trajectories : DataFrame
        Mean and 95% CI per measure x arm x visit (``measure, arm, visit, n, mean, ci_low,
        ci_high``).
    reference : str
        Whose visits set the thresholds (in words).
    lmm_reference : str or None
        The arm the mixed model compares with.
    correlation : dict
        Spearman correlation of the change in the signature score with the change in the
        severity score among cases (``rho, p, n``; empty when not computable).
    severity_measure : str or None
        The severity score followed (e.g. ``hq25``).
    notes : list of str
        What limited the analysis, in plain words.
    """

    arms: pd.Series
    interventions_source: str
    visits: list[int]
    scores: pd.DataFrame
    values: pd.DataFrame
    change: pd.DataFrame
    thresholds: pd.DataFrame
    rates: pd.DataFrame
    lmm: pd.DataFrame | None
    trajectories: pd.DataFrame
    reference: str
    lmm_reference: str | None = None
    correlation: dict[str, float] = field(default_factory=dict)
    severity_measure: str | None = None
    notes: list[str] = field(default_factory=list)


@dataclass
class RunResults:
    """The results of one study run.

    Attributes
    ----------
    config : StudyConfig
        The validated config (defaults filled).
    study : str
    synthetic : bool
        Whether the data are synthetic (a property of the data, see
        :attr:`hikisig.Dataset.synthetic`).
    X : DataFrame
        Samples x analytes analysed (cases and controls, linear scale, after the
        missingness filter), float64.
    obs : DataFrame
        Sample metadata, same index as X, with standard columns ``group`` (the case and
        control labels), ``sex`` (M/F or missing), ``age`` (may be missing),
        ``participant``, ``visit``.
    var : DataFrame
        Analyte annotations indexed by the columns of X.
    case_label, control_label : str
    markers : DataFrame
        Derived markers (samples x markers), same index as X.
    marker_formulas : DataFrame
        Indexed by marker id: ``display_name``, ``formula``.
    stats : DataFrame or None
        The tidy table of :func:`hikisig.case_control`.
    cohort : CohortSummary or None
    site_counts : DataFrame or None
        Cases and controls per site (:func:`hikisig.stats.describe.site_counts`), with a site column.
    detectability : DataFrame or None
        What a study of this size can detect, per stratum
        (:func:`hikisig.stats.power.cohort_detectability`; ``detectability.csv``).
    missing_by_analyte, missing_by_sample : Series or None
        Shares of missing values.
    pca : PCAScores or None
    questionnaires : DataFrame or None
        One row per participant-visit-instrument: ``id``, ``visit``, ``instrument``,
        ``total``, ``band``, ``group``, ``sex``.
    questionnaire_summary : DataFrame or None
        ``instrument``, ``group``, ``n``, ``median``, ``q1``, ``q3``.
    criteria : DataFrame or None
        ``id``, ``status``, ``severity``, ``group``.
    discrimination, severity, stratification : result or None
        The models that ran.
    cluster_values, cluster_of : DataFrame, Series or None
        Autoscaled log2 values of the stratified cases for the top signature analytes, and
        each case's cluster (for the heat map and profiles).
    followup : FollowupResults or None
        The follow-up (data with more than one visit).
    compare : CompareResult or None
        The statistics compared with a published signature (``[compare] reference``).
    consensus : DataFrame or None
        Consensus signature across the models.
    skipped : dict
        Stage -> why it did not run (too few samples, no severity score, disabled).
    nonpositive : Series or None
        Values <= 0 (below detection on a linear scale) per analyte, where there are any.
    analyte_mapping : DataFrame or None
        How each source column became an analyte (``analyte_mapping.csv``).
    quality : QCSummary or None
        QC and blank samples and what quality control did.
    repeats : RepeatSummary or None
        How several samples of a participant were handled.
    markers_skipped : DataFrame or None
        Curated derived markers not computed, with the components the data lack.
    failed_stage, error, traceback : str or None
        The stage that failed, its one-line error and (for a fault in hikisig) the traceback;
        the earlier stages' results are kept.

    warnings : list of str
        Warnings raised during the run, each once.
    methods : RunMethods
    provenance : Provenance or None
    """

    config: StudyConfig
    study: str
    synthetic: bool
    X: pd.DataFrame
    obs: pd.DataFrame
    var: pd.DataFrame
    case_label: str = "case"
    control_label: str = "control"
    markers: pd.DataFrame = field(default_factory=pd.DataFrame)
    marker_formulas: pd.DataFrame = field(default_factory=pd.DataFrame)
    stats: pd.DataFrame | None = None
    cohort: CohortSummary | None = None
    site_counts: pd.DataFrame | None = None
    detectability: pd.DataFrame | None = None
    missing_by_analyte: pd.Series | None = None
    missing_by_sample: pd.Series | None = None
    pca: PCAScores | None = None
    questionnaires: pd.DataFrame | None = None
    questionnaire_summary: pd.DataFrame | None = None
    criteria: pd.DataFrame | None = None
    discrimination: DiscriminationResult | None = None
    severity: SeverityResult | None = None
    stratification: StratificationResult | None = None
    cluster_values: pd.DataFrame | None = None
    cluster_of: pd.Series | None = None
    consensus: pd.DataFrame | None = None
    followup: FollowupResults | None = None
    compare: CompareResult | None = None
    skipped: dict[str, str] = field(default_factory=dict)
    warnings: list[str] = field(default_factory=list)
    methods: RunMethods = field(default_factory=RunMethods)
    provenance: Provenance | None = None
    nonpositive: pd.Series | None = None
    analyte_mapping: pd.DataFrame | None = None
    quality: QCSummary | None = None
    repeats: RepeatSummary | None = None
    markers_skipped: pd.DataFrame | None = None
    failed_stage: str | None = None
    error: str | None = None
    traceback: str | None = None

    @property
    def models(self) -> dict[str, ModelResult]:
        """The models that ran, by kind (``discriminate``, ``severity``, ``stratify``)."""
        found = (self.discrimination, self.severity, self.stratification)
        return {m.kind: m for m in found if m is not None}
