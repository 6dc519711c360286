"""``langadapt report``: study tables, charts and pages from lm-eval result files.

``inputs`` finds and groups the runs per model, ``tables`` builds the CMMLU,
MT-Bench and delta tables, ``render`` writes Markdown, HTML and CSV and
``charts`` the PNG figures; ``build`` ties them together.
"""

from langadapt_tasks.report.build import build_report

__all__ = ["build_report"]
