"""The Methods section of the report, written from the facts a run records.

Every sentence reads attributes that exist (:class:`hikisig.results.RunMethods`, the typed
model results and the provenance); a stage that did not run says why.
"""

from __future__ import annotations

import pandas as pd

from hikisig.models.result import DiscriminationResult, SeverityResult, StratificationResult
from hikisig.results import RunResults

__all__ = ["methods_paragraphs"]

_TEST_NAMES = {"welch": "Welch's t test", "student": "Student's t test",
               "mwu": "the Mann-Whitney U test"}


def _join(items: list[str]) -> str:
    items = [i for i in items if i]
    if len(items) <= 1:
        return "".join(items)
    return ", ".join(items[:-1]) + " and " + items[-1]


_STRATUM_TESTS = {"welch": "Welch's t test", "student": "Student's t test",
                  "mwu": "Mann-Whitney U test", "lm": "linear model", "pearson": "Pearson correlation",
                  "spearman": "Spearman correlation"}


def _stratum_name(stratum: str, r: RunResults) -> str:
    sex = {"M": "men", "F": "women"}
    if stratum == "all":
        return "all participants ('all')"
    if stratum == "interaction":
        return f"group x {r.methods.by} interaction ('interaction')"
    if stratum == "cases":
        return "within cases ('cases')"
    return f"{sex.get(stratum, stratum)} ({stratum!r})"


def _tests_by_stratum(r: RunResults) -> list[str]:
    """One phrase per stratum naming exactly the tests the statistics table holds for it."""
    st = r.stats
    if st is None or not len(st) or "stratum" not in st or "test" not in st:
        return []
    out = []
    for stratum, sub in st.groupby("stratum", sort=False):
        tests = [_STRATUM_TESTS.get(str(t), str(t)) for t in pd.unique(sub["test"])]
        out.append(f"{_stratum_name(str(stratum), r)}: {_join(tests)}")
    return out


def _statistics(r: RunResults) -> str:
    m = r.methods
    if r.stats is None or not len(r.stats):
        reason = r.skipped.get("statistics")
        return f"Univariate statistics were not run{f' ({reason})' if reason else ''}."
    tests = _join([_TEST_NAMES.get(t, t) for t in m.tests])
    mwu = (f" (Mann-Whitney p values {m.mwu_method})" if "mwu" in m.tests else "")
    additive = m.input_scale == "z"
    parts = [f"Cases ({r.case_label}) and controls ({r.control_label}) were compared with {tests}"
             f"{mwu} in all participants" + (f" and within each level of {m.by!r}" if m.by else "")
             + ("; values are on an additive scale, so effects are differences of means and no "
                "fold change is given." if additive else
                "; fold changes are ratios of geometric means.")]
    if m.by:
        covs = [c for c in m.covariates if c != m.site]
        cov = f" + {' + '.join(covs)}" if covs else ""
        site = f" + C({m.site})" if m.site else ""
        lhs = "value" if additive else "log2(value)"
        parts.append(f"The linear model {lhs} ~ group * {m.by}{cov}{site} gave the group effect "
                     f"within each level of {m.by!r} and the group x {m.by} interaction "
                     "(stratum 'interaction')" + (
                         f"; the site ({m.site!r}) entered as a categorical covariate "
                         "(treatment-coded, reference the first site sorted)." if m.site
                         else "."))
    if m.severity:
        parts.append(f"Within cases, each analyte was correlated with {m.severity!r} (Pearson and "
                     "Spearman; stratum 'cases').")
    used = _tests_by_stratum(r)
    if used:
        parts.append("Tests in each stratum of the statistics table: " + "; ".join(used) + ".")
    parts.append(f"Multiple testing: {m.correction}.")
    if r.cohort is not None and (r.cohort.sex_p is not None or r.cohort.age_p is not None):
        which = [w for w, p in (("the chi-square test (sex)", r.cohort.sex_p),
                                ("Welch's t test (age)", r.cohort.age_p)) if p is not None]
        parts.append(f"Cohort characteristics were compared with {_join(which)}.")
    parts.append("Volcano plots show the Welch test." if "welch" in m.tests else "")
    return "Univariate statistics. " + " ".join(p for p in parts if p)


def _model_sentence(kind: str, r: RunResults) -> str:
    res = r.models.get(kind)
    label = {"discriminate": "Discrimination", "severity": "Severity", "stratify": "Stratification"}[kind]
    stage = {"discriminate": "discrimination", "severity": "severity",
             "stratify": "stratification"}[kind]
    if res is None:
        reason = r.skipped.get(stage)
        return f"{label}: not run{f' ({reason})' if reason else ''}."
    if isinstance(res, DiscriminationResult):
        perm = (f"{res.permutations} label permutations ({res.permutation_scheme}) for the "
                "permutation p value of the headline AUC" if res.permutations
                else "no label permutations, so the permutation p value was not computed")
        return (f"{label}: {res.classifier} classifier, {res.cv_scheme}; {perm}. The headline "
                "AUC is the mean of each CV repeat's out-of-fold AUC; the pooled AUC is that of "
                "the out-of-fold probabilities averaged over repeats. Decision thresholds were "
                "chosen within each training fold and scored on its held-out fold. The model is "
                "called validated when its permutation p is below 0.05.")
    if isinstance(res, SeverityResult):
        perm = (f"{res.permutations} permutations of the score for the Q2 permutation p value"
                if res.permutations else
                "no permutations of the score, so the Q2 permutation p value was not computed")
        return (f"{label}: PLS regression of {res.target or 'the severity score'} "
                f"({res.scaling} scaling), {res.cv_scheme}; {perm}. The model is called "
                "validated when Q2 > 0 and its permutation p is below 0.05.")
    if isinstance(res, StratificationResult):
        boot = res.params.get("bootstraps")
        need = (f" among the k whose clusters all hold at least {res.min_cluster_size} cases "
                "(max(5, 10% of the cases))" if res.min_cluster_size is not None else "")
        return (f"{label}: {res.method} clustering of cases, k chosen by {res.criterion}"
                f"{need}{'' if res.params.get('k') is None else ' (fixed)'}; stability as the "
                f"mean adjusted Rand index over {boot} bootstrap resamples. The subgroups are "
                "called validated when that mean is at least 0.6 and every cluster meets the "
                "size rule.")
    return f"{label}: {res.cv_scheme or ''}."  # pragma: no cover - every kind is handled


def methods_paragraphs(r: RunResults) -> list[str]:
    """Paragraphs of the Methods section."""
    m = r.methods
    paras: list[str] = []
    if m.preprocessing:
        steps = _join([f"{s.name} ({s.description})" if s.description else s.name
                       for s in m.preprocessing])
        paras.append(f"Preprocessing. The analyte matrix was prepared in this order: {steps}.")
    else:
        paras.append("Preprocessing. No preprocessing steps were recorded for this run.")
    paras.append(_statistics(r))
    paras.append("Models. " + " ".join(_model_sentence(k, r)
                                       for k in ("discriminate", "severity", "stratify")))
    fu = r.followup
    if fu is not None:
        c = r.config.followup
        paras.append(
            f"Follow-up. Participants were assigned to arms from {fu.interventions_source} "
            "(treated: a case with an intervention; untreated: a case without; controls). "
            f"Scores at every visit came from {c.folds}-fold cross-fitting by participant: a "
            f"{c.model} classifier (and a 2-component PLS regression of the severity score) "
            "fitted on the first visits of the other folds' participants scored every visit "
            "of a fold. A change from the first visit was called reliable when |change| "
            f"exceeded the larger of {c.z:g} x sqrt(2) x the within-person SD (Jacobson & "
            "Truax 1991) and the 95th percentile of |change|, both from "
            f"{fu.reference}, set apart for cases and controls; shares carry Wilson 95% CIs."
            + (" Each analyte and derived marker was fitted with the linear mixed model "
               "log2(value) ~ visit x arm + (1 | participant) (REML; Wald tests; BH within "
               f"each term; reference arm {fu.lmm_reference})." if fu.lmm is not None else ""))
    ci = []
    d = r.discrimination
    if d is not None:
        ci.append(f"the headline AUC's 95% confidence interval is the percentile interval of the "
                  f"same statistic (the mean of the repeats' AUCs) over {d.auc_ci_resamples} "
                  "bootstrap resamples of participants, stratified by group; the pooled AUC's "
                  "is by the DeLong method")
        ci.append("the ROC band in the figure is the pointwise 95% band of the same bootstrap "
                  "resamples (vertical averaging on a grid of 101 false positive rates)")
        ci.append("sensitivity and specificity use Wilson score intervals; PPV and NPV are also "
                  f"given at a population prevalence of {100 * m.prevalence:.2f}%")
    if r.stats is not None and len(r.stats):
        ci.append("effect sizes (Hedges' g, Cliff's delta, adjusted log2 fold change, r) and fold "
                  "changes carry 95% confidence intervals")
    paras.append("Confidence intervals. " + (_join(ci)[:1].upper() + _join(ci)[1:] + "."
                                             if ci else "No interval estimates were reported."))
    prov = r.provenance
    comp = [f"random seed {m.seed}", f"compute engine {m.engine}"]
    if prov is not None and prov.versions:
        comp.append("software versions " + ", ".join(f"{k} {v}" for k, v in prov.versions.items()))
    paras.append("Computation. Analyses used " + "; ".join(comp) + ".")
    return paras
