"""The design rules every analysis shares: which columns play which part, how group labels
become cases and controls, and how many samples an analysis needs.

These are the only places those rules live; the Python API, the command line, the study
run and the web app all go through them.
"""

from __future__ import annotations

import warnings
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd

from hikisig.cohort.dataset import Dataset
from hikisig.config import Design
from hikisig.errors import HikisigError, InputError, Problem, TooFewSamplesError

__all__ = [
    "MIN_PER_GROUP_MODEL",
    "MIN_PER_GROUP_STATS",
    "MIN_SEVERITY",
    "MIN_STRATIFY",
    "OtherLabelsWarning",
    "ResolvedDesign",
    "case_mask",
    "numeric_column",
    "participant_groups",
    "resolve_design",
]

#: Cases and controls needed for the case-control statistics (each).
MIN_PER_GROUP_STATS = 2
#: Cases and controls needed for the discrimination model (each).
MIN_PER_GROUP_MODEL = 3
#: Samples with a severity score needed for the severity model.
MIN_SEVERITY = 8
#: Cases needed for the stratification.
MIN_STRATIFY = 10


class OtherLabelsWarning(UserWarning):
    """Samples whose group label is neither the case nor the control label are left out."""


@dataclass
class ResolvedDesign:
    """The design's columns as found in the data (``obs`` column names; None = not used).

    Attributes
    ----------
    group, case, control : str
        Group column and the labels of cases and controls.
    sex : str or None
        Stratifying column (statistics overall and within each level).
    covariates : list of str
        Numeric covariates of the linear model.
    severity : str or None
        Severity score column.
    participant : str or None
        Participant column (several samples of a participant stay together).
    site : str or None
        Site column (``design.site``): the unit of leave-site-out validation, the batch
        of ComBat, and a categorical covariate of the statistics' linear model
        (:func:`hikisig.analysis.statistics.study_statistics`).
    """

    group: str
    case: str
    control: str
    sex: str | None = None
    covariates: list[str] = field(default_factory=list)
    severity: str | None = None
    participant: str | None = None
    site: str | None = None

    @property
    def columns(self) -> list[str]:
        """Every column the design uses."""
        cols = [self.group, self.sex, *self.covariates, self.severity, self.participant,
                self.site]
        return list(dict.fromkeys(c for c in cols if c))


def _none(name: str | None) -> str | None:
    return None if name is None or name.strip() == "" or name.casefold() == "none" else name


def resolve_design(data: Dataset, design: Design) -> ResolvedDesign:
    """Find the design's columns in the data.

    The group column and the sex column must exist (set ``sex`` to ``""`` for no sex
    strata), and so must every other column the design names (a named ``site`` too),
    except the default names of
    ``covariates`` (``age``), ``severity`` (``hq25``) and ``participant`` (``participant``):
    those are used where the data have them, whether the config states them or not (a
    config written by ``hikisig config init`` lists every default).

    Raises
    ------
    InputError
        Each missing column, naming the columns there are.

    Examples
    --------
    >>> X = pd.DataFrame({"a": [1.0, 2.0]}, index=["s1", "s2"])
    >>> ds = Dataset(X, pd.DataFrame({"group": ["case", "control"], "sex": ["M", "F"]}, index=X.index))
    >>> resolve_design(ds, Design()).covariates
    []
    """
    defaults = Design()
    missing: list[str] = []

    def need(name: str | None, required: bool) -> str | None:
        name = _none(name)
        if name is None:
            return None
        found = data.column_name(name)
        if found is None and required:
            missing.append(name)
        return found

    group = need(design.group, True)
    sex = need(design.sex, True)
    covs = [need(c, c not in defaults.covariates) for c in design.covariates]
    severity = need(design.severity, design.severity != defaults.severity)
    participant = need(design.participant, design.participant != defaults.participant)
    site = need(design.site, True)
    if missing:
        cols = [str(c) for c in data.obs.columns]
        shown = ", ".join(cols[:12]) + (", ..." if len(cols) > 12 else "")
        where = data.source or f"study {data.study!r}"
        raise InputError([Problem(where, f"no column {m!r} (columns: {shown})", column=m)
                          for m in missing])
    if group is None:  # pragma: no cover - the group is always required
        raise HikisigError("the design needs a group column")
    return ResolvedDesign(group, design.case, design.control, sex,
                          [c for c in covs if c is not None and c != group and c != sex],
                          severity, participant, site)


def case_mask(labels: pd.Series, case: Any, control: Any | None, *, column: str,
              minimum: int = MIN_PER_GROUP_STATS, stage: str = "statistics"
              ) -> tuple[pd.Series, str, str]:
    """Cases (True), controls (False) and other samples (None) from group labels, with the
    case and control labels (as text).

    The case label is always named; the control label may be left out when the column
    holds exactly two labels. Labels are compared as text (``1`` matches ``"1"``).

    Raises
    ------
    TooFewSamplesError
        Fewer than ``minimum`` cases or controls (the message lists the labels found).
    """
    text = labels.astype(object).where(labels.notna(), None)
    text = text.map(lambda v: None if v is None else str(v))
    found = sorted({v for v in text if v is not None})
    case_t = str(case)
    if control is None:
        if case_t not in found:
            raise HikisigError(f"{case_t!r} is not a label of column {column!r} (labels: "
                               f"{', '.join(found[:8]) or 'none'})")
        others = [v for v in found if v != case_t]
        if len(others) > 1:
            raise HikisigError(f"name the control label of column {column!r} (labels: "
                               f"{', '.join(found[:8])})")
        control = others[0] if others else "control"
    control_t = str(control)
    if case_t == control_t:
        raise HikisigError(f"the case and control labels are both {case_t!r}")
    absent = "".join(f"; {t!r} is not a label of column {column!r}" for t in (case_t, control_t)
                     if t not in found)
    flags = np.full(len(text), None, dtype=object)
    flags[(text == control_t).to_numpy()] = False
    flags[(text == case_t).to_numpy()] = True
    out = pd.Series(flags, index=labels.index, dtype=object)
    n_case, n_control = int((out == True).sum()), int((out == False).sum())  # noqa: E712
    if n_case < minimum or n_control < minimum or not n_case:
        raise TooFewSamplesError(
            f"need at least {max(minimum, 1)} {case_t!r} and {minimum} {control_t!r} samples in "
            f"column {column!r} (found {n_case} and {n_control}{absent}; labels: "
            f"{', '.join(found[:8]) or 'none'})", stage)
    other = int(out.isna().sum())
    if other:
        warnings.warn(f"{other} sample(s) with other labels in column {column!r} left out "
                      f"(neither {case_t!r} nor {control_t!r})", OtherLabelsWarning, stacklevel=2)
    return out, case_t, control_t


def numeric_column(data: Dataset, name: str) -> pd.Series:
    """A metadata column as numbers (missing where empty).

    Raises
    ------
    InputError
        Values that are not numbers, with their sample ids.
    """
    col = data.column(name)
    num = pd.to_numeric(col, errors="coerce")
    bad = col.notna() & (col.astype(str).str.strip() != "") & num.isna()
    if bad.any():
        where = data.source or f"study {data.study!r}"
        raise InputError([Problem(where, f"sample {sid!r}: expected a number", column=name,
                                  value=col[sid]) for sid in col.index[bad.to_numpy()][:10]])
    return num.astype(float)


def participant_groups(data: Dataset, column: str | None) -> np.ndarray | None:
    """Participant of each sample when some participant has several samples, else None."""
    if column is None:
        return None
    g = data.column(column).astype(str)
    return g.to_numpy() if g.duplicated().any() else None


def labels_of(values: Sequence[Any]) -> list[str]:
    """The distinct labels of a column, as text, sorted."""
    return sorted({str(v) for v in values if v is not None and not pd.isna(v)})
