"""lm-eval hooks of the ``turkishmmlu_langadapt*`` tasks (referenced by the task YAMLs).

The prompt is the one of the TurkishMMLU paper's evaluation (its lm-eval
configuration, ``lm_eval/tasks/turkishmmlu/config/_turkishmmlu_default_yaml``):
``Soru: {question}`` (stripped), the options ``A. ``–``E. `` on their own lines,
``Cevap:``, and the answer letter after a space; the shots are the first rows of
the subject's ``dev`` split.
"""

from __future__ import annotations

import logging
from typing import Any

from langadapt_tasks.turkishmmlu.data import CHOICES, load_subject

__all__ = ["doc_to_target", "load_subject"]


class _QuietCustomDatasetHint(logging.Filter):
    """Drop lm-eval's per-task hint about custom datasets (one line per subject)."""

    def filter(self, record: logging.LogRecord) -> bool:
        return "Custom kwargs can be passed to `--metadata`" not in record.getMessage()


logging.getLogger("lm_eval.api.task").addFilter(_QuietCustomDatasetHint())


def doc_to_target(doc: dict[str, Any]) -> int:
    return CHOICES.index(doc["answer"])
