"""Small server-side plots for the pages (PNG data URIs: no script needed)."""

from __future__ import annotations

import base64
import datetime as dt
import io
from dataclasses import dataclass
from typing import Any

from hikisig.web.display import instrument_label

__all__ = ["Band", "history_plot", "intervention_bands", "interventions_plot"]

_BAND_COLOURS = ("#8fbc8f", "#e0b060", "#9db4d8", "#d89db4", "#b0a0d0", "#c8c880", "#a0c8c8")


@dataclass(frozen=True)
class Band:
    """One intervention as drawn: label, start, end (today while ongoing) and whether it is ongoing."""

    label: str
    start: dt.date
    end: dt.date
    ongoing: bool


def intervention_bands(interventions: list[dict[str, Any]], today: dt.date | None = None) -> list[Band]:
    """The bands of a participant's interventions (dicts with ``label``/``kind``, ``start``, ``end``):
    start to end, or to ``today`` while ongoing, oldest first.

    Examples
    --------
    >>> intervention_bands([{"label": "Medication", "start": "2024-01-01", "end": None}],
    ...                    today=dt.date(2024, 3, 1))[0].end
    datetime.date(2024, 3, 1)
    """
    day = today or dt.date.today()
    out = []
    for iv in interventions:
        start = _day(iv["start"])
        end = _day(iv["end"]) if iv.get("end") else None
        out.append(Band(str(iv.get("label") or iv.get("kind")), start, end or max(day, start), end is None))
    return sorted(out, key=lambda b: (b.start, b.label))


def _day(value: Any) -> dt.date:
    if isinstance(value, dt.datetime):
        return value.date()
    if isinstance(value, dt.date):
        return value
    return dt.date.fromisoformat(str(value))


def _uri(fig: Any) -> str:
    fig.tight_layout()
    buf = io.BytesIO()
    fig.savefig(buf, format="png")
    return "data:image/png;base64," + base64.b64encode(buf.getvalue()).decode()


def _plot_by_visit(ax: Any, pts: list[dict[str, Any]]) -> None:
    """The totals by visit number (nothing without points)."""
    if pts:
        ax.plot([p["visit"] for p in pts], [p["total"] for p in pts], marker="o", color="#1f5f8b")
        ax.set_xticks(sorted({int(p["visit"]) for p in pts}))


def _draw_lanes(ax: Any, bands: list[Band]) -> None:
    """One lane per intervention: a shaded bar from start to end, labelled by kind."""
    import matplotlib.dates as mdates

    colours: dict[str, str] = {}
    for i, b in enumerate(bands):
        colour = colours.setdefault(b.label, _BAND_COLOURS[len(colours) % len(_BAND_COLOURS)])
        x0 = mdates.date2num(b.start)
        width = max(mdates.date2num(b.end) - x0, 1.0)
        ax.barh(i, width, left=x0, height=0.7, color=colour, alpha=0.6,
                hatch="//" if b.ongoing else None, edgecolor="#555555", linewidth=0.5)
        ax.text(x0, i, f" {b.label}{' (ongoing)' if b.ongoing else ''}", va="center", ha="left", fontsize=7)
    ax.set_yticks([])
    ax.set_ylim(-0.6, len(bands) - 0.4)
    ax.invert_yaxis()
    ax.xaxis_date()
    ax.xaxis.set_major_formatter(mdates.ConciseDateFormatter(ax.xaxis.get_major_locator()))
    ax.set_xlabel("interventions")


def history_plot(instrument: str, points: list[dict[str, Any]],
                 interventions: list[dict[str, Any]] | None = None, today: dt.date | None = None) -> str:
    """A line plot of an instrument's total by visit, as a ``data:image/png`` URI.

    With ``interventions`` (dicts with ``label``, ``start``, ``end``), each is drawn as a
    shaded band (start to end, or to today while ongoing) in a lane under the scores,
    labelled by kind; when every scored visit has a date the scores are drawn by date and
    the bands are shaded behind them too.
    """
    import matplotlib

    matplotlib.use("Agg")
    from matplotlib.figure import Figure

    pts = [p for p in points if p.get("total") is not None]
    bands = intervention_bands(interventions or [], today)
    if not bands:
        fig = Figure(figsize=(4.2, 2.2), dpi=100)
        ax = fig.add_subplot()
        _plot_by_visit(ax, pts)
        ax.set_xlabel("visit")
        ax.set_ylabel(f"{instrument_label(instrument)} total")
        ax.grid(alpha=0.3)
        return _uri(fig)
    by_date = bool(pts) and all(p.get("date") for p in pts)
    fig = Figure(figsize=(4.8, 2.4 + 0.25 * len(bands)), dpi=100)
    grid = fig.add_gridspec(2, 1, height_ratios=[3, 1 + 0.35 * len(bands)])
    ax = fig.add_subplot(grid[0])
    lanes = fig.add_subplot(grid[1], sharex=ax if by_date else None)
    if by_date:
        import matplotlib.dates as mdates

        ax.plot([float(mdates.date2num(_day(p["date"]))) for p in pts], [p["total"] for p in pts],
                marker="o", color="#1f5f8b")
        for b in bands:
            ax.axvspan(float(mdates.date2num(b.start)), float(mdates.date2num(b.end)), color="#8fbc8f",
                       alpha=0.15, linewidth=0)
        ax.tick_params(labelbottom=False)
    else:
        _plot_by_visit(ax, pts)
        ax.set_xlabel("visit (no visit dates: interventions by date below)")
    ax.set_ylabel(f"{instrument_label(instrument)} total")
    ax.grid(alpha=0.3)
    _draw_lanes(lanes, bands)
    return _uri(fig)


def interventions_plot(interventions: list[dict[str, Any]], today: dt.date | None = None) -> str:
    """The interventions alone as shaded bands by date (a participant without scores yet)."""
    import matplotlib

    matplotlib.use("Agg")
    from matplotlib.figure import Figure

    bands = intervention_bands(interventions, today)
    fig = Figure(figsize=(4.8, 0.9 + 0.35 * max(len(bands), 1)), dpi=100)
    _draw_lanes(fig.add_subplot(), bands)
    return _uri(fig)
