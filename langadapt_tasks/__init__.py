"""langadapt lm-eval tasks: CMMLU by category (and more), plus their helpers."""

from __future__ import annotations

__version__ = "0.1.0"
