"""Preprocessing of metabolomics data (samples x analytes) as scikit-learn transformers.

The usual order for raw concentrations is: QC drift correction and QC RSD
filtering on the whole run (:mod:`hikisig.prep.qc`), then, inside
cross-validation, a missingness filter and imputation
(:mod:`hikisig.prep.missing`), sample normalisation
(:mod:`hikisig.prep.normalise`), log transform and scaling
(:mod:`hikisig.prep.transform`). Curated derived markers (ratios and sums of
catalog analytes, computed only when every required component is present;
:func:`marker_status` tells which are skipped and why) are in
:mod:`hikisig.prep.markers`. Zeros and negative concentrations are values
below detection: :class:`MinFractionImputer` treats them as missing by default.
Every transformer follows scikit-learn's conventions: statistics are learned
in ``fit`` from training samples only, column names are kept,
``set_output(transform="pandas")`` is supported and the output is float64.

Examples
--------
>>> import numpy as np
>>> from sklearn.pipeline import make_pipeline
>>> X = np.array([[1.0, 8.0], [2.0, np.nan], [4.0, 32.0], [8.0, 64.0]])
>>> pipe = make_pipeline(MinFractionImputer(), LogTransformer(), Scaler(method="pareto"))
>>> pipe.fit_transform(X).shape
(4, 2)
"""

from __future__ import annotations

from hikisig.prep.combat import ComBat, combat
from hikisig.prep.markers import MARKERS, derived_markers, marker_status
from hikisig.prep.missing import (
    IMPUTERS,
    NONPOSITIVE,
    KNNImputer,
    LODImputer,
    MinFractionImputer,
    MissingFilter,
    SimpleImputer,
    make_imputer,
)
from hikisig.prep.normalise import MedianNormaliser, PQNormaliser, TotalSumNormaliser
from hikisig.prep.qc import MIN_QC_PER_BATCH, QCDriftCorrector, QCRSDFilter
from hikisig.prep.transform import LOG_BASES, SCALINGS, LogTransformer, Scaler, glog

__all__ = [
    "IMPUTERS",
    "LOG_BASES",
    "MARKERS",
    "MIN_QC_PER_BATCH",
    "NONPOSITIVE",
    "SCALINGS",
    "ComBat",
    "KNNImputer",
    "LODImputer",
    "LogTransformer",
    "MedianNormaliser",
    "MinFractionImputer",
    "MissingFilter",
    "PQNormaliser",
    "QCDriftCorrector",
    "QCRSDFilter",
    "Scaler",
    "SimpleImputer",
    "TotalSumNormaliser",
    "combat",
    "derived_markers",
    "glog",
    "make_imputer",
    "marker_status",
]
