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


def _is_empty(frame: pd.DataFrame | None) -> bool:
    return frame is None or len(frame) == 0


# -- sections -------------------------------------------------------------------
def _cohort(r: RunResults) -> Section:
    sec = Section("cohort", "1 Cohort")
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
    if r.repeats is not None:
        sec.paragraphs.append(f"Samples: {r.repeats.describe()}.")
    return sec


def _questionnaires(r: RunResults) -> Section:
    sec = Section("questionnaires", "2 Questionnaires and criteria")
    q, c = r.questionnaires, r.criteria
    if _is_empty(q) and _is_empty(c):
        sec.ran = False
        sec.note = "Questionnaires and criteria were not run (no questionnaire or criteria data)."
        return sec
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
    sec = Section("quality", "3 Data quality")
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
    sec = Section("qc", "3b Quality control")
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
    sec = Section("pca", "4 PCA scores")
    if r.pca is None:
        sec.ran, sec.note = False, "PCA was not run (too few samples or analytes)."
        return sec
    sec.figures.append(Figure(
        "fig-pca", F.pca(r.pca, r.obs, r.case_label, r.control_label),
        "Scatter plot of principal component 1 against component 2, coloured by group, shaped by sex",
        "PCA scores (log2, half-minimum imputed, autoscaled). Colour: group; marker: sex (circles men, "
        "triangles women). Axis labels give the explained variance."))
    return sec


def _welch(r: RunResults) -> pd.DataFrame | None:
    if r.stats is None or _is_empty(r.stats):
        return None
    return r.stats[r.stats["test"] == "welch"]


def _volcano(r: RunResults, names: dict[str, str]) -> Section:
    sec = Section("volcano", "5 Volcano plots")
    w = _welch(r)
    if w is None or w.empty:
        sec.ran, sec.note = False, "Case-control statistics were not run."
        return sec
    for stratum, title in [("all", "all participants"), ("M", "men"), ("F", "women")]:
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
            "features with q < 0.05 (coloured); the 8 smallest p labelled."))
    return sec


def _top_table(w: pd.DataFrame, names: dict[str, str], n: int) -> Table:
    rows = [[names.get(str(a.analyte), str(a.analyte)), _num(a.fold_change),
             _ci(a.effect, a.effect_ci_low, a.effect_ci_high), _p(a.p), _p(a.q)]
            for a in w.head(n).itertuples()]
    return Table(["analyte", "fold change", "effect (95% CI)", "p", "q"], rows)


def _boxplots(r: RunResults, names: dict[str, str]) -> Section:
    sec = Section("boxplots", "6 Top analytes")
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
                                   log=not additive),
        "Box plots of the six analytes with the smallest q values by group and sex",
        f"The 6 analytes with the smallest overall q (Welch), by group x sex ("
        f"{'values as given' if additive else 'log2 scale'}; points are samples)."))
    tab = _top_table(top, names, 6)
    tab.caption = "Overall Welch test of the analytes shown (effect as reported by the test)."
    sec.tables.append(tab)
    return sec


def _markers(r: RunResults, names: dict[str, str]) -> Section:
    sec = Section("markers", "7 Derived markers")
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
        "fig-markers", F.boxplots(mk, obs, cols, names, r.case_label, r.control_label, log=True),
        "Box plots of the derived markers by group and sex",
        "Derived markers by group x sex (log2 scale). Formulas in the table below."))
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
    sec.tables.append(Table(["marker", "name", "formula", *extra], rows,
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


def _discrimination(r: RunResults, names: dict[str, str]) -> Section:
    sec = Section("discrimination", "8 Discrimination")
    m = r.discrimination
    if m is None:
        return _not_run(sec, r, "discrimination", "The discrimination model")
    tb = m.tables
    auc_txt = (f"AUC {_num(m.auc)}, 95% CI {_num(m.auc_ci_low)}–{_num(m.auc_ci_high)} (DeLong) and "
               f"{_num(m.auc_boot_ci_low)}–{_num(m.auc_boot_ci_high)} (bootstrap)")
    sec.paragraphs.append(
        f"Model {m.classifier}, {m.cv_scheme}; n = {m.n} ({m.n_case} cases, {m.n_control} controls). "
        f"{auc_txt}; permutation p = {_p(m.permutation_p)} ({m.permutations} permutations).")
    if "roc" in tb:
        sec.figures.append(Figure(
            "fig-roc", F.roc(tb["roc"], tb.get("roc_band"), m.auc),
            "ROC curve of the out-of-fold predictions with a shaded bootstrap confidence band",
            f"ROC curve of the out-of-fold predictions. {auc_txt}. Band: pointwise 95% band of the "
            f"{m.auc_boot_resamples} participant-level bootstrap resamples of the AUC interval "
            "(vertical averaging)."))
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
                                "Decision thresholds (Wilson 95% CIs); PPV/NPV also at the configured "
                                "prevalence."))
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


def _severity(r: RunResults, names: dict[str, str]) -> Section:
    sec = Section("severity", "9 Severity")
    m = r.severity
    if m is None:
        return _not_run(sec, r, "severity", "The severity model")
    tb = m.tables
    sec.paragraphs.append(
        f"PLS regression of {m.target or 'the severity score'} with {m.n_components} component(s), "
        f"{m.cv_scheme}; n = {m.n}. R²Y {_num(m.r2y)}, Q² {_num(m.q2)} (permutation p "
        f"{_p(m.permutation_p_q2)}), RMSEE {_num(m.rmsee)}, RMSECV {_num(m.rmsecv)}, "
        f"R² = Spearman² {_num(m.r2_spearman)}.")
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
    sec = Section("stratification", "10 Stratification")
    m = r.stratification
    if m is None:
        return _not_run(sec, r, "stratification", "The stratification")
    tb = m.tables
    sec.paragraphs.append(
        f"{m.method} with k = {m.k} (cluster sizes {', '.join(str(s) for s in m.cluster_sizes)}); "
        f"bootstrap stability: mean adjusted Rand index {_num(m.stability_ari_mean)}.")
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


def _signatures(r: RunResults, names: dict[str, str]) -> Section:
    sec = Section("signatures", "11 Signatures")
    any_ = False
    for kind, m in r.models.items():
        if _is_empty(m.tables.get("signature")):
            continue
        t = _sig_table(m.tables["signature"], names, 15)
        t.caption = f"{kind}: top 15."
        sec.tables.append(t)
        any_ = True
    c = r.consensus
    if c is not None and len(c):
        c = c.head(20)
        cols = [str(x) for x in c.columns]
        rows = [[names.get(str(v), str(v)) if col == "analyte" else
                 (_num(v, 3) if isinstance(v, float) else str(v)) for col, v in row.items()]
                for _, row in c.iterrows()]
        sec.tables.append(Table(cols, rows, "Consensus signature across models: top 20."))
        any_ = True
    if not any_:
        sec.ran, sec.note = False, "No model signatures (models were not run)."
    return sec


def _methods(r: RunResults) -> Section:
    return Section("methods", "12 Methods", paragraphs=methods_paragraphs(r))


def _notes(r: RunResults) -> Section:
    sec = Section("notes", "0 Run notes")
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
    sec = Section("provenance", "13 Provenance")
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
    sections = [_notes(r), _cohort(r), _questionnaires(r), _quality(r), _quality_control(r, names),
                _pca(r), _volcano(r, names),
                _boxplots(r, names),
                _markers(r, names), _discrimination(r, names), _severity(r, names), _stratification(r, names),
                _signatures(r, names), _methods(r), _provenance(r)]
    env = Environment(loader=FileSystemLoader(str(TEMPLATES)), autoescape=True, undefined=StrictUndefined,
                      keep_trailing_newline=True)
    css = (TEMPLATES / "report.css").read_text(encoding="utf-8")
    end = r.provenance.end_time if r.provenance is not None else None
    return env.get_template("report.html.j2").render(
        study=r.study, synthetic=bool(r.synthetic),
        date=_as_text(end) if end is not None else "date not recorded", sections=sections, css=css)
