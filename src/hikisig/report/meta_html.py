"""The meta-analysis report (``meta_report.html``): self-contained HTML in the style of the
study report (same CSS, PNG data URIs, no scripts), drawing what
:func:`hikisig.stats.meta.meta_tables` computed."""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

import numpy as np
import pandas as pd
from jinja2 import Environment, FileSystemLoader, StrictUndefined

from hikisig.report import figures as fig
from hikisig.report.html import TEMPLATES, Figure, Section, Table
from hikisig.versions import __version__

__all__ = ["method_text", "render_meta_report"]

_ESTIMATE_NAMES = {"effect": "Hedges' g", "log2fc": "log2 fold change"}


def _num(v: Any, digits: int = 3) -> str:
    try:
        x = float(v)
    except (TypeError, ValueError):
        return str(v)
    if math.isnan(x):
        return "–"
    return f"{x:.{digits}f}"


def _p(v: Any) -> str:
    x = float(v)
    if math.isnan(x):
        return "–"
    return f"{x:.2e}" if x < 0.001 else f"{x:.3f}"


def method_text(estimate: str, method: str, tau2: str, n_sites: int) -> list[str]:
    """The method in words."""
    what = _ESTIMATE_NAMES.get(estimate, estimate)
    first = (f"Each site computed, per analyte and stratum, the {what} of cases against controls "
             "with its standard error from its own participants (hikisig export summary: counts, "
             "means and SDs of log2 values, Hedges' g with its large-sample SE, the log2 fold "
             "change with SE sqrt(sd_case²/n_case + sd_control²/n_control)); no participant-level "
             f"data left any site. {n_sites} site(s) were pooled.")
    if method == "fixed":
        model = ("The estimates were pooled by an inverse-variance fixed-effect model: each "
                 "site weighted by 1/SE², the pooled SE is 1/sqrt(sum of weights).")
    else:
        est = ("restricted maximum likelihood (REML, Viechtbauer 2005; Fisher scoring with step "
               "halving as in metafor)" if tau2 == "reml"
               else "the DerSimonian-Laird moment estimator (DerSimonian & Laird 1986)")
        model = ("The estimates were pooled by an inverse-variance random-effects model: each "
                 "site weighted by 1/(SE² + τ²), with the between-site variance τ² estimated by "
                 f"{est}.")
    rest = ("Heterogeneity: Cochran's Q (fixed-effect weights) on k − 1 degrees of freedom and I² "
            "(percent of the total variation due to between-site differences). Wald z 95% "
            "intervals and p-values; q is the Benjamini-Hochberg adjustment within each stratum. "
            "Results agree with R metafor's rma() to 1e-6 (tests/reference/meta_metafor.R).")
    return [first, model, rest]


def _forest(meta: pd.DataFrame, sites: pd.DataFrame, weights: pd.DataFrame, analyte: str,
            label: str, estimate: str) -> str:
    rows: list[dict[str, Any]] = []
    w = weights[weights["analyte"] == analyte].set_index(["stratum", "site"])["weight"]
    for m in meta[meta["analyte"] == analyte].itertuples(index=False):
        sub = sites[(sites["analyte"] == analyte) & (sites["stratum"] == m.stratum)]
        for s in sub.itertuples(index=False):
            rows.append({"label": f"{m.stratum}: {s.site}", "estimate": s.estimate,
                         "ci_low": s.ci_low, "ci_high": s.ci_high,
                         "weight": float(w.get((m.stratum, s.site), np.nan)), "pooled": False})
        rows.append({"label": f"{m.stratum}: pooled (k={m.k})", "estimate": m.estimate,
                     "ci_low": m.ci_low, "ci_high": m.ci_high, "weight": 100.0, "pooled": True})
    return fig.forest_plot(pd.DataFrame(rows), label, _ESTIMATE_NAMES.get(estimate, estimate))


def render_meta_report(meta: pd.DataFrame, weights: pd.DataFrame, sites: pd.DataFrame, *,
                       estimate: str, method: str, tau2: str, markers: Sequence[str] = (),
                       files: Sequence[str] = (), warnings: Sequence[str] = (),
                       top: int = 8, table_rows: int = 100, date: str = "",
                       title: str = "Federated meta-analysis") -> str:
    """The report's HTML.

    Parameters
    ----------
    meta, weights : DataFrame
        :func:`hikisig.stats.meta.meta_tables`.
    sites : DataFrame
        Each site's estimate and interval (:func:`hikisig.stats.meta.site_intervals` of the
        pooled site summaries): the forest plots' site rows.
    markers : sequence of str
        Derived-marker ids: each one present gets a forest plot.
    top : int
        Forest plots of the analytes with the smallest p (stratum ``all``, else the first).
    """
    site_names = list(dict.fromkeys(sites["site"].astype(str)))
    strata = list(dict.fromkeys(meta["stratum"].astype(str)))
    head = "all" if "all" in strata else (strata[0] if strata else "all")
    ranked = meta[meta["stratum"] == head].sort_values("p", kind="stable")
    marker_set = [m for m in markers if m in set(meta["analyte"])]
    top_ids = [a for a in ranked["analyte"] if a not in marker_set][:top]
    sections: list[Section] = []
    summary = Section("summary", "Summary", paragraphs=[
        f"{len(site_names)} site(s): {', '.join(site_names)}; {meta['analyte'].nunique()} analytes "
        f"in {len(strata)} stratum/strata ({', '.join(strata)}); estimate: "
        f"{_ESTIMATE_NAMES.get(estimate, estimate)}; "
        f"{'fixed-effect' if method == 'fixed' else 'random-effects (' + tau2.upper() + ')'} model.",
        f"{int((ranked['q'] < 0.05).sum())} analyte(s) with q < 0.05 in stratum {head}."])
    if files:
        summary.paragraphs.append("Files: " + ", ".join(files) + ".")
    summary.paragraphs += [f"Warning: {w}" for w in warnings]
    sections.append(summary)
    top_sec = Section("top", f"Forest plots: the {len(top_ids)} analytes with the smallest p")
    for a in top_ids:
        top_sec.figures.append(Figure(f"forest-{a}", _forest(meta, sites, weights, a, a, estimate),
                                      f"forest plot of {a}",
                                      f"{a}: site estimates (squares sized by weight, 95% CI) and "
                                      "the pooled estimate of each stratum (diamond)."))
    sections.append(top_sec)
    if marker_set:
        mk = Section("markers", "Forest plots: derived markers")
        for a in marker_set:
            mk.figures.append(Figure(f"forest-{a}", _forest(meta, sites, weights, a, a, estimate),
                                     f"forest plot of {a}",
                                     f"{a} (a curated derived marker): site estimates and the "
                                     "pooled estimate of each stratum."))
        sections.append(mk)
    shown = meta.assign(_o=meta["stratum"].map({s: i for i, s in enumerate(strata)})) \
        .sort_values(["_o", "p"], kind="stable").head(table_rows)
    cols = ["analyte", "stratum", "k", "estimate", "ci_low", "ci_high", "p", "q", "tau2", "i2",
            "q_p"]
    table = Table(["analyte", "stratum", "k", "estimate", "95% CI", "p", "q", "τ²", "I² (%)",
                   "Q p"],
                  [[str(r["analyte"]), str(r["stratum"]), str(int(r["k"])), _num(r["estimate"]),
                    f"{_num(r['ci_low'])} to {_num(r['ci_high'])}", _p(r["p"]), _p(r["q"]),
                    _num(r["tau2"], 4), _num(r["i2"], 1), _p(r["q_p"])]
                   for _, r in shown[cols].iterrows()],
                  caption=f"The first {len(shown)} of {len(meta)} rows by stratum and p "
                          "(all rows: meta.csv; site weights: weights.csv).")
    sections.append(Section("table", "Pooled estimates", tables=[table]))
    sections.append(Section("method", "Method", paragraphs=method_text(estimate, method, tau2,
                                                                       len(site_names))))
    for i, s in enumerate(sections, start=1):
        s.title = f"{i} {s.title}"
    env = Environment(loader=FileSystemLoader(str(TEMPLATES)), autoescape=True,
                      undefined=StrictUndefined, keep_trailing_newline=True)
    css = (TEMPLATES / "report.css").read_text(encoding="utf-8")
    return env.get_template("meta_report.html.j2").render(
        title=title, date=date or "date not recorded", sections=sections, css=css,
        version=__version__)
