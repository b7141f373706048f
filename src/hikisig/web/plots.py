"""Small server-side plots for the pages (PNG data URIs: no script needed)."""

from __future__ import annotations

import base64
import io
from typing import Any

__all__ = ["history_plot"]


def history_plot(instrument: str, points: list[dict[str, Any]]) -> str:
    """A line plot of an instrument's total by visit, as a ``data:image/png`` URI."""
    import matplotlib

    matplotlib.use("Agg")
    from matplotlib.figure import Figure

    pts = [p for p in points if p.get("total") is not None]
    fig = Figure(figsize=(4.2, 2.2), dpi=100)
    ax = fig.add_subplot()
    if pts:
        ax.plot([p["visit"] for p in pts], [p["total"] for p in pts], marker="o", color="#1f5f8b")
        ax.set_xticks(sorted({int(p["visit"]) for p in pts}))
    ax.set_xlabel("visit")
    ax.set_ylabel(f"{instrument} total")
    ax.grid(alpha=0.3)
    fig.tight_layout()
    buf = io.BytesIO()
    fig.savefig(buf, format="png")
    return "data:image/png;base64," + base64.b64encode(buf.getvalue()).decode()
