"""The study's models on a Dataset (column names) or on arrays: discrimination, severity,
stratification, and prediction for new samples."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from hikisig.analysis.design import (
    MIN_PER_GROUP_MODEL,
    MIN_SEVERITY,
    MIN_STRATIFY,
    numeric_column,
    participant_groups,
)
from hikisig.analysis.statistics import group_mask
from hikisig.cohort.dataset import Dataset
from hikisig.config import (
    DiscriminateSection,
    RunSection,
    Screening,
    SeveritySection,
    StratifySection,
)
from hikisig.engine import Engine
from hikisig.errors import HikisigError, TooFewSamplesError
from hikisig.models import discriminate as _discriminate
from hikisig.models import persist
from hikisig.models import predict as _predict
from hikisig.models import severity as _severity
from hikisig.models import stratify as _stratify
from hikisig.models.result import (
    DiscriminationResult,
    ModelResult,
    SeverityResult,
    StratificationResult,
)
from hikisig.stats.casecontrol import aligned

__all__ = ["discriminate", "load_model", "predict", "severity", "stratify"]

_D, _SV, _ST = DiscriminateSection(), SeveritySection(), StratifySection()
_SEED = RunSection().seed
_PREVALENCE = Screening().prevalence


def _matrix(data: Dataset | pd.DataFrame) -> pd.DataFrame:
    return data.X if isinstance(data, Dataset) else data


def _describe(result: ModelResult, data: Dataset | pd.DataFrame, keep: np.ndarray | None = None,
              participant: Any = None) -> None:
    """Record where the model comes from: units of its features, study, synthetic, and
    the keyed hashes of the training participants (``participant`` of the ``keep`` rows)."""
    if participant is not None and result.training is not None:
        if isinstance(participant, str):
            if isinstance(data, Dataset) and participant in data.obs:
                codes = data.obs[participant].to_numpy()
                result.training.add_participants(codes if keep is None else codes[keep])
        else:
            codes = np.asarray(aligned(participant, _matrix(data).index, "participant"), dtype=object)
            result.training.add_participants(codes if keep is None else codes[keep])
    if not isinstance(data, Dataset):
        return
    if result.training is not None and "unit" in data.var:
        units = data.var["unit"]
        for f in result.training.features:
            u = units.get(f.name)
            f.unit = None if u is None or pd.isna(u) else str(u)
    result.study, result.synthetic = data.study, bool(data.synthetic)


def _groups(data: Dataset | pd.DataFrame, keep: np.ndarray, participant: Any) -> Any:
    if participant is None:
        return None
    if isinstance(participant, str):
        if not isinstance(data, Dataset):
            raise HikisigError(f"participant={participant!r} names a column: pass a Dataset")
        return participant_groups(data.subset(keep), participant)
    g = pd.Series(aligned(participant, _matrix(data).index, "participant")[keep]).astype(str)
    return g.to_numpy() if g.duplicated().any() else None


def _sites(data: Dataset | pd.DataFrame, keep: np.ndarray | None, site: Any, *,
           needed: str | None = None) -> np.ndarray | None:
    """Each kept sample's site (text) from a column name of a Dataset or values aligned by
    index; None without ``site``. ``needed`` names what requires it (an error without it)."""
    if site is None:
        if needed:
            raise HikisigError(f"{needed} needs a site column (design.site, --site-column, "
                               "site=)")
        return None
    if isinstance(site, str):
        if not isinstance(data, Dataset):
            raise HikisigError(f"site={site!r} names a column: pass a Dataset, or the sites")
        values = data.column(site)
    else:
        values = pd.Series(aligned(site, _matrix(data).index, "site"), index=_matrix(data).index)
    values = values if keep is None else values[keep]
    empty = values.isna() | (values.astype(str).str.strip() == "")
    if empty.any():
        raise HikisigError(f"{int(empty.sum())} sample(s) have no site"
                           + (f" in column {site!r}" if isinstance(site, str) else "")
                           + ": give every sample a site")
    return values.astype(str).to_numpy(dtype=object)


def _site_needed(cv: str, harmonise: str) -> str | None:
    if cv == "leave-site-out":
        return "leave-site-out validation"
    if harmonise == "combat":
        return "ComBat harmonisation (preprocessing.harmonise = \"combat\")"
    return None


def discriminate(
    data: Dataset | pd.DataFrame, case: Any = None, *, group: Any = None, control: Any = None,
    participant: Any = None, model: str = _D.model, cv_folds: int = _D.cv_folds,
    cv_repeats: int = _D.cv_repeats, permutations: int = _D.permutations,
    permutation_scheme: str = _D.permutation_scheme, n_estimators: int = _D.n_estimators,
    test_size: float | None = _D.test_size, inner_cv: bool = _D.inner_cv,
    recalibrate: bool = _D.recalibrate, sensitivity_target: float = _D.sensitivity_target,
    prevalence: float = _PREVALENCE, seed: int = _SEED, engine: Engine | str | None = None,
    log: bool = True, site: Any = None, cv: str = _D.cv, harmonise: str = "none",
) -> DiscriminationResult:
    """Case vs control classifier validated by repeated (participant-aware) cross-validation.

    Parameters
    ----------
    data : Dataset or DataFrame
        A Dataset (``group`` and ``participant`` are column names) or samples x analytes
        (they are values, aligned by index).
    case : label, or boolean array
        The label of cases (the positive class) in ``group``; without ``group``, a boolean
        array (True = case).
    group : str or array
        The group column (or labels). Samples with other labels are left out.
    control : label, optional
        The label of controls (default: the other label when there are two).
    participant : str or array, optional
        Participant of each sample: a participant's samples stay in one fold.
    model, cv_folds, cv_repeats, permutations, permutation_scheme, n_estimators, test_size,
    inner_cv, recalibrate, sensitivity_target, prevalence, seed, engine
        As :func:`hikisig.models.discriminate.discriminate`; defaults from
        :class:`hikisig.config.DiscriminateSection`.
    site : str or array, optional
        Site of each sample (a column name of a Dataset, or values aligned by index).
    cv : {"stratified", "leave-site-out"}
        ``"leave-site-out"``: one fold per site, the test of transportability (needs
        ``site`` and at least 2 sites; ``per_site`` table).
    harmonise : {"none", "combat"}
        ComBat inside each training fold (needs ``site``); the model then needs the site
        to predict.

    Returns
    -------
    DiscriminationResult
        ``.auc``, ``.auc_ci``, ``.cv_scheme``, ``.tables``, ``.save(path)``; its ``model``
        predicts the user's labels.

    Raises
    ------
    TooFewSamplesError
        Fewer than 3 cases or controls.

    Examples
    --------
    >>> res = discriminate(ds, group="group", case="case", control="control")  # doctest: +SKIP
    >>> res.auc, res.auc_ci                                                     # doctest: +SKIP
    """
    is_case, case_label, control_label = group_mask(data, case, group, control,
                                                    minimum=MIN_PER_GROUP_MODEL,
                                                    stage="discrimination")
    keep = is_case.notna().to_numpy()
    X = _matrix(data)[keep]
    y = np.where(is_case[keep].astype(bool).to_numpy(), case_label, control_label).astype(object)
    sites = _sites(data, keep, site, needed=_site_needed(cv, harmonise))
    res = _discriminate.discriminate(
        X, y, case=case_label, groups=_groups(data, keep, participant), ids=X.index, model=model,
        cv_folds=cv_folds, cv_repeats=cv_repeats, permutations=permutations,
        permutation_scheme=permutation_scheme, prevalence=prevalence,
        sensitivity_target=sensitivity_target, test_size=test_size, inner_cv=inner_cv,
        recalibrate=recalibrate, n_estimators=n_estimators, seed=seed, engine=engine, log=log,
        sites=sites, cv=cv, harmonise=harmonise)
    _describe(res, data, keep, participant)
    if isinstance(site, str):
        res.params["site_column"] = site
    return res


def severity(
    data: Dataset | pd.DataFrame, target: Any, *, group: Any = None, case: Any = None,
    control: Any = None, cases_only: bool = _SV.cases_only, participant: Any = None,
    scaling: str = _SV.scaling, max_components: int = _SV.max_components,
    cv_folds: int = _SV.cv_folds, cv_repeats: int = _SV.cv_repeats,
    permutations: int = _SV.permutations, seed: int = _SEED, engine: Engine | str | None = None,
    log: bool = True, site: Any = None, cv: str = _SV.cv, harmonise: str = "none",
) -> SeverityResult:
    """PLS regression of a severity score on the analytes, validated by repeated CV.

    Parameters
    ----------
    data : Dataset or DataFrame
    target : str or array
        The severity score (a column of ``obs``, e.g. ``hq25``, or values).
    group, case, control
        With ``cases_only``: the group column and labels; the model uses cases only.
    cases_only : bool
        Severity within cases (the study's design); ``False`` uses every sample with a score
        (cases and controls when ``group`` is given).
    participant : str or array, optional
        A participant's samples stay in one fold.
    scaling, max_components, cv_folds, cv_repeats, permutations, seed, engine
        As :func:`hikisig.models.severity.severity`; defaults from
        :class:`hikisig.config.SeveritySection`.
    log : bool
        ``False`` for values on an additive scale (no log).
    site, cv, harmonise
        As :func:`discriminate`: leave-site-out validation (``per_site``: n, Q2, RMSE of
        each site) and ComBat inside the training folds.

    Returns
    -------
    SeverityResult
        ``.q2``, ``.r2y``, ``.rmsecv``, ``.n_components``, ``.tables`` (observed vs
        predicted, VIP, coefficients, signature), ``.save(path)``.

    Raises
    ------
    TooFewSamplesError
        Fewer than 8 samples with a score.

    Examples
    --------
    >>> sev = severity(ds, "hq25", group="group", case="case", control="control")  # doctest: +SKIP
    >>> sev.q2, sev.rmsecv                                                         # doctest: +SKIP
    """
    index = _matrix(data).index
    if group is not None:
        is_case, _, _ = group_mask(data, case, group, control, minimum=0, stage="severity")
        keep = (is_case == True).to_numpy() if cases_only else is_case.notna().to_numpy()  # noqa: E712
    elif cases_only:
        raise HikisigError("severity within cases needs group= and case= (or cases_only=False)")
    else:
        keep = np.ones(len(index), dtype=bool)
    if isinstance(target, str):
        if not isinstance(data, Dataset):
            raise HikisigError(f"target={target!r} names a column: pass a Dataset, or the scores")
        y = numeric_column(data, target)
        name: str | None = target
    else:
        y = pd.to_numeric(pd.Series(aligned(target, index, "target"), index=index), errors="coerce")
        name = None if getattr(target, "name", None) is None else str(target.name)
    keep &= y.notna().to_numpy()
    if keep.sum() < MIN_SEVERITY:
        among = " among cases" if cases_only else ""
        raise TooFewSamplesError(f"only {int(keep.sum())} samples with a {name or 'severity'!r} "
                            f"value{among}: the severity model needs at least {MIN_SEVERITY}",
                            "severity")
    X = _matrix(data)[keep]
    sites = _sites(data, keep, site, needed=_site_needed(cv, harmonise))
    res = _severity.severity(X, y[keep].to_numpy(dtype=float), groups=_groups(data, keep, participant),
                             ids=X.index, scaling=scaling, max_components=max_components,
                             cv_folds=cv_folds, cv_repeats=cv_repeats, permutations=permutations,
                             seed=seed, engine=_engine(engine), target=None if name is None else str(name),
                             log=log, sites=sites, cv=cv, harmonise=harmonise)
    _describe(res, data, keep, participant)
    if isinstance(site, str):
        res.params["site_column"] = site
    return res


def stratify(
    data: Dataset | pd.DataFrame, *, group: Any = None, case: Any = None, control: Any = None,
    method: str = _ST.method, k: int | None = _ST.k, bootstraps: int = _ST.bootstraps,
    clinical: pd.DataFrame | None = None, seed: int = _SEED, engine: Engine | str | None = None,
    log: bool = True,
) -> StratificationResult:
    """Subgroups of cases (clustering, choice of k, bootstrap stability, profiles).

    With ``group`` and ``case`` only cases are clustered; without them, every sample.

    Parameters
    ----------
    data : Dataset or DataFrame
    group, case, control
        The group column (or labels) and labels: only cases are clustered.
    method, k, bootstraps, clinical, seed, engine
        As :func:`hikisig.models.stratify.stratify`; defaults from
        :class:`hikisig.config.StratifySection`.
    log : bool
        ``False`` for values on an additive scale (no log).

    Returns
    -------
    StratificationResult
        ``.k``, ``.cluster_sizes``, ``.stability_ari_mean`` (1: the same partition in every
        bootstrap resample, 0: chance), ``.tables`` (assignments, profiles, signature).

    Raises
    ------
    TooFewSamplesError
        Fewer than 10 samples to cluster.

    Examples
    --------
    >>> strata = stratify(ds, group="group", case="case", control="control")  # doctest: +SKIP
    >>> strata.k, strata.stability_ari_mean                                  # doctest: +SKIP
    """
    index = _matrix(data).index
    if group is not None:
        is_case, _, _ = group_mask(data, case, group, control, minimum=0,
                                   stage="stratification")
        keep = (is_case == True).to_numpy()  # noqa: E712
    else:
        keep = np.ones(len(index), dtype=bool)
    if keep.sum() < MIN_STRATIFY:
        raise TooFewSamplesError(f"only {int(keep.sum())} {'cases' if group is not None else 'samples'} "
                            f"to stratify: the stratification needs at least {MIN_STRATIFY}",
                            "stratification")
    X = _matrix(data)[keep]
    res = _stratify.stratify(X, ids=X.index, method=method, k=k, bootstraps=bootstraps,
                             clinical=clinical, seed=seed, engine=_engine(engine), log=log)
    _describe(res, data)
    return res


def _engine(engine: Engine | str | None) -> Engine | None:
    return Engine(engine) if isinstance(engine, str) else engine


def load_model(path: str | Path) -> ModelResult:
    """A saved model folder, as the result class of its kind (see
    :func:`hikisig.models.persist.load_model`).

    Examples
    --------
    >>> model = load_model("rf-model")  # doctest: +SKIP
    >>> predict(model, new_samples)     # doctest: +SKIP
    """
    return persist.load_model(path)


def predict(model: ModelResult | str | Path, data: Dataset | pd.DataFrame, *,
            participant: Any = None, site: Any = None) -> pd.DataFrame:
    """Apply a model (a fresh result or a saved folder) to new samples.

    Derived markers the model needs are computed from the data when missing; with a
    Dataset, units that differ from the training units are an error.

    Returns
    -------
    DataFrame
        One row per sample of ``data`` (same index): ``id``; for discrimination
        ``probability`` (of being a case), ``logit``, ``predicted_case`` and
        ``predicted_group`` (the case or control label, at the Youden threshold of the
        cross-validated predictions); ``predicted_severity``; or ``stratum``; then
        ``in_training`` (the sample, or its participant, was in the training set: a
        keyed-hash comparison, no code is stored with the model), ``out_of_range`` and
        ``warning``. ``participant`` (a column name of a Dataset, or values aligned to the
        data) names each sample's participant; without it the sample id is also compared
        with the training participants. ``site`` (a column name of a Dataset, or values
        aligned to the data) is needed by a model that harmonises sites with ComBat.

    Examples
    --------
    >>> res = discriminate(ds, group="group", case="case", control="control")  # doctest: +SKIP
    >>> predict(res, new_samples)[["probability", "predicted_group"]]          # doctest: +SKIP
    """
    from hikisig.prep.markers import derived_markers

    result = model if isinstance(model, ModelResult) else load_model(model)
    X = _matrix(data)
    lacking = [f for f in result.features if f not in X.columns]
    if lacking:
        values, _ = derived_markers(X)
        extra = [c for c in values.columns if c in lacking]
        if extra:
            X = X.join(values[extra])
    units: dict[str, str | None] | None = None
    if isinstance(data, Dataset) and "unit" in data.var:
        units = {str(k): str(v) for k, v in data.var["unit"].items() if v is not None and not pd.isna(v)}
    participants = None
    if isinstance(participant, str):
        if not isinstance(data, Dataset):
            raise HikisigError(f"participant={participant!r} names a column: pass a Dataset")
        participants = data.column(participant).astype(str).to_numpy()
    elif participant is not None:
        participants = np.asarray(aligned(participant, X.index, "participant"), dtype=object)
    sites = None
    if getattr(result, "harmonise", "none") == "combat":
        if site is None:
            raise HikisigError("this model harmonises sites (ComBat): give each sample's site "
                               "(--site-column, site=)")
        sites = _sites(data, None, site)
    return _predict.predict(result, X, units=units, participants=participants, sites=sites)
