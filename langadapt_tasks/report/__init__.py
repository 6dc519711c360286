"""``langadapt report``: study tables, charts and pages from lm-eval result files.

``inputs`` finds and groups the runs per model, ``tables`` builds the CMMLU,
MT-Bench and delta tables, ``render`` writes Markdown, HTML and CSV and
``charts`` the PNG figures; ``build`` ties them together. With models' identities
(``identity``), ``grouped`` lays the tables out like the study's and ``compare`` sets the
study's published figures (``published``) beside ours.
"""

from langadapt_tasks.report.build import build_report
from langadapt_tasks.report.identity import Identity

__all__ = ["Identity", "build_report"]
