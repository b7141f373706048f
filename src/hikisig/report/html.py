"""Assemble the self-contained HTML report of a run."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
from jinja2 import Environment, FileSystemLoader, StrictUndefined

from hikisig.report import figures as F  # noqa: N812
from hikisig.report.methods import methods_paragraphs
from hikisig.results import RunResults

__all__ = ["render_report"]

TEMPLATES = Path(__file__).parent / "templates"
SEX_LABEL = {"M": "men", "F": "women"}


@dataclass
class Table:
    columns: list[str]
    rows: list[list[str]]
    caption: str = ""


@dataclass
class Figure:
    id: str
    png: str
    alt: str
    caption: str


@dataclass
class Section:
    id: str
    title: str
    ran: bool = True
    note: str = ""
    paragraphs: list[str] = field(default_factory=list)
    figures: list[Figure] = field(default_factory=list)
    tables: list[Table] = field(default_factory=list)
    #: the model's validation verdict, shown first (None: the section has no verdict)
    validated: bool | None = None
    verdict: str = ""


# -- formatting -----------------------------------------------------------------
def _num(v: Any, digits: int = 2) -> str:
    if v is None:
        return "–"
    try:
        f = float(v)
    except (TypeError, ValueError):
        return str(v)
    if not np.isfinite(f):
        return "–"
    if f != 0 and (abs(f) < 10 ** -digits or abs(f) >= 1e5):
        return f"{f:.{max(digits - 1, 1)}e}"
    return f"{f:.{digits}f}"


def _p(v: Any) -> str:
    try:
        f = float(v)
    except (TypeError, ValueError):
        return "–"
    if not np.isfinite(f):
        return "–"
    if f < 0.001:
        return f"{f:.1e}"
    return f"{f:.3f}"


def _pct(v: Any) -> str:
    return "–" if v is None or not np.isfinite(float(v)) else f"{100 * float(v):.1f}%"


def _ci(v: Any, lo: Any, hi: Any, fmt: Any = _num) -> str:
    return f"{fmt(v)} ({fmt(lo)}–{fmt(hi)})"


def names_of(results: RunResults) -> dict[str, str]:
    """Display names of analytes and markers."""
    return _names(results)


def _names(results: RunResults) -> dict[str, str]:
    names: dict[str, str] = {}
    if "display_name" in results.var:
        names.update({str(k): str(v) for k, v in results.var["display_name"].dropna().items()})
    if "display_name" in results.marker_formulas:
        names.update({str(k): str(v) for k, v in results.marker_formulas["display_name"].dropna().items()})
    return names


def _units(results: RunResults) -> dict[str, str]:
    if "unit" not in results.var:
        return {}
    return {str(k): str(v) for k, v in results.var["unit"].dropna().items() if str(v) not in ("", "nan")}


def _by_sex(r: RunResults) -> bool:
    """Whether the study has sex strata (a sex column in the design)."""
    return r.methods.by is not None


def _is_empty(frame: pd.DataFrame | None) -> bool:
    return frame is None or len(frame) == 0


# -- sections -------------------------------------------------------------------
def _cohort(r: RunResults) -> Section:
    sec = Section("cohort", "Cohort")
    c = r.cohort
    if c is None:
        sec.ran, sec.note = False, "No cohort summary was recorded."
        return sec
    label = {"M": "men", "F": "women", "all": "all"}
    rows = [[str(t.group), label.get(str(t.sex), str(t.sex)), str(int(t.n)),
             f"{t.age_mean:.1f} ± {t.age_sd:.1f}" if np.isfinite(t.age_mean) else "–"]
            for t in c.table.itertuples()]
    sec.tables.append(Table(["group", "sex", "n", "age, mean ± SD"], rows))
    if c.sex_chi2 is not None:
        sec.paragraphs.append(f"Sex by group: chi-square test (Yates-corrected) χ² = {c.sex_chi2:.2f}, "
                              f"p = {_p(c.sex_p)}.")
    if c.age_t is not None:
        sec.paragraphs.append(f"Age, cases vs controls: Welch t test t = {c.age_t:.2f}, p = {_p(c.age_p)}.")
    if r.site_counts is not None and len(r.site_counts):
        sc = r.site_counts
        sec.tables.append(Table(
            ["site", f"cases ({r.case_label})", f"controls ({r.control_label})", "n"],
            [[str(t.site), str(int(t.n_case)), str(int(t.n_control)), str(int(t.n))]
             for t in sc.itertuples()],
            f"Samples per site ({len(sc)} sites; column {r.methods.site!r}). The site is a "
            "categorical covariate of the linear model."))
    if r.repeats is not None:
        sec.paragraphs.append(f"Samples: {r.repeats.describe()}.")
    return sec


def _detectability(r: RunResults) -> Section:
    sec = Section("detectability", "What this study can detect")
    t = r.detectability
    if t is None or not len(t):
        sec.ran, sec.note = False, "The group sizes were not recorded."
        return sec
    first = t.iloc[0]
    sec.paragraphs.append(
        f"From this study's own group sizes: two-sided t tests with {first['power']:.0%} power, "
        f"Benjamini-Hochberg at FDR {first['fdr']:g} over {int(first['n_analytes'])} analytes "
        f"approximated by the per-test alpha FDR / analytes = {first['alpha']:.2g} (a lower bound "
        "of the power under BH; see docs/power.md and hikisig power). d is the standardised "
        "difference between the group means (Hedges' g in the statistics table).")
    has_auc = bool(t["auc_ci_half_width"].notna().any())
    label = {"all": "all participants", **SEX_LABEL}
    rows = [[label.get(str(x.stratum), str(x.stratum)), str(int(x.n_case)), str(int(x.n_control)),
             _num(x.min_d), _num(x.min_d_nominal), _num(x.power_at_reference_d),
             _num(x.power_at_reference_d_nominal)]
            + ([f"± {_num(x.auc_ci_half_width)}"] if has_auc else [])
            for x in t.itertuples()]
    ref = f"{float(first['reference_d']):g}"
    sec.tables.append(Table(
        ["stratum", "cases", "controls", "smallest d (corrected)", "smallest d (uncorrected 0.05)",
         f"power for d = {ref} (corrected)", f"power for d = {ref} (uncorrected 0.05)"]
        + ([f"AUC {_num(first['auc'])}: expected 95% CI half-width"] if has_auc else []), rows,
        "Smallest standardised difference found with the target power, and the power for a "
        f"large difference (d = {ref})"
        + ("; AUC interval by Hanley-McNeil at the run's AUC." if has_auc else ".")))
    weak = t[t["power_at_reference_d_nominal"] < 0.8]
    for x in weak.itertuples():
        sec.paragraphs.append(
            f"{label.get(str(x.stratum), str(x.stratum)).capitalize()}: even a large difference "
            f"(d = {ref}) is found with power {_num(x.power_at_reference_d_nominal)} at an "
            "uncorrected 0.05; a finding, or the absence of one, in this stratum says little.")
    return sec


def _questionnaires(r: RunResults) -> Section:
    sec = Section("questionnaires", "Questionnaires and criteria")
    c = r.criteria
    groups = [r.control_label, r.case_label]
    qs = r.questionnaire_summary
    if qs is not None and not _is_empty(qs):
        rows = []
        for inst, sub in qs.groupby("instrument", sort=True):
            row = [str(inst)]
            for g in groups:
                t = sub[sub["group"] == g]
                row.append(f"{t['median'].iloc[0]:.1f} [{t['q1'].iloc[0]:.1f}–{t['q3'].iloc[0]:.1f}] "
                           f"(n={int(t['n'].iloc[0])})" if len(t) and int(t["n"].iloc[0]) else "–")
            rows.append(row)
        sec.tables.append(Table(["instrument"] + [f"{g}: median [IQR]" for g in groups], rows,
                                "Questionnaire totals by group."))
    else:
        sec.paragraphs.append("Questionnaires were not run.")
    if c is not None and not _is_empty(c):
        for col, title in [("status", "Criteria status"), ("severity", "Criteria severity")]:
            if col not in c:
                continue
            vals = c[col].fillna("").astype(str).replace("", "(none)")
            ct = pd.crosstab(vals, c["group"])
            cols = [g for g in groups if g in ct.columns] + [g for g in ct.columns if g not in groups]
            sec.tables.append(Table([col] + [str(g) for g in cols],
                                    [[str(i)] + [str(int(ct.loc[i, g])) for g in cols] for i in ct.index],
                                    f"{title} by group (counts)."))
    else:
        sec.paragraphs.append("Criteria were not run.")
    return sec


def _quality(r: RunResults) -> Section:
    sec = Section("quality", "Data quality")
    per_analyte, per_sample = r.missing_by_analyte, r.missing_by_sample
    if per_analyte is None or per_sample is None:
        sec.ran, sec.note = False, "Missingness was not recorded."
        return sec
    overall = float(r.X.isna().to_numpy().mean()) if r.X.size else 0.0
    sec.paragraphs.append(
        f"{r.X.shape[0]} samples x {r.X.shape[1]} analytes; {100 * overall:.1f}% of values missing; "
        f"{int((per_analyte > 0.2).sum())} analytes with more than 20% missing.")
    if r.methods.dropped_analytes:
        sec.paragraphs.append(
            f"{len(r.methods.dropped_analytes)} analyte(s) missing in more than "
            f"{r.methods.max_missing:.0%} of samples were left out before the analyses.")
    if r.nonpositive is not None and len(r.nonpositive):
        shown = ", ".join(f"{names_of(r).get(str(a), str(a))} ({int(n)})"
                          for a, n in r.nonpositive.head(8).items())
        sec.paragraphs.append(
            f"{int(r.nonpositive.sum())} values <= 0 in {len(r.nonpositive)} analyte(s), read as below "
            f"detection: left out of geometric means, fold changes and the log-scale linear model, "
            f"and imputed like missing values inside the model folds ({shown}"
            f"{', ...' if len(r.nonpositive) > 8 else ''}).")
    m = r.analyte_mapping
    if m is not None and len(m):
        unmatched = int((m["match"] == "unmatched").sum())
        sec.paragraphs.append(f"{len(m)} analyte columns: {len(m) - unmatched} matched to the analyte "
                              f"catalog, {unmatched} analysed under their own names "
                              "(tables/analyte_mapping.csv).")
    sec.figures.append(Figure(
        "fig-missingness", F.missingness(per_analyte, per_sample, r.obs, r.case_label, r.control_label),
        "Bar chart of the fraction of missing values per analyte and box plots of missingness per sample "
        "by group",
        "Missingness. Left: fraction of samples missing per analyte, sorted. Right: fraction of analytes "
        "missing per sample, by group."))
    return sec


def _quality_control(r: RunResults, names: dict[str, str]) -> Section:
    sec = Section("qc", "Quality control")
    q = r.quality
    if q is None or (not q.n_qc and not q.n_blank and q.normalise == "none"):
        sec.ran, sec.note = False, ("Quality control was not run: the data have no QC samples "
                                    "(preprocessing.sample_type, qc_label) and no normalisation "
                                    "was asked for.")
        return sec
    steps = []
    if q.rsd_max is not None:
        steps.append(f"analytes with an RSD over the QC samples above {100 * q.rsd_max:.0f}% dropped "
                     f"({len(q.dropped)})")
    if q.drift != "none":
        steps.append("drift corrected by QC-robust LOESS within batch along the injection order, "
                     "batches median-centred")
    if q.normalise != "none":
        steps.append(f"samples normalised ({q.normalise})")
    sec.paragraphs.append(
        f"{q.n_qc} QC and {q.n_blank} blank sample(s) in the run, set aside after quality control; "
        + ("; ".join(steps) if steps else "no QC step was asked for (preprocessing.qc_rsd_max, "
                                          "drift, normalise)") + ".")
    if q.rsd is not None:
        med = float(q.rsd.median())
        sec.paragraphs.append(f"Median RSD over the QC samples: {100 * med:.1f}%; "
                              f"{int((q.rsd > 0.3).sum())} analyte(s) above 30%.")
        sec.figures.append(Figure(
            "fig-qc-rsd", F.qc_rsd(q.rsd, q.rsd_max),
            "Histogram of the relative standard deviation of each analyte over the QC samples",
            "RSD of each analyte over the pooled QC samples" + (" (dashed: the filter's threshold)."
                                                                  if q.rsd_max is not None else ".")))
    if q.scores is not None and q.explained is not None:
        sec.figures.append(Figure(
            "fig-qc-pca", F.qc_pca(q.scores, q.explained),
            "Scatter plot of principal components 1 and 2 of study and QC samples",
            "PCA of study and QC samples (log2, half-minimum imputed, autoscaled) after drift "
            "correction: the QC samples should cluster tightly."))
    if q.dropped:
        sec.tables.append(Table(["analyte", "RSD over QC"], [
            [names.get(a, a), _pct(q.rsd[a]) if q.rsd is not None else "–"] for a in q.dropped],
            "Analytes dropped by the QC-RSD filter."))
    return sec


def _pca(r: RunResults) -> Section:
    sec = Section("pca", "PCA scores")
    if r.pca is None:
        sec.ran, sec.note = False, "PCA was not run (too few samples or analytes)."
        return sec
    sec.figures.append(Figure(
        "fig-pca", F.pca(r.pca, r.obs, r.case_label, r.control_label, by_sex=_by_sex(r)),
        "Scatter plot of principal component 1 against component 2, coloured by group"
        + (", shaped by sex" if _by_sex(r) else ""),
        "PCA scores (" + ("autoscaled values" if r.methods.input_scale == "z" else
                          "log2, half-minimum imputed, autoscaled") + "). Colour: group"
        + ("; marker: sex (circles men, triangles women)" if _by_sex(r) else "")
        + ". Axis labels give the explained variance."))
    if "site" in r.obs and r.obs["site"].notna().any():
        sec.figures.append(Figure(
            "fig-pca-site", F.pca_by_site(r.pca, r.obs, r.case_label, r.control_label),
            "Scatter plot of principal component 1 against component 2, coloured by site",
            f"The same PCA scores coloured by site (column {r.methods.site!r}); marker: group "
            "(circles controls, triangles cases). Sites that separate along a component "
            "point to a site (batch) effect."))
    return sec


def _welch(r: RunResults) -> pd.DataFrame | None:
    if r.stats is None or _is_empty(r.stats):
        return None
    return r.stats[r.stats["test"] == "welch"]


def _volcano(r: RunResults, names: dict[str, str]) -> Section:
    sec = Section("volcano", "Volcano plots")
    w = _welch(r)
    if w is None or w.empty:
        sec.ran, sec.note = False, "Case-control statistics were not run."
        return sec
    strata = [("all", "all participants"), ("M", "men"), ("F", "women")] if _by_sex(r) else [
        ("all", "all participants")]
    for stratum, title in strata:
        t = w[w["stratum"] == stratum]
        if t.empty:
            sec.paragraphs.append(f"No Welch tests for {title}.")
            continue
        nsig = int((t["q"] < 0.05).sum())
        additive = r.methods.input_scale == "z"
        x_text = ("difference of means (cases - controls)" if additive
                  else "log2 fold change (cases/controls, geometric means)")
        sec.figures.append(Figure(
            f"fig-volcano-{stratum}", F.volcano(t, names, f"Cases vs controls: {title}",
                                                additive=additive),
            f"Volcano plot of {x_text.split(' (')[0]} against minus log10 p for {title}",
            f"Volcano plot, {title}: {x_text} vs −log10 p of the Welch t test; {nsig} of {len(t)} "
            "features with q < 0.05 (coloured); the 8 smallest p labelled."
            + (" A difference between the men's and the women's plot is not evidence of a "
               "sex-specific effect: see the group x sex interaction below." if stratum != "all"
               else "")))
    _interaction(sec, r, names)
    return sec


def _interaction_frame(r: RunResults) -> pd.DataFrame | None:
    """The group x sex interaction rows of the statistics, indexed by analyte."""
    st = r.stats
    if st is None or not _by_sex(r):
        return None
    it = st[(st["stratum"] == "interaction") & (st["test"] == "lm")]
    return it.drop_duplicates("analyte").set_index("analyte") if len(it) else None


def _interaction(sec: Section, r: RunResults, names: dict[str, str]) -> None:
    it = _interaction_frame(r)
    if it is None:
        return
    specific = it[it["q"] < 0.05].sort_values("p", kind="stable")
    if len(specific):
        shown = ", ".join(names.get(str(a), str(a)) for a in specific.index[:10])
        sec.paragraphs.append(
            f"Sex-specific (group x sex interaction q < 0.05): {len(specific)} feature(s): {shown}"
            f"{', ...' if len(specific) > 10 else ''}. Only these differ between men and women "
            "beyond chance.")
    else:
        n_p = int((it["p"] < 0.05).sum())
        sec.paragraphs.append(
            f"No feature shows a group x sex interaction at q < 0.05 ({n_p} of {len(it)} have p < "
            "0.05 before correction): nothing here is shown to be sex-specific, even where the "
            "per-sex results differ.")
    top = it.sort_values("p", kind="stable").head(10)
    label = ("difference in men - difference in women" if r.methods.input_scale == "z"
             else "log2 fold change in men - in women")
    sec.tables.append(Table(
        ["feature", f"{label} (95% CI)", "p", "q", "sex-specific"],
        [[names.get(str(a), str(a)), _ci(t.effect, t.effect_ci_low, t.effect_ci_high), _p(t.p),
          _p(t.q), "yes" if t.q < 0.05 else "no"] for a, t in zip(top.index, top.itertuples(),
                                                                  strict=True)],
        "Group x sex interaction of the linear model: the 10 smallest p."))


def _with_interaction(rows: list[list[str]], analytes: list[str], r: RunResults
                      ) -> tuple[list[list[str]], list[str]]:
    """Rows with the interaction p and q beside them (columns to add to the header)."""
    it = _interaction_frame(r)
    if it is None:
        return rows, []
    out = []
    for row, a in zip(rows, analytes, strict=True):
        hit = it.loc[a] if a in it.index else None
        out.append(row + ([_p(hit["p"]), _p(hit["q"])] if hit is not None else ["–", "–"]))
    return out, ["interaction p (group x sex)", "interaction q"]


def _top_table(w: pd.DataFrame, names: dict[str, str], n: int, r: RunResults) -> Table:
    head = w.head(n)
    rows = [[names.get(str(a.analyte), str(a.analyte)), _num(a.fold_change),
             _ci(a.effect, a.effect_ci_low, a.effect_ci_high), _p(a.p), _p(a.q)]
            for a in head.itertuples()]
    rows, extra = _with_interaction(rows, head["analyte"].astype(str).tolist(), r)
    return Table(["analyte", "fold change", "effect (95% CI)", "p", "q", *extra], rows)


def _boxplots(r: RunResults, names: dict[str, str]) -> Section:
    sec = Section("boxplots", "Top analytes")
    w = _welch(r)
    if w is None or w.empty:
        sec.ran, sec.note = False, "Case-control statistics were not run."
        return sec
    top = w[(w["stratum"] == "all") & w["analyte"].isin(r.X.columns)].sort_values(["q", "p"], kind="stable")
    cols = top["analyte"].head(6).astype(str).tolist()
    if not cols:
        sec.ran, sec.note = False, "No overall Welch tests for analytes."
        return sec
    additive = r.methods.input_scale == "z"
    sec.figures.append(Figure(
        "fig-boxplots", F.boxplots(r.X, r.obs, cols, names, r.case_label, r.control_label, _units(r),
                                   log=not additive, by_sex=_by_sex(r)),
        "Box plots of the six analytes with the smallest q values by group"
        + (" and sex" if _by_sex(r) else ""),
        f"The 6 analytes with the smallest overall q (Welch), by group{' x sex' if _by_sex(r) else ''} ("
        f"{'values as given' if additive else 'log2 scale'}; points are samples)."))
    tab = _top_table(top, names, 6, r)
    tab.caption = "Overall Welch test of the analytes shown (effect as reported by the test)."
    sec.tables.append(tab)
    return sec


def _markers(r: RunResults, names: dict[str, str]) -> Section:
    sec = Section("markers", "Derived markers")
    mk = r.markers
    if _is_empty(mk) or mk.shape[1] == 0:
        sec.ran, sec.note = False, ("Derived markers were not run (values on an additive scale)."
                                    if r.methods.input_scale == "z" else
                                    "No derived marker has all its components in these data.")
        _skipped_markers(sec, r)
        return sec
    cols = [str(c) for c in mk.columns]
    fm = r.marker_formulas
    obs = r.obs.reindex(mk.index)
    sec.figures.append(Figure(
        "fig-markers", F.boxplots(mk, obs, cols, names, r.case_label, r.control_label, log=True,
                                  by_sex=_by_sex(r)),
        "Box plots of the derived markers by group" + (" and sex" if _by_sex(r) else ""),
        f"Derived markers by group{' x sex' if _by_sex(r) else ''} (log2 scale). Formulas in the "
        "table below."))
    w = _welch(r)
    rows = []
    for c in cols:
        formula = str(fm.loc[c, "formula"]) if c in fm.index and "formula" in fm else ""
        row = [c, names.get(c, c), formula]
        if w is not None:
            hit = w[(w["stratum"] == "all") & (w["analyte"] == c)]
            row += [_num(hit["fold_change"].iloc[0]), _p(hit["q"].iloc[0])] if len(hit) else ["–", "–"]
        rows.append(row)
    extra = ["fold change", "q (Welch)"] if w is not None else []
    rows, inter = _with_interaction(rows, cols, r)
    sec.tables.append(Table(["marker", "name", "formula", *extra, *inter], rows,
                            "Derived markers and their formulas."))
    _skipped_markers(sec, r)
    return sec


def _skipped_markers(sec: Section, r: RunResults) -> None:
    sk = r.markers_skipped
    if sk is not None and len(sk):
        sec.tables.append(Table(["marker", "name", "missing components"], [
            [str(t.marker), str(t.display_name), str(t.missing)] for t in sk.itertuples()],
            "Derived markers not computed: a marker is computed only when every component is "
            "present."))


def _not_run(sec: Section, r: RunResults, stage: str, what: str) -> Section:
    sec.ran = False
    if r.failed_stage == stage:
        sec.note = f"{what} failed: {r.error}."
        return sec
    reason = r.skipped.get(stage) or (f"the {r.failed_stage} stage failed before it"
                                      if r.failed_stage else None)
    sec.note = f"{what} was not run" + (f": {reason}." if reason else ".")
    return sec


def _verdict(sec: Section, model: Any) -> None:
    """Put a model's validation verdict at the top of its section."""
    sec.validated = getattr(model, "validated", None)
    sec.verdict = str(getattr(model, "verdict", "") or "")


def _perm_p(p: Any, n: int) -> str:
    """A permutation p value with its count, or that none was computed."""
    if p is None or not np.isfinite(float(p)):
        return "permutation p not computed (no permutations)"
    return f"permutation p = {_p(p)} ({n} permutations)"


def _discrimination(r: RunResults, names: dict[str, str]) -> Section:
    sec = Section("discrimination", "Discrimination")
    m = r.discrimination
    if m is None:
        return _not_run(sec, r, "discrimination", "The discrimination model")
    _verdict(sec, m)
    tb = m.tables
    repeats = m.params.get("cv_repeats") or len(tb.get("per_repeat", []))
    auc_txt = (f"AUC {_num(m.auc)} (95% CI {_num(m.auc_ci_low)}–{_num(m.auc_ci_high)}): the mean of "
               f"the {repeats} CV repeats' out-of-fold AUCs, with a participant-level stratified "
               "bootstrap interval")
    pooled_txt = (f"pooled AUC {_num(m.auc_pooled)} (DeLong 95% CI {_num(m.auc_pooled_ci_low)}–"
                  f"{_num(m.auc_pooled_ci_high)})")
    sec.paragraphs.append(
        f"Model {m.classifier}, {m.cv_scheme}; n = {m.n} ({m.n_case} cases, {m.n_control} controls). "
        f"{auc_txt}; {_perm_p(m.permutation_p, m.permutations)}. The {pooled_txt} is that of the "
        "probabilities averaged over the repeats, an ensemble of every repeat's models; it is "
        "usually higher than any single repeat and is not the headline estimate.")
    if "roc" in tb:
        sec.figures.append(Figure(
            "fig-roc", F.roc(tb["roc"], tb.get("roc_band"), m.auc_pooled if m.auc_pooled is not None
                             else m.auc, label="pooled out-of-fold ROC"),
            "ROC curve of the pooled out-of-fold predictions with a shaded bootstrap confidence band",
            f"ROC curve of the out-of-fold probabilities averaged over the repeats ({pooled_txt}). "
            f"Headline: {auc_txt}. Band: pointwise 95% band over the {m.auc_ci_resamples} "
            "participant-level bootstrap resamples (vertical averaging)."))
    if "calibration" in tb:
        sec.figures.append(Figure(
            "fig-calibration", F.calibration(tb["calibration"], m.brier, m.calibration_slope,
                                             m.calibration_intercept),
            "Calibration plot of observed fraction of cases against mean predicted probability",
            f"Calibration (reliability) of the out-of-fold probabilities: Brier {_num(m.brier, 3)}, "
            f"slope {_num(m.calibration_slope)}, intercept {_num(m.calibration_intercept)}."))
    th = tb.get("thresholds")
    if th is not None and len(th):
        rows = [[str(t.rule), _num(t.threshold),
                 _ci(t.sensitivity, t.sensitivity_ci_low, t.sensitivity_ci_high),
                 _ci(t.specificity, t.specificity_ci_low, t.specificity_ci_high),
                 _num(t.ppv), _num(t.npv), _num(t.ppv_at_prevalence, 3), _num(t.npv_at_prevalence, 3),
                 _pct(t.prevalence)] for t in th.itertuples()]
        sec.tables.append(Table(["rule", "threshold", "sensitivity (95% CI)", "specificity (95% CI)", "PPV",
                                 "NPV", "PPV at prevalence", "NPV at prevalence", "prevalence"], rows,
                                "Decision thresholds, chosen within the training folds and "
                                f"scored on the held-out folds: {_threshold_method(th)}. Wilson "
                                "95% CIs; PPV/NPV also at a population "
                                f"prevalence of {_pct(r.methods.prevalence)}"
                                + (f" ({r.methods.prevalence_source})"
                                   if r.methods.prevalence_source else "") + "."))
    _per_site(sec, m, "auc", "AUC")
    imp = tb.get("importance")
    if imp is not None and len(imp):
        key = "permutation_importance" if "permutation_importance" in imp else imp.columns[1]
        top = imp.sort_values(key, ascending=False, kind="stable").head(15)
        cols = [c for c in ["permutation_importance", "permutation_importance_sd", "impurity_importance",
                            "stability"] if c in top]
        rows = [[names.get(str(a), str(a))] + [_num(top.loc[i, c], 3) for c in cols]
                for i, a in zip(top.index, top["analyte"], strict=True)]
        sec.tables.append(Table(["analyte"] + [c.replace("_", " ") for c in cols], rows,
                                "Top 15 features by importance."))
    return sec


def _per_site(sec: Section, m: Any, key: str, label: str) -> None:
    """The model's per-site table; with leave-site-out validation named as the test of
    transportability."""
    ps = m.tables.get("per_site")
    if ps is None or not len(ps):
        return
    lso = m.params.get("cv") == "leave-site-out" or "leave-site-out" in str(m.cv_scheme)
    if key == "auc":
        cols = ["site", "cases", "controls", "AUC (95% CI)", "note"]
        rows = [[str(t.site), str(t.n_case), str(t.n_control),
                 _ci(t.auc, t.auc_ci_low, t.auc_ci_high) if pd.notna(t.auc) else "–",
                 str(t.note) if pd.notna(t.note) else ""] for t in ps.itertuples()]
    else:
        cols = ["site", "samples", "Q²", "RMSE", "note"]
        rows = [[str(t.site), str(t.n), _num(t.q2), _num(t.rmse),
                 str(t.note) if pd.notna(t.note) else ""] for t in ps.itertuples()]
    caption = (f"{label} of each site when it was left out of training (leave-site-out "
               "validation): the test of transportability, whether the model works in a clinic "
               "it never saw." if lso else f"{label} of each site's out-of-fold predictions "
               "(the folds mixed the sites: not a test of transportability).")
    sec.tables.append(Table(cols, rows, caption))


def _threshold_method(th: pd.DataFrame) -> str:
    """How the thresholds were chosen, from the table's ``method`` column."""
    if "method" not in th:
        return "training folds"
    methods = sorted({str(v) for v in th["method"].dropna()})
    return "; ".join(methods) if methods else "training folds"


def _severity(r: RunResults, names: dict[str, str]) -> Section:
    sec = Section("severity", "Severity")
    m = r.severity
    if m is None:
        return _not_run(sec, r, "severity", "The severity model")
    _verdict(sec, m)
    tb = m.tables
    sec.paragraphs.append(
        f"PLS regression of {m.target or 'the severity score'} with {m.n_components} component(s), "
        f"{m.cv_scheme}; n = {m.n}. R²Y {_num(m.r2y)}, Q² {_num(m.q2)} "
        f"({_perm_p(m.permutation_p_q2, m.permutations)}), RMSEE {_num(m.rmsee)}, RMSECV "
        f"{_num(m.rmsecv)}, R² = Spearman² {_num(m.r2_spearman)}.")
    _per_site(sec, m, "q2", "Q² and RMSE")
    if "observed_predicted" in tb:
        sec.figures.append(Figure(
            "fig-pls", F.pls_observed_predicted(tb["observed_predicted"], m),
            "Scatter plot of observed against cross-validated predicted severity with the identity line",
            f"Observed vs cross-validated predicted severity (dashed: identity). R²Y {_num(m.r2y)}, "
            f"Q² {_num(m.q2)}, RMSECV {_num(m.rmsecv)}, R² (Spearman²) {_num(m.r2_spearman)}."))
    if "vip" in tb:
        sec.figures.append(Figure(
            "fig-vip", F.vip(tb["vip"], names),
            "Bar chart of the 20 largest VIP scores",
            "Variable importance in projection (top 20); VIP > 1 highlighted in red."))
    return sec


def _stratification(r: RunResults, names: dict[str, str]) -> Section:
    sec = Section("stratification", "Stratification")
    m = r.stratification
    if m is None:
        return _not_run(sec, r, "stratification", "The stratification")
    _verdict(sec, m)
    tb = m.tables
    need = f"; every cluster must hold at least {m.min_cluster_size} cases" \
        if m.min_cluster_size is not None else ""
    sec.paragraphs.append(
        f"{m.method} with k = {m.k}, chosen by {m.criterion}{need} (cluster sizes "
        f"{', '.join(str(s) for s in m.cluster_sizes)}); bootstrap stability: mean adjusted Rand "
        f"index {_num(m.stability_ari_mean)}.")
    if m.k_bic is not None and m.k_silhouette is not None and m.k_bic != m.k_silhouette:
        sec.paragraphs.append(
            f"The criteria disagree: BIC prefers k = {m.k_bic} and the silhouette k = "
            f"{m.k_silhouette}. The number of subgroups is not settled by these data.")
    if r.cluster_values is not None and r.cluster_of is not None and r.cluster_values.shape[1]:
        sec.figures.append(Figure(
            "fig-clusters", F.cluster_heatmap(r.cluster_values, r.cluster_of, names),
            "Heat map of samples by the top 20 signature analytes ordered by cluster",
            "Samples (columns, ordered by cluster and membership probability) x the top-20 stratification "
            "signature analytes (log2, half-minimum imputed, autoscaled within the clustered samples)."))
        sec.figures.append(Figure(
            "fig-profiles", F.cluster_profiles(r.cluster_values, r.cluster_of, names),
            "Line plot of mean z-scores per cluster for the top analytes",
            "Cluster profiles: mean z-score per cluster for the top-20 signature analytes."))
    ks = tb.get("k_selection")
    if ks is not None and len(ks):
        sec.tables.append(Table([str(c) for c in ks.columns],
                                [[_num(v, 3) if c != "k" else str(int(v)) for c, v in row.items()]
                                 for _, row in ks.iterrows()], "Choice of k."))
    return sec


def _sig_table(sig: pd.DataFrame, names: dict[str, str], n: int) -> Table:
    sig = sig.sort_values("rank", kind="stable").head(n)
    cols = [c for c in ["rank", "direction", "effect", "importance", "stability"] if c in sig]
    rows = [[names.get(str(row["analyte"]), str(row["analyte"]))]
            + [str(row[c]) if c in ("rank", "direction") else _num(row[c], 3) for c in cols]
            for _, row in sig.iterrows()]
    return Table(["analyte", *cols], rows)


_MODEL_NAMES = {"discriminate": "discrimination", "severity": "severity",
                "stratify": "stratification"}


def _signatures(r: RunResults, names: dict[str, str]) -> Section:
    sec = Section("signatures", "Signatures")
    any_ = False
    left_out: list[str] = []
    for kind, m in r.models.items():
        if _is_empty(m.tables.get("signature")):
            continue
        name = _MODEL_NAMES.get(kind, kind)
        any_ = True
        if getattr(m, "validated", None) is False:
            left_out.append(name)
            sec.paragraphs.append(
                f"The {name} model did not validate ({m.verdict.rstrip('.')}). Its ranking of "
                f"analytes is not a finding: it is not shown here and is left out of the "
                f"consensus (it stays in models/{kind}/signature.csv for diagnosis).")
            continue
        t = _sig_table(m.tables["signature"], names, 15)
        t.caption = (f"{name} (validated): top 15." if getattr(m, "validated", None)
                     else f"{name}: top 15.")
        sec.tables.append(t)
    c = r.consensus
    entered = [] if c is None else [_MODEL_NAMES.get(k, k) for k in c.attrs.get("models", [])]
    if c is not None and len(c):
        c = c.drop(columns=["models"], errors="ignore").head(20)
        cols = [str(x) for x in c.columns]
        rows = [[names.get(str(v), str(v)) if col == "analyte" else
                 (_num(v, 3) if isinstance(v, float) else str(v)) for col, v in row.items()]
                for _, row in c.iterrows()]
        sec.tables.append(Table(cols, rows, "Consensus signature of the models that entered it ("
                                + (", ".join(entered) or "none") + ")"
                                + (f"; left out, as not validated: {', '.join(left_out)}"
                                   if left_out else "") + ": top 20."))
        any_ = True
    elif any_:
        sec.paragraphs.append("No model validated: there is no consensus signature."
                              if not entered else "The consensus signature is empty.")
    if not any_:
        sec.ran, sec.note = False, "No model signatures (models were not run)."
    return sec


_INSTRUMENT_NAMES = {"hq25": "HQ-25", "phq9": "PHQ-9", "k6": "K6", "ucla3": "UCLA-3",
                     "lsns6": "LSNS-6"}
_ARM_NAMES = {"treated": "treated cases", "untreated": "untreated cases", "control": "controls"}


def _measure_labels(r: RunResults, names: dict[str, str]) -> dict[str, str]:
    fu = r.followup
    labels = {"discrimination_logit": "signature score (cross-fitted logit)",
              "severity_prediction": "predicted severity (cross-fitted)"}
    if fu is not None and fu.severity_measure:
        name = _INSTRUMENT_NAMES.get(fu.severity_measure, fu.severity_measure)
        labels[fu.severity_measure] = f"{name} total"
    return {**names, **labels}


def _share(n: Any, k: Any, lo: Any, hi: Any) -> str:
    return f"{_pct(k / n if n else float('nan'))} ({_pct(lo)}–{_pct(hi)}; {int(k)}/{int(n)})"


def _arm_sentence(rates: pd.DataFrame, measure: str, label: str) -> str | None:
    """'label: reliable improvement in x% of the treated cases' follow-up visits, ...', and
    whether the treated arm stands out from the untreated."""
    sub = rates[rates["measure"] == measure].set_index("arm")
    if "treated" not in sub.index:
        return None
    parts = [f"{_share(t['n'], t['n_improve'], t['improve_ci_low'], t['improve_ci_high'])} of "
             f"the {_ARM_NAMES[a]}'" for a in ("treated", "untreated", "control") if a in sub.index
             for t in [sub.loc[a]]]
    parts[0] += " follow-up visits"
    listed = parts[0] if len(parts) == 1 else ", ".join(parts[:-1]) + " and " + parts[-1]
    text = f"{label}: a reliable improvement in {listed}"
    if "untreated" in sub.index:
        t, u = sub.loc["treated"], sub.loc["untreated"]
        if t["improve_ci_low"] > u["improve_ci_high"]:
            text += "; the treated arm improves more often than the untreated arm."
        else:
            text += ("; the intervals overlap, so these data do not show that the treated arm "
                     "improves more often than the untreated arm.")
    return text


def _followup(r: RunResults, names: dict[str, str]) -> Section:
    sec = Section("followup", "Follow-up")
    fu = r.followup
    if fu is None:
        return _not_run(sec, r, "followup", "The follow-up")
    labels = _measure_labels(r, names)
    counts = fu.arms.value_counts()
    who = ", ".join(f"{int(counts.get(a, 0))} {_ARM_NAMES[a]}" for a in ("treated", "untreated",
                                                                          "control"))
    c = r.config.followup
    sec.paragraphs.append(
        f"{who}, at visits {', '.join(str(v) for v in fu.visits)}; arms from "
        f"{fu.interventions_source}. The signature score at every visit"
        + (" and the predicted severity" if (fu.scores["measure"] == "severity_prediction").any()
           else "")
        + f" come from models that never saw the participant ({c.folds}-fold cross-fitting by "
        "participant, models fitted on first visits). A change from the first visit is called "
        f"reliable when it exceeds what people without an intervention show between visits "
        f"({fu.reference}): the larger of {c.z:g} x sqrt(2) x their within-person SD "
        "(Jacobson & Truax) and the 95th percentile of their own changes, set apart for cases "
        "and for controls. So about 5% of their visits are flagged by construction; the "
        "treated arm is read against them.")
    sec.paragraphs.extend(fu.notes)
    for measure in ("discrimination_logit", fu.severity_measure or ""):
        line = _arm_sentence(fu.rates, measure, labels.get(measure, measure)) if measure else None
        if line:
            sec.paragraphs.append(line)
    cor = fu.correlation
    if cor:
        sec.paragraphs.append(
            f"Among cases, the change in the signature score and the change in "
            f"{labels.get(fu.severity_measure or '', 'the severity score')} correlate with "
            f"Spearman rho = {_num(cor['rho'])} (p = {_p(cor['p'])}; {int(cor['n'])} follow-up "
            f"visits of {int(cor['participants'])} participants).")
    present = set(fu.trajectories["measure"])
    first = ["discrimination_logit", "severity_prediction", fu.severity_measure or ""]
    shown = [m for m in first if m in present] + sorted(present - set(first))
    if len(fu.trajectories):
        sec.figures.append(Figure(
            "fig-followup", F.followup_trajectories(fu.trajectories, labels, shown),
            "Line plots of the mean of each followed measure by visit, one line per arm",
            "Mean and 95% CI by visit and arm (green: treated cases; red: untreated cases; "
            "blue: controls). Derived markers on the log2 scale."))
    rt = fu.rates[fu.rates["measure"].isin(shown)]
    if len(rt):
        order = {m: i for i, m in enumerate(shown)}
        rt = rt.assign(_o=rt["measure"].map(order)).sort_values(["_o", "arm"], kind="stable")
        sec.tables.append(Table(
            ["measure", "arm", "follow-up visits", "reliable change (95% CI)",
             "reliable improvement (95% CI)"],
            [[labels.get(str(t.measure), str(t.measure)), str(t.arm), str(int(t.n)),
              _share(t.n, t.n_reliable, t.ci_low, t.ci_high),
              _share(t.n, t.n_improve, t.improve_ci_low, t.improve_ci_high)]
             for t in rt.itertuples()],
            "Share of follow-up visits with a reliable change from the first visit (Wilson "
            "95% CIs; a participant's visits are counted as separate visits)."))
    th = fu.thresholds[fu.thresholds["measure"].isin(shown) & (fu.thresholds["stratum"] != "all")]
    if len(th):
        sec.tables.append(Table(
            ["measure", "stratum", "within-person SD", "people", "threshold (RCI)",
             "threshold (95th percentile)", "threshold used"],
            [[labels.get(str(t.measure), str(t.measure)), str(t.stratum), _num(t.sem, 3),
              str(int(t.n_people)), _num(t.threshold_rci, 3), _num(t.threshold_empirical, 3),
              _num(t.threshold, 3)] for t in th.itertuples()],
            "Reliable-change thresholds, from the repeat visits of the reference people."))
    lmm = fu.lmm
    if lmm is not None and len(lmm):
        term = "visit:arm[treated]" if (lmm["term"] == "visit:arm[treated]").any() else None
        if term is None:
            sec.paragraphs.append("Mixed models: no treated arm, so no visit x treatment term.")
        else:
            t = lmm[lmm["term"] == term].sort_values("p", kind="stable")
            n_sig = int((t["q"] < 0.05).sum())
            sec.paragraphs.append(
                f"Mixed model per analyte and derived marker: log2(value) ~ visit x arm + "
                f"(1 | participant) (REML), reference arm {fu.lmm_reference}. The visit x "
                f"treated term (how much faster treated cases change per visit) reaches q < 0.05 "
                f"for {n_sig} of {len(t)}.")
            top = t.head(15)
            sec.tables.append(Table(
                ["analyte", "estimate (log2 per visit)", "SE", "p", "q"],
                [[names.get(str(x.analyte), str(x.analyte)), _num(x.estimate, 3), _num(x.se, 3),
                  _p(x.p), _p(x.q)] for x in top.itertuples()],
                f"Visit x treated term of the mixed models: top 15 by p (q: BH over the "
                f"{len(t)} analytes and markers)."))
    return sec


def _compare(r: RunResults, names: dict[str, str]) -> Section:
    sec = Section("compare", "Replication of the published signature")
    c = r.compare
    if c is None:
        return _not_run(sec, r, "compare", "The comparison")
    ref = c.reference
    cite = str(ref.get("citation", ref.get("name", ""))).rstrip(".")
    sec.paragraphs.append(f"Reference: {cite}. {c.summary}")
    if ref.get("published"):
        sec.paragraphs.append(f"Not published: {ref['published']}")
    t = c.table
    rows = [[str(x.finding), names.get(str(x.analyte), str(x.analyte)), str(x.stratum),
             str(x.expected or "–"), str(x.observed_direction or "–"),
             _ci(x.effect, x.effect_ci_low, x.effect_ci_high) if pd.notna(x.effect) else "–",
             _p(x.q), _p(x.interaction_q),
             str(x.verdict), str(x.note or "")] for x in t.itertuples()]
    sec.tables.append(Table(
        ["finding", "analyte", "stratum", "expected", "observed", "effect (95% CI)", "q",
         "interaction q (group x sex)", "verdict", "note"], rows,
        f"Each published finding against this study: agree or disagree needs q < {c.alpha:g}; "
        "a finding in one sex is called specific to it only when the interaction q is below "
        f"{c.alpha:g}. Sign test over the findings whose direction was observed: "
        f"{c.sign_test.get('k')} of {c.sign_test.get('n')} in the expected direction "
        f"(one-sided p = {_p(c.sign_test.get('p'))})."))
    return sec


def _methods(r: RunResults) -> Section:
    return Section("methods", "Methods", paragraphs=methods_paragraphs(r))


def _notes(r: RunResults) -> Section:
    sec = Section("notes", "Run notes")
    if r.failed_stage:
        sec.paragraphs.append(f"The {r.failed_stage} stage FAILED: {r.error}. The stages before it "
                              "are reported; the later ones did not run.")
    for stage, reason in r.skipped.items():
        sec.paragraphs.append(f"{stage.capitalize()} did not run: {reason}.")
    for w in r.warnings:
        sec.paragraphs.append(f"Warning: {w}")
    if not sec.paragraphs:
        sec.paragraphs.append("Every enabled stage ran; no warnings were raised.")
    return sec


def _provenance(r: RunResults) -> Section:
    sec = Section("provenance", "Provenance")
    if r.provenance is None:
        sec.ran, sec.note = False, "No provenance was recorded."
        return sec
    prov = r.provenance.to_dict()
    versions = prov.pop("versions", None) or {}
    prov.pop("tables", None)
    prov.pop("models", None)
    order = ["config_sha256", "data_sha256", "seed", "engine", "start_time", "end_time"]
    keys = [k for k in order if k in prov] + sorted(k for k in prov if k not in order)
    rows = [[k.replace("_", " "), _as_text(prov[k])] for k in keys]
    rows += [[f"version: {k}", str(v)] for k, v in versions.items()]
    sec.tables.append(Table(["item", "value"], rows))
    return sec


def _as_text(v: Any) -> str:
    if hasattr(v, "isoformat"):
        return str(v.isoformat())
    if isinstance(v, dict):
        return ", ".join(f"{k}: {x}" for k, x in v.items())
    return str(v)


def render_report(results: RunResults) -> str:
    """Render the results of a run as one self-contained HTML document.

    Figures are embedded as base64 PNG; the document references no external resource.
    The only time shown is ``results.provenance["end_time"]``, so the same results give
    the same HTML.
    """
    r = results
    names = _names(r)
    has_scores = not (_is_empty(r.questionnaires) and _is_empty(r.criteria))
    sections = [_notes(r), _cohort(r), _detectability(r),
                *([_questionnaires(r)] if has_scores else []), _quality(r),
                _quality_control(r, names),
                _pca(r), _volcano(r, names),
                _boxplots(r, names),
                _markers(r, names), _discrimination(r, names), _severity(r, names),
                _stratification(r, names), _signatures(r, names),
                *([_compare(r, names)] if r.compare is not None
                  or "compare" in r.skipped else []),
                *([_followup(r, names)] if r.followup is not None
                  or ("followup" in r.skipped and r.config.followup.enabled) else []),
                _methods(r), _provenance(r)]
    for i, s in enumerate(sections):
        s.title = f"{i} {s.title}"
    env = Environment(loader=FileSystemLoader(str(TEMPLATES)), autoescape=True, undefined=StrictUndefined,
                      keep_trailing_newline=True)
    css = (TEMPLATES / "report.css").read_text(encoding="utf-8")
    end = r.provenance.end_time if r.provenance is not None else None
    return env.get_template("report.html.j2").render(
        study=r.study, synthetic=bool(r.synthetic), matrix=r.methods.matrix.capitalize(),
        date=_as_text(end) if end is not None else "date not recorded", sections=sections, css=css)
