"""The analysis core: every rule of loading, design, encoding, defaults and minimum sizes,
and the analyses on a :class:`~hikisig.Dataset` or on arrays. The Python API (``hikisig.*``),
the command line, the study run and the web app all call these functions."""

from hikisig.analysis.design import ResolvedDesign, resolve_design
from hikisig.analysis.modelling import discriminate, load_model, predict, severity, stratify
from hikisig.analysis.statistics import case_control
from hikisig.analysis.study import StudyData, load_study

__all__ = [
    "ResolvedDesign",
    "StudyData",
    "case_control",
    "discriminate",
    "load_model",
    "load_study",
    "predict",
    "resolve_design",
    "severity",
    "stratify",
]
