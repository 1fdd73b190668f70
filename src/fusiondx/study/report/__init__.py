"""The study report: one self-contained HTML page, plus the ranked table as Markdown and CSV.

``write_report(results, out)`` renders the ``results`` dict of a study (see the runner for the
schema) into a single HTML file: inline CSS, every plot a base64 PNG, no script and no external
resource, so it can be mailed or archived as is. Optional parts of ``results`` (curves, confusion
matrix, ablation, robustness, training curves, data summary) that are absent are skipped with a
one-line note. ``write_tables(results, out_dir)`` writes ``table.md`` and ``table.csv``.
"""

from __future__ import annotations

from fusiondx.study.report._page import write_report
from fusiondx.study.report._tables import write_tables

__all__ = ["write_report", "write_tables"]
