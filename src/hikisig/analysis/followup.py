"""Follow-up analysis: who changed, by how much, and does the change exceed biological noise.

Participants have several visits; some cases start an intervention after visit 1. This
module provides the core (see docs/followup.md for the design and its sources):

* :func:`arms` -- participant -> ``treated`` / ``untreated`` / ``control``;
* :func:`crossfit_scores` -- out-of-sample discrimination logits (and severity
  predictions) at every visit, each from a model that never saw the participant
  (K-fold cross-fitting by participant, models fitted on baseline samples);
* :func:`reliable_change` -- change from the first visit and whether it exceeds the
  Jacobson & Truax (1991) reliable-change threshold ``z sqrt(2) SEM``, with the SEM
  estimated from the visit-to-visit variation of people without an intervention;
* :func:`reliable_rates` -- share of follow-up visits with a reliable change (and with a
  reliable improvement) per measure and arm, with Wilson 95% intervals;
* :func:`followup_lmm` -- per analyte, the random-intercept mixed model
  ``value ~ visit * arm + (1 | participant)`` (REML), with BH q-values per term.

Every input is aligned by index (samples or participants), and every output is a tidy
frame, so the study run and the report can use them as they are.
"""

from __future__ import annotations

import warnings
from collections.abc import Iterable, Sequence
from typing import Any

import numpy as np
import pandas as pd
from scipy import stats as sps
from sklearn.model_selection import StratifiedKFold
from statsmodels.stats.multitest import multipletests
from statsmodels.stats.proportion import proportion_confint

from hikisig.engine import spawn_seeds
from hikisig.models.discriminate import make_pipeline
from hikisig.models.severity import severity_pipeline
from hikisig.stats.mixed import random_intercept_lmm

__all__ = [
    "ARMS",
    "CHANGE_COLUMNS",
    "DECREASE_IMPROVES",
    "LMM_COLUMNS",
    "RATE_COLUMNS",
    "SCORE_COLUMNS",
    "THRESHOLD_COLUMNS",
    "arms",
    "crossfit_folds",
    "crossfit_scores",
    "followup_lmm",
    "reliable_change",
    "reliable_rates",
]

ARMS = ("treated", "untreated", "control")
SCORE_COLUMNS = ["sample", "participant", "visit", "fold", "measure", "value"]
CHANGE_COLUMNS = ["participant", "arm", "visit", "measure", "change", "reliable_change", "direction"]
THRESHOLD_COLUMNS = ["measure", "sem", "threshold", "n_people", "df"]
RATE_COLUMNS = ["measure", "arm", "n", "n_reliable", "share", "ci_low", "ci_high",
                "n_improve", "share_improve", "improve_ci_low", "improve_ci_high"]
LMM_COLUMNS = ["analyte", "term", "estimate", "se", "p", "q", "n", "n_participants", "note"]
#: measures for which a decrease is an improvement (moving towards the controls); any other
#: measure improves when it moves towards the controls' mean at the first visit.
DECREASE_IMPROVES = ("discrimination_logit", "severity_prediction", "hq25", "hq25_total")


# -- arms -------------------------------------------------------------------------------------


def arms(participants: pd.Series, case_label: Any, interventions: pd.DataFrame | None = None
         ) -> pd.Series:
    """Participant -> arm: ``treated`` (a case with an intervention), ``untreated`` (a case
    without), ``control`` (any other group label).

    Parameters
    ----------
    participants : Series
        Group label per participant (index: participant id).
    case_label
        The label of the cases.
    interventions : DataFrame, optional
        Columns ``participant, kind, start, end, detail``; a case with at least one row is
        treated. A control listed there stays ``control`` (with a warning): the arms compare
        cases, and a control's intervention does not make them a case.

    Examples
    --------
    >>> g = pd.Series({"p1": "hikikomori", "p2": "hikikomori", "p3": "control"})
    >>> iv = pd.DataFrame({"participant": ["p1"], "kind": ["cbt"], "start": [2], "end": [None],
    ...                    "detail": [""]})
    >>> arms(g, "hikikomori", iv).tolist()
    ['treated', 'untreated', 'control']
    """
    if participants.index.has_duplicates:
        raise ValueError("participants must have one group label per participant (duplicate ids)")
    is_case = (participants == case_label).to_numpy()
    if not is_case.any():
        raise ValueError(f"no participant has the case label {case_label!r}")
    treated_ids: set[Any] = set()
    if interventions is not None and len(interventions):
        if "participant" not in interventions.columns:
            raise ValueError("interventions need a 'participant' column")
        treated_ids = set(interventions["participant"].dropna())
        unknown = treated_ids - set(participants.index)
        if unknown:
            warnings.warn(f"{len(unknown)} participant(s) with an intervention are not in the "
                          "participants table; ignored", UserWarning, stacklevel=2)
        controls = {p for p in treated_ids & set(participants.index) if participants[p] != case_label}
        if controls:
            warnings.warn(f"{len(controls)} control(s) have an intervention; kept as controls",
                          UserWarning, stacklevel=2)
    treated = participants.index.isin(list(treated_ids))
    out = np.where(is_case & treated, "treated", np.where(is_case, "untreated", "control"))
    return pd.Series(out, index=participants.index, name="arm")


# -- cross-fitting ------------------------------------------------------------------------------


def _as_series(values: Any, index: pd.Index, name: str) -> pd.Series:
    if isinstance(values, pd.Series):
        if not values.index.equals(index):
            if not index.isin(values.index).all():
                raise ValueError(f"{name} is missing samples of X")
            values = values.reindex(index)
        return values.rename(name)
    arr = np.asarray(values)
    if arr.shape[0] != len(index):
        raise ValueError(f"{name} has {arr.shape[0]} values for {len(index)} samples")
    return pd.Series(arr, index=index, name=name)


def crossfit_folds(y_case: pd.Series, participants: pd.Series, *, folds: int = 5, seed: int = 2021
                   ) -> pd.Series:
    """Participant -> fold (0..folds-1), stratified by case status (a participant-level label).

    ``y_case`` and ``participants`` are per sample (same index). A participant whose samples
    disagree on case status is an error.

    Examples
    --------
    >>> pid = pd.Series(np.repeat(np.arange(10), 2))
    >>> y = pd.Series(np.repeat(np.arange(10) < 5, 2))
    >>> f = crossfit_folds(y, pid, folds=5, seed=1)
    >>> sorted(f.value_counts().tolist())
    [2, 2, 2, 2, 2]
    """
    per = pd.DataFrame({"p": participants.to_numpy(), "y": y_case.astype(bool).to_numpy()})
    status = per.groupby("p", sort=True)["y"].agg(["min", "max"])
    if (status["min"] != status["max"]).any():
        raise ValueError("case status differs between samples of one participant")
    label = status["max"].to_numpy()
    smallest = min(int(label.sum()), int((~label).sum()))
    if smallest < folds:
        raise ValueError(f"cross-fitting with {folds} folds needs at least {folds} case and {folds} "
                         f"control participants (smallest group: {smallest})")
    skf = StratifiedKFold(n_splits=folds, shuffle=True, random_state=seed)
    fold = np.empty(label.size, dtype=int)
    for k, (_, test) in enumerate(skf.split(np.zeros(label.size), label)):
        fold[test] = k
    return pd.Series(fold, index=status.index, name="fold")


def _logit(p: np.ndarray, eps: float) -> np.ndarray:
    q = np.clip(p, eps, 1 - eps)
    return np.log(q / (1 - q))


def crossfit_scores(X: pd.DataFrame, y_case: Any, participants: Any, visits: Any, *,
                    model: str = "rf", folds: int = 5, seed: int = 2021,
                    severity: Any = None, n_estimators: int = 200, severity_components: int = 2,
                    log: bool = True, clip: float | None = None) -> pd.DataFrame:
    """Out-of-sample scores at every visit, by K-fold cross-fitting on participants.

    Participants are split into ``folds`` folds (stratified by case status,
    :func:`crossfit_folds`). For each fold a discrimination model
    (:func:`hikisig.models.discriminate.make_pipeline`, no inner CV) is fitted on the
    **first-visit samples of the other folds' participants** and scores **every visit of
    the fold's participants**; so no score of a participant, at any visit, comes from a
    model that saw any of their samples. With ``severity`` (per sample; e.g. the HQ-25
    total, missing for controls) a PLS model (:func:`hikisig.models.severity.severity_pipeline`
    with ``severity_components`` components) is fitted likewise on the training
    participants' first-visit cases with a severity value.

    Parameters
    ----------
    X : DataFrame
        Samples x analytes (raw concentrations with ``log=True``; additive values with
        ``log=False``).
    y_case : bool per sample (Series aligned by index, or array)
    participants, visits : per sample
        Visits must be orderable (numbers); a participant's first visit is the smallest.
    model : {"rf", "logistic", "plsda"}
    clip : float, optional
        Probabilities are clipped to ``[clip, 1 - clip]`` before the logit (default
        ``1 / (2 n_estimators)`` for a random forest, whose probabilities move in steps of
        ``1 / n_estimators``; 0.001 otherwise).

    Returns
    -------
    DataFrame
        Tidy: ``sample, participant, visit, fold, measure, value`` with measure
        ``discrimination_logit`` (log-odds of being a case) and, with ``severity``,
        ``severity_prediction``. The ``fold`` is the participant's held-out fold.
    """
    y = _as_series(y_case, X.index, "y_case").astype(bool)
    pid = _as_series(participants, X.index, "participant")
    vis = _as_series(visits, X.index, "visit")
    if pid.isna().any() or vis.isna().any():
        raise ValueError("every sample needs a participant and a visit")
    fold_of = crossfit_folds(y, pid, folds=folds, seed=seed)
    sample_fold = pid.map(fold_of).to_numpy()
    first = vis.to_numpy() == vis.groupby(pid.to_numpy()).transform("min").to_numpy()
    sev = None if severity is None else _as_series(severity, X.index, "severity").astype(float)
    eps = clip if clip is not None else (0.5 / n_estimators if model == "rf" else 1e-3)
    seeds = spawn_seeds(seed, folds)
    disc = np.full(len(X), np.nan)
    sevp = np.full(len(X), np.nan)
    y_arr = y.to_numpy()
    for k in range(folds):
        train = first & (sample_fold != k)
        test = sample_fold == k
        clf = make_pipeline(model, seed=seeds[k], inner_cv=False, n_estimators=n_estimators,
                            log=log, oob_score=False)
        clf.fit(X.loc[train], y_arr[train].astype(int))
        proba = clf.predict_proba(X.loc[test])
        pos = list(clf.classes_).index(1)
        disc[test] = _logit(proba[:, pos], eps)
        if sev is not None:
            strain = train & y_arr & sev.notna().to_numpy()
            if strain.sum() < severity_components + 2:
                raise ValueError(f"fold {k}: {int(strain.sum())} training cases with a severity "
                                 f"value; the PLS needs at least {severity_components + 2}")
            reg = severity_pipeline(severity_components, log=log)
            reg.fit(X.loc[strain], sev.to_numpy()[strain])
            sevp[test] = np.asarray(reg.predict(X.loc[test])).ravel()
    base = pd.DataFrame({"sample": X.index.to_numpy(), "participant": pid.to_numpy(),
                         "visit": vis.to_numpy(), "fold": sample_fold})
    parts = [base.assign(measure="discrimination_logit", value=disc)]
    if sev is not None:
        parts.append(base.assign(measure="severity_prediction", value=sevp))
    return pd.concat(parts, ignore_index=True)[SCORE_COLUMNS]


# -- reliable change ----------------------------------------------------------------------------


def _tidy_values(values: pd.DataFrame) -> pd.DataFrame:
    need = {"participant", "visit", "measure", "value"}
    missing = need - set(values.columns)
    if missing:
        raise ValueError(f"values need columns {sorted(need)} (missing {sorted(missing)})")
    v = values[["participant", "visit", "measure", "value"]].dropna(subset=["value"])
    if v.duplicated(["participant", "visit", "measure"]).any():
        raise ValueError("values have more than one value per participant, visit and measure")
    return v


def within_person_sem(values: pd.DataFrame) -> pd.DataFrame:
    """Per measure, the pooled within-person SD (SEM) from repeat visits.

    One-way random-effects decomposition: ``SEM^2 = sum_i sum_j (v_ij - mean_i)^2 /
    sum_i (n_i - 1)`` over people with at least two visits. Returns ``measure, sem,
    n_people, df``.
    """
    v = _tidy_values(values)
    g = v.groupby(["measure", "participant"], sort=False)["value"]
    dev2 = (v["value"] - g.transform("mean")) ** 2
    n_i = g.transform("size")
    frame = pd.DataFrame({"measure": v["measure"], "participant": v["participant"], "dev2": dev2,
                          "repeat": n_i >= 2})
    frame = frame[frame["repeat"]]
    per = frame.groupby("measure", sort=True).agg(ss=("dev2", "sum"), n_obs=("dev2", "size"),
                                                  n_people=("participant", "nunique"))
    df = per["n_obs"] - per["n_people"]
    with np.errstate(divide="ignore", invalid="ignore"):
        sem = np.sqrt(per["ss"] / df.where(df > 0))
    return pd.DataFrame({"measure": per.index, "sem": sem.to_numpy(),
                         "n_people": per["n_people"].to_numpy(), "df": df.to_numpy()})


def _strata(arm: pd.Series) -> pd.Series:
    """Participant -> ``cases`` (treated or untreated) or ``controls``: the groups whose
    within-person variation is measured apart."""
    return pd.Series(np.where(arm.isin(["treated", "untreated"]), "cases", "controls"),
                     index=arm.index)


def reliable_change(values: pd.DataFrame, arm: pd.Series, *,
                    reference_arms: Sequence[str] = ("untreated", "control"), z: float = 1.96,
                    decrease_improves: Iterable[str] = DECREASE_IMPROVES,
                    strata: pd.Series | None = None
                    ) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Change from the first visit and whether it is a reliable change.

    The threshold of a measure is the larger of the Jacobson & Truax (1991) reliable-change
    index ``z sqrt(2) SEM`` (SEM: the pooled within-person SD of the reference people,
    :func:`within_person_sem`) and the empirical ``1 - alpha`` quantile of ``|change|`` over
    the reference people's follow-up visits (``alpha = 2 (1 - Phi(z))``, 0.05 at z = 1.96),
    so that a measure with heavier tails than the normal (a classifier's logit) does not
    flag more people without an intervention than ``alpha``. It is set within each stratum
    (default: cases, from the untreated cases; controls, from the controls), because a
    score's within-person variation can differ between them; a stratum without reference
    people with repeat visits takes the threshold of all reference people.

    Parameters
    ----------
    values : DataFrame
        Tidy ``participant, visit, measure, value`` (e.g. :func:`crossfit_scores`, log2 marker
        or analyte values, HQ-25 totals); rows with a missing value are left out.
    arm : Series
        Arm per participant (:func:`arms`).
    reference_arms
        Arms whose visit-to-visit variation defines the noise: people without an intervention.
    z : float
        Two-sided normal quantile (1.96: a 5% false-flag rate under pure noise).
    decrease_improves
        Measures for which a decrease is an improvement; any other measure improves when it
        moves towards the mean of the controls at their first visit (no controls: direction
        is missing).
    strata : Series, optional
        Participant -> stratum whose thresholds are set apart (default: cases / controls
        from ``arm``).

    Returns
    -------
    change_table : DataFrame
        ``participant, arm, visit, measure, change, reliable_change, direction``: one row per
        participant x later visit x measure with a value at both visits; ``change`` = value
        at the visit minus the value at the participant's first visit (per measure);
        ``reliable_change`` = ``|change| > threshold``; ``direction`` ``improve`` /
        ``worsen`` (``none`` for a zero change).
    thresholds : DataFrame
        ``measure, sem, threshold, n_people, df`` and ``stratum, threshold_rci,
        threshold_empirical``: one row per measure and stratum (``all``: every reference
        person, used where a stratum has none).

    Notes
    -----
    The reference people set the thresholds and are flagged with them, so their flag rate
    is at most about ``alpha`` by construction: the rate of the treated arm is to be read
    against it. A systematic visit effect in the reference arms (season, assay drift) is
    part of their within-person variation and widens the threshold.
    """
    v = _tidy_values(values)
    arm_of = arm.reindex(v["participant"].unique())
    if arm_of.isna().any():
        raise ValueError(f"{int(arm_of.isna().sum())} participant(s) of values have no arm")
    stratum_of = _strata(arm) if strata is None else strata
    v = v.assign(arm=v["participant"].map(arm), stratum=v["participant"].map(stratum_of))
    alpha = 2.0 * float(sps.norm.sf(z))

    first_visit = v.groupby(["participant", "measure"])["visit"].transform("min")
    base = v[v["visit"] == first_visit][["participant", "measure", "value"]].rename(
        columns={"value": "baseline"})
    later = v[v["visit"] != first_visit].merge(base, on=["participant", "measure"], how="inner")
    later["change"] = later["value"] - later["baseline"]

    is_ref = v["arm"].isin(list(reference_arms))
    ref_later = later[later["arm"].isin(list(reference_arms))]
    frames = []
    for name, ref_v, ref_c in [("all", v[is_ref], ref_later)] + [
            (str(st), v[is_ref & (v["stratum"] == st)], ref_later[ref_later["stratum"] == st])
            for st in sorted(v["stratum"].dropna().unique())]:
        t = within_person_sem(ref_v) if len(ref_v) else pd.DataFrame(
            columns=["measure", "sem", "n_people", "df"])
        emp = (ref_c.assign(a=ref_c["change"].abs()).groupby("measure")["a"]
               .quantile(1 - alpha, interpolation="higher") if len(ref_c)
               else pd.Series(dtype=float))
        t = pd.DataFrame({"measure": sorted(v["measure"].unique())}).merge(t, on="measure",
                                                                            how="left")
        t["threshold_rci"] = z * np.sqrt(2.0) * t["sem"].astype(float)
        t["threshold_empirical"] = t["measure"].map(emp).astype(float)
        t["threshold"] = t[["threshold_rci", "threshold_empirical"]].max(axis=1, skipna=True)
        t.loc[t["threshold_rci"].isna(), "threshold"] = np.nan
        t["stratum"] = name
        frames.append(t)
    thresholds = pd.concat(frames, ignore_index=True)
    thresholds["n_people"] = thresholds["n_people"].fillna(0).astype(int)
    thresholds["df"] = thresholds["df"].fillna(0).astype(int)
    thresholds = thresholds[[*THRESHOLD_COLUMNS, "stratum", "threshold_rci",
                             "threshold_empirical"]]

    own = thresholds.set_index(["stratum", "measure"])["threshold"]
    pooled = thresholds[thresholds["stratum"] == "all"].set_index("measure")["threshold"]
    keys = pd.MultiIndex.from_arrays([later["stratum"], later["measure"]])
    thr = pd.Series(own.reindex(keys).to_numpy(), index=later.index)
    thr = thr.fillna(later["measure"].map(pooled))
    later["reliable_change"] = (later["change"].abs() > thr).fillna(False).astype(bool)
    # direction: towards the controls
    dec = set(decrease_improves)
    ctrl = base[base["participant"].map(arm) == "control"].groupby("measure")["baseline"].mean()
    target = later["measure"].map(ctrl)
    toward = np.where(later["measure"].isin(dec), -1.0, np.sign(target - later["baseline"]))
    s = np.sign(later["change"].to_numpy()) * toward
    direction = pd.Series(np.where(s > 0, "improve", np.where(s < 0, "worsen", "none")),
                          index=later.index, dtype=object)
    later["direction"] = direction.where(~np.isnan(s), None)
    table = later.sort_values(["measure", "participant", "visit"], kind="stable")
    return table[CHANGE_COLUMNS].reset_index(drop=True), thresholds.reset_index(drop=True)


def reliable_rates(change_table: pd.DataFrame, *, alpha: float = 0.05) -> pd.DataFrame:
    """Per measure x arm: follow-up visits (``n``), those with a reliable change
    (``n_reliable``, ``share`` and its Wilson ``1 - alpha`` interval ``ci_low, ci_high``)
    and those with a reliable improvement (``n_improve``, ``share_improve``,
    ``improve_ci_low, improve_ci_high``).

    Examples
    --------
    >>> t = pd.DataFrame({"participant": list("abcd"), "arm": ["treated"] * 4, "visit": 2,
    ...                   "measure": "m", "change": [3.0, -3.0, 0.1, 0.2],
    ...                   "reliable_change": [True, True, False, False],
    ...                   "direction": ["improve", "worsen", "improve", "worsen"]})
    >>> reliable_rates(t)[["n", "n_reliable", "n_improve"]].values.tolist()
    [[4, 2, 1]]
    """
    t = change_table.copy()
    direction = t["direction"] if "direction" in t.columns else pd.Series(None, index=t.index)
    t["improve"] = t["reliable_change"].astype(bool) & (direction == "improve")
    agg = t.groupby(["measure", "arm"], sort=True).agg(
        n=("reliable_change", "size"), n_reliable=("reliable_change", "sum"),
        n_improve=("improve", "sum")).reset_index()
    agg["n"] = agg["n"].astype(int)
    agg["n_reliable"] = agg["n_reliable"].astype(int)
    agg["n_improve"] = agg["n_improve"].astype(int)
    agg["share"] = agg["n_reliable"] / agg["n"]
    agg["share_improve"] = agg["n_improve"] / agg["n"]
    lo, hi = proportion_confint(agg["n_reliable"].to_numpy(), agg["n"].to_numpy(), alpha=alpha,
                                method="wilson")
    agg["ci_low"], agg["ci_high"] = np.asarray(lo, dtype=float), np.asarray(hi, dtype=float)
    lo, hi = proportion_confint(agg["n_improve"].to_numpy(), agg["n"].to_numpy(), alpha=alpha,
                                method="wilson")
    agg["improve_ci_low"], agg["improve_ci_high"] = np.asarray(lo, dtype=float), np.asarray(hi, dtype=float)
    return agg[RATE_COLUMNS]


# -- mixed models -------------------------------------------------------------------------------


def _design(time: np.ndarray, arm: np.ndarray, reference: str) -> tuple[np.ndarray, list[str]]:
    others = [a for a in ARMS if a != reference and a in set(arm)]
    others += sorted({str(a) for a in arm} - set(ARMS) - {reference})
    cols = [np.ones_like(time), time]
    names = ["intercept", "visit"]
    for a in others:
        cols.append((arm == a).astype(float))
        names.append(f"arm[{a}]")
    for a in others:
        cols.append(time * (arm == a))
        names.append(f"visit:arm[{a}]")
    return np.column_stack(cols), names


def followup_lmm(values: pd.DataFrame, participants: Any, visits: Any, arm: Any, *,
                 reference_arm: str = "untreated", reml: bool = True,
                 min_participants: int = 5) -> pd.DataFrame:
    """Per analyte, ``value ~ visit * C(arm, Treatment(reference_arm)) + (1 | participant)``.

    Parameters
    ----------
    values : DataFrame
        Samples x analytes on the analysis scale (e.g. log2), missing values allowed.
    participants, visits, arm : per sample (aligned by index)
        ``visit`` is numeric and enters as ``visit - first visit of the data`` (the arm terms
        are differences at the first visit; ``visit`` is the slope per visit of the
        reference arm; ``visit:arm[a]`` how much faster arm ``a`` changes).
    reference_arm : str
        ``untreated`` (default: treated vs untreated cases) or ``control``.
    reml : bool
        REML (default; lme4's and statsmodels' default, unbiased variance components) or ML.

    Returns
    -------
    DataFrame
        ``analyte, term, estimate, se, p, q, n, n_participants, note``: Wald z p-values; ``q``
        Benjamini-Hochberg within each term across analytes. Terms: ``intercept``, ``visit``,
        ``arm[a]``, ``visit:arm[a]`` for each other arm present. ``note`` is ``singular`` when
        the participant variance is estimated as 0 (estimates are then those of least
        squares, as in lme4), or says why an analyte was not fitted (its numbers NaN).

    Notes
    -----
    The fits use :func:`hikisig.stats.mixed.random_intercept_lmm`, which profiles the
    likelihood in closed form and fits all analytes with the same missingness pattern at
    once (equal to statsmodels ``MixedLM`` and lme4 ``lmer``; tests/reference/), so 130
    analytes x 1,200 samples take well under a second. Analytes with missing values are
    fitted one pattern at a time.
    """
    pid = _as_series(participants, values.index, "participant").to_numpy()
    vis = _as_series(visits, values.index, "visit").astype(float).to_numpy()
    arm_s = _as_series(arm, values.index, "arm").astype(object).to_numpy()
    keep = ~(pd.isna(pid) | np.isnan(vis) | pd.isna(arm_s))
    if reference_arm not in set(arm_s[keep]):
        raise ValueError(f"reference arm {reference_arm!r} has no samples")
    Y = values.to_numpy(dtype=float)
    time = vis - np.nanmin(vis[keep])
    analytes = [str(c) for c in values.columns]
    rows: list[pd.DataFrame] = []
    ok = np.isfinite(Y) & keep[:, None]
    patterns: dict[bytes, list[int]] = {}
    for j in range(Y.shape[1]):
        patterns.setdefault(np.packbits(ok[:, j]).tobytes(), []).append(j)
    all_terms = _design(time[keep], arm_s[keep], reference_arm)[1]
    for cols in patterns.values():
        rmask = ok[:, cols[0]]
        names = [analytes[j] for j in cols]
        X, terms = _design(time[rmask], arm_s[rmask], reference_arm)
        n_part = len(set(pid[rmask]))
        note = ""
        if n_part < min_participants:
            note = f"not fitted: {n_part} participants with values"
        elif len(np.unique(time[rmask])) < 2:
            note = "not fitted: values at one visit only"
        fit = None
        if not note:
            try:
                with warnings.catch_warnings():
                    warnings.simplefilter("ignore", RuntimeWarning)
                    fit = random_intercept_lmm(Y[np.ix_(rmask, cols)], X, pid[rmask], reml=reml)
            except (ValueError, np.linalg.LinAlgError) as exc:
                note = f"not fitted: {exc}"
        for i, name in enumerate(names):
            if fit is None:
                est = se = p = np.full(len(terms), np.nan)
                this_note = note
            else:
                est, se, p = fit.beta[i], fit.se[i], fit.p[i]
                this_note = "singular" if fit.singular[i] else ""
                if not np.all(np.isfinite(se)):
                    this_note = "not fitted: non-finite standard errors"
                    est = se = p = np.full(len(terms), np.nan)
            rows.append(pd.DataFrame({"analyte": name, "term": terms, "estimate": est, "se": se,
                                      "p": p, "n": int(rmask.sum()), "n_participants": n_part,
                                      "note": this_note}))
    out = pd.concat(rows, ignore_index=True) if rows else pd.DataFrame(columns=LMM_COLUMNS)
    out["q"] = np.nan
    for _term, idx in out.groupby("term").groups.items():
        p = out.loc[idx, "p"]
        good = p.notna()
        if good.any():
            out.loc[p[good].index, "q"] = multipletests(p[good].to_numpy(), method="fdr_bh")[1]
    order = {t: i for i, t in enumerate(all_terms)}
    out["_a"] = out["analyte"].map({a: i for i, a in enumerate(analytes)})
    out["_t"] = out["term"].map(order).fillna(len(order))
    out = out.sort_values(["_a", "_t"], kind="stable").drop(columns=["_a", "_t"])
    return out[LMM_COLUMNS].reset_index(drop=True)

