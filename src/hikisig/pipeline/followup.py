"""The follow-up stage of a study run: every visit of every participant, the arms from the
intervention log, cross-fitted scores, reliable change against within-person variation,
the mixed models and the trajectories (:mod:`hikisig.analysis.followup` does the work).
"""

from __future__ import annotations

import warnings
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
from scipy import stats as sps

from hikisig.analysis.followup import (
    arms,
    crossfit_scores,
    followup_lmm,
    reliable_change,
    reliable_rates,
)
from hikisig.analysis.study import StudyData, load_study, store_url
from hikisig.cohort.dataset import Dataset
from hikisig.config import StudyConfig
from hikisig.errors import HikisigError, TooFewSamplesError
from hikisig.prep.markers import derived_markers
from hikisig.results import FollowupResults, RunResults

__all__ = ["followup_stage"]

#: The scores of the cross-fitted models, as named in the tables.
SCORE_MEASURES = ("discrimination_logit", "severity_prediction")


def _all_visits(config: StudyConfig, study: StudyData, base: Path | None) -> Dataset:
    """Every case and control sample of every visit: a file's rows as they are; from the
    store, all visits (the other analyses take each participant's first)."""
    if config.source.file:
        return study.data
    with warnings.catch_warnings():  # the run already reported what loading the data says
        warnings.simplefilter("ignore")
        again = load_study(config.source, config.design, config.preprocessing, visit="all",
                           base=base)
    return again.data


def _path(value: str, base: Path | None) -> Path:
    p = Path(value)
    return p if p.is_absolute() or base is None else base / p


def _interventions(config: StudyConfig, base: Path | None, study: str
                   ) -> tuple[pd.DataFrame | None, str]:
    """The intervention log and where it came from."""
    from hikisig.cohort import interventions as log

    if config.source.interventions:
        path = _path(config.source.interventions, base)
        return log.read_interventions_file(path), f"the intervention log {path.name}"
    if config.source.file:
        return None, "none (no intervention log: source.interventions is not set)"
    from hikisig.cohort.store import Store

    store = Store(store_url(config.source, base))
    try:
        frame = log.interventions_frame(store, study)
    finally:
        store.dispose()
    return frame, "the store's intervention log"


def _severity_by_sample(full: Dataset, results: RunResults, measure: str | None,
                        participants: pd.Series, visits: pd.Series) -> pd.Series | None:
    """The severity score of each sample: the file's column, or the stored questionnaire
    total of the sample's participant and visit."""
    if not measure:
        return None
    col = full.column_name(measure)
    if col is not None:
        values = pd.to_numeric(full.obs[col], errors="coerce")
    elif results.questionnaires is not None and len(results.questionnaires):
        q = results.questionnaires
        q = q[q["instrument"] == measure]
        totals = {(str(i), int(v)): float(t) for i, v, t in
                  zip(q["id"], q["visit"], q["total"], strict=True) if pd.notna(v)}
        values = pd.Series([totals.get((p, int(v)), np.nan) if pd.notna(v) else np.nan
                            for p, v in zip(participants, visits, strict=True)],
                           index=full.X.index, dtype=float)
    else:
        return None
    return values if values.notna().any() else None


def _log2(frame: pd.DataFrame, additive: bool) -> pd.DataFrame:
    if additive:
        return frame.astype(float)
    with np.errstate(divide="ignore", invalid="ignore"):
        v = frame.to_numpy(dtype=float)
        return pd.DataFrame(np.where(v > 0, np.log2(np.where(v > 0, v, 1.0)), np.nan),
                            index=frame.index, columns=frame.columns)


def _tidy(frame: pd.DataFrame, participants: pd.Series, visits: pd.Series) -> pd.DataFrame:
    long = frame.assign(participant=participants.to_numpy(), visit=visits.to_numpy()).melt(
        id_vars=["participant", "visit"], var_name="measure", value_name="value")
    return long.dropna(subset=["value"]).reset_index(drop=True)


def _trajectories(values: pd.DataFrame, arm: pd.Series, measures: list[str]) -> pd.DataFrame:
    """Mean and t-based 95% CI of each measure per arm and visit."""
    v = values[values["measure"].isin(measures)].assign(arm=lambda t: t["participant"].map(arm))
    g = v.groupby(["measure", "arm", "visit"], sort=True)["value"]
    out = g.agg(n="count", mean="mean", sd="std").reset_index()
    half = sps.t.ppf(0.975, np.maximum(out["n"] - 1, 1)) * out["sd"] / np.sqrt(out["n"])
    out["ci_low"] = out["mean"] - half.where(out["n"] > 1)
    out["ci_high"] = out["mean"] + half.where(out["n"] > 1)
    return out[["measure", "arm", "visit", "n", "mean", "ci_low", "ci_high"]]


def _correlation(change: pd.DataFrame, severity: str | None) -> dict[str, float]:
    """Spearman correlation of the change in the signature score with the change in the
    severity score, over the cases' follow-up visits."""
    if not severity:
        return {}
    cases = change[change["arm"].isin(["treated", "untreated"])]
    wide = cases.pivot_table(index=["participant", "visit"], columns="measure", values="change")
    if "discrimination_logit" not in wide or severity not in wide:
        return {}
    pair = wide[["discrimination_logit", severity]].dropna()
    if len(pair) < 5 or pair.nunique().min() < 2:
        return {}
    rho, p = sps.spearmanr(pair["discrimination_logit"], pair[severity])
    return {"rho": float(rho), "p": float(p), "n": float(len(pair)),
            "participants": float(pair.index.get_level_values(0).nunique())}


def _top_markers(lmm: pd.DataFrame | None, markers: list[str], n: int) -> list[str]:
    """The markers whose visit x treated term is strongest (else the first ones)."""
    if n <= 0 or not markers:
        return []
    if lmm is not None and len(lmm):
        t = lmm[(lmm["term"] == "visit:arm[treated]") & lmm["analyte"].isin(markers)]
        if len(t):
            return list(t.sort_values("p", kind="stable")["analyte"].head(n))
    return markers[:n]


def followup_stage(config: StudyConfig, study: StudyData, results: RunResults,
                   base: Path | None) -> FollowupResults | None:
    """The follow-up of a run; None when the data have one visit per participant.

    Raises
    ------
    TooFewSamplesError
        Too few participants with several visits for the cross-fitting.
    HikisigError
        Visits without a participant column, or an intervention log that cannot be read.
    """
    f, d = config.followup, study.design
    full = _all_visits(config, study, base)
    visit_col = full.column_name("visit")
    if visit_col is None:
        return None
    visits = pd.to_numeric(full.obs[visit_col], errors="coerce")
    if visits.dropna().nunique() < 2:
        return None
    if d.participant is None:
        raise HikisigError("the data have several visits but no participant column: name it "
                           "(design.participant) so that a participant's visits are followed")
    keep = visits.notna().to_numpy()
    full = full.subset(keep)
    visits = visits[keep].astype(int)
    participants = full.column(d.participant).astype(str)
    group = full.column(d.group).astype(str)
    per_person = group.groupby(participants.to_numpy()).first()
    counts = participants.value_counts()
    followed = int((counts > 1).sum())
    if followed < 3:
        raise TooFewSamplesError(f"only {followed} participant(s) have more than one visit")
    is_case = (group == d.case)
    n_case, n_control = int((per_person == d.case).sum()), int((per_person == d.control).sum())
    if min(n_case, n_control) < f.folds:
        raise TooFewSamplesError(
            f"the cross-fitted scores need at least {f.folds} case and {f.folds} control "
            f"participants (followup.folds); the data have {n_case} and {n_control}")
    log, source = _interventions(config, base, full.study)
    arm = arms(per_person, d.case, log)
    notes: list[str] = []
    if not (arm == "treated").any():
        notes.append("No case has an intervention in the log: every case is in the untreated "
                     "arm, and nothing here describes the effect of a treatment.")
    additive = study.additive
    severity = _severity_by_sample(full, results, d.severity, participants, visits)
    scores = crossfit_scores(full.X, is_case, participants, visits, model=f.model,
                             folds=f.folds, seed=config.run.seed, severity=severity,
                             n_estimators=f.n_estimators, log=not additive)
    marker_values, _ = derived_markers(full.X) if not additive else (pd.DataFrame(), None)
    marker_log = _log2(marker_values, additive) if len(marker_values.columns) else marker_values
    parts = [scores[["participant", "visit", "measure", "value"]]]
    if len(marker_log.columns):
        parts.append(_tidy(marker_log, participants, visits))
    if severity is not None and d.severity:
        parts.append(_tidy(severity.rename(d.severity).to_frame(), participants, visits))
    values = pd.concat(parts, ignore_index=True)
    if f.test_retest:
        path = _path(f.test_retest, base)
        try:
            ids = set(pd.read_csv(path, dtype=str)["participant"].dropna().str.strip())
        except (OSError, KeyError, ValueError) as exc:
            raise HikisigError(f"{path}: not a table with a participant column ({exc})") from exc
        unknown = sorted(ids - set(arm.index))
        if unknown:
            notes.append(f"{len(unknown)} participant(s) of the test-retest set are not in the data.")
        ref_arm = arm.where(~arm.index.isin(list(ids)), "reference")
        strata = pd.Series(np.where(arm.isin(["treated", "untreated"]), "cases", "controls"),
                           index=arm.index)
        change, thresholds = reliable_change(values, ref_arm, reference_arms=("reference",), z=f.z,
                                             strata=strata)
        change["arm"] = change["participant"].map(arm)
        reference = f"the repeat visits of the {len(ids & set(arm.index))} test-retest participants"
    else:
        change, thresholds = reliable_change(values, arm, reference_arms=tuple(f.reference_arms),
                                             z=f.z)
        names = {"untreated": "untreated cases", "control": "controls", "treated": "treated cases"}
        reference = "the repeat visits of " + " and ".join(names[a] for a in f.reference_arms)
    if thresholds["sem"].isna().all():
        notes.append("No reference participant has repeat visits: no reliable-change threshold "
                     "could be set.")
    lmm, lmm_reference = None, None
    if f.mixed_model:
        lmm_reference = ("untreated" if (arm == "untreated").any() and (arm == "treated").any()
                         else "control")
        matrix = pd.concat([_log2(full.X, additive), marker_log], axis=1)
        sample_arm = participants.map(arm)
        lmm = followup_lmm(matrix, participants, visits, sample_arm, reference_arm=lmm_reference)
    markers = _top_markers(lmm, list(marker_log.columns), f.markers)
    measures = [m for m in (*SCORE_MEASURES, d.severity or "") if m] + markers
    return FollowupResults(
        arms=arm.rename("arm"), interventions_source=source,
        visits=sorted(int(v) for v in visits.unique()), scores=scores, values=values,
        change=change, thresholds=thresholds, rates=reliable_rates(change), lmm=lmm,
        trajectories=_trajectories(values, arm, measures), reference=reference,
        lmm_reference=lmm_reference, correlation=_correlation(change, d.severity),
        severity_measure=d.severity if severity is not None else None, notes=notes)


def followup_tables(fu: FollowupResults) -> dict[str, Any]:
    """The follow-up's tables for ``tables/``."""
    out: dict[str, Any] = {
        "followup_arms": fu.arms.rename_axis("participant").reset_index(),
        "followup_scores": fu.scores, "followup_change": fu.change,
        "followup_thresholds": fu.thresholds, "followup_rates": fu.rates,
        "followup_trajectories": fu.trajectories}
    if fu.lmm is not None:
        out["followup_lmm"] = fu.lmm
    return out
