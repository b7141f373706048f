"""Case-control statistics on a Dataset (column names) or on arrays (aligned by index)."""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd

from hikisig.analysis.design import MIN_PER_GROUP_STATS, case_mask, numeric_column
from hikisig.cohort.dataset import Dataset
from hikisig.config import StatsSection
from hikisig.engine import Engine
from hikisig.errors import HikisigError, InputError, Problem
from hikisig.prep.markers import derived_markers
from hikisig.stats.casecontrol import aligned
from hikisig.stats.casecontrol import case_control as _kernel

__all__ = ["case_control", "group_mask", "site_column", "study_statistics"]

if TYPE_CHECKING:
    from hikisig.analysis.study import StudyData

_S = StatsSection()


def group_mask(data: Dataset | pd.DataFrame, case: Any, group: Any, control: Any, *,
               minimum: int, stage: str) -> tuple[pd.Series, str, str]:
    """Cases (True), controls (False) and others (None) of the data, with the case and
    control labels: from a group column name (Dataset), group labels (array or Series,
    aligned by index) and the labels, or from a boolean ``case`` array when no group is
    given (labels ``case`` and ``control``)."""
    index = data.X.index if isinstance(data, Dataset) else data.index
    if group is None:
        if case is None or np.ndim(case) == 0:
            raise HikisigError("name the group column (group=...) and the case label (case=...)")
        values = pd.Series(aligned(case, index, "case"), index=index)
        flags = values.map(lambda v: None if v is None or pd.isna(v) else bool(v))
        mask, _, _ = case_mask(flags, True, False, column="case", minimum=minimum, stage=stage)
        return mask, "case", "control"
    if case is None or np.ndim(case) != 0:
        raise HikisigError("name the case label (case=...): the positive class is never guessed")
    if isinstance(group, str) and isinstance(data, Dataset):
        return case_mask(data.column(group), case, control, column=group, minimum=minimum,
                         stage=stage)
    if isinstance(group, str):
        raise HikisigError(f"group={group!r} names a column: pass a Dataset, or the labels")
    labels = pd.Series(aligned(group, index, "group"), index=index)
    return case_mask(labels, case, control, column="group", minimum=minimum, stage=stage)


def _values(data: Dataset | pd.DataFrame, which: Any, what: str) -> Any:
    """A per-sample variable: a column name of a Dataset, or values (aligned by index)."""
    if which is None:
        return None
    if isinstance(which, str):
        if not isinstance(data, Dataset):
            raise HikisigError(f"{what}={which!r} names a column: pass a Dataset, or the values")
        return data.column(which)
    return which


def _covariate(data: Dataset, name: str) -> pd.Series:
    """A covariate column: numbers, or text when no value is a number (categorical);
    numbers mixed with text are an error (``numeric_column``'s message)."""
    col = data.column(name)
    filled = col.notna() & (col.astype(str).str.strip() != "")
    if filled.any() and pd.to_numeric(col[filled], errors="coerce").isna().all():
        return col.astype(object).where(filled, None)
    return numeric_column(data, name)


def case_control(
    data: Dataset | pd.DataFrame,
    case: Any = None,
    *,
    group: Any = None,
    control: Any = None,
    by: Any = None,
    covariates: Sequence[str] | pd.DataFrame | None = (),
    site: Any = None,
    severity: Any = None,
    tests: Sequence[str] = tuple(_S.tests),
    mwu_method: str = _S.mwu_method,
    markers: bool = True,
    ci: float = 0.95,
    block_cells: int = 4_000_000,
    n_jobs: int | None = None,
    quantiles: bool = True,
    engine: Engine | str | None = None,
    additive: bool = False,
) -> pd.DataFrame:
    """Sex-stratified case-control statistics for every analyte (and derived marker).

    Parameters
    ----------
    data : Dataset or DataFrame
        A :class:`~hikisig.Dataset` (then ``group``, ``by``, ``covariates`` and
        ``severity`` are column names of its ``obs``), or a samples x analytes DataFrame
        (then they are values: a Series is aligned to the DataFrame's index, and every
        sample id must be in it; a plain array must have one entry per row).
    case : label, or boolean array
        The label of cases in ``group`` (the positive class, named explicitly); without
        ``group``, a boolean array/Series (True case, False control, missing left out).
    group : str or array
        The group column (or labels).
    control : label, optional
        The label of controls (default: the other label when the group has exactly two).
    by : str or array, optional
        Stratifying variable (sex): tests overall and within each level; with two levels
        the linear model ``log2(value) ~ group * by + covariates`` gives the group effect
        in each level and the interaction.
    covariates : sequence of str, or DataFrame
        Covariates of the linear model. A numeric column enters as it is; a text column
        (no value is a number) is categorical, treatment-coded like ``site``, with a
        note (:class:`hikisig.stats.casecontrol.CategoricalCovariateWarning`); a column of
        numbers with some text is an error naming the values that are not numbers.
    site : str or array, optional
        The site column (or labels): a categorical covariate of the linear model, entered
        as treatment-coded dummies with the first level (sorted as text) as reference; the
        method reads ``... + covariates + site``. See :func:`hikisig.stats.case_control`.
    severity : str or array, optional
        Severity score: Pearson and Spearman correlations within cases.
    tests : sequence of {"welch", "student", "mwu"}
    mwu_method : {"asymptotic", "exact"}
    markers : bool
        With a Dataset, add the curated derived markers whose required components are all
        present (ratios and sums of catalog analytes; their formula in the ``formula``
        column; see :func:`hikisig.prep.marker_status`).
    ci, block_cells, n_jobs, quantiles, engine
        As :func:`hikisig.stats.case_control`.
    additive : bool
        Values on an additive scale that may be negative (z-scores): no log anywhere,
        effects are differences of means, fold-change columns are empty.

    Returns
    -------
    DataFrame
        One tidy row per analyte x stratum x test (:data:`hikisig.stats.TIDY_COLUMNS`
        first; ``formula`` last with a Dataset).

    Raises
    ------
    TooFewSamplesError
        Fewer than 2 cases or controls.

    Examples
    --------
    >>> rng = np.random.default_rng(0)
    >>> X = pd.DataFrame(rng.lognormal(size=(40, 2)), columns=["a", "b"],
    ...                  index=[f"S{i}" for i in range(40)])
    >>> obs = pd.DataFrame({"dx": np.repeat(["healthy", "hikikomori"], 20),
    ...                     "sex": np.tile(["F", "M"], 20)}, index=X.index)
    >>> t = case_control(Dataset(X, obs), group="dx", case="hikikomori", control="healthy",
    ...                  by="sex")
    >>> sorted(t["stratum"].unique())
    ['F', 'M', 'all', 'interaction']
    """
    is_case, _, _ = group_mask(data, case, group, control, minimum=MIN_PER_GROUP_STATS,
                               stage="statistics")
    if isinstance(covariates, pd.DataFrame) or not covariates:
        cov = covariates if isinstance(covariates, pd.DataFrame) else None
    elif isinstance(data, Dataset):
        names = [c for c in covariates if not (isinstance(site, str) and c == site)]
        cov = (pd.DataFrame({c: _covariate(data, c) for c in names}, index=data.X.index)
               if names else None)
    else:
        raise HikisigError("covariates of a DataFrame are a DataFrame of values (aligned by index)")
    sev = (numeric_column(data, severity) if isinstance(severity, str) and isinstance(data, Dataset)
           else _values(data, severity, "severity"))
    X = data.X if isinstance(data, Dataset) else data
    formulas: dict[str, str] = {}
    if isinstance(data, Dataset) and markers and not additive:
        values, notes = derived_markers(X)
        X = X.join(values)
        formulas = notes["formula"].to_dict() if len(notes) else {}
    table = _kernel(X, is_case, by=_values(data, by, "by"), covariates=cov,
                    site=_values(data, site, "site"), severity=sev,
                    tests=tests, mwu_method=mwu_method, ci=ci, block_cells=block_cells,
                    n_jobs=n_jobs, quantiles=quantiles, engine=engine, additive=additive)
    if isinstance(data, Dataset):
        table["formula"] = table["analyte"].map(formulas).fillna("")
    return table


def site_column(study: StudyData, site: str | None = None) -> str | None:
    """The site column of a study (``obs`` name): the resolved design's ``site`` when it has
    one, else ``site`` (``design.site``) found in the data; None without a site.

    Raises
    ------
    InputError
        A site column is named but the data do not have it.
    """
    resolved = getattr(study.design, "site", None)
    if resolved:
        return str(resolved)
    if site is None or site.strip() == "" or site.casefold() == "none":
        return None
    ds = study.stats_data
    found = ds.column_name(site)
    if found is None:
        cols = [str(c) for c in ds.obs.columns]
        shown = ", ".join(cols[:12]) + (", ..." if len(cols) > 12 else "")
        raise InputError([Problem(ds.source or f"study {ds.study!r}",
                                  f"no site column {site!r} (columns: {shown})", column=site)])
    return found


def study_statistics(study: StudyData, section: StatsSection | None = None, *,
                     site: str | None = None, markers: bool = True, quantiles: bool = True,
                     block_cells: int = 4_000_000, engine: Engine | str | None = None
                     ) -> pd.DataFrame:
    """The case-control table of a loaded study (:meth:`StudyData.statistics`), with the
    site column (``design.site``, see :func:`site_column`) as a categorical covariate of
    the linear model. ``hikisig stats`` and ``hikisig run`` both call this, so their tables
    are the same."""
    return study.statistics(section, site=site, markers=markers, quantiles=quantiles,
                            block_cells=block_cells, engine=engine)
