"""The self-contained HTML report of a run (:func:`render_report`)."""

from hikisig.report.html import render_report

__all__ = ["render_report"]
