"""The English MMLU task YAMLs: one task per subject, the four category groups, the top group,
named and described as lm-eval's ``mmlu`` (``mmlu_<subject>`` -> ``mmlu_langadapt_<subject>``)."""

from __future__ import annotations

from langadapt_tasks.benchmarks.mmlu_subjects import (
    CATEGORIES,
    MMLU_GROUP,
    SUBJECTS,
    description,
    mmlu_task_name,
    subjects_in,
)
from langadapt_tasks.generate.render import category_groups

TEMPLATE = "_default_template_yaml"  # written by hand: lm-eval's prompt
AGGREGATES = [{"metric": "acc", "aggregation": "mean", "weight_by_size": True}]


def mmlu_configs() -> dict[str, dict]:
    """File name -> YAML content: subject tasks, category groups and ``mmlu_langadapt``."""
    files: dict[str, dict] = {}
    for subject in SUBJECTS:
        task = mmlu_task_name(subject)
        files[f"{task}.yaml"] = {
            "include": TEMPLATE,
            "task": task,
            "task_alias": subject,
            "dataset_kwargs": {"mmlu_subject": subject},
            "description": description(subject),
        }
    members = {c: [mmlu_task_name(s) for s in subjects_in(c)] for c in CATEGORIES}
    return {**files, **category_groups(MMLU_GROUP, members, AGGREGATES)}
