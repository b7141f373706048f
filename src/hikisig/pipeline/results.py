"""What a run produces: everything the report, the tables and the provenance need."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import pandas as pd

from hikisig.models.result import ModelResult

__all__ = ["RunResults"]


@dataclass
class RunResults:
    """The results of ``hikisig run``.

    Attributes
    ----------
    config : dict
        The validated study config (as written in the TOML file, defaults filled).
    study : str
        Study name. ``synthetic`` says whether the data are synthetic.
    X : DataFrame
        Samples x analytes analysed (baseline visit, study samples), float64, NaN missing.
    obs : DataFrame
        Sample metadata, same index as X: at least ``group`` (the configured case /
        control labels), ``sex`` (M/F or missing), ``age`` (may be missing),
        ``participant``, ``visit``.
    var : DataFrame
        Analyte annotations indexed by the columns of X: ``display_name``, ``class``,
        ``unit`` (may be missing).
    case_label, control_label : str
        Labels of cases and controls in ``obs["group"]``.
    markers : DataFrame
        Derived markers: values (samples x markers), same index as X.
    marker_formulas : DataFrame
        Indexed by marker id: ``display_name``, ``formula``.
    stats : DataFrame or None
        The tidy table of :func:`hikisig.stats.case_control` (analytes and markers).
    questionnaires : DataFrame or None
        One row per participant-visit-instrument: ``id``, ``visit``, ``instrument``,
        ``total``, ``band``, ``group``, ``sex``.
    criteria : DataFrame or None
        ``id``, ``status``, ``severity``, ``group`` (when criteria inputs exist).
    models : dict
        ``discriminate``, ``severity``, ``stratify`` -> ModelResult (those that ran).
    consensus : DataFrame or None
        Consensus signature across models.
    methods : dict
        Facts for the Methods section: preprocessing steps, tests, CV schemes, CI
        methods, permutation counts, seed, engine, software versions.
    provenance : dict
        Config sha256, data sha256, versions, seed, engine, start and end time.
    """

    config: dict[str, Any]
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
    questionnaires: pd.DataFrame | None = None
    criteria: pd.DataFrame | None = None
    models: dict[str, ModelResult] = field(default_factory=dict)
    consensus: pd.DataFrame | None = None
    methods: dict[str, Any] = field(default_factory=dict)
    provenance: dict[str, Any] = field(default_factory=dict)
