"""Applying a saved model to new participants and follow-up visits."""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd
from scipy import stats as sps

from hikisig.errors import HikisigError
from hikisig.models.discriminate import case_column, check_sites, with_site
from hikisig.models.result import DiscriminationResult, ModelResult

__all__ = ["IN_TRAINING_WARNING", "PARTICIPANT_IN_TRAINING_WARNING", "follow_up", "predict"]

#: The warning of a sample whose id was one of the model's training samples.
IN_TRAINING_WARNING = ("this sample was used to train the model: its prediction is not an "
                       "independent test")
#: The warning of a sample of a participant whose (other) samples trained the model.
PARTICIPANT_IN_TRAINING_WARNING = ("this participant's samples were used to train the model: "
                                   "its prediction is not an independent test")
#: The warning of a sample with values outside the training range.
OUT_OF_RANGE_WARNING = "values outside the training range: prediction is an extrapolation"


def predict(model: ModelResult, X: pd.DataFrame, *, units: dict[str, str | None] | None = None,
            range_margin: float = 0.2, participants: Any = None, sites: Any = None
            ) -> pd.DataFrame:
    """Predict for every row of ``X`` (samples x analytes named as in training).

    ``model`` is a fresh result (:func:`hikisig.models.discriminate.discriminate`, ...) or one
    loaded with :func:`hikisig.models.persist.load_model`.

    Returns
    -------
    DataFrame
        Indexed like ``X``: ``id`` and, by model kind: ``probability`` (of being a case),
        ``logit``, ``predicted_case`` (at the model's Youden threshold, chosen on honest
        predictions of the training samples: the ``threshold`` column of
        ``tables["thresholds"]``) and ``predicted_group`` (the case or control label) for
        discrimination; ``predicted_severity`` for severity; ``stratum`` for
        stratification; then ``in_training`` (True when the sample's id, ``X.index`` as
        text, was one of the training ids, or when its participant, ``participants`` or
        else the id itself, had samples in the training set: the model's keyed hashes are
        compared; missing when the model recorded none), ``out_of_range`` (features
        outside the training range widened by ``range_margin`` of its span on the log
        scale) and ``warning`` (:data:`IN_TRAINING_WARNING` or
        :data:`PARTICIPANT_IN_TRAINING_WARNING`, and/or the out-of-range warning, joined
        by ``"; "``; empty when none applies).

    ``sites`` (each row's site) is needed by a model that harmonises sites with ComBat
    (``model.harmonise == "combat"``): rows of a training site are harmonised with that
    site's parameters; the rows of a site the model was not trained on are brought to the
    training scale by their own location and scale (at least 2 rows of such a site, given
    together; see :class:`hikisig.models.discriminate.SiteComBat`).

    Raises
    ------
    HikisigError
        Missing analytes, a unit that differs from the training unit, or no sites for a
        model that harmonises them.
    """
    names = list(model.features)
    missing = [f for f in names if f not in X.columns]
    if missing:
        raise HikisigError(f"the input lacks {len(missing)} analyte(s) the model needs: "
                           f"{', '.join(missing[:20])}{' ...' if len(missing) > 20 else ''}")
    trained = model.training.units if model.training is not None else {}
    if units:
        wrong = [f"{f} ({units[f]} given, model trained in {trained[f]})" for f in names
                 if trained.get(f) and units.get(f) and units[f] != trained[f]]
        if wrong:
            raise HikisigError("units differ from the training data: " + "; ".join(wrong))
    x = X[names].astype(float)
    xm = x
    if getattr(model, "harmonise", "none") == "combat":
        if sites is None:
            raise HikisigError("this model harmonises sites (ComBat): give each sample's site "
                               "(--site-column, site=)")
        xm = with_site(x, check_sites(sites, len(x)))
    out = pd.DataFrame({"id": [str(i) for i in X.index]}, index=X.index)
    if isinstance(model, DiscriminationResult):
        prob = model.model.predict_proba(xm)[:, case_column(model.model, model.case_label)]
        out["probability"] = prob
        clipped = np.clip(prob, 1e-3, 1 - 1e-3)
        out["logit"] = np.log(clipped / (1 - clipped))
        thr = model.threshold("youden")
        if thr is None:
            out["predicted_case"] = pd.NA
            out["predicted_group"] = pd.NA
        else:
            out["predicted_case"] = prob >= thr
            out["predicted_group"] = np.where(prob >= thr, model.case_label, model.control_label)
    elif model.kind == "severity":
        out["predicted_severity"] = np.asarray(model.model.predict(xm)).reshape(len(x), -1)[:, 0]
    elif model.kind == "stratify":
        out["stratum"] = np.asarray(model.model.predict(x)).astype(int)
    else:
        raise HikisigError(f"unknown model kind {model.kind!r}")
    ranges = {f.name: f for f in (model.training.features if model.training is not None else [])}
    lo = np.array([_num(ranges[n].min) if n in ranges else np.nan for n in names], float)
    hi = np.array([_num(ranges[n].max) if n in ranges else np.nan for n in names], float)
    with np.errstate(invalid="ignore", divide="ignore"):
        pos = (lo > 0) & (hi > 0)
        span = np.where(pos, np.log(hi) - np.log(lo), hi - lo)
        lo_w = np.where(pos, np.exp(np.log(lo) - range_margin * span), lo - range_margin * span)
        hi_w = np.where(pos, np.exp(np.log(hi) + range_margin * span), hi + range_margin * span)
        outside = (x.to_numpy() < lo_w) | (x.to_numpy() > hi_w)
    flags = [";".join(np.asarray(names)[row]) for row in outside]
    sample_hit, person_hit = None, None
    if model.training is not None:
        sample_hit = model.training.was_trained_on(out["id"])
        who = out["id"] if participants is None else [str(p) for p in np.asarray(participants)]
        person_hit = model.training.participant_in_training(who)
    if sample_hit is None:
        out["in_training"] = pd.Series(pd.NA, index=X.index, dtype="boolean")
        sample_hit = np.zeros(len(X), dtype=bool)
    else:
        out["in_training"] = sample_hit if person_hit is None else sample_hit | person_hit
    if person_hit is None:
        person_hit = np.zeros(len(X), dtype=bool)
    out["out_of_range"] = flags
    out["warning"] = ["; ".join(w for w in (IN_TRAINING_WARNING if seen else
                                            PARTICIPANT_IN_TRAINING_WARNING if person else "",
                                            OUT_OF_RANGE_WARNING if f else "") if w)
                      for seen, person, f in zip(sample_hit, person_hit, flags, strict=True)]
    return out


def _num(v: float | None) -> float:
    return np.nan if v is None else float(v)


def follow_up(pred: pd.DataFrame, score: str, *, participant: str = "participant",
              visit: str = "visit", sem: float | None = None, ci: float = 0.95) -> pd.DataFrame:
    """Score per visit, change from the first visit, and reliable change.

    The reliable-change threshold is z * sqrt(2) * SEM (Jacobson & Truax), where
    SEM is the model's error of measurement: the cross-validated RMSE for a
    severity model (``rmsecv``); for a discrimination model, the spread of a
    sample's out-of-fold logit across CV repeats (``prediction_sem_logit``, applied
    to the ``logit`` column). Without an SEM, ``reliable_change`` is missing. It is
    also missing (not judged) for every visit of a participant the model was trained on
    (``in_training`` of the visit or of the first visit): such a change compares an
    in-sample score with another and says nothing about the person. The study run's
    follow-up (``[followup]``, docs/followup.md) scores every visit out of sample and sets
    the threshold from the within-person variation of people without an intervention.

    Examples
    --------
    >>> p = pd.DataFrame({"participant": ["A", "A"], "visit": [1, 2], "s": [60.0, 40.0]})
    >>> follow_up(p, "s", sem=5.0)["reliable_change"].tolist()
    [False, True]
    """
    df = pd.DataFrame(pred).sort_values([participant, visit], kind="stable").copy()
    base = df.groupby(participant)[score].transform("first")
    df["change_from_baseline"] = df[score] - base
    if sem is not None and np.isfinite(sem):
        thr = sps.norm.ppf(0.5 + ci / 2) * np.sqrt(2) * sem
        df["reliable_change_threshold"] = thr
        df["reliable_change"] = (df["change_from_baseline"].abs() > thr).astype("boolean")
    else:
        df["reliable_change_threshold"] = np.nan
        df["reliable_change"] = pd.Series(pd.NA, index=df.index, dtype="boolean")
    if "in_training" in df:
        seen = df["in_training"].fillna(False).astype(bool)
        seen_first = seen.groupby(df[participant]).transform("first").astype(bool)
        df.loc[seen | seen_first, "reliable_change"] = pd.NA
    return df.reset_index(drop=True)
