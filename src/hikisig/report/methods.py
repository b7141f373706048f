"""The Methods section of the report, written from the facts recorded by the run.

``results.methods`` is read leniently; recognised keys are

``preprocessing``
    list of step names (str) or of dicts with ``name``/``step`` and optional
    ``description``/``params``; or a dict step name -> description/params.
``tests``
    list of test names or a dict role -> test name.
``correction`` (or ``multiple_testing``)
    multiple-testing correction (default: Benjamini-Hochberg FDR).
``cv`` (or ``cv_schemes``)
    dict model -> CV scheme, or a string; CV schemes recorded in the model metrics are added.
``ci`` (or ``ci_methods``)
    dict quantity -> method.
``permutations``
    int or dict model -> count; model metrics ``permutations`` are added.
``seed``, ``engine``, ``versions``
    also taken from ``results.provenance`` / ``results.config`` when absent.

Other keys are listed as further settings so that nothing recorded is lost.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from hikisig.pipeline.results import RunResults

__all__ = ["methods_paragraphs", "preprocessing_steps"]

_KNOWN = {"preprocessing", "tests", "correction", "multiple_testing", "cv", "cv_schemes", "ci", "ci_methods",
          "permutations", "seed", "engine", "versions"}

_TEST_NAMES = {"welch": "Welch's t test", "student": "Student's t test", "mwu": "the Mann-Whitney U test",
               "lm": "linear models with covariates (group x sex interaction)",
               "pearson": "Pearson correlation", "spearman": "Spearman correlation"}


def _fmt(v: Any) -> str:
    if isinstance(v, dict):
        return ", ".join(f"{k} = {_fmt(x)}" for k, x in v.items())
    if isinstance(v, list | tuple):
        return ", ".join(_fmt(x) for x in v)
    if isinstance(v, float):
        return f"{v:g}"
    return str(v)


def _join(items: list[str]) -> str:
    items = [i for i in items if i]
    if len(items) <= 1:
        return "".join(items)
    return ", ".join(items[:-1]) + " and " + items[-1]


def preprocessing_steps(methods: dict[str, Any]) -> list[tuple[str, str]]:
    """The preprocessing steps as (name, details) pairs, in order."""
    pre = methods.get("preprocessing")
    out: list[tuple[str, str]] = []
    if isinstance(pre, str):
        out.append((pre, ""))
    elif isinstance(pre, dict):
        out += [(str(k), _fmt(v) if v not in (None, True, "") else "") for k, v in pre.items()]
    elif isinstance(pre, list | tuple):
        for step in pre:
            if isinstance(step, dict):
                name = str(step.get("name") or step.get("step") or step.get("id") or "step")
                rest = {k: v for k, v in step.items() if k not in ("name", "step", "id")}
                detail = rest.pop("description", None)
                params = rest.pop("params", None) or rest
                out.append((name, _fmt(detail) if detail else (_fmt(params) if params else "")))
            else:
                out.append((str(step), ""))
    return out


def _model_facts(results: RunResults, key: str) -> dict[str, Any]:
    return {k: m.metrics[key] for k, m in results.models.items() if m.metrics.get(key) not in (None, "")}


def methods_paragraphs(results: RunResults) -> list[str]:
    """Paragraphs of the Methods section."""
    m = dict(results.methods or {})
    prov = results.provenance or {}
    paras: list[str] = []

    steps = preprocessing_steps(m)
    if steps:
        txt = _join([f"{name} ({detail})" if detail else name for name, detail in steps])
        paras.append(f"Preprocessing. The analyte matrix was prepared in this order: {txt}.")
    else:
        paras.append("Preprocessing. No preprocessing steps were recorded for this run.")

    if results.stats is not None and len(results.stats):
        tests = m.get("tests")
        if isinstance(tests, dict):
            names = [f"{_fmt(v)} ({k})" for k, v in tests.items()]
        elif isinstance(tests, list | tuple):
            names = [_TEST_NAMES.get(str(t), str(t)) for t in tests]
        elif tests:
            names = [str(tests)]
        else:
            names = [_TEST_NAMES.get(str(t), str(t)) for t in results.stats["test"].dropna().unique()]
        strata = [str(s) for s in results.stats["stratum"].dropna().unique()]
        corr = m.get("correction") or m.get("multiple_testing") or "Benjamini-Hochberg false discovery rate"
        if "benjamini" not in str(corr).lower():
            corr = f"{corr}; q values are Benjamini-Hochberg adjusted"
        paras.append(
            f"Univariate statistics. Cases ({results.case_label}) and controls ({results.control_label}) "
            f"were compared with {_join(names)}, overall and within strata ({', '.join(strata)}); fold "
            f"changes are ratios of geometric means. Multiple testing was corrected with {corr} (q values, "
            f"per stratum and test). Cohort characteristics were compared with the chi-square test (sex) "
            f"and Welch's t test (age). Volcano plots use the Welch test.")
    else:
        paras.append("Univariate statistics were not run.")

    cv = m.get("cv") or m.get("cv_schemes") or {}
    cv_all = dict(cv) if isinstance(cv, dict) else ({"all models": cv} if cv else {})
    for k, v in _model_facts(results, "cv_scheme").items():
        cv_all.setdefault(k, v)
    perms = m.get("permutations")
    perm_all = dict(perms) if isinstance(perms, dict) else ({"all models": perms} if perms else {})
    for k, v in _model_facts(results, "permutations").items():
        perm_all.setdefault(k, v)
    if results.models:
        parts = [f"Models were fitted for {_join(sorted(results.models))}."]
        if cv_all:
            parts.append("Validation: " + "; ".join(f"{k}: {_fmt(v)}" for k, v in cv_all.items()) + ".")
        if perm_all:
            parts.append("Label permutations for permutation p values: "
                         + "; ".join(f"{k}: {_fmt(v)}" for k, v in perm_all.items()) + ".")
        paras.append("Models. " + " ".join(parts))
    else:
        paras.append("Models were not run.")

    ci = m.get("ci") or m.get("ci_methods") or {}
    ci_txt = [f"{k}: {_fmt(v)}" for k, v in ci.items()] if isinstance(ci, dict) else ([str(ci)] if ci else [])
    std = []
    if "discriminate" in results.models:
        d = results.models["discriminate"].metrics
        nb = d.get("auc_boot_resamples")
        std.append("The AUC has two 95% confidence intervals, by the DeLong method and by the percentile "
                   f"bootstrap{f' ({nb} resamples)' if nb else ''} of the out-of-fold predictions")
        std.append("sensitivity and specificity use Wilson score intervals for proportions")
        std.append("the ROC band in the figure is a pointwise 95% stratified bootstrap band (200 resamples, "
                   "seed 0, vertical averaging on a grid of 101 false positive rates)")
    if results.stats is not None and len(results.stats):
        std.append("effect sizes carry 95% confidence intervals as reported in the tables")
    alpha = any("alpha" in str(k).lower() or "feldt" in str(v).lower() for k, v in
                (ci.items() if isinstance(ci, dict) else []))
    if alpha:
        std.append("Cronbach's alpha uses the Feldt interval")
    paras.append("Confidence intervals. " + ("; ".join(std) + ". " if std else "")
                 + (("Recorded CI methods: " + "; ".join(ci_txt) + ".") if ci_txt else "")
                 + (" Proportions use Wilson intervals." if not std else ""))

    seed = m.get("seed", prov.get("seed", (results.config or {}).get("seed")))
    engine = m.get("engine", prov.get("engine", (results.config or {}).get("engine")))
    versions = m.get("versions") or prov.get("versions") or {}
    comp = []
    if seed is not None:
        comp.append(f"random seed {seed}")
    if engine is not None:
        comp.append(f"compute engine {_fmt(engine)}")
    if versions:
        comp.append("software versions " + ", ".join(f"{k} {v}" for k, v in versions.items()))
    if comp:
        paras.append("Computation. Analyses used " + "; ".join(comp) + ".")

    other = {k: v for k, v in m.items() if k not in _KNOWN}
    if other:
        paras.append("Further settings. " + "; ".join(f"{k}: {_fmt(v)}" for k, v in other.items()) + ".")
    return paras
