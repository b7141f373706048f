"""What every model builder returns: typed results with named attributes.

:class:`DiscriminationResult`, :class:`SeverityResult` and :class:`StratificationResult`
hold the fitted model, its validation numbers as attributes (``.auc``, ``.q2``, ``.k``,
...), tidy result tables, the settings used and a summary of the training data. Each can
be saved (:meth:`ModelResult.save`), loaded back (:func:`hikisig.models.persist.load_model`
returns the same class) and applied to new samples (:func:`hikisig.models.predict.predict`).
``metrics.json`` is :meth:`ModelResult.to_metrics`.
"""

from __future__ import annotations

import hashlib
import math
from dataclasses import dataclass, field, fields
from pathlib import Path
from typing import Any, ClassVar

import numpy as np
import pandas as pd

__all__ = [
    "SIGNATURE_COLUMNS",
    "DiscriminationResult",
    "FeatureRange",
    "HeldOut",
    "ModelResult",
    "SeverityResult",
    "StratificationResult",
    "TrainingData",
    "frame_sha256",
    "model_input",
    "result_class",
    "training_data",
]

#: Columns of every model's ``signature`` table (more may follow).
SIGNATURE_COLUMNS = ["analyte", "rank", "direction", "effect", "importance", "stability"]


def frame_sha256(X: pd.DataFrame, y: Any = None) -> str:
    """A fingerprint of the training data (values, columns, index and target)."""
    h = hashlib.sha256()
    h.update(",".join(map(str, X.columns)).encode())
    h.update(",".join(map(str, X.index)).encode())
    h.update(np.ascontiguousarray(X.to_numpy(dtype=np.float64)).tobytes())
    if y is not None:
        h.update(np.asarray(pd.Series(y).astype(str)).astype("U").tobytes())
    return h.hexdigest()


def model_input(X: Any) -> pd.DataFrame:
    """Samples x analytes as a float64 DataFrame in one C-ordered block with text column
    names: the same values give the same model whatever their layout in memory (some
    decompositions round differently on another layout)."""
    frame = X if isinstance(X, pd.DataFrame) else pd.DataFrame(np.asarray(X, dtype=np.float64))
    values = np.ascontiguousarray(frame.to_numpy(dtype=np.float64))
    return pd.DataFrame(values, index=frame.index, columns=[str(c) for c in frame.columns])


def clean(v: Any) -> Any:
    """A JSON-friendly value (Python scalars; NaN and infinities as None)."""
    if isinstance(v, dict):
        return {str(k): clean(x) for k, x in v.items()}
    if isinstance(v, list | tuple):
        return [clean(x) for x in v]
    if isinstance(v, bool | np.bool_):
        return bool(v)
    if isinstance(v, int | np.integer):
        return int(v)
    if isinstance(v, float | np.floating):
        f = float(v)
        return f if math.isfinite(f) else None
    if isinstance(v, str) or v is None:
        return v
    return str(v)


@dataclass
class FeatureRange:
    """An input column of a model: its unit and the range seen in training."""

    name: str
    unit: str | None = None
    min: float | None = None
    max: float | None = None


@dataclass
class TrainingData:
    """What a model was trained on (no sample ids: they may be participant codes)."""

    n: int
    sha256: str
    features: list[FeatureRange] = field(default_factory=list)

    @property
    def units(self) -> dict[str, str | None]:
        """Feature -> unit."""
        return {f.name: f.unit for f in self.features}


def training_data(X: pd.DataFrame, y: Any = None, units: dict[str, str | None] | None = None
                  ) -> TrainingData:
    """The summary of a training matrix: size, fingerprint, feature units and ranges."""
    values = X.to_numpy(dtype=np.float64)
    with np.errstate(all="ignore"):
        finite = np.where(np.isfinite(values), values, np.nan)
        lo = np.nanmin(finite, axis=0) if len(X) else np.full(X.shape[1], np.nan)
        hi = np.nanmax(finite, axis=0) if len(X) else np.full(X.shape[1], np.nan)
    feats = [FeatureRange(str(c), (units or {}).get(str(c)), clean(float(a)), clean(float(b)))
             for c, a, b in zip(X.columns, lo, hi, strict=True)]
    return TrainingData(len(X), frame_sha256(X, y), feats)


@dataclass(kw_only=True)
class ModelResult:
    """A validated model and everything reported about it.

    Attributes
    ----------
    kind : str
        ``discriminate``, ``severity`` or ``stratify`` (a class attribute).
    model : object
        The final fitted estimator (a scikit-learn Pipeline), trained on all data.
    features : list of str
        Input columns the model expects, in order.
    tables : dict of DataFrame
        Tidy result tables; every kind has ``signature`` (:data:`SIGNATURE_COLUMNS`).
    params : dict
        Settings used (for the model card and provenance).
    n : int
        Samples the model was trained and validated on.
    seed : int
        Root seed of every random step.
    cv_scheme : str or None
        The validation scheme, in words.
    training : TrainingData or None
        Size, fingerprint, units and ranges of the training data.
    study : str
        Study the model was trained on.
    synthetic : bool
        Trained on synthetic data.
    folder : Path or None
        Where the model was saved or loaded from.
    """

    kind: ClassVar[str] = ""
    #: Score followed at later visits and its column in :func:`predict`'s output.
    follow_up_score: ClassVar[str | None] = None
    #: Metric names of ``metrics.json`` whose attribute has another name.
    _RENAMED: ClassVar[dict[str, str]] = {}
    #: Attributes that are not metrics.
    _NOT_METRICS: ClassVar[frozenset[str]] = frozenset(
        {"model", "features", "tables", "params", "training", "study", "synthetic", "folder",
         "held_out"})
    #: Metrics written only when they have a value.
    _OPTIONAL_METRICS: ClassVar[frozenset[str]] = frozenset()

    model: Any
    features: list[str]
    tables: dict[str, pd.DataFrame] = field(default_factory=dict)
    params: dict[str, Any] = field(default_factory=dict)
    n: int = 0
    seed: int = 0
    cv_scheme: str | None = None
    training: TrainingData | None = None
    study: str = ""
    synthetic: bool = False
    folder: Path | None = None

    @property
    def signature(self) -> pd.DataFrame:
        """Analytes ranked by their part in the model (:data:`SIGNATURE_COLUMNS`)."""
        return self.tables.get("signature", pd.DataFrame(columns=SIGNATURE_COLUMNS))

    @property
    def follow_up_sem(self) -> float | None:
        """The model's error of measurement for reliable change at follow-up (None: none)."""
        return None

    def to_metrics(self) -> dict[str, Any]:
        """The headline numbers as written to ``metrics.json`` (JSON-ready)."""
        out: dict[str, Any] = {}
        attr_to_key = {v: k for k, v in self._RENAMED.items()}
        for f in fields(self):
            if f.name in self._NOT_METRICS:
                continue
            value = getattr(self, f.name)
            if value is None and f.name in self._OPTIONAL_METRICS:
                continue
            out[attr_to_key.get(f.name, f.name)] = clean(value)
        return out

    @classmethod
    def from_metrics(cls, metrics: dict[str, Any], **parts: Any) -> ModelResult:
        """A result from ``metrics.json`` and its other parts (model, features, tables, ...)."""
        kw = dict(parts)
        for f in fields(cls):
            if f.name in cls._NOT_METRICS or f.name in kw:
                continue
            key = next((k for k, v in cls._RENAMED.items() if v == f.name), f.name)
            if key in metrics:
                kw[f.name] = metrics[key]
        return cls(**kw)

    def summary(self) -> str:
        """One line for people."""
        return f"{self.kind} model on {self.n} samples"

    def save(self, path: str | Path) -> Path:
        """Write the model folder (``model.skops``, model card, ``metrics.json``, tables).

        See :func:`hikisig.models.persist.save_model`.
        """
        from hikisig.models.persist import save_model

        return save_model(self, path)


@dataclass
class HeldOut:
    """The model fitted on the development samples, scored on a held-out test set."""

    n_test: int
    n_test_case: int
    n_test_control: int
    test_brier: float | None = None
    test_auc: float | None = None
    test_auc_ci_low: float | None = None
    test_auc_ci_high: float | None = None
    #: rule -> (sensitivity, specificity) at the thresholds chosen on the development samples
    rules: dict[str, tuple[float | None, float | None]] = field(default_factory=dict)

    def to_metrics(self) -> dict[str, Any]:
        """The ``test_*`` entries of ``metrics.json``."""
        out = {"n_test": self.n_test, "n_test_case": self.n_test_case,
               "n_test_control": self.n_test_control, "test_brier": self.test_brier,
               "test_auc": self.test_auc, "test_auc_ci_low": self.test_auc_ci_low,
               "test_auc_ci_high": self.test_auc_ci_high}
        for rule, (se, sp) in self.rules.items():
            out[f"test_{rule}_sensitivity"] = se
            out[f"test_{rule}_specificity"] = sp
        return clean(out)

    @classmethod
    def from_metrics(cls, m: dict[str, Any]) -> HeldOut | None:
        """The held-out part of ``metrics.json`` (None without one)."""
        if "n_test" not in m:
            return None
        rules = {k[5:-12]: (m.get(k), m.get(k.replace("sensitivity", "specificity")))
                 for k in m if k.startswith("test_") and k.endswith("_sensitivity")}
        return cls(m["n_test"], m["n_test_case"], m["n_test_control"], m.get("test_brier"),
                   m.get("test_auc"), m.get("test_auc_ci_low"), m.get("test_auc_ci_high"), rules)


@dataclass(kw_only=True)
class DiscriminationResult(ModelResult):
    """A validated case vs control classifier (:func:`hikisig.models.discriminate.discriminate`).

    The AUC and its intervals are those of the out-of-fold probabilities. Tables:
    ``oof_predictions`` (id, y_true, y_prob), ``roc``, ``roc_band``, ``calibration``,
    ``thresholds``, ``importance``, ``signature``, ``per_repeat`` (and
    ``test_predictions`` with a held-out test set).
    """

    kind: ClassVar[str] = "discriminate"
    follow_up_score: ClassVar[str | None] = "logit"
    _RENAMED: ClassVar[dict[str, str]] = {"model": "classifier"}
    _OPTIONAL_METRICS: ClassVar[frozenset[str]] = frozenset({"n_participants"})

    auc: float = math.nan
    auc_ci_low: float | None = None
    auc_ci_high: float | None = None
    auc_ci_method: str = "delong"
    auc_se: float | None = None
    auc_boot_ci_low: float | None = None
    auc_boot_ci_high: float | None = None
    auc_boot_resamples: int = 0
    auc_per_repeat_mean: float | None = None
    auc_per_repeat_sd: float | None = None
    prediction_sem_logit: float | None = None
    brier: float | None = None
    calibration_slope: float | None = None
    calibration_intercept: float | None = None
    permutation_p: float | None = None
    permutations: int = 0
    permutation_scheme: str = "oof"
    n_case: int = 0
    n_control: int = 0
    n_participants: int | None = None
    classifier: str = "rf"
    case_label: str = "case"
    control_label: str = "control"
    held_out: HeldOut | None = None

    @property
    def auc_ci(self) -> tuple[float | None, float | None]:
        """95% CI of the AUC (DeLong)."""
        return (self.auc_ci_low, self.auc_ci_high)

    @property
    def auc_boot_ci(self) -> tuple[float | None, float | None]:
        """95% CI of the AUC (stratified bootstrap of participants)."""
        return (self.auc_boot_ci_low, self.auc_boot_ci_high)

    @property
    def thresholds(self) -> pd.DataFrame:
        """Decision thresholds (Youden, sensitivity target) with their accuracy."""
        return self.tables.get("thresholds", pd.DataFrame())

    def threshold(self, rule: str = "youden") -> float | None:
        """The probability threshold of a rule (None when not recorded)."""
        t = self.thresholds
        if not len(t) or "rule" not in t:
            return None
        row = t[t["rule"] == rule]
        return float(row["threshold"].iloc[0]) if len(row) else None

    @property
    def follow_up_sem(self) -> float | None:
        return self.prediction_sem_logit

    def to_metrics(self) -> dict[str, Any]:
        out = super().to_metrics()
        for row in self.thresholds.to_dict("records"):
            for key in ("threshold", "sensitivity", "specificity"):
                if key in row:
                    out[f"{row['rule']}_{key}"] = clean(row[key])
        if self.held_out is not None:
            out.update(self.held_out.to_metrics())
        return out

    @classmethod
    def from_metrics(cls, metrics: dict[str, Any], **parts: Any) -> ModelResult:
        parts.setdefault("held_out", HeldOut.from_metrics(metrics))
        return super().from_metrics(metrics, **parts)

    def summary(self) -> str:
        return (f"AUC {_f3(self.auc)} (95% CI {_f3(self.auc_ci_low)}-{_f3(self.auc_ci_high)}, "
                f"{self.auc_ci_method}); permutation p {_f4(self.permutation_p)}; {self.cv_scheme}")


@dataclass(kw_only=True)
class SeverityResult(ModelResult):
    """A validated PLS regression of a severity score (:func:`hikisig.models.severity.severity`).

    Tables: ``q2_by_components``, ``observed_predicted``, ``vip``, ``coefficients``,
    ``signature``.
    """

    kind: ClassVar[str] = "severity"
    follow_up_score: ClassVar[str | None] = "predicted_severity"

    n_components: int = 1
    r2y: float | None = None
    q2: float | None = None
    q2_sd: float | None = None
    rmsee: float | None = None
    rmsecv: float | None = None
    r2_spearman: float | None = None
    spearman_r: float | None = None
    pearson_r: float | None = None
    permutation_p_q2: float | None = None
    permutations: int = 0
    scaling: str = "pareto"
    target: str | None = None

    @property
    def follow_up_sem(self) -> float | None:
        return self.rmsecv

    def summary(self) -> str:
        return (f"{self.n_components} components; R2Y {_f3(self.r2y)}, Q2 {_f3(self.q2)}, RMSECV "
                f"{_f2(self.rmsecv)}, R2 (Spearman^2) {_f3(self.r2_spearman)}; permutation p "
                f"{_f4(self.permutation_p_q2)}")


@dataclass(kw_only=True)
class StratificationResult(ModelResult):
    """Subgroups of cases (:func:`hikisig.models.stratify.stratify`).

    Tables: ``k_selection``, ``assignments``, ``profiles``, ``signature`` (and
    ``clinical`` when clinical variables were given).
    """

    kind: ClassVar[str] = "stratify"

    method: str = "gmm"
    k: int = 2
    criterion: str = "bic"
    silhouette: float | None = None
    bic: float | None = None
    stability_ari_mean: float | None = None
    stability_ari_sd: float | None = None
    cluster_sizes: list[int] = field(default_factory=list)

    def summary(self) -> str:
        return (f"{self.method}: k = {self.k}, sizes {self.cluster_sizes}, stability ARI "
                f"{_f2(self.stability_ari_mean)}")


def _fmt(v: Any, digits: int) -> str:
    return "NA" if v is None or not math.isfinite(float(v)) else f"{float(v):.{digits}f}"


def _f2(v: Any) -> str:
    return _fmt(v, 2)


def _f3(v: Any) -> str:
    return _fmt(v, 3)


def _f4(v: Any) -> str:
    return _fmt(v, 4)


_CLASSES: dict[str, type[ModelResult]] = {c.kind: c for c in (
    DiscriminationResult, SeverityResult, StratificationResult)}


def result_class(kind: str) -> type[ModelResult]:
    """The result class of a model kind."""
    try:
        return _CLASSES[kind]
    except KeyError:
        raise ValueError(f"unknown model kind {kind!r} (expected {', '.join(_CLASSES)})") from None
