"""lm-eval hooks of the ``turkishmmlu_langadapt*`` tasks (referenced by the task YAMLs).

The prompt is the one of the TurkishMMLU paper's evaluation (its lm-eval
configuration, ``lm_eval/tasks/turkishmmlu/config/_turkishmmlu_default_yaml``):
``Soru: {question}`` (stripped), the options ``A. ``–``E. `` on their own lines,
``Cevap:``, and the answer letter after a space; the shots are the first rows of
the subject's ``dev`` split.
"""

from __future__ import annotations

from typing import Any

from langadapt_tasks.benchmarks.mcdata import quiet_custom_dataset_hint
from langadapt_tasks.benchmarks.turkishmmlu import CHOICES, load_subject

__all__ = ["doc_to_target", "load_subject"]

quiet_custom_dataset_hint()  # lm-eval logs it once per subject


def doc_to_target(doc: dict[str, Any]) -> int:
    return CHOICES.index(doc["answer"])
