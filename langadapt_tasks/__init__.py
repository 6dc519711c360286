"""langadapt's lm-eval side: CMMLU and MT-Bench tasks, the judge, languages, report and study."""

from __future__ import annotations

__version__ = "0.1.0"
