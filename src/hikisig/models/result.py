"""What every model builder returns: typed results with named attributes.

:class:`DiscriminationResult`, :class:`SeverityResult` and :class:`StratificationResult`
hold the fitted model, its validation numbers as attributes (``.auc``, ``.q2``, ``.k``,
...), tidy result tables, the settings used and a summary of the training data. Each can
be saved (:meth:`ModelResult.save`), loaded back (:func:`hikisig.models.persist.load_model`
returns the same class) and applied to new samples (:func:`hikisig.models.predict.predict`).
``metrics.json`` is :meth:`ModelResult.to_metrics`.

Every result built by hikisig says whether it passed its validation rule
(``validated``) and why, in one sentence for people (``verdict``):

* discrimination: the permutation p of the AUC is below :data:`ALPHA` (not validated,
  "not tested against chance", without permutations);
* severity: ``Q2 > 0`` and the permutation p of Q2 is below :data:`ALPHA`;
* stratification: the mean bootstrap ARI is at least :data:`MIN_STABILITY_ARI` and
  every cluster holds at least :func:`min_cluster_size` samples.

``validated`` is None (not assessed) only for results assembled by hand or loaded from
folders written before verdicts were recorded.

Sample ids are never written to ``metrics.json``, the params or the model card: the
training set is recorded by its size, ``sha256`` (a fingerprint of the data) and
``ids_sha256`` (sha256 of the sorted ids, :func:`ids_sha256`); the model keeps a keyed
hash (HMAC-SHA256 with a random key of its own) of every training id, so that
:func:`hikisig.models.predict.predict` can say which new samples were used in training.
"""

from __future__ import annotations

import hashlib
import hmac
import math
import secrets
from collections.abc import Iterable
from dataclasses import dataclass, field, fields
from pathlib import Path
from typing import Any, ClassVar, Self

import numpy as np
import pandas as pd

__all__ = [
    "ALPHA",
    "MIN_CLUSTER_SHARE_PERCENT",
    "MIN_CLUSTER_SIZE",
    "MIN_STABILITY_ARI",
    "SIGNATURE_COLUMNS",
    "DiscriminationResult",
    "FeatureRange",
    "HeldOut",
    "ModelResult",
    "SeverityResult",
    "StratificationResult",
    "TrainingData",
    "frame_sha256",
    "ids_sha256",
    "keyed_id_hashes",
    "min_cluster_size",
    "model_input",
    "result_class",
    "training_data",
]

#: Columns of every model's ``signature`` table (more may follow).
SIGNATURE_COLUMNS = ["analyte", "rank", "direction", "effect", "importance", "stability"]

#: Significance level of the permutation tests behind ``validated``.
ALPHA = 0.05
#: Smallest mean bootstrap adjusted Rand index of a validated stratification.
MIN_STABILITY_ARI = 0.6
#: Smallest cluster of a validated stratification: at least this many samples ...
MIN_CLUSTER_SIZE = 5
#: ... and at least this percentage of the clustered samples (rounded up).
MIN_CLUSTER_SHARE_PERCENT = 10


def min_cluster_size(n: int) -> int:
    """The smallest cluster size a validated stratification of ``n`` samples may have:
    ``max(5, 10% of n rounded up)``.

    Examples
    --------
    >>> min_cluster_size(42), min_cluster_size(30), min_cluster_size(600)
    (5, 5, 60)
    """
    return max(MIN_CLUSTER_SIZE, -(-int(n) * MIN_CLUSTER_SHARE_PERCENT // 100))


def ids_sha256(ids: Iterable[Any]) -> str:
    """sha256 of the sorted sample ids (as text, one per line): names the training set
    without naming anyone.

    Examples
    --------
    >>> ids_sha256(["b", "a"]) == ids_sha256(["a", "b"])
    True
    """
    return hashlib.sha256("\n".join(sorted(str(i) for i in ids)).encode("utf-8")).hexdigest()


def keyed_id_hashes(ids: Iterable[Any], key: str) -> list[str]:
    """HMAC-SHA256 of every id (as text) with ``key`` (hex), in the order of ``ids``."""
    k = bytes.fromhex(key)
    return [hmac.new(k, str(i).encode("utf-8"), hashlib.sha256).hexdigest() for i in ids]


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
    """What a model was trained on (no sample ids: they may be participant codes).

    Attributes
    ----------
    n : int
        Training samples.
    sha256 : str
        Fingerprint of the training data (:func:`frame_sha256`).
    features : list of FeatureRange
    ids_sha256 : str or None
        sha256 of the sorted training ids (:func:`ids_sha256`).
    id_key : str or None
        Random key (hex) of the keyed hashes of the training ids.
    id_hashes : list of str
        HMAC-SHA256 of every training id with ``id_key``, sorted (no order of samples).
    participant_hashes : list of str
        HMAC-SHA256 of every training participant (the CV groups) with ``id_key``, sorted;
        empty when the model was trained without participant groups.
    """

    n: int
    sha256: str
    features: list[FeatureRange] = field(default_factory=list)
    ids_sha256: str | None = None
    id_key: str | None = field(default=None, repr=False)
    id_hashes: list[str] = field(default_factory=list, repr=False)
    participant_hashes: list[str] = field(default_factory=list, repr=False)

    @property
    def units(self) -> dict[str, str | None]:
        """Feature -> unit."""
        return {f.name: f.unit for f in self.features}

    def was_trained_on(self, ids: Iterable[Any]) -> np.ndarray | None:
        """For each id, whether it was a training id (None: no keyed hashes recorded)."""
        if self.id_key is None:
            return None
        known = set(self.id_hashes)
        return np.array([h in known for h in keyed_id_hashes(ids, self.id_key)], dtype=bool)

    def add_participants(self, participants: Iterable[Any]) -> None:
        """Record the keyed hashes of the training samples' participants (missing ones
        skipped)."""
        if self.id_key is None:
            return
        codes = {str(p) for p in participants if p is not None and not pd.isna(p) and str(p)}
        self.participant_hashes = sorted(set(self.participant_hashes)
                                         | set(keyed_id_hashes(codes, self.id_key)))

    def participant_in_training(self, ids: Iterable[Any]) -> np.ndarray | None:
        """For each id, whether it names a participant with samples in the training set
        (None: no keyed hashes of participants recorded)."""
        if self.id_key is None or not self.participant_hashes:
            return None
        known = set(self.participant_hashes)
        return np.array([h in known for h in keyed_id_hashes(ids, self.id_key)], dtype=bool)


def training_data(X: pd.DataFrame, y: Any = None, units: dict[str, str | None] | None = None,
                  ids: Any = None, groups: Any = None) -> TrainingData:
    """The summary of a training matrix: size, fingerprint, feature units and ranges, and
    the training ids as their sha256 and keyed hashes (a new random key each call).

    ``ids`` are the sample ids (default ``X.index``), as :func:`hikisig.models.predict.predict`
    names samples; ``groups`` the participant of each sample (the CV groups), whose keyed
    hashes let ``predict`` flag a new sample of a training participant.
    """
    values = X.to_numpy(dtype=np.float64)
    with np.errstate(all="ignore"):
        finite = np.where(np.isfinite(values), values, np.nan)
        lo = np.nanmin(finite, axis=0) if len(X) else np.full(X.shape[1], np.nan)
        hi = np.nanmax(finite, axis=0) if len(X) else np.full(X.shape[1], np.nan)
    feats = [FeatureRange(str(c), (units or {}).get(str(c)), clean(float(a)), clean(float(b)))
             for c, a, b in zip(X.columns, lo, hi, strict=True)]
    id_list = list(X.index if ids is None else ids)
    key = secrets.token_hex(32)
    out = TrainingData(len(X), frame_sha256(X, y), feats, ids_sha256(id_list), key,
                       sorted(set(keyed_id_hashes(id_list, key))))
    if groups is not None:
        out.add_participants(np.asarray(groups, dtype=object))
    return out


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
    validated : bool or None
        The model passed its validation rule (see the module docstring); None: not
        assessed (a result assembled by hand, or loaded from an older folder).
    verdict : str
        One sentence for people: what the validation shows.
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
    validated: bool | None = None
    verdict: str = ""

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

    def _assessment(self) -> tuple[bool, str]:
        """``(validated, verdict)`` from the result's own numbers."""
        return False, f"Not validated: no validation rule for {self.kind or 'this'} models."

    def assess(self) -> Self:
        """Set ``validated`` and ``verdict`` from the result's numbers (see the module
        docstring); returns the result."""
        self.validated, self.verdict = self._assessment()
        return self

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

    The headline ``auc`` is the mean over CV repeats of each repeat's out-of-fold AUC
    (``tables["per_repeat"]``); ``auc_ci_low``/``auc_ci_high`` are the percentile 95%
    interval of that same statistic over a participant-level bootstrap stratified by class
    (``auc_ci_method`` says so in words). ``auc_pooled`` is the AUC of the out-of-fold
    probabilities averaged over repeats ("pooled"), with its DeLong interval and standard
    error; the ROC curve (``roc``, ``roc_band``) and ``calibration`` describe those pooled
    probabilities. ``permutation_p`` tests ``auc`` (None when no permutations were run).
    Tables: ``oof_predictions`` (id, y_true, y_prob), ``roc``, ``roc_band``,
    ``calibration``, ``thresholds``, ``importance``, ``signature``, ``per_repeat`` (and
    ``test_predictions`` with a held-out test set, ``per_site`` with sites).

    With ``cv == "leave-site-out"`` (one fold per site, no repeats) ``auc`` is the
    within-site AUC of the out-of-site predictions (the share of case-control pairs of one
    site ranked correctly by a model trained without that site; the per-site AUCs of
    ``per_site`` weighted by their pairs), the test of transportability; ``auc_pooled`` is
    the AUC of all out-of-site predictions pooled across sites. ``n_sites`` counts the
    sites; ``harmonise`` is ``"combat"`` when ComBat ran inside the training folds (the
    final model's ``predict`` then needs each sample's site).
    """

    kind: ClassVar[str] = "discriminate"
    follow_up_score: ClassVar[str | None] = "logit"
    _RENAMED: ClassVar[dict[str, str]] = {"model": "classifier"}
    _OPTIONAL_METRICS: ClassVar[frozenset[str]] = frozenset({"n_participants", "n_sites"})

    auc: float = math.nan
    auc_ci_low: float | None = None
    auc_ci_high: float | None = None
    auc_ci_method: str = ""
    auc_ci_resamples: int = 0
    auc_pooled: float | None = None
    auc_pooled_ci_low: float | None = None
    auc_pooled_ci_high: float | None = None
    auc_pooled_se: float | None = None
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
    cv: str = "stratified"
    n_sites: int | None = None
    harmonise: str = "none"

    @property
    def auc_ci(self) -> tuple[float | None, float | None]:
        """95% CI of ``auc`` (participant-level stratified bootstrap, ``auc_ci_method``)."""
        return (self.auc_ci_low, self.auc_ci_high)

    @property
    def auc_pooled_ci(self) -> tuple[float | None, float | None]:
        """DeLong 95% CI of ``auc_pooled`` (the AUC of the repeat-averaged probabilities)."""
        return (self.auc_pooled_ci_low, self.auc_pooled_ci_high)

    # Deprecated names of the bootstrap interval (not in metrics.json): the bootstrap
    # interval is now ``auc_ci`` itself.
    @property
    def auc_boot_ci(self) -> tuple[float | None, float | None]:
        """Deprecated: the same as :attr:`auc_ci`."""
        return self.auc_ci

    @property
    def auc_boot_ci_low(self) -> float | None:
        """Deprecated: the same as ``auc_ci_low``."""
        return self.auc_ci_low

    @property
    def auc_boot_ci_high(self) -> float | None:
        """Deprecated: the same as ``auc_ci_high``."""
        return self.auc_ci_high

    @property
    def auc_boot_resamples(self) -> int:
        """Deprecated: the same as ``auc_ci_resamples``."""
        return self.auc_ci_resamples

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

    def _assessment(self) -> tuple[bool, str]:
        p = _finite(self.permutation_p)
        if self.cv == "leave-site-out":
            sites = f"{self.n_sites} " if self.n_sites else ""
            auc = (f"the leave-site-out AUC of {_f2(self.auc)} (95% CI {_f2(self.auc_ci_low)}-"
                   f"{_f2(self.auc_ci_high)}; cases and controls of each of the {sites}sites "
                   f"ranked by a model trained on the others)")
            if p is None:
                return False, (f"Not validated: {auc}, the test of transportability, was not "
                               "tested against chance (no permutations).")
            if p < ALPHA:
                return True, (f"Validated as a test of transportability: the classifier ranks "
                              f"cases above controls at sites it was not trained on better "
                              f"than chance, with {auc} and permutation p {_p(p)} (labels "
                              f"permuted within sites).")
            return False, (f"Not validated as a test of transportability: {auc} is not "
                           f"distinguishable from chance at sites the model was not trained "
                           f"on (permutation p {_p(p)}, labels permuted within sites).")
        auc = (f"the cross-validated AUC of {_f2(self.auc)} (95% CI {_f2(self.auc_ci_low)}-"
               f"{_f2(self.auc_ci_high)})")
        if p is None:
            return False, f"Not validated: {auc} was not tested against chance (no permutations)."
        if p < ALPHA:
            return True, (f"Validated: the classifier ranks cases above controls better than "
                          f"chance, with {auc} and permutation p {_p(p)}.")
        return False, (f"Not validated: {auc} is not distinguishable from chance "
                       f"(permutation p {_p(p)}).")

    def summary(self) -> str:
        p = "not computed" if _finite(self.permutation_p) is None else _f4(self.permutation_p)
        if self.cv == "leave-site-out":
            return (f"leave-site-out AUC {_f3(self.auc)} (95% CI {_f3(self.auc_ci_low)}-"
                    f"{_f3(self.auc_ci_high)}, within-site pairs of the out-of-site "
                    f"predictions, bootstrap by site and class; per site in per_site.csv); "
                    f"pooled across sites {_f3(self.auc_pooled)} (DeLong 95% CI "
                    f"{_f3(self.auc_pooled_ci_low)}-{_f3(self.auc_pooled_ci_high)}); "
                    f"permutation p {p} (within sites); {self.cv_scheme}"
                    + (f". {self.verdict}" if self.verdict else ""))
        return (f"AUC {_f3(self.auc)} (95% CI {_f3(self.auc_ci_low)}-{_f3(self.auc_ci_high)}, "
                f"mean of the CV repeats, participant bootstrap); pooled AUC "
                f"{_f3(self.auc_pooled)} (DeLong 95% CI {_f3(self.auc_pooled_ci_low)}-"
                f"{_f3(self.auc_pooled_ci_high)}); permutation p {p}; {self.cv_scheme}"
                + (f". {self.verdict}" if self.verdict else ""))


@dataclass(kw_only=True)
class SeverityResult(ModelResult):
    """A validated PLS regression of a severity score (:func:`hikisig.models.severity.severity`).

    ``permutation_p_q2`` is None when no permutations were run. Tables:
    ``q2_by_components``, ``observed_predicted``, ``vip``, ``coefficients``, ``signature``
    (and ``per_site`` with sites). With ``cv == "leave-site-out"`` ``q2`` is the Q2 of the
    pooled out-of-site predictions.
    """

    kind: ClassVar[str] = "severity"
    follow_up_score: ClassVar[str | None] = "predicted_severity"
    _OPTIONAL_METRICS: ClassVar[frozenset[str]] = frozenset({"n_sites"})

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
    cv: str = "stratified"
    n_sites: int | None = None
    harmonise: str = "none"

    @property
    def follow_up_sem(self) -> float | None:
        return self.rmsecv

    def _assessment(self) -> tuple[bool, str]:
        what = self.target or "the severity score"
        q2 = _finite(self.q2)
        p = _finite(self.permutation_p_q2)
        if q2 is None or q2 <= 0:
            return False, (f"Not validated: the cross-validated predictions of {what} are no "
                           f"better than its mean (Q2 {_f2(self.q2)} <= 0).")
        if p is None:
            return False, (f"Not validated: Q2 {_f2(q2)} for {what} was not tested against "
                           "chance (no permutations).")
        if p < ALPHA:
            if self.cv == "leave-site-out":
                return True, (f"Validated as a test of transportability: the model predicts "
                              f"{what} at sites it was not trained on better than chance "
                              f"(leave-site-out Q2 {_f2(q2)}, permutation p {_p(p)}).")
            return True, (f"Validated: the model predicts {what} in cross-validation better "
                          f"than chance (Q2 {_f2(q2)}, permutation p {_p(p)}).")
        return False, (f"Not validated: Q2 {_f2(q2)} for {what} is not distinguishable from "
                       f"chance (permutation p {_p(p)}).")

    def summary(self) -> str:
        p = ("not computed" if _finite(self.permutation_p_q2) is None
             else _f4(self.permutation_p_q2))
        return (f"{self.n_components} components; R2Y {_f3(self.r2y)}, Q2 {_f3(self.q2)}, RMSECV "
                f"{_f2(self.rmsecv)}, R2 (Spearman^2) {_f3(self.r2_spearman)}; permutation p "
                f"{p}" + (f". {self.verdict}" if self.verdict else ""))


@dataclass(kw_only=True)
class StratificationResult(ModelResult):
    """Subgroups of cases (:func:`hikisig.models.stratify.stratify`).

    ``k`` is chosen by ``criterion`` among the k whose clusters all hold at least
    ``min_cluster_size`` samples; ``k_bic`` and ``k_silhouette`` are the k each criterion
    prefers among those (None: BIC without a Gaussian mixture). Tables: ``k_selection``,
    ``assignments``, ``profiles``, ``signature`` (and ``clinical`` when clinical variables
    were given).
    """

    kind: ClassVar[str] = "stratify"

    method: str = "gmm"
    k: int = 2
    criterion: str = "bic"
    k_bic: int | None = None
    k_silhouette: int | None = None
    silhouette: float | None = None
    bic: float | None = None
    stability_ari_mean: float | None = None
    stability_ari_sd: float | None = None
    cluster_sizes: list[int] = field(default_factory=list)
    min_cluster_size: int | None = None

    def _assessment(self) -> tuple[bool, str]:
        need = self.min_cluster_size if self.min_cluster_size is not None else min_cluster_size(self.n)
        smallest = min(self.cluster_sizes) if self.cluster_sizes else 0
        ari = _finite(self.stability_ari_mean)
        reasons = []
        if ari is None:
            reasons.append("were not tested for stability (no bootstrap resamples)")
        elif ari < MIN_STABILITY_ARI:
            reasons.append(f"are not stable under bootstrap resampling (mean ARI {_trunc3(ari)} "
                           f"< {MIN_STABILITY_ARI})")
        if smallest < need:
            sel = self.tables.get("k_selection")
            none_fit = (self.params.get("k") is None and sel is not None and "size_ok" in sel
                        and len(sel) > 1 and not sel["size_ok"].astype(bool).any())
            reasons.append(
                f"include one of only {smallest} samples, fewer than the {need} needed "
                f"(max({MIN_CLUSTER_SIZE}, {MIN_CLUSTER_SHARE_PERCENT}% of {self.n}))"
                + (f"; no k from {int(sel['k'].min())} to {int(sel['k'].max())} gives "
                   "clusters that large" if none_fit and sel is not None else ""))
        if reasons:
            return False, (f"Not validated: the k = {self.k} subgroups " + " and ".join(reasons)
                           + ".")
        return True, (f"Validated: the k = {self.k} subgroups are stable under bootstrap "
                      f"resampling (mean ARI {_trunc3(ari)} >= {MIN_STABILITY_ARI}) and each holds at "
                      f"least {need} samples.")

    def summary(self) -> str:
        return (f"{self.method}: k = {self.k}, sizes {self.cluster_sizes}, stability ARI "
                f"{_f2(self.stability_ari_mean)}" + (f". {self.verdict}" if self.verdict else ""))


def _finite(v: Any) -> float | None:
    """``v`` as a float, None when missing or not finite."""
    if v is None:
        return None
    f = float(v)
    return f if math.isfinite(f) else None


def _trunc3(v: float | None) -> str:
    """``v`` with 3 decimals, rounded down (so that a value just below a threshold never
    reads as the threshold)."""
    return "NA" if v is None else f"{math.floor(v * 1000 + 1e-9) / 1000:.3f}"


def _p(v: float) -> str:
    """A p value for people: 4 significant digits, ``< 0.001`` below that."""
    return "< 0.001" if v < 0.001 else f"{v:.4g}"


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
