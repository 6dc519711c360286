"""lm-eval hooks of the ``mmlu_langadapt*`` tasks (referenced by the task YAMLs): lm-eval's
own ``mmlu`` prompt and shots, with the data from a local copy of the CSV release or the Hub."""

from __future__ import annotations

from langadapt_tasks.benchmarks.mcdata import quiet_custom_dataset_hint
from langadapt_tasks.benchmarks.mmlu import load_subject

__all__ = ["load_subject"]

quiet_custom_dataset_hint()  # lm-eval logs it once per subject
