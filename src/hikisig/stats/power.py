"""Power and sample size of the study's two-group comparisons.

Every analyte is compared between cases and controls by a two-sample t-test on a
standardised difference (Cohen's d, estimated by Hedges' g in ``hikisig stats``), and
the p-values of all analytes are corrected by Benjamini-Hochberg (BH) at a false
discovery rate (FDR). This module answers two planning questions for that design:

* with the group sizes of a study (overall and within each sex), which standardised
  difference is detected with a given power at the per-test alpha of the correction
  (:func:`detectable_effect`, :func:`study_detectability`), and how wide the 95% CI
  of an AUC would be (:func:`auc_ci_half_width`, Hanley & McNeil 1982);
* with an effect of a given size (or the Hedges' g of every analyte of a previous
  ``hikisig stats`` table), how many participants per group are needed
  (:func:`required_n`, :func:`required_n_table`).

Power is that of the two-sided two-sample Student t-test: the statistic follows a
noncentral t distribution with ``n_case + n_control - 2`` degrees of freedom and
noncentrality ``d * sqrt(n_case * n_control / (n_case + n_control))``, and both tails
count (as in R's ``pwr::pwr.t2n.test``, against which it is tested). With equal
variances Welch's test has practically the same power. The minimal detectable
effect and the required n are found by a vectorised bisection on that power
(relative tolerance 1e-13).

BH has no fixed per-test alpha: its threshold for the k-th smallest p-value is
``k * fdr / n_analytes`` and depends on how many analytes carry true effects.
:func:`bh_alpha` approximates it in one of two documented ways:

* ``true_share=None`` (default, conservative): ``alpha = fdr / n_analytes``, the
  threshold of BH's first step. An analyte that passes it is declared whatever the
  other analytes do, so the power computed at this alpha is a lower bound of the
  power under BH (the Bonferroni threshold at level ``fdr``);
* ``true_share=s``: the threshold BH settles at over many analytes when a share ``s``
  of them have true effects, each detected with the target power. BH rejects the
  p-values below ``u = fdr * R(u) / n_analytes`` (``R(u)``: the rejections at ``u``);
  for many analytes ``R(u) / n_analytes`` tends to ``(1 - s) u + s power``
  (Genovese & Wasserman 2002, JRSS B 64:499-517), whose fixed point is
  ``alpha = fdr * s * power / (1 - fdr * (1 - s))``.

Examples
--------
>>> round(power_two_sample(0.8, 42, 41, alpha=0.05), 3)
0.95
>>> round(detectable_effect(42, 41, alpha=0.05 / 127, power=0.8), 3)
1.002
>>> round(required_n(0.8, alpha=0.05, power=0.8), 2)
25.52
"""

from __future__ import annotations

import math
import numbers
from collections.abc import Callable, Mapping
from typing import Any

import numpy as np
import pandas as pd
from scipy import stats as sps

from hikisig.errors import HikisigError

__all__ = [
    "DEFAULT_AUC",
    "DEFAULT_FDR",
    "DEFAULT_N_ANALYTES",
    "DEFAULT_POWER",
    "DEFAULT_REFERENCE_D",
    "DETECTABILITY_COLUMNS",
    "auc_ci_half_width",
    "bh_alpha",
    "cohort_detectability",
    "detectable_effect",
    "hanley_mcneil_se",
    "power_two_sample",
    "required_n",
    "required_n_table",
    "sex_strata",
    "study_detectability",
    "welch_effects",
]

#: False discovery rate of the Benjamini-Hochberg correction of ``hikisig stats``.
DEFAULT_FDR = 0.05
#: Analytes the study evaluated (about 127 molecules, Setoyama et al. 2021).
DEFAULT_N_ANALYTES = 127
#: Target power of the planning.
DEFAULT_POWER = 0.8
#: The study's reported random-forest AUC (0.854), rounded.
DEFAULT_AUC = 0.85
#: A "large" standardised difference (Cohen 1988), whose power each reading states.
DEFAULT_REFERENCE_D = 0.8
#: The nominal per-test alpha reported beside the corrected one.
NOMINAL_ALPHA = 0.05

#: Columns of :func:`study_detectability`.
DETECTABILITY_COLUMNS = [
    "stratum", "n_case", "n_control", "n_analytes", "fdr", "alpha_rule", "alpha", "power",
    "min_d", "nominal_alpha", "min_d_nominal", "reference_d", "power_at_reference_d",
    "power_at_reference_d_nominal", "auc",
    "auc_ci_level", "auc_ci_half_width", "reading",
]

_STRATUM_NAMES = {"F": "women", "M": "men"}
_RTOL = 1e-13
_MAX_N = 1e9  # as pwr: no solution above a billion per group


def _result(x: np.ndarray) -> Any:
    """A Python float for a 0-d result, else the array."""
    return float(x) if np.ndim(x) == 0 else x


def _check_probability(value: float, name: str) -> None:
    if not (isinstance(value, int | float) and 0 < value < 1):
        raise HikisigError(f"{name} must be between 0 and 1 (exclusive), not {value}")


def _check_power(power: float, alpha: Any) -> None:
    _check_probability(power, "power")
    if np.any(np.asarray(alpha, dtype=float) >= power):
        raise HikisigError(f"power ({power}) must exceed alpha (the power of a zero difference)")


def _bisect(f: Callable[[np.ndarray], np.ndarray], lo: np.ndarray, hi: np.ndarray,
            maxiter: int = 400) -> np.ndarray:
    """Roots of increasing ``f`` between ``lo`` (f < 0) and ``hi`` (f >= 0), elementwise."""
    lo, hi = lo.copy(), hi.copy()
    for _ in range(maxiter):
        mid = 0.5 * (lo + hi)
        below = f(mid) < 0
        lo = np.where(below, mid, lo)
        hi = np.where(below, hi, mid)
        if np.all(~(hi - lo > _RTOL * hi)):  # also stops on NaN
            break
    return 0.5 * (lo + hi)


def _bracket(f: Callable[[np.ndarray], np.ndarray], lo: np.ndarray, start: float, cap: float
             ) -> np.ndarray:
    """An upper end ``hi`` with f(hi) >= 0, from ``start`` by factors of 4 up to ``cap``
    (NaN where f stays negative up to ``cap``)."""
    hi = np.maximum(np.full(lo.shape, start), 2 * lo)
    while True:
        short = ~(f(hi) >= 0)  # NaN too
        grow = short & (hi < cap)
        if not grow.any():
            return np.where(short, np.nan, hi)
        hi = np.where(grow, np.minimum(4 * hi, cap), hi)


def power_two_sample(d: Any, n_case: Any, n_control: Any, alpha: Any = NOMINAL_ALPHA) -> Any:
    """Power of the two-sided two-sample t-test for a standardised difference.

    Parameters
    ----------
    d : float or array_like
        Standardised difference of means (Cohen's d); its sign does not matter.
    n_case, n_control : float or array_like
        Group sizes (at least 2 each, else NaN; need not be whole numbers).
    alpha : float or array_like
        Per-test significance level.

    Returns
    -------
    float or ndarray
        ``P(|T| > t_{1-alpha/2, nu})`` with ``T`` noncentral t, ``nu = n_case + n_control
        - 2`` and noncentrality ``|d| / sqrt(1/n_case + 1/n_control)``; arrays broadcast.

    Examples
    --------
    >>> round(power_two_sample(0.8, 10, 10), 4)
    0.3951
    >>> power_two_sample([0.0, 0.5], 30, 30).round(4)
    array([0.05  , 0.4779])
    """
    d, n1, n2, a = (np.asarray(v, dtype=np.float64) for v in (d, n_case, n_control, alpha))
    valid = (n1 >= 2) & (n2 >= 2)
    n1, n2 = np.where(valid, n1, np.nan), np.where(valid, n2, np.nan)
    nu = n1 + n2 - 2
    ncp = np.abs(d) / np.sqrt(1 / n1 + 1 / n2)
    with np.errstate(invalid="ignore"):
        q = sps.t.isf(a / 2, nu)
        # the lower tail P(T < -q) as P(T' > q) with T' of noncentrality -ncp: nct.cdf
        # fails (NaN) far in its left tail
        p = sps.nct.sf(q, nu, ncp) + sps.nct.sf(q, nu, -ncp)
    return _result(np.asarray(p, dtype=np.float64))


def detectable_effect(n_case: Any, n_control: Any, alpha: Any = NOMINAL_ALPHA,
                      power: float = DEFAULT_POWER) -> Any:
    """The smallest standardised difference detected with ``power`` at ``alpha``.

    Parameters
    ----------
    n_case, n_control : float or array_like
        Group sizes (NaN where a group has fewer than 2).
    alpha : float or array_like
        Per-test significance level (two-sided), below ``power``.
    power : float
        Target power, in (0, 1).

    Returns
    -------
    float or ndarray
        ``d >= 0`` with ``power_two_sample(d, n_case, n_control, alpha) == power``.

    Examples
    --------
    >>> round(detectable_effect(10, 10), 3)
    1.325
    >>> detectable_effect([31, 11], [31, 10], alpha=0.05).round(3)
    array([0.723, 1.291])
    """
    _check_power(power, alpha)
    n1, n2, a = np.broadcast_arrays(*(np.asarray(v, dtype=np.float64)
                                      for v in (n_case, n_control, alpha)))

    def f(d: np.ndarray) -> np.ndarray:
        return np.asarray(power_two_sample(d, n1, n2, a)) - power

    lo = np.zeros(n1.shape)
    hi = _bracket(f, lo, 10.0, 1e6)
    return _result(_bisect(f, lo, hi))


def required_n(d: Any, alpha: Any = NOMINAL_ALPHA, power: float = DEFAULT_POWER,
               ratio: float = 1.0) -> Any:
    """Cases needed to detect a standardised difference with ``power`` at ``alpha``, with
    ``ratio`` controls per case.

    Parameters
    ----------
    d : float or array_like
        Standardised difference (its sign does not matter); NaN where it is 0 or NaN.
    alpha : float or array_like
        Per-test significance level (two-sided), below ``power``.
    power : float
        Target power, in (0, 1).
    ratio : float
        Controls per case (``n_control = ratio * n_case``).

    Returns
    -------
    float or ndarray
        The exact (not rounded) number of cases ``n`` with ``power_two_sample(d, n,
        ratio * n, alpha) == power``, at least ``max(2, 2 / ratio)`` so that each group
        has 2 participants (as ``pwr.t.test``'s ``n`` for ``ratio = 1``). Round it up to
        plan: the power only grows with either group. NaN where the difference is 0 or
        more than a billion cases would be needed.

    Examples
    --------
    >>> round(required_n(0.5), 2)
    63.77
    >>> required_n([0.8, 1.2], alpha=0.05 / 127).round(2)
    array([63.27, 29.89])
    >>> round(required_n(0.8, ratio=2), 2)
    19.06
    """
    _check_power(power, alpha)
    if not (isinstance(ratio, int | float) and ratio > 0 and math.isfinite(ratio)):
        raise HikisigError(f"ratio must be a positive number, not {ratio}")
    dd, a = np.broadcast_arrays(np.abs(np.asarray(d, dtype=np.float64)),
                                np.asarray(alpha, dtype=np.float64))
    dd = np.where(dd > 0, dd, np.nan)

    def f(n: np.ndarray) -> np.ndarray:
        return np.asarray(power_two_sample(dd, n, ratio * n, a)) - power

    lo = np.full(dd.shape, max(2.0, 2.0 / ratio))
    enough = f(lo) >= 0
    hi = _bracket(f, lo, 100.0, _MAX_N)
    n = _bisect(f, np.where(enough, np.nan, lo), hi)
    return _result(np.where(np.isnan(dd), np.nan, np.where(enough, lo, n)))


def hanley_mcneil_se(auc: Any, n_case: Any, n_control: Any) -> Any:
    """Standard error of an AUC (Hanley & McNeil 1982, Radiology 143:29-36).

    ``SE^2 = [A(1-A) + (n_case-1)(Q1-A^2) + (n_control-1)(Q2-A^2)] / (n_case n_control)``
    with ``Q1 = A/(2-A)`` and ``Q2 = 2A^2/(1+A)``; cases are the "abnormal" group.

    Examples
    --------
    >>> round(hanley_mcneil_se(0.85, 42, 41), 4)
    0.0428
    """
    a, n1, n2 = (np.asarray(v, dtype=np.float64) for v in (auc, n_case, n_control))
    q1, q2 = a / (2 - a), 2 * a**2 / (1 + a)
    with np.errstate(invalid="ignore", divide="ignore"):
        var = (a * (1 - a) + (n1 - 1) * (q1 - a**2) + (n2 - 1) * (q2 - a**2)) / (n1 * n2)
        se = np.sqrt(np.where((n1 >= 1) & (n2 >= 1) & (a >= 0) & (a <= 1), var, np.nan))
    return _result(se)


def auc_ci_half_width(auc: Any, n_case: Any, n_control: Any, level: float = 0.95) -> Any:
    """Expected half-width of the normal-approximation CI of an AUC: ``z * SE`` with the
    Hanley & McNeil (1982) standard error (:func:`hanley_mcneil_se`).

    Examples
    --------
    >>> round(auc_ci_half_width(0.85, 42, 41), 4)
    0.0839
    >>> auc_ci_half_width(0.85, [11, 31], [10, 31]).round(3)
    array([0.169, 0.098])
    """
    _check_probability(level, "level")
    se = np.asarray(hanley_mcneil_se(auc, n_case, n_control))
    return _result(sps.norm.ppf(0.5 + level / 2) * se)


def bh_alpha(fdr: float = DEFAULT_FDR, n_analytes: int = DEFAULT_N_ANALYTES,
             power: float = DEFAULT_POWER, true_share: float | None = None) -> float:
    """Per-test alpha that stands for Benjamini-Hochberg at ``fdr`` over ``n_analytes``.

    Parameters
    ----------
    fdr : float
        False discovery rate, in (0, 1).
    n_analytes : int
        Analytes tested (at least 1).
    power : float
        Target power (used only with ``true_share``).
    true_share : float, optional
        Share of analytes with true effects, in (0, 1). None (default): the conservative
        ``fdr / n_analytes``, the threshold of BH's first step (the smallest p-value
        passes it whatever the others do). Given: ``fdr * s * power / (1 - fdr * (1 -
        s))``, the threshold BH converges to over many analytes when a share ``s`` of
        them are detected with ``power`` (the fixed point of ``u = fdr * ((1 - s) u + s
        power)``).

    Examples
    --------
    >>> round(bh_alpha(0.05, 127), 6)
    0.000394
    >>> round(bh_alpha(0.05, 127, power=0.8, true_share=0.1), 6)
    0.004188
    """
    _check_probability(fdr, "fdr")
    if not (isinstance(n_analytes, numbers.Integral) and not isinstance(n_analytes, bool)
            and n_analytes >= 1):
        raise HikisigError(f"the number of analytes must be a whole number >= 1, not {n_analytes}")
    if true_share is None:
        return fdr / int(n_analytes)
    _check_probability(power, "power")
    _check_probability(true_share, "the share of true effects")
    return fdr * true_share * power / (1 - fdr * (1 - true_share))


def sex_strata(n_case: int, n_control: int, women_share: float | None = None
               ) -> tuple[dict[str, int], dict[str, int]]:
    """Cases and controls per stratum: ``all``, and ``F`` and ``M`` when ``women_share``
    (the share of women in each group) is given; women are rounded to the nearest whole
    participant (halves up) and men are the rest.

    Examples
    --------
    >>> sex_strata(42, 41, 0.25)
    ({'all': 42, 'F': 11, 'M': 31}, {'all': 41, 'F': 10, 'M': 31})
    """
    cases, controls = {"all": int(n_case)}, {"all": int(n_control)}
    if women_share is not None:
        if not 0 <= women_share <= 1:
            raise HikisigError(f"the share of women must be between 0 and 1, not {women_share}")
        for counts, n in ((cases, int(n_case)), (controls, int(n_control))):
            women = math.floor(n * women_share + 0.5)
            counts["F"], counts["M"] = women, n - women
    return cases, controls


def _people(stratum: str, n_case: int, n_control: int) -> str:
    who = _STRATUM_NAMES.get(stratum)
    if n_case == n_control:
        return f"{n_case} {who} per group" if who else f"{n_case} per group"
    among = f" among {who}" if who else ""
    return f"{n_case} cases and {n_control} controls{among}"


def _reading(stratum: str, n_case: int, n_control: int, alpha: float, power: float, min_d: float,
             nominal_alpha: float, min_nominal: float, reference_d: float, power_ref: float,
             power_nominal: float, auc: float | None, half: float) -> str:
    people = _people(stratum, n_case, n_control)
    if not np.isfinite(min_d):
        return f"with {people}, no t-test is possible (at least 2 per group are needed)"
    text = (f"with {people}, power is {power_ref:.2f} for d = {reference_d:g} at alpha = "
            f"{alpha:.2g} ({power_nominal:.2f} at an uncorrected {nominal_alpha:g}); only "
            f"differences of d >= {min_d:.2f} are found with {power:.0%} power "
            f"(d >= {min_nominal:.2f} at an uncorrected alpha of {nominal_alpha:g})")
    if auc is not None and np.isfinite(half):
        text += f"; an AUC of {auc:g} is estimated within +/- {half:.2f}"
    return text


def study_detectability(n_case_by_stratum: Mapping[str, int], n_control_by_stratum: Mapping[str, int],
                        n_analytes: int = DEFAULT_N_ANALYTES, fdr: float = DEFAULT_FDR,
                        power: float = DEFAULT_POWER, auc: float | None = None, *,
                        alpha: float | None = None, true_share: float | None = None,
                        reference_d: float = DEFAULT_REFERENCE_D,
                        nominal_alpha: float = NOMINAL_ALPHA, level: float = 0.95) -> pd.DataFrame:
    """What a study of these group sizes can detect, per stratum ("What this study can
    detect").

    Parameters
    ----------
    n_case_by_stratum, n_control_by_stratum : mapping of str to int
        Cases and controls per stratum (``all``, and ``F``/``M`` for each sex, as the
        strata of ``hikisig stats``; see :func:`sex_strata`). Same keys in both.
    n_analytes : int
        Analytes corrected together by BH.
    fdr : float
        BH's false discovery rate.
    power : float
        Target power.
    auc : float, optional
        An AUC whose expected CI half-width is reported (NaN columns when None).
    alpha : float, optional
        Per-test alpha given directly (``alpha_rule`` "given"); by default
        :func:`bh_alpha` (``fdr / n_analytes``, rule "bh_first_step", or BH's threshold
        over many analytes with ``true_share``, rule "bh_asymptotic").
    true_share : float, optional
        Share of analytes with true effects (rule "bh_asymptotic").
    reference_d : float
        Standardised difference whose power each row states (default 0.8, "large").
    nominal_alpha : float
        Uncorrected alpha of the ``min_d_nominal`` column.
    level : float
        Confidence level of the AUC interval.

    Returns
    -------
    DataFrame
        One row per stratum with :data:`DETECTABILITY_COLUMNS`: group sizes, the
        correction (``alpha_rule``, ``alpha``), ``min_d`` (smallest d detected with
        ``power`` at ``alpha``), ``min_d_nominal`` (at ``nominal_alpha``),
        ``power_at_reference_d`` (at ``alpha``; ``power_at_reference_d_nominal`` at
        ``nominal_alpha``), ``auc_ci_half_width`` and a one-sentence
        ``reading``. Strata with fewer than 2 in a group have NaN and say so.

    Examples
    --------
    >>> cases, controls = sex_strata(42, 41, 0.25)
    >>> t = study_detectability(cases, controls, n_analytes=127, auc=0.85)
    >>> t[["stratum", "n_case", "n_control", "min_d", "min_d_nominal"]].round(2)
      stratum  n_case  n_control  min_d  min_d_nominal
    0     all      42         41   1.00           0.62
    1       F      11         10   2.30           1.29
    2       M      31         31   1.18           0.72
    >>> print(t.loc[1, "reading"])  # doctest: +NORMALIZE_WHITESPACE
    with 11 cases and 10 controls among women, power is 0.02 for d = 0.8 at alpha = 0.00039
    (0.41 at an uncorrected 0.05); only differences of d >= 2.30 are found with 80% power
    (d >= 1.29 at an uncorrected alpha of 0.05); an AUC of 0.85 is estimated within +/- 0.17
    """
    if set(n_case_by_stratum) != set(n_control_by_stratum):
        raise HikisigError("cases and controls must be given for the same strata")
    for counts in (n_case_by_stratum, n_control_by_stratum):
        for stratum, n in counts.items():
            if n < 0:
                raise HikisigError(f"group sizes cannot be negative ({stratum}: {n})")
    if alpha is None:
        a = bh_alpha(fdr, n_analytes, power, true_share)
        rule = "bh_first_step" if true_share is None else "bh_asymptotic"
    else:
        _check_probability(alpha, "alpha")
        a, rule = float(alpha), "given"
    _check_power(power, max(a, nominal_alpha))
    strata = list(n_case_by_stratum)
    n1 = np.array([n_case_by_stratum[s] for s in strata], dtype=np.float64)
    n2 = np.array([n_control_by_stratum[s] for s in strata], dtype=np.float64)
    min_d = np.asarray(detectable_effect(n1, n2, a, power))
    min_nominal = np.asarray(detectable_effect(n1, n2, nominal_alpha, power))
    p_ref = np.asarray(power_two_sample(reference_d, n1, n2, a))
    p_ref_nominal = np.asarray(power_two_sample(reference_d, n1, n2, nominal_alpha))
    half = (np.asarray(auc_ci_half_width(auc, n1, n2, level)) if auc is not None
            else np.full(len(strata), np.nan))
    frame = pd.DataFrame({
        "stratum": strata, "n_case": n1.astype(int), "n_control": n2.astype(int),
        "n_analytes": n_analytes, "fdr": fdr, "alpha_rule": rule, "alpha": a, "power": power,
        "min_d": min_d, "nominal_alpha": nominal_alpha, "min_d_nominal": min_nominal,
        "reference_d": reference_d, "power_at_reference_d": p_ref,
        "power_at_reference_d_nominal": p_ref_nominal,
        "auc": np.nan if auc is None else auc, "auc_ci_level": level, "auc_ci_half_width": half,
    })
    frame["reading"] = [
        _reading(s, int(c), int(k), a, power, float(m), nominal_alpha, float(mn), reference_d,
                 float(p), float(pn), auc, float(h))
        for s, c, k, m, mn, p, pn, h in zip(strata, n1, n2, min_d, min_nominal, p_ref, p_ref_nominal,
                                            half, strict=True)]
    return frame[DETECTABILITY_COLUMNS]


def cohort_detectability(cohort: pd.DataFrame, case: str, control: str, n_analytes: int,
                         auc: float | None = None, fdr: float = DEFAULT_FDR,
                         power: float = DEFAULT_POWER) -> pd.DataFrame:
    """:func:`study_detectability` for the participants a run analysed.

    Parameters
    ----------
    cohort : DataFrame
        The cohort table of :func:`hikisig.stats.describe.cohort_summary` (``group``,
        ``sex`` with ``all`` and, with a sex column, ``M`` and ``F``; ``n``).
    case, control : str
        The group labels.
    n_analytes : int
        Analytes corrected together.
    auc : float, optional
        The AUC whose expected interval half-width is shown (the run's own).
    fdr, power : float
        BH's false discovery rate and the target power.

    Returns
    -------
    DataFrame
        As :func:`study_detectability`: ``all`` first, then ``F`` and ``M`` when present.

    Examples
    --------
    >>> t = pd.DataFrame({"group": ["control"] * 3 + ["case"] * 3, "sex": ["M", "F", "all"] * 2,
    ...                   "n": [31, 10, 41, 31, 11, 42]})
    >>> cohort_detectability(t, "case", "control", 127)[["stratum", "n_case", "min_d"]].round(2)
      stratum  n_case  min_d
    0     all      42   1.00
    1       F      11   2.30
    2       M      31   1.18
    """
    counts = cohort.set_index(["group", "sex"])["n"]
    strata = [s for s in ("all", "F", "M") if (case, s) in counts.index and (control, s) in counts.index]
    if not strata:
        raise HikisigError("the cohort table has no counts of cases and controls")
    return study_detectability({s: int(counts[(case, s)]) for s in strata},
                               {s: int(counts[(control, s)]) for s in strata},
                               n_analytes=max(int(n_analytes), 1), fdr=fdr, power=power, auc=auc)


def welch_effects(table: pd.DataFrame) -> pd.DataFrame:
    """The Hedges' g of every analyte and stratum from a ``hikisig stats`` table (the
    ``welch`` rows with ``effect_type`` hedges_g; strata all, F, M).

    Returns
    -------
    DataFrame
        ``analyte, stratum, effect, n_case, n_control`` (the group sizes of the table).

    Raises
    ------
    HikisigError
        When the table lacks the columns of a ``hikisig stats`` table or has no Welch rows
        with Hedges' g (e.g. a table of ``--test mwu``, or of an additive scale, whose
        Welch effect is a difference of means).

    Examples
    --------
    >>> t = pd.DataFrame({"analyte": ["orn", "orn"], "stratum": ["all", "all"],
    ...                   "test": ["welch", "mwu"], "effect": [0.52, 0.3],
    ...                   "effect_type": ["hedges_g", "cliffs_delta"],
    ...                   "n_case": [42, 42], "n_control": [41, 41]})
    >>> welch_effects(t)
      analyte stratum  effect  n_case  n_control
    0     orn     all    0.52      42         41
    """
    need = ["analyte", "stratum", "test", "effect", "n_case", "n_control"]
    missing = [c for c in need if c not in table.columns]
    if missing:
        raise HikisigError(f"not a table of hikisig stats: no column {', '.join(missing)}")
    rows = table["test"].astype(str) == "welch"
    if "effect_type" in table.columns:
        rows &= table["effect_type"].astype(str) == "hedges_g"
    if not rows.any():
        raise HikisigError("the table has no Welch rows with Hedges' g (run hikisig stats with "
                           "--test welch on a linear or logged scale)")
    out = table.loc[rows, need[:2] + need[3:]].reset_index(drop=True)
    out["effect"] = pd.to_numeric(out["effect"], errors="coerce")
    for col in ("n_case", "n_control"):
        out[col] = pd.to_numeric(out[col], errors="coerce").round().astype("Int64")
    return out


def required_n_table(effects: pd.DataFrame, alpha: float, power: float = DEFAULT_POWER,
                     ratio: float = 1.0) -> pd.DataFrame:
    """Participants needed to detect each effect of a table.

    Parameters
    ----------
    effects : DataFrame
        A column ``effect`` (standardised differences, e.g. from :func:`welch_effects`);
        its other columns are kept.
    alpha : float
        Per-test alpha (e.g. :func:`bh_alpha`).
    power : float
        Target power.
    ratio : float
        Controls per case.

    Returns
    -------
    DataFrame
        The input's columns, then ``alpha, power, ratio``, ``n_case_exact`` (the root of
        :func:`required_n`) and the whole numbers ``n_case_required``,
        ``n_control_required`` (rounded up) and ``n_total_required`` (missing where the
        effect is 0 or missing).

    Examples
    --------
    >>> t = required_n_table(pd.DataFrame({"effect": [0.5, -0.8, 0.0]}), alpha=0.05)
    >>> t[["effect", "n_case_required", "n_control_required", "n_total_required"]]
       effect  n_case_required  n_control_required  n_total_required
    0     0.5               64                  64               128
    1    -0.8               26                  26                52
    2     0.0             <NA>                <NA>              <NA>
    """
    exact = np.atleast_1d(np.asarray(required_n(effects["effect"].to_numpy(dtype=np.float64),
                                                alpha, power, ratio)))
    out = effects.reset_index(drop=True).copy()
    out["alpha"], out["power"], out["ratio"] = alpha, power, ratio
    out["n_case_exact"] = exact
    # a root within the solver's tolerance of a whole number is that number
    n1 = np.ceil(exact * (1 - 1e-9))
    n2 = np.ceil(ratio * exact * (1 - 1e-9))
    out["n_case_required"] = pd.array(np.where(np.isfinite(n1), n1, np.nan), dtype="Int64")
    out["n_control_required"] = pd.array(np.where(np.isfinite(n2), n2, np.nan), dtype="Int64")
    out["n_total_required"] = out["n_case_required"] + out["n_control_required"]
    return out
