"""Vectorised statistics: case-control tests, ROC/AUC with DeLong intervals, reliability,
screening accuracy."""

from hikisig.stats.casecontrol import TIDY_COLUMNS, case_control
from hikisig.stats.reliability import cronbach_alpha, item_total
from hikisig.stats.roc import auc_delong, delong_variance
from hikisig.stats.screening import predictive_values, screening_accuracy

__all__ = [
    "TIDY_COLUMNS",
    "auc_delong",
    "case_control",
    "cronbach_alpha",
    "delong_variance",
    "item_total",
    "predictive_values",
    "screening_accuracy",
]
