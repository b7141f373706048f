"""Quality control of a study run with pooled QC samples: RSD filter, drift correction and
sample normalisation, applied once to the whole run before any analysis (they use no
outcome), with the existing transformers of :mod:`hikisig.prep`.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import pandas as pd

from hikisig.cohort.dataset import Dataset
from hikisig.config import Preprocessing
from hikisig.errors import HikisigError

__all__ = ["QCSummary", "apply_quality_control", "sample_types"]


@dataclass
class QCSummary:
    """What quality control did.

    Attributes
    ----------
    n_qc, n_blank : int
        QC and blank samples of the run (set aside after quality control).
    rsd : Series or None
        RSD of each analyte over the QC samples (NaN where undefined), when QC samples exist.
    rsd_max : float or None
        The RSD filter's threshold (None: no filter).
    dropped : list of str
        Analytes dropped by the RSD filter.
    drift : str
        ``none`` or ``loess``.
    normalise : str
        ``none``, ``pqn``, ``total`` or ``median``.
    scores : DataFrame or None
        PCA scores (PC1, PC2) of study and QC samples after drift correction, with column
        ``type`` (``study`` / ``qc``); QC samples should cluster tightly.
    explained : ndarray or None
        Share of variance of PC1 and PC2.
    """

    n_qc: int = 0
    n_blank: int = 0
    rsd: pd.Series | None = None
    rsd_max: float | None = None
    dropped: list[str] = field(default_factory=list)
    drift: str = "none"
    normalise: str = "none"
    scores: pd.DataFrame | None = None
    explained: np.ndarray | None = None


def sample_types(data: Dataset, pre: Preprocessing) -> pd.Series:
    """``study``, ``qc`` or ``blank`` for each sample, from ``pre.sample_type`` and its labels
    (compared case-insensitively); samples are study samples when the column is absent."""
    name = data.column_name(pre.sample_type)
    out = pd.Series("study", index=data.X.index, dtype=object)
    if name is None:
        return out
    text = data.obs[name].astype(str).str.strip().str.casefold()
    out[(text == pre.qc_label.casefold()).to_numpy()] = "qc"
    out[(text == pre.blank_label.casefold()).to_numpy()] = "blank"
    return out


def _column(data: Dataset, name: str, what: str, setting: str) -> pd.Series:
    found = data.column_name(name)
    if found is None:
        raise HikisigError(f"{what} needs the column {name!r} ({setting}); the data have "
                           f"{', '.join(map(str, data.obs.columns[:12]))}")
    return data.obs[found]


def apply_quality_control(data: Dataset, X: pd.DataFrame, types: pd.Series, pre: Preprocessing
                          ) -> tuple[pd.DataFrame, QCSummary]:
    """Apply the QC steps of ``pre`` to the values ``X`` (all samples of the run, linear scale).

    Order: the QC-RSD filter (analytes whose RSD over the QC samples exceeds
    ``qc_rsd_max`` are dropped), drift correction (QC-robust LOESS within batch along the
    injection order; batches median-centred), then normalisation of the study samples
    (PQN to their median profile, total sum or median). Returns the values of the study
    samples and a summary.

    Raises
    ------
    HikisigError
        A QC step without QC samples or without its order/batch column.
    """
    from hikisig.models.projection import pca_scores
    from hikisig.prep import (
        MedianNormaliser,
        PQNormaliser,
        QCDriftCorrector,
        QCRSDFilter,
        TotalSumNormaliser,
    )

    is_qc = (types == "qc").to_numpy()
    study = (types == "study").to_numpy()
    summary = QCSummary(n_qc=int(is_qc.sum()), n_blank=int((types == "blank").sum()),
                        rsd_max=pre.qc_rsd_max, drift=pre.drift, normalise=pre.normalise)
    wanted = pre.qc_rsd_max is not None or pre.drift != "none"
    if wanted and summary.n_qc < 2:
        raise HikisigError(f"the QC steps (qc_rsd_max, drift) need QC samples: found "
                           f"{summary.n_qc} with {pre.qc_label!r} in column {pre.sample_type!r} "
                           "(preprocessing.sample_type, preprocessing.qc_label)")
    concentrations = bool((X.fillna(0.0) >= 0).all().all())
    if wanted and not concentrations:
        raise HikisigError("the QC steps need concentrations (values >= 0); these data have "
                           "negative values (preprocessing.input_scale = \"z\"?)")
    if summary.n_qc >= 2 and concentrations:
        f = QCRSDFilter(max_rsd=pre.qc_rsd_max or 1.0).fit(X, qc=is_qc)
        summary.rsd = pd.Series(f.rsd_, index=X.columns, name="rsd")
        if pre.qc_rsd_max is not None:
            summary.dropped = [str(c) for c in X.columns[~f.support_]]
            X = X.loc[:, f.support_]
    if pre.drift == "loess":
        order = pd.to_numeric(_column(data, pre.order, "drift correction", "preprocessing.order"),
                              errors="coerce")
        batch_col = data.column_name(pre.batch)
        batch = data.obs[batch_col].astype(str).to_numpy() if batch_col else None
        corrected = QCDriftCorrector().fit_transform(X, qc=is_qc, order=order.to_numpy(),
                                                     batch=batch)
        X = pd.DataFrame(np.asarray(corrected, dtype=np.float64), index=X.index, columns=X.columns)
    if summary.n_qc >= 2 and X.shape[1] >= 2 and concentrations:
        keep = study | is_qc
        pcs = pca_scores(X[keep])
        summary.scores = pcs.scores.assign(type=np.where(is_qc[keep], "qc", "study"))
        summary.explained = pcs.explained
    X = X[study]
    if pre.normalise != "none":
        norm = {"pqn": PQNormaliser, "total": TotalSumNormaliser, "median": MedianNormaliser}[
            pre.normalise]()
        X = pd.DataFrame(np.asarray(norm.fit_transform(X), dtype=np.float64), index=X.index,
                         columns=X.columns)
    return X, summary
