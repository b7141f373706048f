"""Figures of the HTML report, rendered with matplotlib as base64 PNG strings.

Every function returns the base64 text of a PNG (without the ``data:`` prefix).
The output is deterministic: no timestamps in the PNG metadata and seeded jitter.
Figures draw what the run computed (:class:`hikisig.results.RunResults`); they compute
no statistic.
"""

from __future__ import annotations

import base64
import io
from collections.abc import Sequence
from typing import Any

import matplotlib

matplotlib.use("Agg")

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
from matplotlib.figure import Figure
from matplotlib.lines import Line2D

from hikisig.models.projection import PCAScores
from hikisig.models.result import SeverityResult

__all__ = [
    "boxplots",
    "calibration",
    "cluster_heatmap",
    "cluster_profiles",
    "missingness",
    "pca",
    "pca_by_site",
    "pls_observed_predicted",
    "qc_pca",
    "qc_rsd",
    "roc",
    "vip",
    "volcano",
]

CASE_COLOUR = "#c0392b"
CONTROL_COLOUR = "#2471a3"
OTHER_COLOUR = "#7f8c8d"
SEX_MARKER = {"M": "o", "F": "^"}
SEX_LABEL = {"M": "men", "F": "women"}
CLUSTER_COLOURS = ["#1b9e77", "#d95f02", "#7570b3", "#e7298a", "#66a61e", "#e6ab02", "#a6761d", "#666666"]

_RC: Any = {
    "font.family": "DejaVu Sans",
    "font.size": 9,
    "axes.titlesize": 10,
    "axes.labelsize": 9,
    "axes.spines.top": False,
    "axes.spines.right": False,
    "axes.grid": True,
    "grid.color": "#e5e5e5",
    "grid.linewidth": 0.6,
    "legend.frameon": False,
    "savefig.dpi": 100,
    "svg.hashsalt": "hikisig",
}


def _png(fig: Figure, tight: bool = False) -> str:
    """Encode a figure as base64 PNG text and close it."""
    buf = io.BytesIO()
    with matplotlib.rc_context(_RC):
        fig.savefig(buf, format="png", metadata={"Software": None}, bbox_inches="tight" if tight else None)
    plt.close(fig)
    return base64.b64encode(buf.getvalue()).decode("ascii")


def _figure(w: float, h: float, nrows: int = 1, ncols: int = 1, **kw: Any) -> tuple[Figure, Any]:
    with matplotlib.rc_context(_RC):
        fig, axes = plt.subplots(nrows, ncols, figsize=(w, h), **kw)
    return fig, axes


def _group_colour(group: Any, case_label: str, control_label: str) -> str:
    if group == case_label:
        return CASE_COLOUR
    if group == control_label:
        return CONTROL_COLOUR
    return OTHER_COLOUR


# -- data quality -------------------------------------------------------------
def missingness(by_analyte: pd.Series, per_sample: pd.Series, obs: pd.DataFrame, case_label: str,
                control_label: str) -> str:
    """Fraction missing per analyte (sorted) and per sample by group."""
    fig, (a1, a2) = _figure(9.5, 3.4, 1, 2, gridspec_kw={"width_ratios": [2, 1]})
    per_analyte = by_analyte.sort_values(ascending=False).to_numpy()
    a1.bar(np.arange(len(per_analyte)), per_analyte, width=1.0, color="#5d6d7e")
    a1.set_xlim(-0.5, max(len(per_analyte), 1) - 0.5)
    a1.set_ylim(0, max(0.05, float(per_analyte.max()) * 1.1 if len(per_analyte) else 0.05))
    a1.set_xlabel("analytes (sorted)")
    a1.set_ylabel("fraction missing")
    a1.set_title("Per analyte")
    groups = [control_label, case_label]
    data = [per_sample[obs["group"] == g].to_numpy() for g in groups]
    rng = np.random.default_rng(0)
    for i, (g, d) in enumerate(zip(groups, data, strict=True)):
        col = _group_colour(g, case_label, control_label)
        if len(d):
            a2.boxplot([d], positions=[i], widths=0.5, showfliers=False,
                       medianprops={"color": "black"}, boxprops={"color": col})
            a2.scatter(i + rng.uniform(-0.15, 0.15, len(d)), d, s=10, color=col, alpha=0.6, lw=0)
    a2.set_xticks(range(len(groups)), [f"{g}\n(n={len(d)})" for g, d in zip(groups, data, strict=True)])
    a2.set_ylabel("fraction missing")
    a2.set_title("Per sample")
    fig.tight_layout()
    return _png(fig)


# -- PCA ----------------------------------------------------------------------
def pca(pcs: PCAScores, obs: pd.DataFrame, case_label: str, control_label: str,
        by_sex: bool = True) -> str:
    """PC1 vs PC2 coloured by group, marker shape by sex (without sex: by group only)."""
    scores, ev = pcs.scores, pcs.explained
    fig, ax = _figure(5.6, 4.4)
    handles = []
    if not by_sex:
        obs = obs.assign(sex=None)
    for g in [control_label, case_label]:
        for sex in ["M", "F"]:
            m = (obs["group"] == g) & (obs["sex"] == sex)
            if m.any():
                ax.scatter(scores.loc[m, "PC1"], scores.loc[m, "PC2"], s=28, alpha=0.8,
                           color=_group_colour(g, case_label, control_label), marker=SEX_MARKER[sex],
                           edgecolor="white", linewidth=0.5)
        other = (obs["group"] == g) & ~obs["sex"].isin(["M", "F"])
        if other.any():
            ax.scatter(scores.loc[other, "PC1"], scores.loc[other, "PC2"], s=24,
                       marker="s" if by_sex else "o", color=_group_colour(g, case_label, control_label))
        handles.append(Line2D([], [], ls="", marker="s", color=_group_colour(g, case_label, control_label),
                              label=str(g)))
    if by_sex:
        for sex in ["M", "F"]:
            handles.append(Line2D([], [], ls="", marker=SEX_MARKER[sex], color="#555555",
                                  label=SEX_LABEL[sex]))
    return _pca_finish(fig, ax, ev, handles)


def _pca_finish(fig: Figure, ax: Any, ev: Any, handles: list[Any]) -> str:
    """Axes lines, labels with the explained variance, legend; the figure as PNG."""
    ax.axhline(0, color="#bbbbbb", lw=0.6)
    ax.axvline(0, color="#bbbbbb", lw=0.6)
    ax.set_xlabel(f"PC1 ({100 * ev[0]:.1f}% of variance)")
    ax.set_ylabel(f"PC2 ({100 * ev[1]:.1f}% of variance)" if len(ev) > 1 else "PC2")
    ax.legend(handles=handles, loc="best", fontsize=8)
    fig.tight_layout()
    return _png(fig)


def pca_by_site(pcs: PCAScores, obs: pd.DataFrame, case_label: str, control_label: str) -> str:
    """PC1 vs PC2 coloured by site (``obs["site"]``), marker shape by group."""
    scores, ev = pcs.scores, pcs.explained
    site = obs["site"].reindex(scores.index)
    known = site.notna().to_numpy()
    text = site.astype(object).where(known, None).map(lambda v: None if v is None else str(v))
    levels = sorted({v for v in text if v is not None})
    cmap = matplotlib.colormaps["tab10" if len(levels) <= 10 else "tab20"]
    group = obs["group"].reindex(scores.index)
    fig, ax = _figure(5.6, 4.4)
    handles = []
    for i, lev in enumerate(levels):
        colour = cmap(i % cmap.N)
        for g, marker in ((control_label, "o"), (case_label, "^")):
            m = ((text == lev) & (group == g)).to_numpy()
            if m.any():
                ax.scatter(scores.loc[m, "PC1"], scores.loc[m, "PC2"], s=28, alpha=0.8,
                           color=colour, marker=marker, edgecolor="white", linewidth=0.5)
        handles.append(Line2D([], [], ls="", marker="s", color=colour,
                              label=f"{lev} (n={int((text == lev).sum())})"))
    if not known.all():
        ax.scatter(scores.loc[~known, "PC1"], scores.loc[~known, "PC2"], s=20, color=OTHER_COLOUR,
                   marker="x")
        handles.append(Line2D([], [], ls="", marker="x", color=OTHER_COLOUR, label="no site"))
    for g, marker in ((control_label, "o"), (case_label, "^")):
        handles.append(Line2D([], [], ls="", marker=marker, color="#555555", label=str(g)))
    return _pca_finish(fig, ax, ev, handles)


# -- volcano ------------------------------------------------------------------
def volcano(tab: pd.DataFrame, names: dict[str, str], title: str, q_cut: float = 0.05,
            n_labels: int = 8, additive: bool = False) -> str:
    """log2 fold change (on an additive scale: the difference of means) vs -log10 p; q <
    ``q_cut`` highlighted, the top ``n_labels`` annotated."""
    if additive:
        t = tab.dropna(subset=["p", "effect"])
        x = t["effect"].to_numpy(float)
    else:
        t = tab.dropna(subset=["p", "fold_change"])
        t = t[t["fold_change"] > 0]
        x = np.log2(t["fold_change"].to_numpy(float))
    y = -np.log10(np.clip(t["p"].to_numpy(float), 1e-300, 1.0))
    sig = (t["q"] < q_cut).to_numpy()
    fig, ax = _figure(5.0, 4.2)
    ax.scatter(x[~sig], y[~sig], s=14, color="#b0b7bf", lw=0, label=f"q ≥ {q_cut}")
    up = sig & (x > 0)
    down = sig & (x <= 0)
    ax.scatter(x[up], y[up], s=20, color=CASE_COLOUR, lw=0, label=f"q < {q_cut}, higher in cases")
    ax.scatter(x[down], y[down], s=20, color=CONTROL_COLOUR, lw=0, label=f"q < {q_cut}, lower in cases")
    ax.axvline(0, color="#888888", lw=0.6)
    order = np.argsort(-y, kind="stable")[:n_labels]
    analytes = t["analyte"].astype(str).to_numpy()
    for i in order:
        ax.annotate(names.get(analytes[i], analytes[i]), (x[i], y[i]), xytext=(3, 2),
                    textcoords="offset points", fontsize=7, color="#333333")
    lim = max(0.25, float(np.nanmax(np.abs(x))) * 1.15) if len(x) else 1.0
    ax.set_xlim(-lim, lim)
    ax.set_xlabel("difference of means (cases - controls)" if additive
                  else "log2 fold change (cases / controls)")
    ax.set_ylabel("-log10 p (Welch t test)")
    ax.set_title(title)
    ax.legend(loc="upper left", fontsize=7)
    fig.tight_layout()
    return _png(fig)


# -- box plots ----------------------------------------------------------------
def boxplots(values: pd.DataFrame, obs: pd.DataFrame, columns: Sequence[str], titles: dict[str, str],
             case_label: str, control_label: str, units: dict[str, str] | None = None,
             ncols: int = 3, log: bool = True, by_sex: bool = True) -> str:
    """One panel per column: box + points by group x sex (controls/cases, men/women), or by
    group only (``by_sex=False``)."""
    columns = list(columns)
    nrows = max(1, -(-len(columns) // ncols))
    fig, axes = _figure(3.2 * ncols, 2.8 * nrows, nrows, ncols, squeeze=False)
    sexes: list[str | None] = ["M", "F"] if by_sex else [None]
    cells = [(g, s) for g in [control_label, case_label] for s in sexes]
    rng = np.random.default_rng(0)
    for k, ax in enumerate(axes.ravel()):
        if k >= len(columns):
            ax.set_visible(False)
            continue
        col = columns[k]
        v = values[col]
        for i, (g, s) in enumerate(cells):
            rows = obs["group"] == g
            if s is not None:
                rows &= obs["sex"] == s
            d = v[rows].dropna().to_numpy(float)
            if log:
                d = np.log2(d[d > 0])
            c = _group_colour(g, case_label, control_label)
            if len(d):
                ax.boxplot([d], positions=[i], widths=0.55, showfliers=False,
                           medianprops={"color": "black"}, boxprops={"color": c},
                           whiskerprops={"color": c}, capprops={"color": c})
                ax.scatter(i + rng.uniform(-0.17, 0.17, len(d)), d, s=8, color=c, alpha=0.55, lw=0)
        ax.set_xticks(range(len(cells)), [f"{g}\n{SEX_LABEL[s]}" if s else str(g) for g, s in cells],
                      fontsize=7)
        ax.set_title(titles.get(col, col), fontsize=9)
        unit = (units or {}).get(col, "")
        ax.set_ylabel((f"log2 ({unit})" if unit else "log2 value") if log else unit, fontsize=8)
    fig.tight_layout()
    return _png(fig)


# -- discrimination -------------------------------------------------------------
def roc(roc_table: pd.DataFrame, band: pd.DataFrame | None, auc: float,
        label: str = "out-of-fold ROC") -> str:
    """ROC curve of the out-of-fold predictions with its bootstrap 95% band."""
    fig, ax = _figure(4.4, 4.2)
    if band is not None and len(band):
        ax.fill_between(band["fpr"], band["tpr_ci_low"], band["tpr_ci_high"], color=CASE_COLOUR,
                        alpha=0.18, lw=0, label="95% bootstrap band")
    ax.plot(roc_table["fpr"], roc_table["tpr"], color=CASE_COLOUR, lw=2,
            label=f"{label} (AUC {auc:.2f})")
    ax.plot([0, 1], [0, 1], ls="--", color="#888888", lw=0.8, label="chance")
    ax.set_xlim(0, 1)
    ax.set_ylim(0, 1.01)
    ax.set_aspect("equal")
    ax.set_xlabel("1 - specificity (false positive rate)")
    ax.set_ylabel("sensitivity (true positive rate)")
    ax.legend(loc="lower right", fontsize=8)
    fig.tight_layout()
    return _png(fig)


def calibration(cal: pd.DataFrame, brier: float | None, slope: float | None, intercept: float | None) -> str:
    """Reliability curve (binned mean predicted vs observed fraction) with the diagonal."""
    fig, ax = _figure(4.4, 4.2)
    ax.plot([0, 1], [0, 1], ls="--", color="#888888", lw=0.8, label="perfect calibration")
    n = cal["n"].to_numpy(float) if "n" in cal else np.ones(len(cal))
    ax.plot(cal["mean_predicted"], cal["fraction_positive"], color=CASE_COLOUR, lw=1.2)
    ax.scatter(cal["mean_predicted"], cal["fraction_positive"], s=12 + 4 * n, color=CASE_COLOUR,
               alpha=0.8, edgecolor="white", label="bins (size ∝ n)")
    parts = []
    if brier is not None:
        parts.append(f"Brier {brier:.3f}")
    if slope is not None:
        parts.append(f"slope {slope:.2f}")
    if intercept is not None:
        parts.append(f"intercept {intercept:.2f}")
    if parts:
        ax.text(0.03, 0.97, "\n".join(parts), transform=ax.transAxes, va="top", fontsize=8)
    ax.set_xlim(0, 1)
    ax.set_ylim(0, 1.01)
    ax.set_aspect("equal")
    ax.set_xlabel("mean predicted probability")
    ax.set_ylabel("observed fraction of cases")
    ax.legend(loc="lower right", fontsize=8)
    fig.tight_layout()
    return _png(fig)


# -- severity -------------------------------------------------------------------
def pls_observed_predicted(op: pd.DataFrame, model: SeverityResult) -> str:
    """Observed vs cross-validated predicted severity with the identity line."""
    fig, ax = _figure(4.6, 4.3)
    obs_ = op["observed"].to_numpy(float)
    pred = op["predicted_cv"].to_numpy(float)
    ax.scatter(obs_, pred, s=22, color=CASE_COLOUR, alpha=0.75, edgecolor="white", linewidth=0.5)
    both = np.concatenate([obs_, pred])
    both = both[np.isfinite(both)]
    lo, hi = (float(both.min()), float(both.max())) if len(both) else (0.0, 1.0)
    pad = 0.05 * (hi - lo or 1.0)
    ax.plot([lo - pad, hi + pad], [lo - pad, hi + pad], ls="--", color="#888888", lw=0.8)
    ax.set_xlim(lo - pad, hi + pad)
    ax.set_ylim(lo - pad, hi + pad)
    lines = []
    for key, label in [("r2y", "R²Y"), ("q2", "Q²"), ("rmsecv", "RMSECV"), ("r2_spearman", "R² (Spearman²)")]:
        v = getattr(model, key)
        if isinstance(v, int | float) and np.isfinite(v):
            lines.append(f"{label} {v:.2f}")
    ax.text(0.03, 0.97, "\n".join(lines), transform=ax.transAxes, va="top", fontsize=8)
    ax.set_xlabel("observed score")
    ax.set_ylabel("predicted score (cross-validated)")
    fig.tight_layout()
    return _png(fig)


def vip(vip_table: pd.DataFrame, names: dict[str, str], top: int = 20) -> str:
    """Horizontal bar chart of the top VIP scores; VIP > 1 highlighted."""
    t = vip_table.sort_values("vip", ascending=False, kind="stable").head(top).iloc[::-1]
    fig, ax = _figure(5.0, 0.22 * len(t) + 1.0)
    colours = [CASE_COLOUR if v > 1 else "#b0b7bf" for v in t["vip"]]
    ax.barh([names.get(a, a) for a in t["analyte"].astype(str)], t["vip"], color=colours)
    ax.axvline(1.0, color="#555555", ls="--", lw=0.8)
    ax.set_xlabel("VIP (dashed line: VIP = 1)")
    ax.tick_params(axis="y", labelsize=7)
    ax.grid(axis="y", visible=False)
    fig.tight_layout()
    return _png(fig)


# -- stratification ---------------------------------------------------------------
def cluster_heatmap(Z: pd.DataFrame, clusters: pd.Series, names: dict[str, str]) -> str:
    """Heat map of samples x analytes (autoscaled log2), samples ordered by cluster."""
    fig, ax = _figure(8.0, 0.22 * Z.shape[1] + 1.8)
    labels = sorted(clusters.unique())
    im = ax.imshow(Z.T.to_numpy(), aspect="auto", cmap="RdBu_r", vmin=-2.5, vmax=2.5, interpolation="nearest")
    ax.grid(False)
    ax.set_yticks(range(Z.shape[1]), [names.get(c, c) for c in Z.columns], fontsize=7)
    ax.set_xticks([])
    ax.set_xlabel("samples (ordered by cluster)")
    # cluster bar on top
    start = 0
    for j, lab in enumerate(labels):
        n = int((clusters == lab).sum())
        colour = CLUSTER_COLOURS[j % len(CLUSTER_COLOURS)]
        ax.add_patch(plt.Rectangle((start - 0.5, -1.6), n, 0.9, color=colour, clip_on=False))
        ax.text(start - 0.5 + n / 2, -1.9, f"cluster {lab} (n={n})", ha="center", va="bottom", fontsize=8)
        if start:
            ax.axvline(start - 0.5, color="black", lw=1)
        start += n
    ax.set_ylim(Z.shape[1] - 0.5, -0.5)
    cb = fig.colorbar(im, ax=ax, fraction=0.03, pad=0.02)
    cb.set_label("z (log2, autoscaled)")
    return _png(fig, tight=True)


def cluster_profiles(Z: pd.DataFrame, clusters: pd.Series, names: dict[str, str]) -> str:
    """Mean z-score per cluster for the top analytes."""
    means = Z.groupby(clusters.to_numpy()).mean()
    fig, ax = _figure(max(5.0, 0.35 * Z.shape[1] + 1.5), 3.6)
    xs = np.arange(Z.shape[1])
    for j, (lab, row) in enumerate(means.iterrows()):
        n = int((clusters == lab).sum())
        ax.plot(xs, row.to_numpy(), marker="o", ms=4, lw=1.4, color=CLUSTER_COLOURS[j % len(CLUSTER_COLOURS)],
                label=f"cluster {lab} (n={n})")
    ax.axhline(0, color="#888888", lw=0.6)
    ax.set_xticks(xs, [names.get(c, c) for c in Z.columns], rotation=60, ha="right", fontsize=7)
    ax.set_ylabel("mean z (log2, autoscaled)")
    ax.legend(fontsize=8)
    fig.tight_layout()
    return _png(fig)


# -- quality control ----------------------------------------------------------------
def qc_rsd(rsd: pd.Series, rsd_max: float | None) -> str:
    """Distribution of the analytes' RSD over the QC samples, with the filter's threshold."""
    v = rsd.dropna().to_numpy(float)
    fig, ax = _figure(5.0, 3.2)
    if len(v):
        ax.hist(np.clip(v, 0, 1.0), bins=40, color="#5d6d7e")
    if rsd_max is not None:
        ax.axvline(rsd_max, color=CASE_COLOUR, ls="--", lw=1,
                   label=f"threshold {100 * rsd_max:.0f}%")
        ax.legend(fontsize=8)
    ax.set_xlabel("RSD over QC samples (values above 100% shown at 100%)")
    ax.set_ylabel("analytes")
    fig.tight_layout()
    return _png(fig)


def qc_pca(scores: pd.DataFrame, explained: np.ndarray) -> str:
    """PCA scores of study and QC samples (QC samples should cluster tightly)."""
    fig, ax = _figure(5.0, 4.2)
    for kind, colour, marker in (("study", "#b0b7bf", "o"), ("qc", CASE_COLOUR, "D")):
        sub = scores[scores["type"] == kind]
        ax.scatter(sub["PC1"], sub["PC2"], s=18 if kind == "study" else 26, color=colour,
                   marker=marker, lw=0, label=f"{kind} (n={len(sub)})")
    ax.set_xlabel(f"PC1 ({100 * explained[0]:.1f}% of variance)")
    ax.set_ylabel(f"PC2 ({100 * explained[1]:.1f}% of variance)" if len(explained) > 1 else "PC2")
    ax.legend(fontsize=8)
    fig.tight_layout()
    return _png(fig)


#: Colours of the follow-up arms.
ARM_COLOURS = {"treated": "#27ae60", "untreated": CASE_COLOUR, "control": CONTROL_COLOUR}


def followup_trajectories(traj: pd.DataFrame, labels: dict[str, str],
                          order: list[str] | None = None) -> str:
    """Mean (95% CI) of each followed measure per arm and visit, one panel per measure
    (in ``order`` when given)."""
    measures = [m for m in (order or list(dict.fromkeys(traj["measure"])))
                if m in set(traj["measure"])]
    ncols = min(3, max(1, len(measures)))
    nrows = int(np.ceil(len(measures) / ncols))
    fig, axes = _figure(3.3 * ncols, 2.7 * nrows, nrows=nrows, ncols=ncols, squeeze=False)
    flat = list(np.ravel(axes))
    for ax, measure in zip(flat, measures, strict=False):
        sub = traj[traj["measure"] == measure]
        for arm, colour in ARM_COLOURS.items():
            a = sub[sub["arm"] == arm].sort_values("visit")
            if not len(a):
                continue
            lo = (a["mean"] - a["ci_low"]).fillna(0).to_numpy(float)
            hi = (a["ci_high"] - a["mean"]).fillna(0).to_numpy(float)
            ax.errorbar(a["visit"], a["mean"], yerr=[lo, hi], color=colour, marker="o", ms=3,
                        lw=1.3, capsize=2, label=arm)
        ax.set_title(labels.get(measure, measure), fontsize=9)
        ax.set_xlabel("visit")
        ax.set_xticks(sorted(sub["visit"].unique()))
    for ax in flat[len(measures):]:
        ax.set_visible(False)
    flat[0].legend(fontsize=7, loc="best")
    fig.tight_layout()
    return _png(fig)


def forest_plot(rows: pd.DataFrame, title: str, xlabel: str) -> str:
    """A forest plot: one line per row of ``rows`` (top to bottom), with columns ``label``,
    ``estimate``, ``ci_low``, ``ci_high``, ``weight`` (percent; sets the square's size)
    and ``pooled`` (True: drawn as a diamond, e.g. the meta-analysis estimate of a
    stratum). A dashed line marks no effect (0)."""
    n = len(rows)
    fig, ax = _figure(6.0, 0.9 + 0.28 * max(n, 1))
    ys = np.arange(n)[::-1].astype(float)
    for y, r in zip(ys, rows.itertuples(index=False), strict=True):
        est, lo, hi = float(r.estimate), float(r.ci_low), float(r.ci_high)
        if bool(r.pooled):
            ax.fill([lo, est, hi, est], [y, y + 0.3, y, y - 0.3], color=CASE_COLOUR, lw=0)
        else:
            ax.plot([lo, hi], [y, y], color="#333333", lw=1)
            size = 4 + 10 * np.sqrt(max(float(r.weight), 0.0) / 100) if np.isfinite(r.weight) else 4
            ax.plot([est], [y], marker="s", ms=size, color=CONTROL_COLOUR, lw=0)
    ax.axvline(0.0, color=OTHER_COLOUR, lw=0.8, ls="--")
    ax.set_yticks(ys)
    ax.set_yticklabels([str(v) for v in rows["label"]], fontsize=8)
    ax.set_ylim(-0.8, n - 0.2)
    ax.grid(axis="y", visible=False)
    ax.set_xlabel(xlabel)
    ax.set_title(title)
    fig.tight_layout()
    return _png(fig)
