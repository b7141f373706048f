"""Replication of a published signature: a study's statistics table against published findings.

The published findings are data (``analysis/data/reference_<name>.toml``): each names an
analyte (a catalog id or a derived-marker id), a stratum (``all``, ``M``, ``F``), the
direction expected in cases (``higher``/``lower``) and a kind (``case_control``,
``sex_specific``, ``stratifier``), with its source and a note of what the paper does not
publish. :func:`compare` reads a tidy table of :func:`hikisig.case_control` (``hikisig
stats``, or ``tables/stats.csv`` of a run) and gives one row per finding.

Rules (see docs/compare.md):

* **Which row.** The effect, its CI and q of a finding come from the table's rows of the
  finding's analyte and stratum of the first test present in ``tests`` (default Welch,
  then Student, then Mann-Whitney): Welch's Hedges g (the difference of means on an
  additive scale), Student's g, or Cliff's delta. q is the table's Benjamini-Hochberg q,
  corrected over every analyte of that stratum and test (not only the published ones).
* **Verdict.** ``agree``: the observed direction (sign of the effect) is the expected one and
  q < alpha; ``disagree``: the opposite direction and q < alpha; ``inconclusive``: q >=
  alpha; ``not measured``: the analyte is not in the table; ``not tested``: the analyte is
  there but not the stratum (e.g. a table without a sex column) or its effect or q is
  missing; ``not testable``: a stratifier (subgroups among cases cannot be judged from a
  case-control table).
* **Sex-specific findings** (published in men only) also carry the group x sex
  interaction of the table (``stratum = "interaction"``, the linear model's log2 ratio of
  the fold changes, men over women): ``specificity`` is ``supported`` when its q < alpha
  and it points the expected way (the effect in men is more in the expected direction than
  in women), ``opposite`` when q < alpha the other way, ``not shown`` when q >= alpha and
  ``not tested`` without an interaction row. A finding that agrees in men without
  interaction evidence agrees in men, and is not shown to be specific to men.
* **Sign test.** Over the findings counted in the sign test (``in_sign_test``; one per
  published claim and stratum) whose direction could be observed, the number whose
  direction matches the expected one: one-sided binomial test against 1/2
  (:func:`scipy.stats.binomtest`, ``alternative="greater"``), whatever their q.
"""

from __future__ import annotations

import math
import tomllib
from collections.abc import Sequence
from dataclasses import dataclass, field
from importlib import resources
from typing import Any

import pandas as pd

from hikisig.errors import HikisigError

__all__ = [
    "COMPARE_COLUMNS",
    "DEFAULT_TESTS",
    "FINDING_COLUMNS",
    "CompareResult",
    "available_references",
    "compare",
    "reference_findings",
    "reference_info",
]

#: Columns of :func:`reference_findings`.
FINDING_COLUMNS = ("id", "analyte", "stratum", "expected", "kind", "in_sign_test", "source",
                   "published")
#: Columns of :attr:`CompareResult.table`.
COMPARE_COLUMNS = ("finding", "analyte", "stratum", "kind", "expected", "test", "effect_type",
                   "observed_direction", "effect", "effect_ci_low", "effect_ci_high", "p", "q",
                   "n_case", "n_control", "interaction_effect", "interaction_q", "verdict",
                   "specificity", "in_sign_test", "direction_matches", "note")
#: Tests that supply a finding's effect and q, in order of preference.
DEFAULT_TESTS = ("welch", "student", "mwu")

_KINDS = ("case_control", "sex_specific", "stratifier")
_DIRECTIONS = ("higher", "lower")
_STRATA = ("all", "M", "F", "cases")
_SEX_NAMES = {"M": ("m", "male", "men", "man"), "F": ("f", "female", "women", "woman")}
_PREFIX = "reference_"


@dataclass
class CompareResult:
    """A statistics table compared with a published signature.

    Attributes
    ----------
    table : DataFrame
        One row per published finding (:data:`COMPARE_COLUMNS`).
    sign_test : dict
        ``n`` findings whose direction could be observed (those counted in the sign test),
        ``k`` of them in the expected direction, one-sided binomial ``p`` (NaN when n = 0).
    summary : str
        One plain-words paragraph.
    reference : dict
        ``name``, ``citation``, ``doi`` and the reference's ``published`` note.
    alpha : float
        The q threshold of the verdicts.
    """

    table: pd.DataFrame
    sign_test: dict[str, Any]
    summary: str
    reference: dict[str, str]
    alpha: float = 0.05
    counts: dict[str, int] = field(default_factory=dict)


def _data_dir() -> Any:
    return resources.files("hikisig.analysis") / "data"


def available_references() -> list[str]:
    """Names of the shipped published signatures.

    Examples
    --------
    >>> "setoyama2021" in available_references()
    True
    """
    names = []
    for entry in _data_dir().iterdir():
        name = entry.name
        if name.startswith(_PREFIX) and name.endswith(".toml"):
            names.append(name[len(_PREFIX):-len(".toml")])
    return sorted(names)


def _load(name: str) -> dict[str, Any]:
    if name not in available_references():
        raise HikisigError(f"unknown reference {name!r} (available: "
                           f"{', '.join(available_references()) or 'none'})")
    text = (_data_dir() / f"{_PREFIX}{name}.toml").read_text(encoding="utf-8")
    data = tomllib.loads(text)
    findings = data.get("finding", [])
    ids = [f.get("id") for f in findings]
    for f in findings:
        where = f"reference {name}, finding {f.get('id')!r}"
        missing = [c for c in FINDING_COLUMNS if c not in f]
        if missing:
            raise HikisigError(f"{where}: no {', '.join(missing)}")
        if f["kind"] not in _KINDS:
            raise HikisigError(f"{where}: kind {f['kind']!r} is not one of {', '.join(_KINDS)}")
        if f["stratum"] not in _STRATA:
            raise HikisigError(f"{where}: stratum {f['stratum']!r} is not one of "
                               f"{', '.join(_STRATA)}")
        if f["kind"] != "stratifier" and f["expected"] not in _DIRECTIONS:
            raise HikisigError(f"{where}: expected {f['expected']!r} is not higher or lower")
    if len(set(ids)) != len(ids):
        raise HikisigError(f"reference {name}: finding ids are not unique")
    return data


def reference_info(name: str = "setoyama2021") -> dict[str, str]:
    """Name, citation, DOI and the note of what is not published, of a reference.

    Examples
    --------
    >>> reference_info()["doi"]
    '10.1080/19585969.2022.2046978'
    """
    ref = _load(name).get("reference", {})
    return {"name": name, "citation": str(ref.get("citation", "")), "doi": str(ref.get("doi", "")),
            "cohort": str(ref.get("cohort", "")), "published": str(ref.get("published", ""))}


def reference_findings(name: str = "setoyama2021") -> pd.DataFrame:
    """The published findings of a reference, one row each (:data:`FINDING_COLUMNS`).

    Raises
    ------
    HikisigError
        For an unknown name (the message lists the available ones).

    Examples
    --------
    >>> f = reference_findings("setoyama2021")
    >>> f.loc[f["id"] == "arginine_men", ["analyte", "stratum", "expected", "kind"]].values.tolist()
    [['arginine', 'M', 'lower', 'sex_specific']]
    """
    data = _load(name)
    frame = pd.DataFrame([{c: f[c] for c in FINDING_COLUMNS} for f in data.get("finding", [])],
                         columns=list(FINDING_COLUMNS))
    frame["in_sign_test"] = frame["in_sign_test"].astype(bool)
    return frame


def _stratum_labels(strata: Sequence[str], wanted: str) -> str | None:
    """The table's label of a stratum (``M`` also as male/men, ``F`` as female/women)."""
    present = [str(s) for s in strata]
    if wanted in present:
        return wanted
    aliases = _SEX_NAMES.get(wanted, ())
    for s in present:
        if s.strip().casefold() in aliases:
            return s
    return None


def _direction(effect: float) -> str:
    if not math.isfinite(effect) or effect == 0:
        return ""
    return "higher" if effect > 0 else "lower"


def _float(value: Any) -> float:
    try:
        out = float(value)
    except (TypeError, ValueError):
        return math.nan
    return out


def _from_meta(stats: pd.DataFrame) -> pd.DataFrame:
    """A pooled table of ``hikisig meta`` (``meta.csv``: ``analyte, stratum, k, estimate,
    ci_low, ci_high, q``) in the statistics table's terms (test ``meta``); any other table
    is returned as it is."""
    if "test" in stats.columns or not {"analyte", "stratum", "k", "estimate", "q"} <= set(stats):
        return stats
    return stats.rename(columns={"estimate": "effect", "ci_low": "effect_ci_low",
                                 "ci_high": "effect_ci_high"}).assign(test="meta")


def _check_table(stats: pd.DataFrame) -> None:
    need = ["analyte", "stratum", "test", "effect", "q"]
    missing = [c for c in need if c not in stats.columns]
    if missing:
        raise HikisigError(f"not a statistics table of hikisig stats or hikisig run: no column "
                           f"{', '.join(missing)}")


def compare(stats: pd.DataFrame, reference: str = "setoyama2021", *, alpha: float = 0.05,
            tests: Sequence[str] = DEFAULT_TESTS) -> CompareResult:
    """Compare a study's case-control statistics with a published signature.

    Parameters
    ----------
    stats : DataFrame
        The tidy table of :func:`hikisig.case_control` (``hikisig stats``, ``tables/stats.csv``
        of ``hikisig run``): columns ``analyte, stratum, test, effect, q`` at least (and
        ``effect_ci_low/high, p, n_case, n_control, effect_type`` when present); or a pooled
        ``meta.csv`` of ``hikisig meta`` (its estimate and q; no interaction, so sex
        specificity is not tested).
    reference : str
        A name of :func:`available_references`.
    alpha : float
        q threshold of ``agree``/``disagree`` and of the interaction's support.
    tests : sequence of str
        Tests whose rows supply effect and q, in order of preference.

    Returns
    -------
    CompareResult

    Examples
    --------
    >>> t = pd.DataFrame({"analyte": ["ornithine", "ornithine"], "stratum": ["M", "interaction"],
    ...                   "test": ["welch", "lm"], "effect": [0.9, 0.1], "q": [0.01, 0.6]})
    >>> r = compare(t)
    >>> row = r.table.set_index("finding").loc["ornithine_men"]
    >>> row["verdict"], row["specificity"]
    ('agree', 'not shown')
    >>> r.table.set_index("finding").loc["arginine_men", "verdict"]
    'not measured'
    """
    if not (math.isfinite(alpha) and 0 < alpha < 1):
        raise HikisigError(f"alpha must be between 0 and 1 (exclusive), not {alpha:g}")
    tests = [str(t) for t in tests]
    if not tests:
        raise HikisigError("give at least one test to take effects from")
    stats = _from_meta(stats)
    if "meta" in set(stats.get("test", pd.Series(dtype=str)).astype(str)):
        tests = ["meta", *tests]
    _check_table(stats)
    findings = reference_findings(reference)
    info = reference_info(reference)

    table = stats.copy()
    table["analyte"] = table["analyte"].astype(str)
    table["stratum"] = table["stratum"].astype(str)
    table["test"] = table["test"].astype(str)
    measured = set(table["analyte"])
    strata = sorted(set(table["stratum"]))
    by_key = {key: grp for key, grp in table.groupby(["analyte", "stratum"], sort=False)}

    rows = []
    for f in findings.itertuples(index=False):
        rows.append(_judge(f._asdict(), by_key, measured, strata, tests, alpha))
    out = pd.DataFrame(rows, columns=list(COMPARE_COLUMNS))
    for c in ("n_case", "n_control"):
        out[c] = pd.to_numeric(out[c], errors="coerce").round().astype("Int64")
    out["direction_matches"] = out["direction_matches"].astype("boolean")

    counted = out[out["in_sign_test"] & out["direction_matches"].notna()]
    n = len(counted)
    k = int(counted["direction_matches"].astype(bool).sum())
    p = math.nan
    if n:
        from scipy.stats import binomtest

        p = float(binomtest(k, n, 0.5, alternative="greater").pvalue)
    sign = {"n": n, "k": k, "p": p}
    counts = {v: int((out["verdict"] == v).sum()) for v in
              ("agree", "disagree", "inconclusive", "not measured", "not tested", "not testable")}
    return CompareResult(table=out, sign_test=sign, summary=_summary(out, sign, counts, info, alpha),
                         reference={k_: info[k_] for k_ in ("name", "citation", "doi", "published")},
                         alpha=alpha, counts=counts)


def _pick(group: pd.DataFrame | None, tests: Sequence[str]) -> pd.Series | None:
    if group is None:
        return None
    for t in tests:
        hit = group[group["test"] == t]
        if len(hit):
            return hit.iloc[0]
    return None


def _judge(f: dict[str, Any], by_key: dict[Any, pd.DataFrame], measured: set[str],
           strata: Sequence[str], tests: Sequence[str], alpha: float) -> dict[str, Any]:
    analyte, kind, expected = str(f["analyte"]), str(f["kind"]), str(f["expected"])
    row: dict[str, Any] = {c: math.nan for c in COMPARE_COLUMNS}
    row.update(finding=f["id"], analyte=analyte, stratum=f["stratum"], kind=kind,
               expected=expected, test="", effect_type="", observed_direction="",
               specificity="", in_sign_test=bool(f["in_sign_test"]) and kind != "stratifier",
               direction_matches=None, note="")
    if analyte not in measured:
        row.update(verdict="not measured", note=f"{analyte} is not in the statistics table")
        return row
    if kind == "stratifier":
        row.update(verdict="not testable",
                   note="separates subgroups of cases in the paper: not a case-control direction; "
                        "compare with the subgroups of hikisig stratify (tables/stratify_profiles)")
        return row

    label = _stratum_labels(strata, str(f["stratum"]))
    hit = _pick(by_key.get((analyte, label)) if label is not None else None, tests)
    if hit is None:
        row.update(verdict="not tested",
                   note=f"no {'/'.join(tests)} row of stratum {f['stratum']} for {analyte}"
                        + (" (no sex column?)" if f["stratum"] in ("M", "F") else ""))
        return row
    effect, q = _float(hit.get("effect")), _float(hit.get("q"))
    row.update(test=hit["test"], effect_type=str(hit.get("effect_type", "") or ""),
               effect=effect, q=q, p=_float(hit.get("p")),
               effect_ci_low=_float(hit.get("effect_ci_low")),
               effect_ci_high=_float(hit.get("effect_ci_high")),
               n_case=_float(hit.get("n_case")), n_control=_float(hit.get("n_control")))
    observed = _direction(effect)
    row["observed_direction"] = observed
    if observed:
        row["direction_matches"] = observed == expected
    if not observed or not math.isfinite(q):
        row.update(verdict="not tested", note="no effect or q in the table's row")
    elif q >= alpha:
        row.update(verdict="inconclusive",
                   note=f"{observed} in cases as expected, q = {q:.3g} >= {alpha:g}"
                   if observed == expected else
                   f"{observed} in cases (expected {expected}), q = {q:.3g} >= {alpha:g}")
    elif observed == expected:
        row.update(verdict="agree", note=f"{observed} in cases, q = {q:.3g}")
    else:
        row.update(verdict="disagree", note=f"{observed} in cases (expected {expected}), q = {q:.3g}")

    if kind == "sex_specific":
        _specificity(row, _pick(by_key.get((analyte, "interaction")), ("lm",)), expected, alpha)
    return row


def _specificity(row: dict[str, Any], inter: pd.Series | None, expected: str, alpha: float) -> None:
    """Whether the group x sex interaction (men over women) supports a finding in men."""
    sex = "men" if row["stratum"] == "M" else "women"
    if inter is None or not math.isfinite(_float(inter.get("q"))):
        row["specificity"] = "not tested"
        row["note"] += "; no group x sex interaction in the table"
        return
    effect, q = _float(inter.get("effect")), _float(inter.get("q"))
    row["interaction_effect"], row["interaction_q"] = effect, q
    # the interaction is men's log2 fold change minus women's: a finding in men is specific
    # when it points the expected way; one in women when it points the other way
    sign = 1.0 if row["stratum"] == "M" else -1.0
    toward = _direction(sign * effect) == expected
    if q >= alpha:
        row["specificity"] = "not shown"
    else:
        row["specificity"] = "supported" if toward else "opposite"
    verdict = row["verdict"]
    lead = {"agree": f"agrees in {sex}", "disagree": f"disagrees in {sex}",
            "inconclusive": f"inconclusive in {sex}"}.get(verdict, verdict)
    tail = {"supported": f"the group x sex interaction supports specificity to {sex} "
                         f"(q = {q:.3g})",
            "not shown": f"not shown to be specific to {sex} (interaction q = {q:.3g})",
            "opposite": f"the group x sex interaction points the other way (q = {q:.3g})"}
    row["note"] = f"{lead}; {tail[row['specificity']]}"


def _summary(out: pd.DataFrame, sign: dict[str, Any], counts: dict[str, int],
             info: dict[str, str], alpha: float) -> str:
    testable = out[out["kind"] != "stratifier"]
    n_all = len(testable)
    n_sign = int(out["in_sign_test"].sum())
    parts = [f"Compared with {info['name']} ({n_all} case-control findings, {n_sign} of them "
             "in the sign test"
             f", {int((out['kind'] == 'stratifier').sum())} stratifiers): "
             f"{counts['agree']} agree (expected direction, q < {alpha:g}), "
             f"{counts['disagree']} disagree, {counts['inconclusive']} inconclusive"]
    if counts["not measured"]:
        parts.append(f", {counts['not measured']} not measured")
    if counts["not tested"]:
        parts.append(f", {counts['not tested']} not tested")
    parts.append(". ")
    if sign["n"]:
        parts.append(f"Directions match in {sign['k']} of {sign['n']} findings of the sign test "
                     f"(one-sided binomial p = {sign['p']:.3g}). ")
    else:
        parts.append("No finding of the sign test could be observed. ")
    sex = out[out["kind"] == "sex_specific"]
    if len(sex):
        agree = sex[sex["verdict"] == "agree"]
        a, specific = len(agree), int((agree["specificity"] == "supported").sum())
        parts.append(f"Of {len(sex)} findings published in men, {a} agree in men")
        if a:
            parts.append(f", {specific} of them shown to be specific to men (group x sex "
                         f"interaction q < {alpha:g})")
            if specific < a:
                parts.append(f"; {a - specific} agree in men but are not shown to be specific "
                             "to men")
        parts.append(". ")
    strat = out[out["kind"] == "stratifier"]
    if len(strat):
        parts.append(f"Stratifiers ({', '.join(strat['analyte'])}) are not testable from a "
                     "case-control table.")
    return "".join(parts).strip()

